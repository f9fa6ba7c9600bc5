# plugins/transport/tcpip: build rules (included from Makefile.am).
