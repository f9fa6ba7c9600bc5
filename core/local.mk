# core/: the composition on top of the layers: the command line, the
# daemon's start/stop/signals, the loader, the host table, the storage
# thread, the journal, and the gottwall binary. Included from Makefile.am.
libgwcore_la_SOURCES += \
	core/claim.c \
	core/daemon.c \
	core/host.c \
	core/init.c \
	core/journal.c \
	core/loader.c \
	core/seed.c \
	core/store.c \
	core/workers.c

bin_PROGRAMS += gottwall
gottwall_SOURCES = core/main.c
gottwall_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS) $(LIBEV_CFLAGS)
gottwall_LDADD = libgwcore.la

# Private headers (compiled through the sources above; listed for the
# tarball).
EXTRA_DIST += core/claim.h core/daemon.h core/host.h core/init.h \
	core/journal.h core/loader.h core/seed.h core/store.h core/workers.h

if HAVE_CHECK
check_PROGRAMS += tests/core/test_loader tests/core/test_store \
	tests/core/test_init tests/core/test_workers tests/core/test_daemon \
	tests/core/test_host
TESTS += tests/core/test_loader tests/core/test_store tests/core/test_init \
	tests/core/test_workers tests/core/test_daemon tests/core/test_host
endif
tests_core_test_workers_SOURCES = tests/core/test_workers.c \
	$(GW_CORE_TEST_SOURCES)
tests_core_test_workers_CFLAGS = $(GW_RUNTIME_TEST_CFLAGS)
tests_core_test_workers_LDADD = $(TEST_LDADD)
# What the suites that capture the log and load the fixtures share.
GW_CORE_TEST_SOURCES = tests/core/core_test.c tests/core/core_test.h
tests_core_test_init_SOURCES = tests/core/test_init.c \
	$(GW_CORE_TEST_SOURCES)
tests_core_test_init_CFLAGS = $(GW_RUNTIME_TEST_CFLAGS)
tests_core_test_init_LDADD = $(TEST_LDADD)
tests_core_test_loader_SOURCES = tests/core/test_loader.c
tests_core_test_loader_CFLAGS = $(GW_RUNTIME_TEST_CFLAGS)
tests_core_test_loader_LDADD = $(TEST_LDADD)
tests_core_test_store_SOURCES = tests/core/test_store.c \
	$(GW_CORE_TEST_SOURCES)
tests_core_test_store_CFLAGS = $(GW_RUNTIME_TEST_CFLAGS)
tests_core_test_store_LDADD = $(TEST_LDADD)
# The daemon made without running it, and the host table on its
# instances.
tests_core_test_daemon_SOURCES = tests/core/test_daemon.c \
	$(GW_CORE_TEST_SOURCES)
tests_core_test_daemon_CFLAGS = $(GW_RUNTIME_TEST_CFLAGS)
tests_core_test_daemon_LDADD = $(TEST_LDADD)
tests_core_test_host_SOURCES = tests/core/test_host.c \
	$(GW_CORE_TEST_SOURCES)
tests_core_test_host_CFLAGS = $(GW_RUNTIME_TEST_CFLAGS)
tests_core_test_host_LDADD = $(TEST_LDADD)

# The journal alone (records, rotation, replay, the manifest).
check_PROGRAMS += tests/core/test_journal
TESTS += tests/core/test_journal
tests_core_test_journal_SOURCES = tests/core/test_journal.c
tests_core_test_journal_CFLAGS = $(AM_CFLAGS) $(LIBEV_CFLAGS)
tests_core_test_journal_LDADD = libgwcore.la $(LIBEV_LIBS)

# The command line and the daemon's life cycle, against the real binary.
TESTS += tests/integration/test_cli.py tests/integration/test_daemon.py
EXTRA_DIST += tests/integration/test_cli.py tests/integration/test_daemon.py \
	tests/lib/gwtest.py

# The example's placeholder secrets, refused off loopback (issue 16).
TESTS += tests/integration/test_placeholder_secrets.py
EXTRA_DIST += tests/integration/test_placeholder_secrets.py
