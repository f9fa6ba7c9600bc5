# tests/tools: the architecture check, tools/check-layers.py (included
# from Makefile.am).

# The check itself, on a small fake tree with each violation planted.
TESTS += tests/tools/test_check_layers.sh
EXTRA_DIST += tests/tools/test_check_layers.sh tools/check-layers.py \
	tests/tools/check_tree.sh

# The check on the real tree.
# enabled once the tree is layered
#TESTS += tests/tools/check_tree.sh
