# core: the server role (read API, login and sessions, dashboard pages,
# embedded charts, /health and /metrics). Included from Makefile.am.
libgwcore_la_SOURCES += \
	core/api.c \
	core/api_auth.c \
	core/api_embed.c \
	core/api_int.h \
	core/api_stats.c

# Integration and browser tests of the server role.
TESTS += tests/integration/test_api.py tests/browser/test_dashboard.py
EXTRA_DIST += tests/integration/test_api.py tests/browser/test_dashboard.py \
	tests/browser/dashboard.mjs

# Unit suite of the pure parts (ranges, periods, sessions, escaping).
if HAVE_CHECK
check_PROGRAMS += tests/core/test_api
TESTS += tests/core/test_api
endif
tests_core_test_api_SOURCES = tests/core/test_api.c
tests_core_test_api_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_core_test_api_LDADD = $(TEST_LDADD)

# Private header, for the tarball.
EXTRA_DIST += core/api.h
