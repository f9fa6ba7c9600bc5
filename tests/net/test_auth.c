/*
 * tests/net/test_auth.c: net/auth.c against SPEC §4: the legacy test
 * vectors, S1, S2 (their solt window and AUTH_MAX_BASE), Basic (both
 * orders), S3 (window, nonce, replay, body), S4 (S3 and the scope: its
 * vectors of docs/protocols.md, a header refused in any other scope) and
 * the redis key pair, with
 * every failure and its exact message.
 * The clock is fake, so nothing depends on when the test runs.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "net/auth.h"

#define TS 1392454739
#define SIGN_FLOOR "5134790630290ed958e5413d526d1915" /* solt 1392454000 */
#define SIGN_ROUND "24b9af82a663c32c4b919159ffb25216" /* solt 1392455000 */
#define BODY "{\"n\": \"orders\"}"
#define S3_SIGN                                                               \
    "ec8e9c3e6aedca038781951ebc6b76bb58b0e8ba38c18daf049b5e392bca22d9"
/* docs/protocols.md's S4 vectors: private_key, test_project, TS,
 * nonce-0001_abc, and a scope and body each. */
#define S4_INGEST "POST /api/v1/test_project/incr"
#define S4_READ "GET /api/v1/test_project/metrics"
#define S4_SIGN_INGEST                                                        \
    "e95649d15275dab30bab4418828ed5fb33ee66567047f2b7408967af4de58bca"
#define S4_SIGN_INGEST_EMPTY                                                  \
    "7281ed9adf7e632efdfd30bfc7c4c008bdd4b2ee4e3cc81e9ff97dc037acca12"
#define S4_SIGN_READ                                                          \
    "e82619bece82f48e6ef821cf9ea2122cba31f54b09b4b0a8bfcdf78dc68e2d5d"
#define S4_SIGN_TCP                                                           \
    "ee0872a33a4fbb07be9a9cbe4031c116b4122e0ede47c6a035e5efc5bcae41fb"
#define S4_SIGN_UDP                                                           \
    "370b79a5619c84c112d1da4ef516c544b6ece4d66e965d240ba5776546c2a298"
#define S4_SIGN_REDIS                                                         \
    "9ea94b59d9b8e8aafac1c40265102c13da0594f6ea8fee442f79324bb5627625"

static double fake_now = TS;
static double
now_fn(void)
{
    return fake_now;
}

static gw__project_t projects[2];
static const char *scope; /* the request's S4 scope, or NULL */
static gw__config_t cfg;
static gw__auth_t *auth;

static void
setup(void)
{
    projects[0].name = "test_project";
    projects[0].public_key = "public_key";
    projects[0].private_key = "private_key";
    projects[1].name = "shop";
    projects[1].public_key = "shop_public";
    projects[1].private_key = "shop_private";
    memset(&cfg, 0, sizeof(cfg));
    cfg.projects = projects;
    cfg.nprojects = 2;
    cfg.auth_max_skew = 900;
    cfg.auth_s3_window = 300;
    fake_now = TS + 10;
    scope = NULL;
    auth = gw__auth_new(&cfg, now_fn);
    ck_assert_ptr_nonnull(auth);
}

static void
teardown(void)
{
    gw__auth_free(auth);
}

/* Runs one check; returns GW_OK/GW_ERR and fills the outputs. */
static int
check(unsigned schemes, const char *header, const char *project,
      const char *body, const char **out_project, const char **reason,
      gw_error_t *err)
{
    gw_auth_req_t req;

    memset(&req, 0, sizeof(req));
    req.schemes = schemes;
    req.header = header;
    req.header_len = header != NULL ? strlen(header) : 0;
    req.project = project;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    req.scope = scope;
    req.scope_len = scope != NULL ? strlen(scope) : 0;
    *out_project = NULL;
    memset(err, 0, sizeof(*err));
    return gw__auth_check(auth, &req, out_project, reason, err);
}

/* Asserts a failure with reason and exact message, and that the message
 * holds no secret. */
static void
expect_fail(unsigned schemes, const char *header, const char *project,
            const char *body, const char *reason, const char *msg)
{
    const char *p, *r;
    gw_error_t err;

    ck_assert_int_eq(check(schemes, header, project, body, &p, &r, &err),
                     GW_ERR);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(r, reason);
    ck_assert_str_eq(err.msg, msg);
    ck_assert_ptr_null(strstr(err.msg, "private_key"));
    ck_assert_ptr_null(strstr(err.msg, "shop_private"));
    ck_assert_ptr_null(strstr(err.msg, SIGN_FLOOR));
}

static void
expect_ok(unsigned schemes, const char *header, const char *project,
          const char *body, const char *want_project)
{
    const char *p, *r;
    gw_error_t err;
    int rc = check(schemes, header, project, body, &p, &r, &err);

    ck_assert_msg(rc == GW_OK, "\"%s\" refused: %s", header, err.msg);
    ck_assert_str_eq(p, want_project);
}

