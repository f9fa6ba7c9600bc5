# server/: the server role (read API, login and sessions, dashboard pages,
# embedded charts, /health and /metrics). Included from Makefile.am.
libgwcore_la_SOURCES += \
	server/api.c \
	server/api_login.c \
	server/api_embed.c \
	server/api_host.c \
	server/api_int.h \
	server/api_stats.c
EXTRA_DIST += server/server.h

# Integration and browser tests of the server role.
TESTS += tests/integration/test_api.py tests/browser/test_dashboard.py
EXTRA_DIST += tests/integration/test_api.py tests/browser/test_dashboard.py \
	tests/browser/dashboard.mjs

# Its guards against a hostile browser (issue 16): the Host check
# (ALLOWED_HOSTS) and the security headers of every answer.
TESTS += tests/integration/test_allowed_hosts.py tests/integration/test_headers.py
EXTRA_DIST += tests/integration/test_allowed_hosts.py \
	tests/integration/test_headers.py

# Unit suite of the pure parts (ranges, periods, sessions, escaping).
if HAVE_CHECK
check_PROGRAMS += tests/server/test_api
TESTS += tests/server/test_api
endif
tests_server_test_api_SOURCES = tests/server/test_api.c
tests_server_test_api_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_server_test_api_LDADD = $(TEST_LDADD)
