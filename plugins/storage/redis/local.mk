# plugins/storage/redis: build rules (included from Makefile.am).
# Built when configure finds hiredis (--enable-redis=auto|yes|no).
if BUILD_REDIS
pkglib_LTLIBRARIES += storage_redis.la
storage_redis_la_SOURCES = \
	plugins/storage/redis/redis.c \
	plugins/storage/redis/store.c \
	plugins/storage/redis/read.c \
	plugins/storage/redis/docs.c \
	plugins/storage/redis/expire.c \
	plugins/storage/redis/rs.h \
	plugins/storage/redis/keys.c \
	plugins/storage/redis/kinds.c \
	plugins/storage/redis/keys.h
storage_redis_la_CFLAGS = $(AM_CFLAGS) $(REDIS_CFLAGS)
storage_redis_la_LDFLAGS = $(PLUGIN_LDFLAGS)
storage_redis_la_LIBADD = $(REDIS_LIBS) -lm
endif
EXTRA_DIST += plugins/storage/redis/README.md plugins/storage/redis/rs.h
