# plugins/transport/statsd: build rules (included from Makefile.am).

pkglib_LTLIBRARIES += transport_statsd.la
transport_statsd_la_SOURCES = \
	plugins/transport/statsd/statsd.c \
	plugins/transport/statsd/statsd_parse.c \
	plugins/transport/statsd/statsd_parse.h \
	plugins/transport/common/listen.h
transport_statsd_la_CFLAGS = $(AM_CFLAGS) $(LIBEV_CFLAGS)
transport_statsd_la_LDFLAGS = $(PLUGIN_LDFLAGS)
transport_statsd_la_LIBADD = $(LIBEV_LIBS) -lm

# The parser alone, unit-tested with Check.
if HAVE_CHECK
check_PROGRAMS += tests/plugins/test_statsd_parse
TESTS += tests/plugins/test_statsd_parse
tests_plugins_test_statsd_parse_SOURCES = \
	tests/plugins/test_statsd_parse.c \
	plugins/transport/statsd/statsd_parse.c
tests_plugins_test_statsd_parse_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/plugins/transport/statsd
tests_plugins_test_statsd_parse_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_plugins_test_statsd_parse_LDADD = $(CHECK_LIBS) -lm
endif

TESTS += tests/integration/test_statsd.py tests/integration/test_timing_sets.py
EXTRA_DIST += plugins/transport/statsd/README.md tests/integration/test_statsd.py \
	tests/integration/test_timing_sets.py
