# ingest/: the ingestion data path (events -> buckets -> aggregation table
# -> batches) and its unit tests. Included from Makefile.am.

libgwcore_la_SOURCES += \
	ingest/alloc.c \
	ingest/bucket.c \
	ingest/bucket.h \
	ingest/event.c \
	ingest/event.h \
	ingest/event_fast.c \
	ingest/event_json.c \
	ingest/ingest.c \
	ingest/ingest.h \
	ingest/ingest_int.h \
	ingest/series.c \
	ingest/series.h \
	ingest/slots.h \
	ingest/table.c \
	ingest/table_int.h \
	ingest/batch.c

# The tests build from these sources alone (and base/conf.h's types,
# base/log.c for the storage thread's out-of-memory line and base/metrics.c
# for the count of saturated sums), so they do not
# wait on the rest of libgwcore.
GW_INGEST_SOURCES = ingest/alloc.c ingest/bucket.c ingest/event.c \
	ingest/event_fast.c ingest/event_json.c ingest/ingest.c ingest/series.c \
	ingest/table.c ingest/batch.c base/log.c base/metrics.c base/buf.c
GW_INGEST_TEST_CFLAGS = $(TEST_CFLAGS) $(JANSSON_CFLAGS)
GW_INGEST_TEST_LDADD = $(CHECK_LIBS) $(JANSSON_LIBS) -lm

if HAVE_CHECK
check_PROGRAMS += tests/ingest/test_bucket tests/ingest/test_event \
	tests/ingest/test_ingest tests/ingest/test_series tests/ingest/test_table \
	tests/ingest/test_kinds
TESTS += tests/ingest/test_bucket tests/ingest/test_event \
	tests/ingest/test_ingest tests/ingest/test_series tests/ingest/test_table \
	tests/ingest/test_kinds
endif

tests_ingest_test_bucket_SOURCES = tests/ingest/test_bucket.c ingest/bucket.c
tests_ingest_test_bucket_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_ingest_test_bucket_LDADD = $(GW_INGEST_TEST_LDADD)

tests_ingest_test_event_SOURCES = tests/ingest/test_event.c $(GW_INGEST_SOURCES)
tests_ingest_test_event_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_ingest_test_event_LDADD = $(GW_INGEST_TEST_LDADD)

tests_ingest_test_ingest_SOURCES = tests/ingest/test_ingest.c $(GW_INGEST_SOURCES)
tests_ingest_test_ingest_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_ingest_test_ingest_LDADD = $(GW_INGEST_TEST_LDADD)

tests_ingest_test_series_SOURCES = tests/ingest/test_series.c $(GW_INGEST_SOURCES)
tests_ingest_test_series_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_ingest_test_series_LDADD = $(GW_INGEST_TEST_LDADD)

tests_ingest_test_table_SOURCES = tests/ingest/test_table.c $(GW_INGEST_SOURCES)
tests_ingest_test_table_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_ingest_test_table_LDADD = $(GW_INGEST_TEST_LDADD)

tests_ingest_test_kinds_SOURCES = tests/ingest/test_kinds.c $(GW_INGEST_SOURCES)
tests_ingest_test_kinds_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_ingest_test_kinds_LDADD = $(GW_INGEST_TEST_LDADD)

# The fuzz target's corpus, replayed on every make check (no libFuzzer
# needed; see tests/fuzz/fuzz_event.c for fuzzing with clang).
check_PROGRAMS += tests/fuzz/replay_event
TESTS += tests/fuzz/replay_event
tests_fuzz_replay_event_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_event.c \
	$(GW_INGEST_SOURCES)
tests_fuzz_replay_event_CPPFLAGS = $(AM_CPPFLAGS) \
	-DGW_FUZZ_CORPUS='"$(abs_top_srcdir)/tests/fuzz/corpus/event"'
tests_fuzz_replay_event_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_replay_event_LDADD = $(JANSSON_LIBS) -lm
EXTRA_DIST += tests/fuzz/corpus/event

# Series floods (the live-series limits) against the real daemon.
TESTS += tests/integration/test_series_flood.py
EXTRA_DIST += tests/integration/test_series_flood.py

# Event values bounded at admission, sums saturated (issue 16, item 14).
TESTS += tests/integration/test_value_bounds.py
EXTRA_DIST += tests/integration/test_value_bounds.py

# RETENTION against the real daemon (writes, reads, expiry).
TESTS += tests/integration/test_retention.py
EXTRA_DIST += tests/integration/test_retention.py
