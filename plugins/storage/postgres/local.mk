# plugins/storage/postgres: build rules (included from Makefile.am).
# Built when configure finds libpq (--enable-postgres=auto|yes|no).
if BUILD_POSTGRES
pkglib_LTLIBRARIES += storage_postgres.la
storage_postgres_la_SOURCES = \
	plugins/storage/postgres/postgres.c \
	plugins/storage/postgres/pg.h \
	plugins/storage/postgres/conn.c \
	plugins/storage/postgres/schema.c \
	plugins/storage/postgres/sql.c \
	plugins/storage/postgres/cache.c \
	plugins/storage/postgres/binary.c \
	plugins/storage/postgres/batch.c \
	plugins/storage/postgres/store.c \
	plugins/storage/postgres/read.c \
	plugins/storage/postgres/kinds.c \
	plugins/storage/postgres/part.c \
	plugins/storage/postgres/expire.c
storage_postgres_la_CFLAGS = $(AM_CFLAGS) $(POSTGRES_CFLAGS)
storage_postgres_la_LDFLAGS = $(PLUGIN_LDFLAGS)
storage_postgres_la_LIBADD = $(POSTGRES_LIBS) $(PTHREAD_LIBS) -lm
endif
EXTRA_DIST += plugins/storage/postgres/README.md plugins/storage/postgres/pg.h
