# server/: the server role (read API, login and sessions, dashboard pages,
# embedded charts, /health and /metrics). Included from Makefile.am.
libgwcore_la_SOURCES += \
	server/api.c \
	server/api_login.c \
	server/api_embed.c \
	server/api_int.h \
	server/api_stats.c \
	server/throttle.c
EXTRA_DIST += server/server.h server/throttle.h

# Integration and browser tests of the server role.
TESTS += tests/integration/test_api.py tests/browser/test_dashboard.py \
	tests/integration/test_login_attacks.py
EXTRA_DIST += tests/integration/test_api.py tests/browser/test_dashboard.py \
	tests/browser/dashboard.mjs tests/integration/test_login_attacks.py

# Unit suites of the pure parts (ranges, periods, sessions, escaping; the
# login's throttle table and next paths).
if HAVE_CHECK
check_PROGRAMS += tests/server/test_api tests/server/test_login
TESTS += tests/server/test_api tests/server/test_login
endif
tests_server_test_api_SOURCES = tests/server/test_api.c
tests_server_test_api_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_server_test_api_LDADD = $(TEST_LDADD)
tests_server_test_login_SOURCES = tests/server/test_login.c
tests_server_test_login_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_server_test_login_LDADD = $(TEST_LDADD)
