# web: build rules (included from Makefile.am).
