# plugins/storage/memory: build rules (included from Makefile.am).
# The in-process storage, always built: `gottwall start` needs it.
pkglib_LTLIBRARIES += storage_memory.la
storage_memory_la_SOURCES = \
	plugins/storage/memory/memory.c \
	plugins/storage/memory/memory.h \
	plugins/storage/memory/map.c \
	plugins/storage/memory/map.h \
	plugins/storage/memory/nonces.c \
	plugins/storage/memory/snapshot.c
storage_memory_la_LDFLAGS = $(PLUGIN_LDFLAGS)
storage_memory_la_LIBADD = -lm $(PTHREAD_LIBS)
EXTRA_DIST += plugins/storage/memory/README.md
