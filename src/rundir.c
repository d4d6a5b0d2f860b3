/* A run directory (rundir.h). */
#define _POSIX_C_SOURCE 200809L /* getline */
#include "mpigan/rundir.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpigan/files.h"

static int mkdir_p(const char *dir, mg_error *err)
{
    char path[MG_PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return mg_fail(err, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return mg_fail(err, "%s: cannot create directory: %s", path, strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mg_fail(err, "%s: not a directory", dir);
    return 0;
}

int mg_rundir_create(const char *dir, const mg_config *cfg, int force, mg_error *err)
{
    if (mkdir_p(dir, err))
        return -1;
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (!force && access(path, F_OK) == 0)
        return mg_fail(err,
                       "%s: already holds a run (metrics.jsonl): choose another directory with "
                       "--out, or pass --force to overwrite it",
                       dir);
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    mg_file out;
    mg_error what;
    if (mg_file_create(&out, path, &what))
        return mg_fail(err, "%s: cannot write: %s", path, what.msg);
    if (mg_config_write(cfg, out.f) != 0) {
        mg_file_discard(&out);
        return mg_fail(err, "%s: cannot write: %s", path, strerror(errno ? errno : EIO));
    }
    if (mg_file_commit(&out, &what))
        return mg_fail(err, "%s: cannot write: %s", path, what.msg);
    return 0;
}

/* The step of a metrics record, or -1 when the line is not one. */
static long long record_step(const char *line)
{
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
    json_t *step = o ? json_object_get(o, "step") : NULL;
    long long s = json_is_integer(step) ? (long long)json_integer_value(step) : -1;
    json_decref(o);
    return s;
}

int mg_rundir_trim_metrics(const char *dir, int64_t step, mg_error *err)
{
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *in = fopen(path, "r");
    if (!in)
        return errno == ENOENT ? 0 : mg_fail(err, "%s: cannot read: %s", path, strerror(errno));
    mg_file out;
    mg_error what;
    if (mg_file_create(&out, path, &what)) {
        fclose(in);
        return mg_fail(err, "%s: cannot write: %s", path, what.msg);
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        if (record_step(line) > step)
            break; /* records are in step order */
        fputs(line, out.f);
    }
    free(line);
    int bad = ferror(in);
    fclose(in);
    if (bad) {
        mg_file_discard(&out);
        return mg_fail(err, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
    }
    if (mg_file_commit(&out, &what))
        return mg_fail(err, "%s: cannot write: %s", path, what.msg);
    return 0;
}
