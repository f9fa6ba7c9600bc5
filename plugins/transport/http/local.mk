# plugins/transport/http: build rules (included from Makefile.am).
