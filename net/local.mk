# net/: the HTTP/1.1 server, the auth schemes and their replay cache, and
# password hashing, with their tests. Included from Makefile.am.
libgwcore_la_SOURCES += net/http.c net/http_parse.c net/auth.c \
	net/password.c
EXTRA_DIST += net/http.h net/http_int.h net/auth.h net/password.h

if HAVE_CHECK
check_PROGRAMS += tests/net/test_auth tests/net/test_http tests/net/test_password
TESTS += tests/net/test_auth tests/net/test_http tests/net/test_password
endif
tests_net_test_auth_SOURCES = tests/net/test_auth.c
tests_net_test_auth_CFLAGS = $(TEST_CFLAGS)
tests_net_test_auth_LDADD = $(TEST_LDADD)
tests_net_test_http_SOURCES = tests/net/test_http.c
tests_net_test_http_CFLAGS = $(TEST_CFLAGS)
tests_net_test_http_LDADD = $(TEST_LDADD)
tests_net_test_password_SOURCES = tests/net/test_password.c
tests_net_test_password_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_net_test_password_LDADD = $(TEST_LDADD)

# Integration tests of the HTTP server, auth and the http, tcpip and udp
# transports, against the real daemon.
TESTS += tests/integration/test_ingest_http.py \
	tests/integration/test_ingest_tcp.py \
	tests/integration/test_ingest_udp.py
EXTRA_DIST += tests/integration/test_ingest_http.py \
	tests/integration/test_ingest_tcp.py \
	tests/integration/test_ingest_udp.py
TESTS += tests/integration/test_hostile.py
EXTRA_DIST += tests/integration/test_hostile.py
# How long a legacy S1/S2 signature lives: the solt window, AUTH_MAX_BASE.
TESTS += tests/integration/test_auth_legacy_window.py
EXTRA_DIST += tests/integration/test_auth_legacy_window.py
# A header signed for one thing used for another: S4's scope (issue 16,
# item 6).
TESTS += tests/integration/test_s4_scope.py
EXTRA_DIST += tests/integration/test_s4_scope.py
# Framing RFC 9112 says to reject, as exact bytes (issue 16, item 10).
TESTS += tests/integration/test_http_framing.py
EXTRA_DIST += tests/integration/test_http_framing.py
# One client cannot hold every HTTP connection (issue 16, item 5).
TESTS += tests/integration/test_http_slots.py
EXTRA_DIST += tests/integration/test_http_slots.py
# The udp tests again with INGEST_LOOPS = 3, and what only several loops
# can get wrong.
TESTS += tests/integration/test_ingest_loops.py \
	tests/integration/test_loops_transports.py
EXTRA_DIST += tests/integration/test_ingest_loops.py \
	tests/integration/test_loops_transports.py
