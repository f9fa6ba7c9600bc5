/*
 * core/main.c: the `gottwall` command line (SPEC §10).
 *
 *   gottwall [--config=FILE | -c FILE] [--logging=LEVEL | -l LEVEL]
 *            [--plugin-path=DIR]... COMMAND
 *
 * Parses options, finds the config file, and hands over to the daemon
 * (start, server start, aggregator start, check) or does the small
 * commands itself (init, plugins, passwd). Usage errors exit 2.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's (the build directory's), for PACKAGE_VERSION */
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "net/password.h"
#include "base/conf.h"
#include "daemon.h"
#include "init.h"
#include "loader.h"
#include "base/log.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
#ifndef GW_SYSCONFDIR
#define GW_SYSCONFDIR "/usr/local/etc"
#endif
#ifndef GW_PLUGINDIR
#define GW_PLUGINDIR "/usr/local/lib/gottwall"
#endif

#define MN_USAGE                                                              \
    "usage: gottwall [-c FILE | --config=FILE] [-l LEVEL | --logging=LEVEL]\n" \
    "                [--plugin-path=DIR]... COMMAND\n"                          \
    "commands: init PATH, start, server start [-h HOST] [-p PORT],\n"          \
    "          aggregator start, check, plugins, passwd\n"                     \
    "`gottwall --help` or `gottwall COMMAND --help` tells more.\n"

static const char mn_help[] =
    "gottwall " PACKAGE_VERSION ": a realtime metrics aggregation server.\n"
    "\n"
    "usage: gottwall [options] COMMAND\n"
    "\n"
    "commands:\n"
    "  init PATH [--force]     write a new config with random keys (asks\n"
    "                          before overwriting on a terminal; -f, --force\n"
    "                          overwrites without asking)\n"
    "  start                   aggregator and server in one process\n"
    "  server start [-h HOST] [-p PORT]\n"
    "                          the dashboard and read API only (long forms:\n"
    "                          --host=HOST, --port=PORT)\n"
    "  aggregator start        the transports and aggregation only\n"
    "  check                   validate the config, load every plugin, reach\n"
    "                          the storage; exit 0 or 1\n"
    "  plugins                 list the plugins found, their versions and ABI\n"
    "  passwd                  read a password, print a hash for USERS\n"
    "\n"
    "`gottwall help [COMMAND]` is `gottwall --help` or "
    "`gottwall COMMAND --help`.\n"
    "\n"
    "options:\n"
    "  -c, --config=FILE       the config file (default: ./gottwall.conf if it\n"
    "                          exists, else " GW_SYSCONFDIR "/gottwall.conf)\n"
    "  -l, --logging=LEVEL     error, warning, notice, info (default), debug\n"
    "      --plugin-path=DIR   also search DIR for plugins (repeatable). The\n"
    "                          order: the config's PLUGIN_PATH, each\n"
    "                          --plugin-path, GOTTWALL_PLUGIN_PATH=DIR:DIR,\n"
    "                          then " GW_PLUGINDIR "; the first match wins\n"
    "  -h, --help              this text, or with a COMMAND its usage (after\n"
    "                          `server start`, -h is the host)\n"
    "  -V, --version           the version and the plugin ABI\n"
    "\n"
    "Exit status: 0 done; 1 the command failed; 2 a usage error (an unknown\n"
    "option or command, a missing argument).\n"
    "\n"
    "Signals: SIGTERM/SIGINT flush everything and stop; SIGHUP reloads\n"
    "projects, keys and users.\n";