#define ALL (GW_AUTH_S1 | GW_AUTH_S2 | GW_AUTH_S3 | GW_AUTH_BASIC)

START_TEST(test_legacy_vectors)
{
    char out[33];

    gw__auth_sign_legacy("public_key", "private_key", TS, 1000, out);
    ck_assert_str_eq(out, "5134790630290ed958e5413d526d1915");
    gw__auth_sign_legacy("public_key", "secret_key", TS, 1000, out);
    ck_assert_str_eq(out, "c3a5ea8f5ea4ea39c4be918fce4e6b41");
    /* The solt is floored: every ts of the same 1000 s gives the same. */
    gw__auth_sign_legacy("public_key", "private_key", 1392454000, 1000, out);
    ck_assert_str_eq(out, SIGN_FLOOR);
    gw__auth_sign_legacy("public_key", "private_key", 1392454999, 1000, out);
    ck_assert_str_eq(out, SIGN_FLOOR);
}
END_TEST

START_TEST(test_s3_vector)
{
    char out[65];

    gw__auth_sign_s3("private_key", "test_project", TS, "nonce-0001_abc",
                     BODY, strlen(BODY), out);
    ck_assert_str_eq(out, S3_SIGN);
    gw__auth_sign_s3("private_key", "test_project", TS, "nonce-0001_abc",
                     NULL, 0, out);
    ck_assert_str_eq(out, "8384efb3ca2da09af67a8dc4254c726a9ea0b66cbb1e8a83"
                          "e17e042ed2f13068");
}
END_TEST

START_TEST(test_s4_vectors)
{
    char out[65];

    gw__auth_sign_s4("private_key", "test_project", TS, "nonce-0001_abc",
                     S4_INGEST, BODY, strlen(BODY), out);
    ck_assert_str_eq(out, S4_SIGN_INGEST);
    gw__auth_sign_s4("private_key", "test_project", TS, "nonce-0001_abc",
                     S4_INGEST, NULL, 0, out);
    ck_assert_str_eq(out, S4_SIGN_INGEST_EMPTY);
    gw__auth_sign_s4("private_key", "test_project", TS, "nonce-0001_abc",
                     S4_READ, NULL, 0, out);
    ck_assert_str_eq(out, S4_SIGN_READ);
    gw__auth_sign_s4("private_key", "test_project", TS, "nonce-0001_abc",
                     "tcp", NULL, 0, out);
    ck_assert_str_eq(out, S4_SIGN_TCP);
    gw__auth_sign_s4("private_key", "test_project", TS, "nonce-0001_abc",
                     "udp", BODY, strlen(BODY), out);
    ck_assert_str_eq(out, S4_SIGN_UDP);
    gw__auth_sign_s4("private_key", "test_project", TS, "nonce-0001_abc",
                     "redis-stream", BODY, strlen(BODY), out);
    ck_assert_str_eq(out, S4_SIGN_REDIS);
}
END_TEST

#define S4 (GW_AUTH_S3 | GW_AUTH_S4)

START_TEST(test_s4)
{
    const char *hdr = "GottWallS4 1392454739 nonce-0001_abc " S4_SIGN_INGEST;
    const char *p;
    char nonce[65];
    size_t len;
    double exp;

    scope = S4_INGEST;
    expect_ok(S4, hdr, "test_project", BODY, "test_project");
    /* The nonce is handed to the shared replay cache once. */
    ck_assert_int_eq(gw__auth_last_nonce(auth, &p, nonce, &len, &exp), 1);
    ck_assert_str_eq(p, "test_project");
    ck_assert_str_eq(nonce, "nonce-0001_abc");
    ck_assert_uint_eq(len, 14);
    ck_assert(exp == TS + 10 + 601.0);
    ck_assert_int_eq(gw__auth_last_nonce(auth, &p, nonce, &len, &exp), 0);
    expect_fail(S4, hdr, "test_project", BODY, "replay",
                "GottWallS4 nonce was already used (a replayed request? use "
                "a new random nonce per request)");
    ck_assert_int_eq(gw__auth_last_nonce(auth, &p, nonce, &len, &exp), 0);
    /* S3 and S4 share the cache: the nonce is spent for both. */
    scope = NULL;
    expect_fail(GW_AUTH_S3, "GottWallS3 1392454739 nonce-0001_abc " S3_SIGN,
                "test_project", BODY, "replay",
                "GottWallS3 nonce was already used (a replayed request? use "
                "a new random nonce per request)");
}
END_TEST

/* The attack of issue 16 item 6: a header signed for one thing used for
 * another. Every other scope, and a changed body, is a bad signature. */
