# server/: the server role (read API, login and sessions, dashboard pages,
# embedded charts, /health and /metrics). Included from Makefile.am.
libgwcore_la_SOURCES += \
	server/api.c \
	server/api_login.c \
	server/api_dash.c \
	server/api_embed.c \
	server/api_embed_js.c \
	server/api_shared.c \
	server/api_host.c \
	server/api_session.c \
	server/api_int.h \
	server/api_stats.c \
	server/api_stat.c \
	server/throttle.c
EXTRA_DIST += server/server.h server/throttle.h

# Integration and browser tests of the server role.
TESTS += tests/integration/test_api.py tests/browser/test_dashboard.py \
	tests/integration/test_login_attacks.py
EXTRA_DIST += tests/integration/test_api.py tests/browser/test_dashboard.py \
	tests/browser/dashboard.mjs tests/integration/test_login_attacks.py

# Its guards against a hostile browser (issue 16): the Host check
# (ALLOWED_HOSTS), the security headers of every answer, the Origin check
# of state-changing requests, and revocable sessions.
TESTS += tests/integration/test_allowed_hosts.py tests/integration/test_headers.py \
	tests/integration/test_cross_origin.py tests/integration/test_sessions.py
EXTRA_DIST += tests/integration/test_allowed_hosts.py \
	tests/integration/test_headers.py tests/integration/test_cross_origin.py \
	tests/integration/test_sessions.py

# Caps on embedded charts and dashboards, and per-user project lists
# (issue 16).
TESTS += tests/integration/test_embed_caps.py \
	tests/integration/test_user_projects.py
EXTRA_DIST += tests/integration/test_embed_caps.py \
	tests/integration/test_user_projects.py

# What the dashboard learns of PERIODS and RETENTION (issue 14), and what
# it shows of a range before a period's retention, in a browser.
TESTS += tests/integration/test_api_config.py tests/browser/test_retention.py
EXTRA_DIST += tests/integration/test_api_config.py \
	tests/browser/test_retention.py tests/browser/retention.mjs

# Named dashboards with revisions, the list of shared charts, and how
# long the dashboard takes to draw 3 days of minutes (issue 17).
TESTS += tests/integration/test_dashboards.py \
	tests/integration/test_shared_charts.py tests/browser/test_page_load.py
EXTRA_DIST += tests/integration/test_dashboards.py \
	tests/integration/test_shared_charts.py tests/browser/test_page_load.py \
	tests/browser/page_load.mjs

# The login page with and without USERS, the notice after a logout, the
# styled 404 pages and embedded charts sized by their frame, in a browser
# (issue 17, part 5).
TESTS += tests/browser/test_pages.py
EXTRA_DIST += tests/browser/test_pages.py tests/browser/pages.mjs tests/browser/harness.mjs

# Unit suites: the pure parts (ranges, periods, sessions, escaping), the
# login's throttle table and next paths, and the embedded charts and
# dashboards (real requests on loopback, a fake process and storage).
if HAVE_CHECK
check_PROGRAMS += tests/server/test_api tests/server/test_login \
	tests/server/test_embed
TESTS += tests/server/test_api tests/server/test_login tests/server/test_embed
endif
tests_server_test_api_SOURCES = tests/server/test_api.c
tests_server_test_api_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_server_test_api_LDADD = $(TEST_LDADD)
tests_server_test_embed_SOURCES = tests/server/test_embed.c
tests_server_test_embed_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_server_test_embed_LDADD = $(TEST_LDADD)
tests_server_test_login_SOURCES = tests/server/test_login.c
tests_server_test_login_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_server_test_login_LDADD = $(TEST_LDADD)
