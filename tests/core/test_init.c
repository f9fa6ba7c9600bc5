/*
 * tests/core/test_init.c: core/init.c: the config `gottwall init` writes
 * loads as it is, with random keys of the right length and the embedded
 * default (memory storage, http, tcpip and udp transports).
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/conf.h"
#include "core/init.h"
#include "core_test.h"

START_TEST(test_write_new)
{
    gw__config_t cfg;
    gw_error_t err;
    const gw__project_t *p;
    char path[200];

    snprintf(path, sizeof(path), "%s/gottwall.conf", tmpdir);
    ck_assert_int_eq(gw__init_write(path, &err), GW_OK);
    ck_assert_int_eq(access(path, R_OK), 0);
    ck_assert_int_eq(gw__config_load(path, &cfg, &err), GW_OK);
    ck_assert_uint_eq(cfg.nprojects, 2);
    ck_assert_uint_eq(strlen(cfg.secret_key), 40); /* base64 of 30 bytes */
    p = gw__config_project(&cfg, "test_project");
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(strlen(p->public_key), 40);
    ck_assert_str_eq(p->private_key, cfg.secret_key);
    p = gw__config_project(&cfg, "shop");
    ck_assert_str_ne(p->public_key, p->private_key);
    ck_assert_str_eq(cfg.storage.instance, "memory");
    ck_assert_uint_eq(cfg.nbackends, 3);
    ck_assert_str_eq(cfg.backends[0].instance, "http");
    ck_assert_str_eq(cfg.backends[1].instance, "tcpip");
    ck_assert_str_eq(cfg.backends[2].instance, "udp");
    ck_assert_uint_eq(strlen(cfg.cookie_secret), 40);
    gw__config_free(&cfg);
}
END_TEST

static Suite *
init_suite(void)
{
    Suite *s = suite_create("init");

    tcase_add_test(fixture_tcase(s, "init"), test_write_new);
    return s;
}

int
main(void)
{
    return run_suite(init_suite());
}
