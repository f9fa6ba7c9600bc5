# tools: build rules (included from Makefile.am).
