/*
 * core/init.c: `gottwall init`: a new config file with random keys, ready
 * for `gottwall check` and `gottwall start` (core/init.h).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "init.h"

static int
in_random_key(char out[64])
{
    unsigned char raw[30];

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return GW_ERR;
    EVP_EncodeBlock((unsigned char *) out, raw, sizeof(raw));
    return GW_OK;
}

int
gw__init_write(const char *path, gw_error_t *err)
{
    char secret[64], cookie[64], pub[64], spub[64], spriv[64];
    FILE *f;
    int fd;

    if (in_random_key(secret) != GW_OK || in_random_key(cookie) != GW_OK ||
        in_random_key(pub) != GW_OK || in_random_key(spub) != GW_OK ||
        in_random_key(spriv) != GW_OK)
        return gw_error_set(err, "cannot get random bytes from OpenSSL");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return gw_error_set(err, "%s: %s", path, strerror(errno));
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return gw_error_set(err, "%s: %s", path, strerror(errno));
    }
    fprintf(f,
            "# GottWall configuration (libconfig syntax), written by "
            "`gottwall init`.\n"
            "# Check it with `gottwall -c %s check`; start with "
            "`gottwall -c %s start`.\n"
            "\n"
            "# The private key of every project written in the short form "
            "below.\n"
            "SECRET_KEY = \"%s\";\n"
            "\n"
            "# name = \"public_key\";  (private key: SECRET_KEY), or\n"
            "# name = { public_key = \"...\"; private_key = \"...\"; };\n"
            "PROJECTS = {\n"
            "    test_project = \"%s\";\n"
            "    shop = { public_key = \"%s\"; private_key = \"%s\"; };\n"
            "};\n"
            "\n"
            "# URL prefix of the dashboard, the API and the HTTP transport "
            "(\"\" or \"/gottwall\").\n"
            "PREFIX = \"\";\n"
            "PERIODS = [ \"minute\", \"hour\", \"day\", \"week\", \"month\", "
            "\"year\", \"all\" ];\n"
            "# How long each period's buckets are kept; the others for "
            "ever.\n"
            "RETENTION = { minute = \"7d\"; hour = \"90d\"; };\n"
            "\n"
            "# In-process storage, saved to PATH every SNAPSHOT_INTERVAL "
            "seconds and at exit.\n"
            "STORAGE = \"memory\";\n"
            "STORAGE_SETTINGS = { PATH = \"gottwall.snapshot\"; };\n"
            "\n"
            "# Transports: instance name = { settings }; PLUGIN = \"...\" "
            "when it differs from the name.\n"
            "BACKENDS = {\n"
            "    http  = { HOST = \"127.0.0.1\"; PORT = 8890; };\n"
            "    tcpip = { HOST = \"127.0.0.1\"; PORT = 8897; };\n"
            "    udp   = { HOST = \"127.0.0.1\"; PORT = 8898; };\n"
            "};\n"
            "\n"
            "# The dashboard and the read API.\n"
            "SERVER = { HOST = \"127.0.0.1\"; PORT = 8889; };\n"
            "\n"
            "# Anyone who reaches SERVER sees the dashboard. To require a "
            "login instead, set\n"
            "# ANONYMOUS_LOGIN = false and add users with hashes from "
            "`gottwall passwd`:\n"
            "# USERS = ( { email = \"you@example.com\"; password = "
            "\"pbkdf2-sha256$...\"; } );\n"
            "ANONYMOUS_LOGIN = true;\n"
            "cookie_secret = \"%s\";\n"
            "\n"
            "FLUSH_INTERVAL = 1000;   # ms between flushes to the storage\n"
            "# INGEST_LOOPS = 0;      # threads reading UDP; 0: one per CPU "
            "(docs/scaling.md)\n",
            path, path, secret, pub, spub, spriv, cookie);
    if (fclose(f) != 0)
        return gw_error_set(err, "%s: %s", path, strerror(errno));
    return GW_OK;
}