static const struct {
    const char *name;
    const char *help;
} mn_command_help[] = {
    {"init", "usage: gottwall init PATH [--force]\n"
             "Writes a new config to PATH with a random SECRET_KEY, project\n"
             "keys and cookie_secret, the memory storage and the http, tcpip\n"
             "and udp transports. If PATH exists it asks first (on a\n"
             "terminal); otherwise --force (or -f) is needed to overwrite\n"
             "it.\n"},
    {"start", "usage: gottwall [-c FILE] start\n"
              "Runs the aggregator (BACKENDS, STORAGE) and the server\n"
              "(SERVER: dashboard and read API) in one foreground process.\n"
              "Logs go to stderr.\n"},
    {"server", "usage: gottwall [-c FILE] server start [-h HOST] [-p PORT]\n"
               "Runs only the dashboard and read API, on HOST:PORT (default:\n"
               "SERVER.HOST and SERVER.PORT of the config).\n"},
    {"aggregator", "usage: gottwall [-c FILE] aggregator start\n"
                   "Runs only the transports of BACKENDS and the aggregation\n"
                   "into STORAGE.\n"},
    {"check", "usage: gottwall [-c FILE] check\n"
              "Validates the config, loads every plugin it names, creates the\n"
              "storage and transport instances (without opening ports) and\n"
              "reaches the storage. Exits 0 if all is well, else 1 with the\n"
              "reason.\n"},
    {"plugins", "usage: gottwall [--plugin-path=DIR] plugins\n"
                "Lists every plugin in the search directories: kind, name,\n"
                "version, plugin ABI, file and description; files that are\n"
                "not loadable are listed with the reason. It reads the config\n"
                "named by -c FILE, else ./gottwall.conf if it exists, for its\n"
                "PLUGIN_PATH; the search order is PLUGIN_PATH, --plugin-path,\n"
                "GOTTWALL_PLUGIN_PATH, then the installed directory.\n"},
    {"passwd", "usage: gottwall passwd\n"
               "Reads a password (twice, without echo, on a terminal; one\n"
               "line from a pipe) and prints its hash for USERS:\n"
               "  USERS = ( { email = \"you@example.com\"; password = \"HASH\"; } );\n"},
};

typedef struct mn_opts_s {
    const char *config;
    char **dirs;
    size_t ndirs;
    int force;
    const char *host;
    int port;
    char **args; /* positional words */
    int nargs;
    int help;
    int version;
} mn_opts_t;

static int
mn_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "gottwall: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n" MN_USAGE);
    return 2;
}

static void
mn_add_dir(mn_opts_t *o, const char *dir, size_t len)
{
    if (len == 0)
        return;
    o->dirs = realloc(o->dirs, (o->ndirs + 1) * sizeof(char *));
    o->dirs[o->ndirs++] = strndup(dir, len);
}

static void
mn_add_dirs(mn_opts_t *o, const char *list)
{
    const char *p = list, *end;

    while (p != NULL && *p != '\0') {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        mn_add_dir(o, p, (size_t) (end - p));
        p = *end == ':' ? end + 1 : end;
    }
}

