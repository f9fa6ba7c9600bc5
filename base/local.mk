# base/: what every layer uses: the log, the counters (/metrics), the
# config parser and its key tables, and the buffer, codecs and hash of
# buf.h. Included from Makefile.am.
libgwcore_la_SOURCES += \
	base/buf.c \
	base/conf.c \
	base/conf_retention.c \
	base/conf_server.c \
	base/log.c \
	base/metrics.c
EXTRA_DIST += base/buf.h base/conf.h base/conf_int.h base/log.h base/metrics.h \
	base/post.h

if HAVE_CHECK
check_PROGRAMS += tests/base/test_buf tests/base/test_conf \
	tests/base/test_metrics tests/base/test_log
TESTS += tests/base/test_buf tests/base/test_conf tests/base/test_metrics \
	tests/base/test_log
endif
GW_RUNTIME_TEST_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_base_test_buf_SOURCES = tests/base/test_buf.c
tests_base_test_buf_CFLAGS = $(TEST_CFLAGS)
tests_base_test_buf_LDADD = $(TEST_LDADD)
tests_base_test_conf_SOURCES = tests/base/test_conf.c
tests_base_test_conf_CFLAGS = $(GW_RUNTIME_TEST_CFLAGS)
tests_base_test_conf_LDADD = $(TEST_LDADD)
tests_base_test_metrics_SOURCES = tests/base/test_metrics.c
tests_base_test_metrics_CFLAGS = $(GW_RUNTIME_TEST_CFLAGS)
tests_base_test_metrics_LDADD = $(TEST_LDADD)
tests_base_test_log_SOURCES = tests/base/test_log.c
tests_base_test_log_CFLAGS = $(TEST_CFLAGS)
tests_base_test_log_LDADD = $(TEST_LDADD)
