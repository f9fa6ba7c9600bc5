/*
 * core/init.h: `gottwall init` (core/init.c).
 */
#ifndef GW_CORE_INIT_H
#define GW_CORE_INIT_H

#include <gottwall/common.h>

/* Writes a new config with random keys to path (mode 0600). GW_OK, or
 * GW_ERR with err saying what failed. */
int gw__init_write(const char *path, gw_error_t *err);

#endif /* GW_CORE_INIT_H */
