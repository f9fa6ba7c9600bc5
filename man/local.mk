# man: the manual pages (included from Makefile.am). tests/sdk/test_man.py
# renders them with groff's warnings on and compares them with
# `gottwall --help`, `gottwall COMMAND --help` and the settings the config
# parser and the plugins accept.
dist_man_MANS = man/gottwall.8 man/gottwall.conf.5

TESTS += tests/sdk/test_man.py
EXTRA_DIST += tests/sdk/test_man.py
