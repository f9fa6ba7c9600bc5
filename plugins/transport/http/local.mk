# plugins/transport/http: build rules (included from Makefile.am).

pkglib_LTLIBRARIES += transport_http.la
transport_http_la_SOURCES = plugins/transport/http/http.c
transport_http_la_CFLAGS = $(AM_CFLAGS)
transport_http_la_LDFLAGS = $(PLUGIN_LDFLAGS)