START_TEST(test_s4_scope)
{
    static const char *const other[] = {
        S4_READ, "tcp", "udp", "redis-stream", "POST /api/v1/test_project/avg",
        "GET /api/v1/test_project/incr", "POST /api/v1/test_project/incr/",
        "post /api/v1/test_project/incr", "POST /gw/api/v1/test_project/incr",
        "", NULL};
    size_t i;

    /* Signed for the ingest route over an empty body; every other scope
     * (NULL: none given) refuses it. */
    for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        scope = other[i];
        expect_fail(S4,
                    "GottWallS4 1392454739 nonce-0001_abc "
                    S4_SIGN_INGEST_EMPTY, "test_project", "", "bad_signature",
                    "GottWallS4 signature does not match project "
                    "\"test_project\"'s key, the body and the scope");
    }
    scope = S4_INGEST;
    expect_fail(S4, "GottWallS4 1392454739 nonce-0001_abc " S4_SIGN_INGEST,
                "test_project", "{\"n\": \"orderz\"}", "bad_signature",
                "GottWallS4 signature does not match project "
                "\"test_project\"'s key, the body and the scope");
    /* A refused header does not spend its nonce: in its own scope, over
     * its own (empty) body, it goes through afterwards. */
    expect_ok(S4, "GottWallS4 1392454739 nonce-0001_abc " S4_SIGN_INGEST_EMPTY,
              "test_project", "", "test_project");
}
END_TEST

START_TEST(test_s4_not_here)
{
    scope = "tcp";
    /* A transport that does not allow S4 (an old plugin: the core clears
     * the bit) refuses it by name. */
    expect_fail(GW_AUTH_S2 | GW_AUTH_S3,
                "GottWallS4 1392454739 nonce-0001_abc " S4_SIGN_TCP
                " test_project",
                NULL, NULL, "bad_header", "GottWallS4 is not accepted here");
    expect_ok(GW_AUTH_S2 | S4,
              "GottWallS4 1392454739 nonce-0001_abc " S4_SIGN_TCP
              " test_project",
              NULL, NULL, "test_project");
    expect_fail(S4, "GottWallS4 1392454739 nonce-01 ", "test_project", NULL,
                "bad_header",
                "malformed GottWallS4 header: expected \"GottWallS4 {ts} "
                "{nonce} {sign} [{project}]\"");
    expect_fail(S4, "GottWallS4 1392454739 nonce.0001 " S4_SIGN_TCP,
                "test_project", NULL, "bad_header",
                "malformed GottWallS4 header: nonce must be 8 to 64 "
                "characters of [A-Za-z0-9_-]");
    fake_now = TS + 311;
    expect_fail(S4, "GottWallS4 1392454739 nonce-0003_abc " S4_SIGN_TCP,
                "test_project", NULL, "stale",
                "timestamp 1392454739 is 311 s behind the server's clock, "
                "more than AUTH_S3_WINDOW (300 s) allows; check the client's "
                "clock");
}
END_TEST

START_TEST(test_s1_accepts)
{
    expect_ok(ALL, "GottWallS1 1392454739 " SIGN_FLOOR " 1000",
              "test_project", NULL, "test_project");
    /* Upper-case hex, extra spaces, the optional project token. */
    expect_ok(ALL, "GottWallS1  1392454739 5134790630290ED958E5413D526D1915 "
                   "1000 ",
              "test_project", NULL, "test_project");
    expect_ok(GW_AUTH_S1,
              "GottWallS1 1392454739 " SIGN_FLOOR " 1000 test_project",
              "test_project", NULL, "test_project");
    /* Round-to-nearest solt (Python 3 clients). */
    expect_ok(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_ROUND " 1000",
              "test_project", NULL, "test_project");
}
END_TEST

START_TEST(test_s1_round_only_when_nearer)
{
    /* ts 1392454400 rounds down: the solt 1392455000 is not accepted. */
    char sign[33], hdr[128];

    gw__auth_sign_legacy("public_key", "private_key", 1392455000, 1000, sign);
    snprintf(hdr, sizeof(hdr), "GottWallS1 1392454400 %s 1000", sign);
    expect_fail(GW_AUTH_S1, hdr, "test_project", NULL, "bad_signature",
                "GottWallS1 signature does not match project "
                "\"test_project\"'s keys");
}
END_TEST

