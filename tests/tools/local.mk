# tests/tools: the architecture check, tools/check-layers.py (included
# from Makefile.am).

# The check itself, on a small fake tree with each violation planted.
TESTS += tests/tools/test_check_layers.sh
EXTRA_DIST += tests/tools/test_check_layers.sh tools/check-layers.py \
	tests/tools/check_tree.sh

# The check on the real tree: an include of a higher layer, two folders
# that include each other, a plugin that includes a layer, a file over
# 1,200 lines or a function over 120 fail the build.
TESTS += tests/tools/check_tree.sh

# The tests' free-port chooser passes over the ports fetch() refuses.
TESTS += tests/tools/test_free_port.py
EXTRA_DIST += tests/tools/test_free_port.py
