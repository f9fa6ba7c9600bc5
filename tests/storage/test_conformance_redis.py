"""The storage conformance suite against the redis storage, on a real
redis-server this test starts (no persistence) on a free port; plus a dead
port for the GW_AGAIN test."""

import sys

from services import free_port, skip, RedisServer, plugin_built, run_conformance

if not plugin_built("redis"):
    skip("the redis storage was not built (configure found no hiredis)")
with RedisServer(persist=False) as r:
    rc = run_conformance("redis", r.settings(),
                         unreachable={"PORT": free_port(),
                                      "CONNECT_TIMEOUT": 500})
sys.exit(rc)
