"""The storage conformance suite against the memory storage (with a
snapshot file in a temp dir; the suite adds the snapshot tests)."""

import os
import shutil
import sys
import tempfile

from services import run_conformance

tmp = tempfile.mkdtemp(prefix="gwct-memory-")
try:
    rc = run_conformance("memory", {"PATH": os.path.join(tmp, "snapshot"),
                                    "SNAPSHOT_INTERVAL": 60})
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)
