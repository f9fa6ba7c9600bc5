# plugins/transport/udp: build rules (included from Makefile.am).