/* The value of an option given as --name=VALUE or --name VALUE / -x VALUE. */
static const char *
mn_value(int argc, char **argv, int *i, const char *arg, size_t prefix_len)
{
    if (arg[prefix_len] == '=')
        return arg + prefix_len + 1;
    if (arg[prefix_len] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int
mn_parse(int argc, char **argv, mn_opts_t *o)
{
    int i, level;
    const char *v;

    o->args = calloc((size_t) argc + 1, sizeof(char *));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int in_server = o->nargs >= 2 && strcmp(o->args[0], "server") == 0;

        if (strcmp(a, "--help") == 0 ||
            (strcmp(a, "-h") == 0 && !in_server)) {
            o->help = 1;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            o->version = 1;
        } else if (strncmp(a, "--config", 8) == 0 && (a[8] == '=' ||
                                                      a[8] == '\0')) {
            if ((v = mn_value(argc, argv, &i, a, 8)) == NULL || !*v)
                return mn_usage("%s needs a file name", "--config");
            o->config = v;
        } else if (strcmp(a, "-c") == 0) {
            if ((v = mn_value(argc, argv, &i, a, 2)) == NULL || !*v)
                return mn_usage("%s needs a file name", "-c");
            o->config = v;
        } else if ((strncmp(a, "--logging", 9) == 0 &&
                    (a[9] == '=' || a[9] == '\0')) ||
                   strcmp(a, "-l") == 0) {
            v = mn_value(argc, argv, &i, a, a[1] == '-' ? 9 : 2);
            if (v == NULL)
                return mn_usage("%s needs a level (error, warning, notice, "
                                "info, debug)", a);
            if (gw__log_parse_level(v, &level) != GW_OK)
                return mn_usage("unknown logging level \"%s\" (use error, "
                                "warning, notice, info or debug)", v);
            gw__log_set_level(level);
        } else if (strncmp(a, "--plugin-path", 13) == 0 &&
                   (a[13] == '=' || a[13] == '\0')) {
            if ((v = mn_value(argc, argv, &i, a, 13)) == NULL || !*v)
                return mn_usage("%s needs a directory", "--plugin-path");
            mn_add_dir(o, v, strlen(v));
        } else if (strcmp(a, "--force") == 0 || strcmp(a, "-f") == 0) {
            o->force = 1;
        } else if (in_server && (strcmp(a, "-h") == 0 ||
                                 (strncmp(a, "--host", 6) == 0 &&
                                  (a[6] == '=' || a[6] == '\0')))) {
            v = mn_value(argc, argv, &i, a, a[1] == '-' ? 6 : 2);
            if (v == NULL || !*v)
                return mn_usage("%s needs a host", a);
            o->host = v;
        } else if (in_server && (strcmp(a, "-p") == 0 ||
                                 (strncmp(a, "--port", 6) == 0 &&
                                  (a[6] == '=' || a[6] == '\0')))) {
            char *end;
            long p;

            v = mn_value(argc, argv, &i, a, a[1] == '-' ? 6 : 2);
            if (v == NULL)
                return mn_usage("%s needs a port", a);
            errno = 0;
            p = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || end == v || p < 1 ||
                p > 65535)
                return mn_usage("bad port \"%s\" (1..65535)", v);
            o->port = (int) p;
        } else if (a[0] == '-' && a[1] != '\0') {
            return mn_usage("unknown option %s", a);
        } else {
            o->args[o->nargs++] = argv[i];
        }
    }
    mn_add_dirs(o, getenv("GOTTWALL_PLUGIN_PATH"));
    return 0;
}

/* ---- The config file ---- */

static int
mn_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* Chooses the config file; NULL (after saying why) if there is none. */
static const char *
mn_config_path(const mn_opts_t *o)
{
    static char sys[4096];

    if (o->config != NULL) {
        if (!mn_exists(o->config)) {
            fprintf(stderr, "gottwall: the config file %s does not exist; "
                    "create one with `gottwall init %s`\n", o->config,
                    o->config);
            return NULL;
        }
        return o->config;
    }
    if (mn_exists("gottwall.conf"))
        return "gottwall.conf";
    snprintf(sys, sizeof(sys), "%s/gottwall.conf", GW_SYSCONFDIR);
    if (mn_exists(sys))
        return sys;
    fprintf(stderr, "gottwall: no config file: neither ./gottwall.conf nor %s "
            "exists; create one with `gottwall init gottwall.conf`, or name "
            "one with -c FILE\n", sys);
    return NULL;
}

static int
mn_load(const mn_opts_t *o, gw__config_t *cfg, const char **path)
{
    gw_error_t err;

    *path = mn_config_path(o);
    if (*path == NULL)
        return GW_ERR;
    if (gw__config_load(*path, cfg, &err) != GW_OK) {
        fprintf(stderr, "gottwall: %s\n", err.msg);
        return GW_ERR;
    }
    return GW_OK;
}

/* ---- Commands ---- */

static int
mn_run(const mn_opts_t *o, unsigned roles)
{
    gw__config_t cfg;
    gw__run_opts_t ro;
    const char *path;
    int rc;

    if (mn_load(o, &cfg, &path) != GW_OK)
        return 1;
    memset(&ro, 0, sizeof(ro));
    ro.roles = roles;
    ro.server_host = o->host;
    ro.server_port = o->port;
    ro.plugin_dirs = o->dirs;
    ro.nplugin_dirs = o->ndirs;
    rc = gw__daemon_run(path, &cfg, &ro);
    gw__config_free(&cfg);
    return rc;
}

