# tests/reliability: build rules (included from Makefile.am).
# The journal (core/journal.c) and the fault, limit and secret tests that
# run the real daemon: kill -9, SIGTERM under load, slow storage, slow
# clients, reload under load.

libgwcore_la_SOURCES += core/journal.c core/journal.h

check_PROGRAMS += tests/reliability/test_journal_unit
TESTS += tests/reliability/test_journal_unit
tests_reliability_test_journal_unit_SOURCES = \
	tests/reliability/test_journal_unit.c
tests_reliability_test_journal_unit_CFLAGS = $(AM_CFLAGS) $(LIBEV_CFLAGS) \
	-I$(top_srcdir)/core
tests_reliability_test_journal_unit_LDADD = libgwcore.la $(LIBEV_LIBS)

GW_RELIABILITY_TESTS = \
	tests/reliability/test_limits.py \
	tests/reliability/test_faults.py \
	tests/reliability/test_secrets.py \
	tests/reliability/test_tcp_framing.py \
	tests/reliability/test_journal.py \
	tests/reliability/test_kill9.py
TESTS += $(GW_RELIABILITY_TESTS)
EXTRA_DIST += $(GW_RELIABILITY_TESTS)
