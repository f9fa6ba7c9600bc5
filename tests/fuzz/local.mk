# tests/fuzz: build rules (included from Makefile.am).
#
# Each fuzz target is built twice: here, with the normal compiler and
# tests/fuzz/replay.c as main(), as a check program that replays its corpus
# (tests/fuzz/corpus/TARGET, which also keeps every input that ever found a
# bug, as a regression input) on every make check; and by
# `make fuzz` with clang -fsanitize=fuzzer,address,undefined
# (tests/fuzz/build.sh), which then runs each target FUZZ_SECONDS seconds.
# The event target (fuzz_event.c) has its rules in ingest/local.mk.

GW_FUZZ_TARGETS = auth statsd config udp http

check_PROGRAMS += tests/fuzz/replay_auth tests/fuzz/replay_statsd \
	tests/fuzz/replay_config tests/fuzz/replay_udp tests/fuzz/replay_http
TESTS += tests/fuzz/replay_auth tests/fuzz/replay_statsd \
	tests/fuzz/replay_config tests/fuzz/replay_udp tests/fuzz/replay_http

GW_FUZZ_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(LIBCONFIG_CFLAGS) \
	$(LIBEV_CFLAGS)
GW_FUZZ_CORPUS = $(abs_top_srcdir)/tests/fuzz/corpus

tests_fuzz_replay_auth_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_auth.c \
	tests/fuzz/fuzz_host.h
tests_fuzz_replay_auth_CPPFLAGS = $(AM_CPPFLAGS) \
	-DGW_FUZZ_CORPUS='"$(GW_FUZZ_CORPUS)/auth"'
tests_fuzz_replay_auth_CFLAGS = $(GW_FUZZ_CFLAGS)
tests_fuzz_replay_auth_LDADD = libgwcore.la

tests_fuzz_replay_statsd_SOURCES = tests/fuzz/replay.c \
	tests/fuzz/fuzz_statsd.c plugins/transport/statsd/statsd_parse.c
tests_fuzz_replay_statsd_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/plugins/transport/statsd \
	-DGW_FUZZ_CORPUS='"$(GW_FUZZ_CORPUS)/statsd"'
tests_fuzz_replay_statsd_CFLAGS = $(AM_CFLAGS)
tests_fuzz_replay_statsd_LDADD = -lm

tests_fuzz_replay_config_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_config.c
tests_fuzz_replay_config_CPPFLAGS = $(AM_CPPFLAGS) \
	-DGW_FUZZ_CORPUS='"$(GW_FUZZ_CORPUS)/config"'
tests_fuzz_replay_config_CFLAGS = $(GW_FUZZ_CFLAGS)
tests_fuzz_replay_config_LDADD = libgwcore.la

tests_fuzz_replay_udp_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_udp.c \
	tests/fuzz/fuzz_host.h
tests_fuzz_replay_udp_CPPFLAGS = $(AM_CPPFLAGS) \
	-DGW_FUZZ_CORPUS='"$(GW_FUZZ_CORPUS)/udp"'
tests_fuzz_replay_udp_CFLAGS = $(GW_FUZZ_CFLAGS)
tests_fuzz_replay_udp_LDADD = libgwcore.la $(LIBEV_LIBS)

tests_fuzz_replay_http_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_http.c
tests_fuzz_replay_http_CPPFLAGS = $(AM_CPPFLAGS) \
	-DGW_FUZZ_CORPUS='"$(GW_FUZZ_CORPUS)/http"'
tests_fuzz_replay_http_CFLAGS = $(GW_FUZZ_CFLAGS)
tests_fuzz_replay_http_LDADD = libgwcore.la $(LIBEV_LIBS)

EXTRA_DIST += tests/fuzz/fuzz_check.h tests/fuzz/build.sh tests/fuzz/lsan.supp tests/fuzz/corpus/auth \
	tests/fuzz/corpus/statsd tests/fuzz/corpus/config \
	tests/fuzz/corpus/udp tests/fuzz/corpus/http

# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="auth http"]: clang builds in
# fuzz-bin/, then each target runs FUZZ_SECONDS on a copy of its corpus;
# new inputs are merged (minimised) back into tests/fuzz/corpus/TARGET.
FUZZ_SECONDS = 60
FUZZ_TARGETS = event $(GW_FUZZ_TARGETS)
.PHONY: fuzz
fuzz:
	FUZZ_SECONDS='$(FUZZ_SECONDS)' $(SHELL) $(top_srcdir)/tests/fuzz/build.sh \
		'$(abs_top_srcdir)' '$(abs_top_builddir)' $(FUZZ_TARGETS)
