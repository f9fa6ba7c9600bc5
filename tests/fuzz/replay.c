/*
 * tests/fuzz/replay.c: runs every file of a fuzz corpus through a fuzz
 * target's LLVMFuzzerTestOneInput, without libFuzzer, so that make check
 * replays the corpus (and any crash file added to it) on every build.
 *
 * Usage: replay_X [DIR|FILE ...]; without arguments the corpus directory
 * compiled in as GW_FUZZ_CORPUS. Exits 1 if nothing was replayed.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long len;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    buf = malloc((size_t) len + 1);
    if (buf == NULL || fread(buf, 1, (size_t) len, f) != (size_t) len) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t) len);
    free(buf);
    return 0;
}

static int
cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Replays path (a file, or every regular file of a directory in name
 * order); returns the number replayed, -1 on an error. */
static long
replay(const char *path)
{
    struct stat st;
    struct dirent *de;
    char **names = NULL, full[4096];
    size_t n = 0, cap = 0, i;
    long count = 0;
    DIR *d;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s does not exist\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) == 0 ? 1 : -1;
    if ((d = opendir(path)) == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(*names));
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp);
    for (i = 0; i < n; i++) {
        snprintf(full, sizeof(full), "%s/%s", path, names[i]);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(full) != 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int
main(int argc, char **argv)
{
    long total = 0, k;
    int i;

    if (argc < 2) {
#ifdef GW_FUZZ_CORPUS
        static char *dflt[] = {NULL, GW_FUZZ_CORPUS};

        argc = 2;
        argv = dflt;
#else
        fprintf(stderr, "usage: %s DIR|FILE ...\n", argv[0]);
        return 1;
#endif
    }
    for (i = 1; i < argc; i++) {
        k = replay(argv[i]);
        if (k < 0)
            return 1;
        printf("replayed %ld inputs from %s\n", k, argv[i]);
        total += k;
    }
    return total > 0 ? 0 : 1;
}
