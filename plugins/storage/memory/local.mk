# plugins/storage/memory: build rules (included from Makefile.am).
