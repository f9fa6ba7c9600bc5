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
