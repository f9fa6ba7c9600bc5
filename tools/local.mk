# tools: build rules (included from Makefile.am).
#
# tools/gwload is the load generator (see tools/bench.sh and
# docs/performance.md). It is deliberately independent of libgwcore: it
# signs requests with libcrypto itself, so it checks the daemon rather than
# sharing its code. Not installed; benchmarks are not tests. One file per
# protocol's sender (udp, tcp, statsd, http) around the shared part; the
# files are listed in tools/gwload-src/gwload.h. (Not tools/gwload/: the
# objects would go in a directory of the program's own name.)
noinst_PROGRAMS += tools/gwload
tools_gwload_SOURCES = tools/gwload-src/gwload.h tools/gwload-src/main.c \
	tools/gwload-src/options.c tools/gwload-src/common.c tools/gwload-src/sign.c \
	tools/gwload-src/ring.c tools/gwload-src/udp.c tools/gwload-src/tcp.c \
	tools/gwload-src/statsd.c tools/gwload-src/http.c tools/gwload-src/readback.c \
	tools/gwload-src/report.c
tools_gwload_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
tools_gwload_LDADD = $(CRYPTO_LIBS) $(PTHREAD_LIBS) -lm

EXTRA_DIST += tools/bench.sh tools/bench/selfcheck.py docs/performance.md \
	tools/simmonth.py tools/bench_timing.py tools/redis_kinds_cost.py \
	tools/pg_kinds_cost.py tools/bench/statsd-file-backend.js tools/callgrind.sh \
	tools/saturate.sh

# Set-up and test scripts (README), for the tarball.
EXTRA_DIST += tools/deps.sh tools/quickstart.sh tools/test.sh

# tools/tablebench measures the aggregation table's bytes per live series
# (docs/performance.md). It links libgwcore for ingest/table.c.
noinst_PROGRAMS += tools/tablebench
tools_tablebench_SOURCES = tools/tablebench.c
tools_tablebench_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tools_tablebench_LDADD = libgwcore.la

# tools/snapbench times a snapshot of the memory storage filled with
# 1,000,000 cells (docs/storage-memory.md, docs/performance.md). It loads
# the plugin through core/loader.c like the daemon.
noinst_PROGRAMS += tools/snapbench
tools_snapbench_SOURCES = tools/snapbench.c
tools_snapbench_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tools_snapbench_LDADD = libgwcore.la
