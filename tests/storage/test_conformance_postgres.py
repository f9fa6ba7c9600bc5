"""The storage conformance suite against the postgres storage, on a real
PostgreSQL cluster this test creates (initdb, pg_ctl) on a free port; plus a
dead port for the GW_AGAIN test."""

import sys

from services import free_port, skip, PostgresServer, plugin_built, run_conformance

if not plugin_built("postgres"):
    skip("the postgres storage was not built (configure found no libpq)")
with PostgresServer() as pg:
    dead = "host=127.0.0.1 port=%d user=gottwall dbname=gottwall" % free_port()
    rc = run_conformance("postgres", pg.settings(),
                         unreachable={"DSN": dead, "CONNECT_TIMEOUT": 2})
sys.exit(rc)
