# plugins/transport/udp: build rules (included from Makefile.am).

pkglib_LTLIBRARIES += transport_udp.la
transport_udp_la_SOURCES = plugins/transport/udp/udp.c \
	plugins/transport/common/listen.h
transport_udp_la_CFLAGS = $(AM_CFLAGS) $(LIBEV_CFLAGS)
transport_udp_la_LDFLAGS = $(PLUGIN_LDFLAGS)
transport_udp_la_LIBADD = $(LIBEV_LIBS)
