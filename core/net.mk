# core: the HTTP server and authentication, with their tests (included from
# Makefile.am).
libgwcore_la_SOURCES += core/http.c core/auth.c

if HAVE_CHECK
check_PROGRAMS += tests/core/test_auth tests/core/test_http
TESTS += tests/core/test_auth tests/core/test_http
endif
tests_core_test_auth_SOURCES = tests/core/test_auth.c
tests_core_test_auth_CFLAGS = $(TEST_CFLAGS)
tests_core_test_auth_LDADD = $(TEST_LDADD)
tests_core_test_http_SOURCES = tests/core/test_http.c
tests_core_test_http_CFLAGS = $(TEST_CFLAGS)
tests_core_test_http_LDADD = $(TEST_LDADD)

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
# The udp tests again with INGEST_LOOPS = 3, and what only several loops
# can get wrong.
TESTS += tests/integration/test_ingest_loops.py
EXTRA_DIST += tests/integration/test_ingest_loops.py

# Private headers, for the tarball.
EXTRA_DIST += core/http.h core/auth.h
