# plugins/transport/statsd: build rules (included from Makefile.am).
