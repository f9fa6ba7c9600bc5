"""Times one flush against fresh local servers (not part of make check).

    cd BUILDDIR && PYTHONPATH=../tests/lib python3 ../tests/storage/bench_flush.py \
        [--series 100000] [--runs 3] [--only redis|postgres]

Starts a redis-server (no persistence) and a PostgreSQL cluster (fsync=off,
as tests/lib/services.py runs it) on free loopback ports, and runs
`gottwall-storage-test --bench SERIES:1` (SERIES deltas, one period) and
`--bench SERIES:7` (SERIES series expanded into the 7 periods, as a real
flush of that many new series) RUNS times each, against a new project
each time, printing every line.
"""

import argparse
import os
import subprocess
import sys

from services import BUILDDIR, PostgresServer, RedisServer, plugin_built, \
    storage_test_binary

os.environ.setdefault("GOTTWALL_PLUGIN_PATH", os.path.join(BUILDDIR, ".libs"))


def bench(plugin, settings, spec):
    args = [storage_test_binary(), "--bench", spec, plugin]
    args += ["%s=%s" % (k, v) for k, v in settings.items()]
    r = subprocess.run(args, capture_output=True, text=True, timeout=900)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr)
        raise SystemExit("%s --bench %s failed (%d)" % (plugin, spec,
                                                         r.returncode))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=["redis", "postgres"])
    a = ap.parse_args()
    specs = ["%d:1" % a.series, "%d:7" % a.series]
    if a.only in (None, "redis") and plugin_built("redis"):
        with RedisServer(persist=False) as r:
            for spec in specs:
                for _ in range(a.runs):
                    bench("redis", r.settings(), spec)
    if a.only in (None, "postgres") and plugin_built("postgres"):
        with PostgresServer() as pg:
            for spec in specs:
                for _ in range(a.runs):
                    bench("postgres", pg.settings(), spec)


if __name__ == "__main__":
    main()
