#!/bin/sh
# tests/tools/check_tree.sh: the real tree passes the architecture check
# (tools/check-layers.py: layer order, include cycles, plugin includes,
# file and function lengths).
: "${GW_SRCDIR:?run me through make check}"
exec "${PYTHON:-python3}" "$GW_SRCDIR/tools/check-layers.py" "$GW_SRCDIR"
