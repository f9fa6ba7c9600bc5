/*
 * tests/sdk/abi_next.c: a storage plugin built against the installed SDK
 * but claiming the next major plugin ABI, as a plugin built for a future
 * daemon would. test_examples.sh builds it out of tree and checks that the
 * daemon refuses it with a message naming both versions.
 */
#include <gottwall/plugin.h>

static int
an_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    (void) ctx;
    (void) state;
    return gw_error_set(err, "never loaded");
}

static void
an_destroy(void *state)
{
    (void) state;
}

static const gw_storage_ops_t an_ops = {
    .struct_size = sizeof(gw_storage_ops_t),
    .create = an_create,
    .destroy = an_destroy,
};

GW_PLUGIN_DESCRIPTOR = {
    .magic = GW_PLUGIN_MAGIC,
    .abi_major = GW_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .struct_size = sizeof(gw_plugin_t),
    .kind = GW_PLUGIN_STORAGE,
    .name = "abinext",
    .version = "9.0.0",
    .description = "test: built for the next major plugin ABI",
    .storage = &an_ops,
};
