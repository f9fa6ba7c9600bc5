# core: build rules (included from Makefile.am).
