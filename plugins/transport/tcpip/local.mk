# plugins/transport/tcpip: build rules (included from Makefile.am).

pkglib_LTLIBRARIES += transport_tcpip.la
transport_tcpip_la_SOURCES = plugins/transport/tcpip/tcpip.c \
	plugins/transport/common/listen.h
transport_tcpip_la_CFLAGS = $(AM_CFLAGS) $(LIBEV_CFLAGS)
transport_tcpip_la_LDFLAGS = $(PLUGIN_LDFLAGS)
transport_tcpip_la_LIBADD = $(LIBEV_LIBS)
