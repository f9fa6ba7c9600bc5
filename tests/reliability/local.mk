# tests/reliability: build rules (included from Makefile.am).
# The fault, limit and secret tests that run the real daemon: kill -9,
# SIGTERM under load, slow storage, slow clients, reload under load. (The
# journal's unit suite is tests/core/test_journal.)

GW_RELIABILITY_TESTS = \
	tests/reliability/test_limits.py \
	tests/reliability/test_faults.py \
	tests/reliability/test_secrets.py \
	tests/reliability/test_tcp_framing.py \
	tests/reliability/test_journal.py \
	tests/reliability/test_kill9.py
TESTS += $(GW_RELIABILITY_TESTS)
EXTRA_DIST += $(GW_RELIABILITY_TESTS)
