# plugins/transport/redis: build rules (included from Makefile.am).

if BUILD_REDIS
pkglib_LTLIBRARIES += transport_redis.la
transport_redis_la_SOURCES = \
	plugins/transport/redis/redis.c \
	plugins/transport/redis/rt.h \
	plugins/transport/redis/rt_link.c \
	plugins/transport/redis/rt_pubsub.c \
	plugins/transport/redis/rt_stream.c
transport_redis_la_CFLAGS = $(AM_CFLAGS) $(REDIS_CFLAGS) $(LIBEV_CFLAGS) \
	$(JANSSON_CFLAGS)
transport_redis_la_LDFLAGS = $(PLUGIN_LDFLAGS)
transport_redis_la_LIBADD = $(REDIS_LIBS) $(LIBEV_LIBS) $(JANSSON_LIBS)

TESTS += tests/integration/test_redis_transport.py \
	tests/integration/test_redis_pubsub_trust.py
endif

EXTRA_DIST += plugins/transport/redis/README.md \
	tests/integration/test_redis_transport.py \
	tests/integration/test_redis_pubsub_trust.py
