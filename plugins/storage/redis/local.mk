# plugins/storage/redis: build rules (included from Makefile.am).
