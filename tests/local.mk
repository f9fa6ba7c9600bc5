# tests: build rules (included from Makefile.am).

# Fixture plugins for the loader and storage-thread tests: deliberately
# broken ones and two small good ones. Without -rpath libtool would make
# static convenience archives instead of loadable .so files.
GW_FIXTURE_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
GW_FIXTURES = \
	tests/fixtures/plugins/bad_magic.la \
	tests/fixtures/plugins/abi_major_next.la \
	tests/fixtures/plugins/abi_minor_newer.la \
	tests/fixtures/plugins/no_descriptor.la \
	tests/fixtures/plugins/small_descriptor.la \
	tests/fixtures/plugins/incomplete_ops.la \
	tests/fixtures/plugins/duplicate_name.la \
	tests/fixtures/plugins/storage_fixture.la \
	tests/fixtures/plugins/transport_fixture.la
check_LTLIBRARIES += $(GW_FIXTURES)

tests_fixtures_plugins_bad_magic_la_SOURCES = tests/fixtures/plugins/bad_magic.c
tests_fixtures_plugins_bad_magic_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_abi_major_next_la_SOURCES = tests/fixtures/plugins/abi_major_next.c
tests_fixtures_plugins_abi_major_next_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_abi_minor_newer_la_SOURCES = tests/fixtures/plugins/abi_minor_newer.c
tests_fixtures_plugins_abi_minor_newer_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_no_descriptor_la_SOURCES = tests/fixtures/plugins/no_descriptor.c
tests_fixtures_plugins_no_descriptor_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_small_descriptor_la_SOURCES = tests/fixtures/plugins/small_descriptor.c
tests_fixtures_plugins_small_descriptor_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_incomplete_ops_la_SOURCES = tests/fixtures/plugins/incomplete_ops.c
tests_fixtures_plugins_incomplete_ops_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_duplicate_name_la_SOURCES = tests/fixtures/plugins/duplicate_name.c
tests_fixtures_plugins_duplicate_name_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_storage_fixture_la_SOURCES = tests/fixtures/plugins/storage_fixture.c
tests_fixtures_plugins_storage_fixture_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_transport_fixture_la_SOURCES = tests/fixtures/plugins/transport_fixture.c
tests_fixtures_plugins_transport_fixture_la_CFLAGS = $(AM_CFLAGS) $(LIBEV_CFLAGS)
tests_fixtures_plugins_transport_fixture_la_LDFLAGS = $(GW_FIXTURE_LDFLAGS)
tests_fixtures_plugins_transport_fixture_la_LIBADD = $(LIBEV_LIBS)
