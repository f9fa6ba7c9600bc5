# core/ingest.mk: the ingestion data path (events -> buckets -> aggregation
# table -> batches) and its unit tests. Included from Makefile.am.

libgwcore_la_SOURCES += \
	core/bucket.c \
	core/bucket.h \
	core/event.c \
	core/ingest.c \
	core/ingest.h \
	core/ingest_int.h \
	core/table.c

# The tests build from these sources alone, so they do not wait on the
# rest of libgwcore.
GW_INGEST_SOURCES = core/bucket.c core/event.c core/ingest.c core/table.c
GW_INGEST_TEST_CFLAGS = $(TEST_CFLAGS) $(JANSSON_CFLAGS)
GW_INGEST_TEST_LDADD = $(CHECK_LIBS) $(JANSSON_LIBS) -lm

if HAVE_CHECK
check_PROGRAMS += tests/core/test_bucket tests/core/test_ingest \
	tests/core/test_batch
TESTS += tests/core/test_bucket tests/core/test_ingest tests/core/test_batch
endif

tests_core_test_bucket_SOURCES = tests/core/test_bucket.c core/bucket.c
tests_core_test_bucket_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_core_test_bucket_LDADD = $(GW_INGEST_TEST_LDADD)

tests_core_test_ingest_SOURCES = tests/core/test_ingest.c $(GW_INGEST_SOURCES)
tests_core_test_ingest_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_core_test_ingest_LDADD = $(GW_INGEST_TEST_LDADD)

tests_core_test_batch_SOURCES = tests/core/test_batch.c $(GW_INGEST_SOURCES)
tests_core_test_batch_CFLAGS = $(GW_INGEST_TEST_CFLAGS)
tests_core_test_batch_LDADD = $(GW_INGEST_TEST_LDADD)

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