START_TEST(test_s1_failures)
{
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR,
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: expected \"GottWallS1 {ts} "
                "{sign} {base}\"");
    expect_fail(GW_AUTH_S1,
                "GottWallS1 1392454739 " SIGN_FLOOR " 1000 test_project x",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: expected \"GottWallS1 {ts} "
                "{sign} {base}\"");
    expect_fail(GW_AUTH_S1, "GottWallS1 13924547x9 " SIGN_FLOOR " 1000",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: ts must be integer epoch "
                "seconds");
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739.5 " SIGN_FLOOR " 1000",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: ts must be integer epoch "
                "seconds");
    expect_fail(GW_AUTH_S1, "GottWallS1 -1392454739 " SIGN_FLOOR " 1000",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: ts must be integer epoch "
                "seconds");
    expect_fail(GW_AUTH_S1,
                "GottWallS1 1392454739 5134790630290ed958e5413d526d191 1000",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: sign must be 32 hex digits");
    expect_fail(GW_AUTH_S1,
                "GottWallS1 1392454739 5134790630290ed958e5413d526d191g 1000",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: sign must be 32 hex digits");
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 0",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: base must be an integer from "
                "1 to 3600");
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 3601",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: base must be an integer from "
                "1 to 3600");
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 1000 shop",
                "test_project", NULL, "bad_header",
                "the project in the GottWallS1 header does not match the "
                "project \"test_project\" of the request");
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 1000",
                "nope", NULL, "unknown_project", "unknown project \"nope\"");
    /* Signed with another project's keys. */
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 1000",
                "shop", NULL, "bad_signature",
                "GottWallS1 signature does not match project \"shop\"'s "
                "keys");
    /* A scheme the transport does not take. */
    expect_fail(GW_AUTH_S2, "GottWallS1 1392454739 " SIGN_FLOOR " 1000",
                "test_project", NULL, "bad_header",
                "GottWallS1 is not accepted here");
    expect_fail(ALL, "GottWall private_key=x, public_key=y", "test_project",
                NULL, "bad_header",
                "malformed credentials: expected a GottWallS1, GottWallS2, "
                "GottWallS3, GottWallS4 or Basic header");
    expect_fail(ALL, "", "test_project", NULL, "bad_header",
                "missing credentials");
    expect_fail(ALL, "GottWallS1", "test_project", NULL, "bad_header",
                "malformed credentials: expected a GottWallS1, GottWallS2, "
                "GottWallS3, GottWallS4 or Basic header");
}
END_TEST

START_TEST(test_new_keys_after_reload)
{
    const char *hdr = "GottWallS1 1392454739 " SIGN_FLOOR " 1000";

    expect_ok(GW_AUTH_S1, hdr, "test_project", NULL, "test_project");
    expect_ok(GW_AUTH_S1, hdr, "test_project", NULL, "test_project");
    /* SIGHUP: the same project gets a new private key. Signatures made
     * with the old one fail at once (nothing remembered survives). */
    projects[0].private_key = "rotated_key";
    gw__auth_set_config(auth, &cfg);
    expect_fail(GW_AUTH_S1, hdr, "test_project", NULL, "bad_signature",
                "GottWallS1 signature does not match project "
                "\"test_project\"'s keys");
}
END_TEST

START_TEST(test_s1_base_bounds)
{
    char sign[33], hdr[128];

    gw__auth_sign_legacy("public_key", "private_key", TS, 1, sign);
    snprintf(hdr, sizeof(hdr), "GottWallS1 %d %s 1", TS, sign);
    expect_ok(GW_AUTH_S1, hdr, "test_project", NULL, "test_project");
    gw__auth_sign_legacy("public_key", "private_key", TS, 3600, sign);
    snprintf(hdr, sizeof(hdr), "GottWallS1 %d %s 3600", TS, sign);
    expect_ok(GW_AUTH_S1, hdr, "test_project", NULL, "test_project");
}
END_TEST

/* A legacy header "{scheme} {ts} {sign} {base}[ test_project]" signed
 * with test_project's keys at sign_ts (the ts the client signed at). */
static const char *
legacy_header(const char *scheme, int64_t ts, int64_t sign_ts, int64_t base)
{
    static char hdr[128];
    char sign[33];

    gw__auth_sign_legacy("public_key", "private_key", sign_ts, base, sign);
    snprintf(hdr, sizeof(hdr), "%s %lld %s %lld%s", scheme, (long long) ts,
             sign, (long long) base,
             strcmp(scheme, "GottWallS2") == 0 ? " test_project" : "");
    return hdr;
}

/* Asserts the refusal of a base over AUTH_MAX_BASE = 1000. */
static void
expect_too_large(const char *scheme, int64_t ts, int64_t base)
{
    int s2 = strcmp(scheme, "GottWallS2") == 0;
    char msg[256];

    snprintf(msg, sizeof(msg),
             "%s base %lld is more than AUTH_MAX_BASE (1000) allows; sign "
             "with a base from 1 to 1000 or raise AUTH_MAX_BASE",
             scheme, (long long) base);
    expect_fail(s2 ? GW_AUTH_S2 : GW_AUTH_S1,
                legacy_header(scheme, ts, ts, base),
                s2 ? NULL : "test_project", NULL, "base_too_large", msg);
}

START_TEST(test_s1_max_base)
{
    /* AUTH_MAX_BASE (default 3600) bounds base, and with it how long a
     * signature lives: a larger base is refused, naming the setting. */
    expect_ok(GW_AUTH_S1, legacy_header("GottWallS1", TS, TS, 3600),
              "test_project", NULL, "test_project");
    cfg.auth_max_base = 1000;
    expect_fail(GW_AUTH_S1, legacy_header("GottWallS1", TS, TS, 3600),
                "test_project", NULL, "base_too_large",
                "GottWallS1 base 3600 is more than AUTH_MAX_BASE (1000) "
                "allows; sign with a base from 1 to 1000 or raise "
                "AUTH_MAX_BASE");
    expect_too_large("GottWallS2", TS, 3600);
    expect_too_large("GottWallS1", TS, 1001);
    expect_ok(GW_AUTH_S1, legacy_header("GottWallS1", TS, TS, 1000),
              "test_project", NULL, "test_project");
    /* Outside the protocol's 1..3600 the header is malformed, as before. */
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 3601",
                "test_project", NULL, "bad_header",
                "malformed GottWallS1 header: base must be an integer from "
                "1 to 3600");
}
END_TEST

