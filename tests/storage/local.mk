# tests/storage: the storage conformance suite (included from
# plugins/storage/memory/local.mk). gottwall-storage-test is installed so a
# third party can run it against their own storage plugin.
if HAVE_CHECK
bin_PROGRAMS += gottwall-storage-test
gottwall_storage_test_SOURCES = tests/storage/conformance.c
gottwall_storage_test_CFLAGS = $(TEST_CFLAGS)
gottwall_storage_test_LDADD = $(TEST_LDADD)
TESTS += \
	tests/storage/test_conformance_memory.py \
	tests/storage/test_conformance_redis.py \
	tests/storage/test_conformance_postgres.py \
	tests/storage/test_redis_layout.py \
	tests/storage/test_redis_kinds.py \
	tests/storage/test_redis_expire.py \
	tests/storage/test_postgres_schema.py \
	tests/storage/test_postgres_partitions.py
endif
# The daemon against real servers: outages and several aggregators.
TESTS += \
	tests/integration/test_storage_outage.py \
	tests/integration/test_shared_storage.py \
	tests/integration/test_replay_shared.py \
	tests/integration/test_retention_postgres.py
EXTRA_DIST += \
	tests/integration/test_replay_shared.py \
	tests/integration/test_retention_postgres.py \
	tests/storage/test_conformance_memory.py \
	tests/storage/test_conformance_redis.py \
	tests/storage/test_conformance_postgres.py \
	tests/storage/test_redis_layout.py \
	tests/storage/test_redis_kinds.py \
	tests/storage/test_redis_expire.py \
	tests/storage/test_postgres_schema.py \
	tests/storage/test_postgres_partitions.py \
	tests/integration/test_storage_outage.py \
	tests/integration/test_shared_storage.py \
	tests/lib/services.py \
	tests/storage/bench_flush.py \
	tests/storage/bench_expire.py