static int
mn_check(const mn_opts_t *o)
{
    gw__config_t cfg;
    gw__run_opts_t ro;
    const char *path;
    int rc;

    if (mn_load(o, &cfg, &path) != GW_OK)
        return 1;
    memset(&ro, 0, sizeof(ro));
    ro.roles = GW__ROLE_AGGREGATOR | GW__ROLE_SERVER;
    ro.plugin_dirs = o->dirs;
    ro.nplugin_dirs = o->ndirs;
    rc = gw__daemon_check(&cfg, &ro);
    if (rc == 0)
        printf("%s: OK (%zu projects, storage \"%s\", %zu transports)\n",
               path, cfg.nprojects, cfg.storage.instance, cfg.nbackends);
    else
        fprintf(stderr, "gottwall: %s: check failed\n", path);
    gw__config_free(&cfg);
    return rc;
}

static void
mn_plugin_line(void *arg, const char *path, const gw__plugin_t *p,
               const gw_error_t *err)
{
    int *broken = arg;

    if (p != NULL) {
        printf("%-9s  %-10s  %-8s  ABI %u.%u  %s\n          %s\n",
               gw__loader_kind_name(p->desc.kind),
               p->name, p->version, (unsigned) p->desc.abi_major,
               (unsigned) p->desc.abi_minor, path, p->description);
    } else {
        printf("%-9s  %s\n          %s\n", "broken", path, err->msg);
        (*broken)++;
    }
}

static int
mn_plugins(const mn_opts_t *o)
{
    gw__loader_t l;
    gw__config_t cfg;
    char **dirs;
    size_t n = 0, i;
    int have_cfg = 0, broken = 0;
    gw_error_t err;
    const char *path = o->config;

    /* A config, when there is one, adds its PLUGIN_PATH. */
    if (path == NULL && mn_exists("gottwall.conf"))
        path = "gottwall.conf";
    if (path != NULL) {
        if (gw__config_load(path, &cfg, &err) == GW_OK)
            have_cfg = 1;
        else
            fprintf(stderr, "gottwall: %s (listing without its "
                    "PLUGIN_PATH)\n", err.msg);
    }
    dirs = calloc(o->ndirs + (have_cfg ? cfg.nplugin_path : 0) + 1,
                  sizeof(char *));
    for (i = 0; have_cfg && i < cfg.nplugin_path; i++)
        dirs[n++] = cfg.plugin_path[i];
    for (i = 0; i < o->ndirs; i++)
        dirs[n++] = o->dirs[i];
    gw__loader_init(&l, dirs, n);
    free(dirs);
    printf("plugin ABI %d.%d; searching", GW_PLUGIN_ABI_MAJOR,
           GW_PLUGIN_ABI_MINOR);
    for (i = 0; i < l.ndirs; i++)
        printf("%s %s", i ? "," : "", l.dirs[i]);
    printf("\n");
    gw__loader_scan(&l, mn_plugin_line, &broken);
    if (l.nplugins == 0 && broken == 0)
        printf("no plugins found\n");
    gw__loader_free(&l);
    if (have_cfg)
        gw__config_free(&cfg);
    return 0;
}