/* The solt window, now - base - AUTH_MAX_SKEW <= solt <= now +
 * AUTH_MAX_SKEW: ts is not signed, so a captured header is good, with its
 * ts rewritten, while the server still derives the same solt. */
START_TEST(test_legacy_window)
{
    const int64_t solt = (TS / 3600) * 3600; /* 1392451200 */
    const int64_t signed_at = solt + 10, now = signed_at + 3170;

    /* Signed 3,170 s ago with base 3600, ts rewritten to now: the solt is
     * the same, inside base + skew of now. Accepted with the default
     * AUTH_MAX_BASE: this is the window docs/compatibility.md states. */
    fake_now = (double) now;
    expect_ok(GW_AUTH_S1, legacy_header("GottWallS1", now, signed_at, 3600),
              "test_project", NULL, "test_project");
    /* The last ts that derives the solt, solt + base - 1, passes until
     * it is AUTH_MAX_SKEW behind: solt + base - 1 + skew. */
    fake_now = (double) solt + 3599 + 900;
    expect_ok(GW_AUTH_S1,
              legacy_header("GottWallS1", solt + 3599, signed_at, 3600),
              "test_project", NULL, "test_project");
    fake_now += 1;
    expect_fail(GW_AUTH_S1,
                legacy_header("GottWallS1", solt + 3599, signed_at, 3600),
                "test_project", NULL, "stale",
                "timestamp 1392454799 is 901 s behind the server's clock, "
                "more than AUTH_MAX_SKEW (900 s) allows; check the client's "
                "clock");
    /* With AUTH_MAX_BASE = 1000 the same replay is refused at once... */
    cfg.auth_max_base = 1000;
    fake_now = (double) now;
    expect_too_large("GottWallS1", now, 3600);
    /* ...and one signed 3,170 s ago with base 1000 derives another solt. */
    expect_fail(GW_AUTH_S1, legacy_header("GottWallS1", now, signed_at, 1000),
                "test_project", NULL, "bad_signature",
                "GottWallS1 signature does not match project "
                "\"test_project\"'s keys");
}
END_TEST

START_TEST(test_legacy_round_solt_ahead)
{
    /* ts 1392454739 rounds up to the solt 1392455000: 261 s ahead of a
     * server clock at ts, inside the default skew and a skew of 261... */
    fake_now = TS;
    expect_ok(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_ROUND " 1000",
              "test_project", NULL, "test_project");
    cfg.auth_max_skew = 261;
    expect_ok(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_ROUND " 1000",
              "test_project", NULL, "test_project");
    /* ...and refused once it is more than AUTH_MAX_SKEW ahead. */
    cfg.auth_max_skew = 260;
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_ROUND " 1000",
                "test_project", NULL, "stale",
                "GottWallS1 signature's solt 1392455000 is 261 s ahead of "
                "the server's clock, more than AUTH_MAX_SKEW (260 s) "
                "allows; check the client's clock");
    expect_fail(GW_AUTH_S2,
                "GottWallS2 1392454739 " SIGN_ROUND " 1000 test_project",
                NULL, NULL, "stale",
                "GottWallS2 signature's solt 1392455000 is 261 s ahead of "
                "the server's clock, more than AUTH_MAX_SKEW (260 s) "
                "allows; check the client's clock");
    /* The floor solt of the same ts is behind the clock: accepted. */
    expect_ok(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 1000",
              "test_project", NULL, "test_project");
}
END_TEST

START_TEST(test_skew)
{
    fake_now = TS + 900;
    expect_ok(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 1000",
              "test_project", NULL, "test_project");
    fake_now = TS - 900;
    expect_ok(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 1000",
              "test_project", NULL, "test_project");
    fake_now = TS + 901;
    expect_fail(GW_AUTH_S1, "GottWallS1 1392454739 " SIGN_FLOOR " 1000",
                "test_project", NULL, "stale",
                "timestamp 1392454739 is 901 s behind the server's clock, "
                "more than AUTH_MAX_SKEW (900 s) allows; check the client's "
                "clock");
    fake_now = TS - 1000;
    expect_fail(GW_AUTH_S2,
                "GottWallS2 1392454739 " SIGN_FLOOR " 1000 test_project",
                NULL, NULL, "stale",
                "timestamp 1392454739 is 1000 s ahead of the server's clock, "
                "more than AUTH_MAX_SKEW (900 s) allows; check the client's "
                "clock");
    cfg.auth_max_skew = 2000;
    expect_ok(GW_AUTH_S2,
              "GottWallS2 1392454739 " SIGN_FLOOR " 1000 test_project", NULL,
              NULL, "test_project");
}
END_TEST

