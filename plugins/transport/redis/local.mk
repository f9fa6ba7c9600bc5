# plugins/transport/redis: build rules (included from Makefile.am).