/* Reads one line without echo on a terminal. NULL on EOF. */
static char *
mn_read_line(const char *prompt, int tty)
{
    struct termios old, quiet;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (tty) {
        /* Echo off first, then the prompt: nothing typed after the prompt
         * shows, and nothing typed is thrown away. */
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
    }
    n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static int
mn_passwd(void)
{
    int tty = isatty(STDIN_FILENO);
    char *pw, *again, *hash;

    pw = mn_read_line("Password: ", tty);
    if (pw == NULL || pw[0] == '\0') {
        fprintf(stderr, "gottwall: no password given\n");
        free(pw);
        return 1;
    }
    if (tty) {
        again = mn_read_line("Again: ", tty);
        if (again == NULL || strcmp(pw, again) != 0) {
            fprintf(stderr, "gottwall: the passwords differ\n");
            free(pw);
            free(again);
            return 1;
        }
        free(again);
    }
    hash = gw__password_hash(pw);
    memset(pw, 0, strlen(pw));
    free(pw);
    if (hash == NULL) {
        fprintf(stderr, "gottwall: could not hash the password\n");
        return 1;
    }
    printf("%s\n", hash);
    free(hash);
    return 0;
}

static int
mn_init(const mn_opts_t *o, const char *path)
{
    gw_error_t err;

    if (mn_exists(path) && !o->force) {
        char *answer;

        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr, "gottwall: %s exists; not overwriting it "
                    "(use `gottwall init %s --force`)\n", path, path);
            return 1;
        }
        fprintf(stderr, "%s exists; overwrite? [y/N] ", path);
        fflush(stderr);
        answer = mn_read_line("", 0);
        if (answer == NULL || (strcasecmp(answer, "y") != 0 &&
                               strcasecmp(answer, "yes") != 0)) {
            fprintf(stderr, "gottwall: %s left as it was\n", path);
            free(answer);
            return 1;
        }
        free(answer);
    }
    if (gw__init_write(path, &err) != GW_OK) {
        fprintf(stderr, "gottwall: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s with new random keys; check it with `gottwall -c %s "
           "check`, start with `gottwall -c %s start`\n", path, path, path);
    return 0;
}

static int
mn_command_usage(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(mn_command_help) / sizeof(mn_command_help[0]);
         i++) {
        if (strcmp(mn_command_help[i].name, name) == 0) {
            printf("%s", mn_command_help[i].help);
            return 0;
        }
    }
    return mn_usage("unknown command \"%s\"", name);
}

static int
mn_dispatch(mn_opts_t *o)
{
    const char *cmd;

    if (o->version) {
        printf("gottwall %s (plugin ABI %d.%d)\n", PACKAGE_VERSION,
               GW_PLUGIN_ABI_MAJOR, GW_PLUGIN_ABI_MINOR);
        return 0;
    }
    if (o->nargs == 0) {
        if (o->help) {
            printf("%s", mn_help);
            return 0;
        }
        return mn_usage("%s", "no command given");
    }
    cmd = o->args[0];
    if (o->help)
        return mn_command_usage(cmd);
    if (strcmp(cmd, "help") == 0) {
        if (o->nargs > 1)
            return mn_command_usage(o->args[1]);
        printf("%s", mn_help);
        return 0;
    }
    if (strcmp(cmd, "start") == 0 && o->nargs == 1)
        return mn_run(o, GW__ROLE_AGGREGATOR | GW__ROLE_SERVER);
    if (strcmp(cmd, "server") == 0 || strcmp(cmd, "aggregator") == 0) {
        if (o->nargs != 2 || strcmp(o->args[1], "start") != 0)
            return mn_usage("%s: the only subcommand is `start`", cmd);
        return mn_run(o, cmd[0] == 's' ? GW__ROLE_SERVER
                                        : GW__ROLE_AGGREGATOR);
    }
    if (strcmp(cmd, "check") == 0 && o->nargs == 1)
        return mn_check(o);
    if (strcmp(cmd, "plugins") == 0 && o->nargs == 1)
        return mn_plugins(o);
    if (strcmp(cmd, "passwd") == 0 && o->nargs == 1)
        return mn_passwd();
    if (strcmp(cmd, "init") == 0) {
        if (o->nargs != 2)
            return mn_usage("%s", "init needs one PATH: gottwall init "
                            "gottwall.conf");
        return mn_init(o, o->args[1]);
    }
    if (strcmp(cmd, "start") == 0 || strcmp(cmd, "check") == 0 ||
        strcmp(cmd, "plugins") == 0 || strcmp(cmd, "passwd") == 0)
        return mn_usage("%s takes no arguments", cmd);
    return mn_usage("unknown command \"%s\"", cmd);
}

int
main(int argc, char **argv)
{
    mn_opts_t o;
    size_t i;
    int rc;

    memset(&o, 0, sizeof(o));
    rc = mn_parse(argc, argv, &o);
    if (rc == 0)
        rc = mn_dispatch(&o);
    for (i = 0; i < o.ndirs; i++)
        free(o.dirs[i]);
    free(o.dirs);
    free(o.args);
    return rc;
}
