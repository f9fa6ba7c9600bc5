/*
 * examples/transport_pipe/pipe.c: a GottWall transport plugin that reads
 * events from a named pipe (FIFO), one JSON object per line
 * (docs/plugin-abi.md walks through it).
 *
 *     BACKENDS = {
 *         pipe = { PATH = "/run/gottwall/events"; PROJECT = "test_project"; };
 *     };
 *
 *     echo '{"n": "orders", "f": {"status": "paid"}}' > /run/gottwall/events
 *
 * Whoever can write to the pipe speaks for PROJECT: file permissions are
 * the authentication (a FIFO it creates gets MODE, 0620 by default).
 *
 * The FIFO is opened O_RDONLY | O_NONBLOCK and watched with an ev_io on the
 * daemon's loop; nothing here blocks. When the last writer closes, read()
 * returns 0 (EOF) and, on Linux, the FIFO stays readable forever; so the
 * plugin closes and reopens it, and waits for the next writer.
 *
 * Threads: everything runs on the loop thread.
 */
#define _DEFAULT_SOURCE /* mkfifo, O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include <gottwall/plugin.h>

typedef struct pp_state_s {
    const gw_ctx_t *ctx;
    const gw_host_t *host;

    /* Settings, filled by host->config_apply (strings are core-owned). */
    const char *path;
    const char *project;
    int64_t max_line;
    const char *mode_text;
    int create;

    mode_t mode;

    struct ev_loop *loop;
    ev_io io;
    int fd;
    char *buf; /* max_line + 1 bytes: the line being read */
    size_t len;
    int skipping; /* inside a line over max_line: drop up to its end */
    uint64_t lines, errors;
} pp_state_t;

static const gw_config_key_t pp_keys[] = {
    GW_CONFIG_KEY("PATH", GW_CONFIG_STRING, NULL, pp_state_t, path,
                  "the named pipe to read (required)"),
    GW_CONFIG_KEY("PROJECT", GW_CONFIG_STRING, NULL, pp_state_t, project,
                  "the project every event belongs to (required)"),
    GW_CONFIG_KEY_RANGE("MAX_LINE", GW_CONFIG_INT, "65536", pp_state_t,
                        max_line, "longest line in bytes; longer ones are "
                        "dropped", 16, 16777216),
    GW_CONFIG_KEY("CREATE", GW_CONFIG_BOOL, "true", pp_state_t, create,
                  "create the FIFO if PATH does not exist"),
    GW_CONFIG_KEY("MODE", GW_CONFIG_STRING, "0620", pp_state_t, mode_text,
                  "permissions of a created FIFO, in octal (0620: the "
                  "daemon reads, its group writes)"),
    GW_CONFIG_END};

static void pp_destroy(void *state);
static void pp_readable(struct ev_loop *loop, ev_io *w, int revents);

static int
pp_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    pp_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return gw_error_set(err, "out of memory");
    st->ctx = ctx;
    st->host = ctx->host;
    st->fd = -1;
    if (ctx->host->config_apply(ctx, pp_keys, st, err) != GW_OK) {
        pp_destroy(st);
        return GW_ERR;
    }
    if (st->path == NULL || st->path[0] == '\0') {
        pp_destroy(st);
        return gw_error_set(err, "PATH is required: the named pipe to read");
    }
    if (st->project == NULL || st->project[0] == '\0') {
        pp_destroy(st);
        return gw_error_set(err, "PROJECT is required: the project the "
                            "pipe's events belong to");
    }
    {
        char *end;
        long m = strtol(st->mode_text, &end, 8);

        if (st->mode_text[0] == '\0' || *end != '\0' || m < 0 || m > 0777) {
            gw_error_set(err, "MODE \"%s\" is not an octal mode like "
                         "\"0620\"", st->mode_text);
            pp_destroy(st);
            return GW_ERR;
        }
        st->mode = (mode_t) m;
    }
    st->buf = malloc((size_t) st->max_line + 1);
    if (st->buf == NULL) {
        pp_destroy(st);
        return gw_error_set(err, "out of memory");
    }
    *state = st;
    return GW_OK;
}