START_TEST(test_s2)
{
    expect_ok(GW_AUTH_S2 | GW_AUTH_S3,
              "GottWallS2 1392454739 " SIGN_FLOOR " 1000 test_project", NULL,
              NULL, "test_project");
    /* A trailing line end (TCP clients) is ignored. */
    expect_ok(GW_AUTH_S2,
              "GottWallS2 1392454739 " SIGN_FLOOR " 1000 test_project\r\n",
              NULL, NULL, "test_project");
    /* The original's bypasses: each is a failure now. */
    expect_fail(GW_AUTH_S2, "GottWallS2 x", NULL, NULL, "bad_header",
                "malformed GottWallS2 header: expected \"GottWallS2 {ts} "
                "{sign} {base} {project}\"");
    expect_fail(GW_AUTH_S2, "GottWallS2 1392454739 " SIGN_FLOOR " 1000",
                NULL, NULL, "bad_header",
                "malformed GottWallS2 header: expected \"GottWallS2 {ts} "
                "{sign} {base} {project}\"");
    expect_fail(GW_AUTH_S2,
                "GottWallS2 1392454739 " SIGN_FLOOR " 1000 unknown", NULL,
                NULL, "unknown_project", "unknown project \"unknown\"");
    expect_fail(GW_AUTH_S2, "GottWallS2 1392454739 " SIGN_FLOOR " 1000 shop",
                NULL, NULL, "bad_signature",
                "GottWallS2 signature does not match project \"shop\"'s "
                "keys");
    expect_fail(GW_AUTH_S2,
                "GottWallS2 1392454739 " SIGN_FLOOR " 0 test_project", NULL,
                NULL, "bad_header",
                "malformed GottWallS2 header: base must be an integer from "
                "1 to 3600");
    /* Unknown project names are quoted safely and bounded. */
    expect_fail(GW_AUTH_S2,
                "GottWallS2 1392454739 " SIGN_FLOOR " 1000 a\"b\x01", NULL,
                NULL, "unknown_project", "unknown project \"a?b?\"");
}
END_TEST

START_TEST(test_basic)
{
    /* public:private and private:public */
    expect_ok(GW_AUTH_BASIC, "Basic cHVibGljX2tleTpwcml2YXRlX2tleQ==",
              "test_project", NULL, "test_project");
    expect_ok(GW_AUTH_BASIC, "Basic cHJpdmF0ZV9rZXk6cHVibGljX2tleQ==",
              "test_project", NULL, "test_project");
    /* Unpadded base64 is fine too. */
    expect_ok(GW_AUTH_BASIC, "Basic cHVibGljX2tleTpwcml2YXRlX2tleQ",
              "test_project", NULL, "test_project");
    /* Right keys, wrong project. */
    expect_fail(GW_AUTH_BASIC, "Basic cHVibGljX2tleTpwcml2YXRlX2tleQ==",
                "shop", NULL, "bad_signature",
                "Basic credentials do not match project \"shop\"'s keys");
    /* public:public ("public_key:public_key") */
    expect_fail(GW_AUTH_BASIC, "Basic cHVibGljX2tleTpwdWJsaWNfa2V5",
                "test_project", NULL, "bad_signature",
                "Basic credentials do not match project \"test_project\"'s "
                "keys");
    /* no colon ("public_key") */
    expect_fail(GW_AUTH_BASIC, "Basic cHVibGljX2tleQ==", "test_project", NULL,
                "bad_header",
                "malformed Basic credentials: expected "
                "base64 of \"{public key}:{private key}\"");
    expect_fail(GW_AUTH_BASIC, "Basic !!!notbase64", "test_project", NULL,
                "bad_header",
                "malformed Basic credentials: expected "
                "base64 of \"{public key}:{private key}\"");
    expect_fail(GW_AUTH_BASIC, "Basic cHVibGljX2tleTpwcml2YXRlX2tleQ==",
                "nope", NULL, "unknown_project", "unknown project \"nope\"");
    expect_fail(GW_AUTH_S1, "Basic cHVibGljX2tleTpwcml2YXRlX2tleQ==",
                "test_project", NULL, "bad_header",
                "Basic is not accepted here");
}
END_TEST

START_TEST(test_s3)
{
    const char *hdr = "GottWallS3 1392454739 nonce-0001_abc " S3_SIGN;

    expect_ok(GW_AUTH_S3, hdr, "test_project", BODY, "test_project");
    /* The same nonce again: a replay. */
    expect_fail(GW_AUTH_S3, hdr, "test_project", BODY, "replay",
                "GottWallS3 nonce was already used (a replayed request? use "
                "a new random nonce per request)");
}
END_TEST

