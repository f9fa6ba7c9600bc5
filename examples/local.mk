# examples: build rules (included from Makefile.am).
#
# The example plugins are NOT built by this Makefile: they are what a third
# party writes, and build outside the tree from the installed SDK alone with
# their own small Makefiles. tests/sdk/test_examples.sh does exactly that
# against a `make install DESTDIR=...` of this build, runs the storage
# conformance suite on the csv storage and the daemon with both examples.
# tests/sdk/test_headers.sh compiles every installed header on its own.

EXTRA_DIST += \
	examples/storage_csv/Makefile \
	examples/storage_csv/README.md \
	examples/storage_csv/csv.c \
	examples/storage_csv/index.c \
	examples/storage_csv/index.h \
	examples/transport_pipe/Makefile \
	examples/transport_pipe/README.md \
	examples/transport_pipe/pipe.c \
	tests/sdk/abi_next.c \
	tests/sdk/examples_daemon.py \
	tests/sdk/test_examples.sh \
	tests/sdk/test_headers.sh

TESTS += tests/sdk/test_headers.sh tests/sdk/test_examples.sh

# sdk/gottwall/sketch.h (the timing and set cells) on its own.
if HAVE_CHECK
check_PROGRAMS += tests/sdk/test_sketch
TESTS += tests/sdk/test_sketch
endif
tests_sdk_test_sketch_SOURCES = tests/sdk/test_sketch.c
tests_sdk_test_sketch_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_sdk_test_sketch_LDADD = $(CHECK_LIBS) -lm
EXTRA_DIST += sdk/README.md

# contrib/gottwall.service: systemd-analyze verify and security.
TESTS += tests/sdk/test_service.sh
EXTRA_DIST += tests/sdk/test_service.sh contrib/gottwall.service \
	tests/sdk/lib.sh

# Files the tarball needs that no other fragment lists: the guides, the CI
# entry point (it runs tools/test.sh) and the style file.
EXTRA_DIST += \
	.ci/run \
	.clang-format \
	docs/api.md \
	docs/architecture.md \
	docs/compatibility.md \
	docs/configuration.md \
	docs/operations.md \
	docs/plugin-abi.md \
	docs/protocols.md \
	docs/scaling.md \
	docs/storage-memory.md \
	docs/storage-postgres.md \
	docs/storage-redis.md

# distcheck's distcleancheck wants an empty build tree after distclean:
# - the browser test keeps its screenshots in test-output/ for a person to
#   look at; `make clean` removes them;
# - configure's exit trap runs `rm -f core ... && rm -f -r ... confdefs.h`,
#   and `rm -f core` fails on our core/ directory (made by config.status for
#   core/.deps), so confdefs.h stays; distclean removes it.
clean-local: gw-clean-test-output
gw-clean-test-output:
	-rm -rf test-output
distclean-local: gw-distclean-confdefs
gw-distclean-confdefs:
	-rm -f confdefs.h
.PHONY: gw-clean-test-output gw-distclean-confdefs