/* Opens the FIFO (creating it if asked) and starts watching it. */
static int
pp_open(pp_state_t *st, gw_error_t *err)
{
    struct stat sb;

    if (stat(st->path, &sb) != 0) {
        if (errno != ENOENT || !st->create)
            return gw_error_set(err, "%s: %s", st->path, strerror(errno));
        if (mkfifo(st->path, st->mode) != 0 && errno != EEXIST)
            return gw_error_set(err, "mkfifo %s: %s", st->path,
                                strerror(errno));
        /* mkfifo's mode passes through the umask: set it exactly. */
        if (chmod(st->path, st->mode) != 0)
            return gw_error_set(err, "chmod %s: %s", st->path,
                                strerror(errno));
        gw_log_info(st->ctx, "created the named pipe %s (mode %04o)",
                    st->path, (unsigned) st->mode);
    } else if (!S_ISFIFO(sb.st_mode)) {
        return gw_error_set(err, "%s exists and is not a named pipe; remove "
                            "it or choose another PATH", st->path);
    }
    /* O_NONBLOCK: the open does not wait for a writer, and reads never
     * block the loop. */
    st->fd = open(st->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (st->fd < 0)
        return gw_error_set(err, "open %s: %s", st->path, strerror(errno));
    ev_io_init(&st->io, pp_readable, st->fd, EV_READ);
    st->io.data = st;
    ev_io_start(st->loop, &st->io);
    return GW_OK;
}

static void
pp_close(pp_state_t *st)
{
    if (st->fd < 0)
        return;
    ev_io_stop(st->loop, &st->io);
    close(st->fd);
    st->fd = -1;
}

static int
pp_start(void *state, gw_error_t *err)
{
    pp_state_t *st = state;

    if (!st->host->project_exists(st->ctx, st->project))
        return gw_error_set(err, "PROJECT \"%s\" is not in PROJECTS",
                            st->project);
    st->loop = st->host->loop(st->ctx);
    if (pp_open(st, err) != GW_OK)
        return GW_ERR;
    gw_log_info(st->ctx, "reading events for project \"%s\" from %s",
                st->project, st->path);
    return GW_OK;
}

/* Submits one complete line (without its '\n'). */
static void
pp_line(pp_state_t *st, const char *line, size_t len)
{
    gw_error_t err;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
                       line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return; /* blank lines are allowed */
    st->lines++;
    /* submit_json counts the event (received, accepted or dropped). */
    if (st->host->submit_json(st->ctx, st->project, GW_ACTION_DEFAULT, line,
                              len, 0, &err) != GW_OK) {
        st->errors++;
        gw_log_warning(st->ctx, "%s: line dropped: %s", st->path, err.msg);
    }
}

/* Splits what is in st->buf into lines; keeps an unfinished one. */
static void
pp_lines(pp_state_t *st)
{
    size_t start = 0, i;

    for (i = 0; i < st->len; i++) {
        if (st->buf[i] != '\n')
            continue;
        if (st->skipping)
            st->skipping = 0; /* the end of a line too long to keep */
        else
            pp_line(st, st->buf + start, i - start);
        start = i + 1;
    }
    memmove(st->buf, st->buf + start, st->len - start);
    st->len -= start;
    if (st->len == (size_t) st->max_line) {
        /* No newline in MAX_LINE bytes: drop this line up to its end. */
        if (!st->skipping) {
            st->host->count(st->ctx, GW_COUNTER_DROPPED, "line_too_long", 1);
            gw_log_warning(st->ctx, "%s: a line longer than MAX_LINE (%lld "
                           "bytes) was dropped", st->path,
                           (long long) st->max_line);
        }
        st->skipping = 1;
        st->len = 0;
    }
}

static void
pp_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    pp_state_t *st = w->data;
    int rounds;
    gw_error_t err;

    (void) loop;
    (void) revents;
    /* A bounded number of reads per wake-up, so one busy writer cannot
     * keep the loop from the other transports. */
    for (rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(st->fd, st->buf + st->len,
                         (size_t) st->max_line - st->len);

        if (n > 0) {
            st->len += (size_t) n;
            pp_lines(st);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return; /* drained; writers still connected */
        if (n < 0) {
            gw_log_error(st->ctx, "read %s: %s; reopening", st->path,
                         strerror(errno));
        }
        /* EOF: every writer has closed. A last line without '\n' still
         * counts. Reopen, so the loop does not spin on a FIFO that stays
         * readable at EOF, and wait for the next writer. */
        if (st->len > 0 && !st->skipping)
            pp_line(st, st->buf, st->len);
        st->len = 0;
        st->skipping = 0;
        pp_close(st);
        if (pp_open(st, &err) != GW_OK)
            gw_log_error(st->ctx, "cannot reopen the pipe: %s; no more "
                         "events from it until a restart", err.msg);
        return;
    }
}

static void
pp_stop(void *state)
{
    pp_state_t *st = state;

    pp_close(st);
    gw_log_info(st->ctx, "stopped: %llu lines read, %llu dropped",
                (unsigned long long) st->lines,
                (unsigned long long) st->errors);
}

static void
pp_destroy(void *state)
{
    pp_state_t *st = state;

    if (st->loop != NULL)
        pp_close(st);
    free(st->buf);
    free(st);
}

static const gw_transport_ops_t pp_ops = {
    .struct_size = sizeof(gw_transport_ops_t),
    .create = pp_create,
    .start = pp_start,
    .stop = pp_stop,
    .destroy = pp_destroy,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_TRANSPORT,
    .name = "pipe",
    .version = "1.0.0",
    .description = "example: events from a named pipe, one JSON per line",
    .transport = &pp_ops,
};