START_TEST(test_s3_project_token)
{
    expect_ok(GW_AUTH_S3,
              "GottWallS3 1392454739 nonce-0001_abc " S3_SIGN
              " test_project",
              NULL, BODY, "test_project");
    expect_fail(GW_AUTH_S3,
                "GottWallS3 1392454739 nonce-0001_abc " S3_SIGN " shop",
                "test_project", BODY, "bad_header",
                "the project in the GottWallS3 header does not match the "
                "project \"test_project\" of the request");
    expect_fail(GW_AUTH_S3, "GottWallS3 1392454739 nonce-0001_abc " S3_SIGN,
                NULL, BODY, "bad_header",
                "malformed GottWallS3 header: it must name the project");
    /* Valid signature format but signed for another project. */
    expect_fail(GW_AUTH_S3,
                "GottWallS3 1392454739 nonce-0002_abc " S3_SIGN " shop", NULL,
                BODY, "bad_signature",
                "GottWallS3 signature does not match project \"shop\"'s key "
                "and the body");
}
END_TEST

START_TEST(test_s3_tampered_body)
{
    const char *hdr = "GottWallS3 1392454739 nonce-0001_abc " S3_SIGN;

    expect_fail(GW_AUTH_S3, hdr, "test_project", "{\"n\": \"orderz\"}",
                "bad_signature",
                "GottWallS3 signature does not match project "
                "\"test_project\"'s key and the body");
    /* A failed signature does not burn the nonce. */
    expect_ok(GW_AUTH_S3, hdr, "test_project", BODY, "test_project");
}
END_TEST

START_TEST(test_s3_window)
{
    const char *hdr = "GottWallS3 1392454739 nonce-0001_abc " S3_SIGN;

    fake_now = TS + 301;
    expect_fail(GW_AUTH_S3, hdr, "test_project", BODY, "stale",
                "timestamp 1392454739 is 301 s behind the server's clock, "
                "more than AUTH_S3_WINDOW (300 s) allows; check the client's "
                "clock");
    fake_now = TS - 301;
    expect_fail(GW_AUTH_S3, hdr, "test_project", BODY, "stale",
                "timestamp 1392454739 is 301 s ahead of the server's clock, "
                "more than AUTH_S3_WINDOW (300 s) allows; check the client's "
                "clock");
    fake_now = TS + 300;
    expect_ok(GW_AUTH_S3, hdr, "test_project", BODY, "test_project");
}
END_TEST

START_TEST(test_s3_malformed)
{
    expect_fail(GW_AUTH_S3, "GottWallS3 1392454739 nonce-01 ", "test_project",
                BODY, "bad_header",
                "malformed GottWallS3 header: expected \"GottWallS3 {ts} "
                "{nonce} {sign} [{project}]\"");
    expect_fail(GW_AUTH_S3, "GottWallS3 1392454739 nonce01 " S3_SIGN,
                "test_project", BODY, "bad_header",
                "malformed GottWallS3 header: nonce must be 8 to 64 "
                "characters of [A-Za-z0-9_-]");
    expect_fail(GW_AUTH_S3,
                "GottWallS3 1392454739 "
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaa " S3_SIGN,
                "test_project", BODY, "bad_header",
                "malformed GottWallS3 header: nonce must be 8 to 64 "
                "characters of [A-Za-z0-9_-]");
    expect_fail(GW_AUTH_S3, "GottWallS3 1392454739 nonce.0001 " S3_SIGN,
                "test_project", BODY, "bad_header",
                "malformed GottWallS3 header: nonce must be 8 to 64 "
                "characters of [A-Za-z0-9_-]");
    expect_fail(GW_AUTH_S3, "GottWallS3 1392454739 nonce-0001_abc " SIGN_FLOOR,
                "test_project", BODY, "bad_header",
                "malformed GottWallS3 header: sign must be 64 hex digits");
    expect_fail(GW_AUTH_S3, "GottWallS3 1e9 nonce-0001_abc " S3_SIGN,
                "test_project", BODY, "bad_header",
                "malformed GottWallS3 header: ts must be integer epoch "
                "seconds");
}
END_TEST

START_TEST(test_s3_nonce_expires)
{
    char sign[65], hdr[256];

    expect_ok(GW_AUTH_S3, "GottWallS3 1392454739 nonce-0001_abc " S3_SIGN,
              "test_project", BODY, "test_project");
    /* Far beyond the window the same nonce with a fresh ts is new again:
     * the cache does not grow forever. */
    fake_now = TS + 10 + 602;
    gw__auth_sign_s3("private_key", "test_project", TS + 612, "nonce-0001_abc",
                     BODY, strlen(BODY), sign);
    snprintf(hdr, sizeof(hdr), "GottWallS3 %d nonce-0001_abc %s", TS + 612,
             sign);
    expect_ok(GW_AUTH_S3, hdr, "test_project", BODY, "test_project");
    expect_fail(GW_AUTH_S3, hdr, "test_project", BODY, "replay",
                "GottWallS3 nonce was already used (a replayed request? use "
                "a new random nonce per request)");
}
END_TEST

