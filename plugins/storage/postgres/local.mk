# plugins/storage/postgres: build rules (included from Makefile.am).
