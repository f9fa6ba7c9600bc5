# tests: build rules (included from Makefile.am).