START_TEST(test_s3_many_nonces)
{
    char sign[65], hdr[256], nonce[32];
    int i;

    /* Nonces are per project and many fit: 5000 distinct ones pass, each
     * replay of them fails. */
    for (i = 0; i < 5000; i++) {
        snprintf(nonce, sizeof(nonce), "n%08d", i);
        gw__auth_sign_s3("shop_private", "shop", TS, nonce, "", 0, sign);
        snprintf(hdr, sizeof(hdr), "GottWallS3 %d %s %s shop", TS, nonce,
                 sign);
        expect_ok(GW_AUTH_S3, hdr, NULL, "", "shop");
    }
    for (i = 0; i < 5000; i += 499) {
        snprintf(nonce, sizeof(nonce), "n%08d", i);
        gw__auth_sign_s3("shop_private", "shop", TS, nonce, "", 0, sign);
        snprintf(hdr, sizeof(hdr), "GottWallS3 %d %s %s shop", TS, nonce,
                 sign);
        expect_fail(GW_AUTH_S3, hdr, NULL, "", "replay",
                    "GottWallS3 nonce was already used (a replayed request? "
                    "use a new random nonce per request)");
    }
    /* The same nonce for another project is independent. */
    gw__auth_sign_s3("private_key", "test_project", TS, "n00000000", "", 0,
                     sign);
    snprintf(hdr, sizeof(hdr), "GottWallS3 %d n00000000 %s", TS, sign);
    expect_ok(GW_AUTH_S3, hdr, "test_project", "", "test_project");
}
END_TEST

START_TEST(test_keys)
{
    gw_auth_req_t req;
    const char *p = NULL, *r = NULL;
    gw_error_t err;

    memset(&req, 0, sizeof(req));
    req.schemes = GW_AUTH_KEYS;
    req.project = "shop";
    req.public_key = "shop_public";
    req.private_key = "shop_private";
    ck_assert_int_eq(gw__auth_check(auth, &req, &p, &r, &err), GW_OK);
    ck_assert_str_eq(p, "shop");
    req.private_key = "shop_privat";
    ck_assert_int_eq(gw__auth_check(auth, &req, &p, &r, &err), GW_ERR);
    ck_assert_str_eq(r, "bad_signature");
    ck_assert_str_eq(err.msg, "the keys do not match project \"shop\"'s keys");
    req.private_key = "private_key";
    req.public_key = "public_key";
    ck_assert_int_eq(gw__auth_check(auth, &req, &p, &r, &err), GW_ERR);
    req.project = "ghost";
    ck_assert_int_eq(gw__auth_check(auth, &req, &p, &r, &err), GW_ERR);
    ck_assert_str_eq(r, "unknown_project");
    ck_assert_str_eq(err.msg, "unknown project \"ghost\"");
}
END_TEST

START_TEST(test_garbage_never_passes)
{
    /* Random bytes in every scheme's shape never authenticate. */
    static const char *const words[] = {"GottWallS1 ", "GottWallS2 ",
                                        "GottWallS3 ", "Basic ", ""};
    char buf[200];
    const char *p, *r;
    gw_error_t err;
    unsigned seed = 12345;
    int i, j;

    for (i = 0; i < 20000; i++) {
        const char *w = words[i % 5];
        size_t wl = strlen(w), n = (size_t) (rand_r(&seed) % 150);
        memcpy(buf, w, wl);
        for (j = 0; j < (int) n; j++)
            buf[wl + j] = (char) (rand_r(&seed) % 256);
        buf[wl + n] = '\0';
        {
            gw_auth_req_t req;
            memset(&req, 0, sizeof(req));
            req.schemes = ALL;
            req.header = buf;
            req.header_len = wl + n;
            req.project = (i & 1) ? "test_project" : NULL;
            ck_assert_int_eq(gw__auth_check(auth, &req, &p, &r, &err),
                             GW_ERR);
        }
    }
}
END_TEST

static Suite *
auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_legacy_vectors);
    tcase_add_test(tc, test_s3_vector);
    tcase_add_test(tc, test_s4_vectors);
    tcase_add_test(tc, test_s4);
    tcase_add_test(tc, test_s4_scope);
    tcase_add_test(tc, test_s4_not_here);
    tcase_add_test(tc, test_s1_accepts);
    tcase_add_test(tc, test_s1_round_only_when_nearer);
    tcase_add_test(tc, test_s1_failures);
    tcase_add_test(tc, test_s1_base_bounds);
    tcase_add_test(tc, test_new_keys_after_reload);
    tcase_add_test(tc, test_s1_max_base);
    tcase_add_test(tc, test_legacy_window);
    tcase_add_test(tc, test_legacy_round_solt_ahead);
    tcase_add_test(tc, test_skew);
    tcase_add_test(tc, test_s2);
    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_s3);
    tcase_add_test(tc, test_s3_project_token);
    tcase_add_test(tc, test_s3_tampered_body);
    tcase_add_test(tc, test_s3_window);
    tcase_add_test(tc, test_s3_malformed);
    tcase_add_test(tc, test_s3_nonce_expires);
    tcase_add_test(tc, test_s3_many_nonces);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_garbage_never_passes);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
