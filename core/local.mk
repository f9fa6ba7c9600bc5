# core: build rules (included from Makefile.am).
# The daemon's runtime: config, log, loader, host table, storage thread,
# counters, passwords, and the gottwall binary.
libgwcore_la_SOURCES += \
	core/config.c \
	core/daemon.c \
	core/host.c \
	core/loader.c \
	core/log.c \
	core/metrics.c \
	core/password.c \
	core/store.c

bin_PROGRAMS += gottwall
gottwall_SOURCES = core/main.c
gottwall_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS) $(LIBEV_CFLAGS)
gottwall_LDADD = libgwcore.la

# Private headers (compiled through the sources above; listed for the
# tarball).
EXTRA_DIST += core/config.h core/daemon.h core/loader.h core/log.h \
	core/metrics.h core/store.h
