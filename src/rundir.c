/* A run directory (rundir.h). */
#define _GNU_SOURCE /* getline, O_NOFOLLOW, O_CLOEXEC */
#include "mpigan/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpigan/checkpoint.h"
#include "mpigan/sampleset.h"

#define LOCK_NAME ".mpigan.lock"

/* What a run writes in its directory, by name: prefix and suffix ("" for an exact name). */
static const struct {
    const char *prefix, *suffix;
} run_files[] = {
    {"metrics.jsonl", ""}, {"run.json", ""},     {"config.yaml", ""},    {"samples.h5", ""},
    {"latest.h5", ""},     {"ckpt-", ".h5"},     {"samples-", ".png"},   {"eval-", ".json"},
};

static int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* 1 if name is a file a run writes. */
static int is_run_file(const char *name)
{
    for (size_t i = 0; i < sizeof run_files / sizeof *run_files; i++) {
        const char *p = run_files[i].prefix, *x = run_files[i].suffix;
        if (!*x ? strcmp(name, p) == 0
                : strncmp(name, p, strlen(p)) == 0 && ends_with(name, x))
            return 1;
    }
    return 0;
}

int mg_rundir_check_output(const char *path, const char *input, int eval_record, mg_error *err)
{
    struct stat st, in;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode))
            return mg_fail(err, "%s: a symbolic link; mpigan writes its output as a file of its own "
                                "there, never through a link",
                           path);
        if (!S_ISREG(st.st_mode))
            return mg_fail(err, "%s: not a regular file", path);
        if (input && stat(input, &in) == 0 && in.st_dev == st.st_dev && in.st_ino == st.st_ino)
            return mg_fail(err, "%s: the file this command reads (%s); write elsewhere", path,
                           input);
    }
    char copy[MG_PATH_MAX], base[MG_PATH_MAX], lock[MG_PATH_MAX + sizeof LOCK_NAME + 1];
    if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy)
        return mg_fail(err, "%s: path too long", path);
    snprintf(base, sizeof base, "%s", path);
    const char *dir = dirname(copy), *name = basename(base);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mg_fail(err, "%s: its directory %s does not exist", path, dir);
    snprintf(lock, sizeof lock, "%s/%s", dir, LOCK_NAME);
    if (lstat(lock, &st) != 0)
        return 0; /* not a run directory */
    if (is_run_file(name) &&
        !(eval_record && strncmp(name, "eval-", 5) == 0 && ends_with(name, ".json")))
        return mg_fail(err, "%s: a file the run in %s writes (README \"What a run writes\"); write "
                            "elsewhere",
                       path, dir);
    return 0;
}

static int mkdir_p(const char *dir, int *created, mg_error *err)
{
    char path[MG_PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return mg_fail(err, "%s: path too long", dir);
    *created = 0;
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) == 0)
                *created = c == '\0';
            else if (errno != EEXIST)
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

/* The lock: an fcntl write lock on dir/.mpigan.lock, which holds "pid on host" of its owner. */
static int take_lock(mg_rundir *r, mg_error *err)
{
    char path[MG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" LOCK_NAME, r->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
    if (fd < 0)
        return mg_fail(err, "%s: cannot lock the run directory: %s", path,
                       errno == ELOOP ? "a symbolic link, not a file" : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mg_fail(err, "%s: cannot lock the run directory: not a regular file", path);
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN) {
            char who[256] = "";
            ssize_t got = pread(fd, who, sizeof who - 1, 0);
            who[got > 0 ? got : 0] = '\0';
            who[strcspn(who, "\n")] = '\0';
            for (char *p = who; *p; p++) /* it goes into a one-line message */
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                    *p = '?';
            close(fd);
            return mg_fail(err,
                           "%s: another mpigan run is writing here%s%s%s: wait for it to end, or "
                           "choose another --out",
                           r->dir, who[0] ? " (" : "", who, who[0] ? ")" : "");
        }
        /* No locks on this file system (Lustre without -o flock, some NFS set-ups): say so and
         * go on, as a run without the lock did before. */
        fprintf(stderr,
                "mpigan: warning: %s: cannot lock the run directory (%s): make sure no other run "
                "writes into it\n",
                r->dir, strerror(e));
        close(fd);
        return 0;
    }
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    char who[256];
    int len = snprintf(who, sizeof who, "pid %ld on %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, who, (size_t)len, 0) != len) {
        /* The lock holds whether or not its note could be written. */
    }
    r->lock = fd;
    return 0;
}

/* Every entry a run writes is what mpigan would have written: a regular file, and latest.h5 a
 * link to a checkpoint's name. Anything else was put there and is never written through. */
static int check_entries(mg_rundir *r, mg_error *err)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return mg_fail(err, "%s: cannot read directory: %s", r->dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        const char *name = e->d_name;
        if (!is_run_file(name))
            continue;
        char path[MG_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", r->dir, name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue; /* gone meanwhile */
        if (strcmp(name, "metrics.jsonl") == 0 || strncmp(name, "ckpt-", 5) == 0)
            r->holds_run = 1;
        if (strcmp(name, "latest.h5") == 0) {
            char target[256];
            ssize_t len = readlink(path, target, sizeof target - 1);
            if (len > 0)
                target[len] = '\0';
            if (!S_ISLNK(st.st_mode) || len <= 0 || mg_checkpoint_step_of(target) < 0)
                rc = mg_fail(err,
                             "%s: not a link to a checkpoint of this directory, as mpigan makes "
                             "it: remove it",
                             path);
        } else if (S_ISLNK(st.st_mode)) {
            rc = mg_fail(err, "%s: a symbolic link where mpigan keeps a file: remove it", path);
        } else if (!S_ISREG(st.st_mode)) {
            rc = mg_fail(err, "%s: not a regular file, where mpigan keeps one: remove it", path);
        }
    }
    closedir(d);
    return rc;
}

int mg_rundir_open(mg_rundir *r, const char *dir, mg_error *err)
{
    memset(r, 0, sizeof *r);
    r->lock = -1;
    size_t len = strlen(dir);
    if (len == 0)
        return mg_fail(err, "the run directory's name is empty");
    if (len + MG_RUNDIR_NAME_MAX >= MG_PATH_MAX || len + MG_RUNDIR_NAME_MAX >= PATH_MAX)
        return mg_fail(err, "%.80s...: run directory path of %zu bytes is too long (at most %d)",
                       dir, len, MG_PATH_MAX - MG_RUNDIR_NAME_MAX - 1);
    memcpy(r->dir, dir, len + 1);
    if (mkdir_p(r->dir, &r->created, err))
        return -1;
    if (take_lock(r, err) || check_entries(r, err)) {
        mg_rundir_abandon(r);
        return -1;
    }
    return 0;
}

void mg_rundir_close(mg_rundir *r)
{
    if (r->lock >= 0)
        close(r->lock); /* releases the fcntl lock */
    r->lock = -1;
}

void mg_rundir_abandon(mg_rundir *r)
{
    if (r->created && !r->holds_run) {
        /* Only what a failed start may have left: the lock, a configuration, empty records. */
        static const char *const names[] = {LOCK_NAME, "config.yaml", "metrics.jsonl"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            char path[MG_PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/%s", r->dir, names[i]);
            unlink(path);
        }
        rmdir(r->dir); /* fails, harmlessly, if anything else is there */
    }
    mg_rundir_close(r);
}

int mg_rundir_move_aside(mg_rundir *r, char *moved, size_t n, mg_error *err)
{
    moved[0] = '\0';
    if (!r->holds_run)
        return 0;
    char stamp[32], aside[MG_PATH_MAX + 64];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    int made = 0;
    for (int i = 0; i < 100 && !made; i++) {
        snprintf(aside, sizeof aside, i ? "%s/previous-%s-%d" : "%s/previous-%s", r->dir, stamp, i);
        if (mkdir(aside, 0777) == 0)
            made = 1;
        else if (errno != EEXIST)
            return mg_fail(err, "%s: cannot create directory: %s", aside, strerror(errno));
    }
    if (!made)
        return mg_fail(err, "%s: no free name for the previous run's files", r->dir);
    DIR *d = opendir(r->dir);
    if (!d)
        return mg_fail(err, "%s: cannot read directory: %s", r->dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        const char *name = e->d_name;
        /* The run's files, their temporaries and its plots. */
        int ours = is_run_file(name) || strcmp(name, "plots") == 0;
        const char *tmp = strstr(name, ".tmp-");
        if (tmp) {
            char base[256];
            snprintf(base, sizeof base, "%.*s", (int)(tmp - name), name);
            ours |= is_run_file(base);
        }
        if (!ours)
            continue;
        char from[MG_PATH_MAX + 300], to[2 * MG_PATH_MAX + 300];
        snprintf(from, sizeof from, "%s/%s", r->dir, name);
        snprintf(to, sizeof to, "%s/%s", aside, name);
        if (rename(from, to) != 0)
            rc = mg_fail(err, "%s: cannot move it to %s: %s", from, aside, strerror(errno));
    }
    closedir(d);
    if (rc)
        return -1;
    mg_file_sync_dir(aside);
    r->holds_run = 0;
    snprintf(moved, n, "%s", aside);
    return 0;
}

int mg_rundir_write_config(const mg_rundir *r, const mg_config *cfg, mg_error *err)
{
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.yaml", r->dir);
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

static int trim_metrics(const mg_rundir *r, int64_t step, mg_error *err)
{
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    int fd;
    mg_error what;
    if (mg_file_open_read(&fd, path, &what))
        return errno == ENOENT ? 0 : mg_fail(err, "%s: cannot read: %s", path, what.msg);
    FILE *in = fdopen(fd, "r");
    if (!in) {
        close(fd);
        return mg_fail(err, "%s: cannot read: %s", path, strerror(errno));
    }
    mg_file out;
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

/* samples-<step>.png of steps after `step`. */
static int trim_pictures(const mg_rundir *r, int64_t step, mg_error *err)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return mg_fail(err, "%s: cannot read directory: %s", r->dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        long long s;
        int used = 0;
        if (sscanf(e->d_name, "samples-%lld.png%n", &s, &used) != 1 || e->d_name[used] ||
            s <= step)
            continue;
        char path[MG_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = mg_fail(err, "%s: cannot remove: %s", path, strerror(errno));
    }
    closedir(d);
    return rc;
}

int mg_rundir_trim(const mg_rundir *r, int64_t step, mg_error *err)
{
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/samples.h5", r->dir);
    int64_t kept;
    return trim_metrics(r, step, err) || mg_sampleset_trim(path, step, &kept, err) ||
                   trim_pictures(r, step, err)
               ? -1
               : 0;
}

void mg_rundir_choose(char *dir, size_t n, const char *out, const char *resumed,
                      const char *output_dir, const char *config_path)
{
    if (out) {
        snprintf(dir, n, "%s", out);
    } else if (resumed) {
        const char *slash = strrchr(resumed, '/');
        if (slash)
            snprintf(dir, n, "%.*s", slash == resumed ? 1 : (int)(slash - resumed), resumed);
        else
            snprintf(dir, n, ".");
    } else if (output_dir && output_dir[0]) {
        snprintf(dir, n, "%s", output_dir);
    } else {
        const char *base = strrchr(config_path, '/');
        base = base ? base + 1 : config_path;
        char stamp[32];
        const time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
        snprintf(dir, n, "runs/%.*s-%s", (int)strcspn(base, "."), base, stamp);
    }
}

/* The newest checkpoint of dir into newest (n bytes) when its step is after `step`. */
static int later_checkpoint(const char *dir, int64_t step, char *newest, size_t n)
{
    mg_error none;
    return mg_checkpoint_find_latest(newest, n, dir, &none) == 0 &&
           mg_checkpoint_step_of(newest) > step;
}

int mg_rundir_check_start(const mg_rundir *r, int resume, int force, int64_t step,
                          mg_error *err)
{
    char newest[MG_PATH_MAX + 64];
    if (resume && !force && later_checkpoint(r->dir, step, newest, sizeof newest))
        return mg_fail(err,
                       "%s: holds checkpoints after step %lld (%s): resume into another --out, or "
                       "pass --force to delete them",
                       r->dir, (long long)step, newest);
    if (!resume && !force && r->holds_run)
        return mg_fail(err,
                       "%s: already holds a run (metrics.jsonl or checkpoints): choose another "
                       "directory with --out, or pass --force to move its files aside",
                       r->dir);
    return 0;
}

int mg_rundir_start(mg_rundir *r, const mg_config *cfg, int resume, int64_t step,
                    mg_error *err)
{
    if (!resume && r->holds_run) {
        char moved[MG_PATH_MAX + 64];
        if (mg_rundir_move_aside(r, moved, sizeof moved, err))
            return -1;
        fprintf(stderr, "mpigan: %s held a run (--force): its files are now in %s\n", r->dir,
                moved);
    }
    char newest[MG_PATH_MAX + 64];
    while (resume && later_checkpoint(r->dir, step, newest, sizeof newest))
        if (unlink(newest) != 0)
            return mg_fail(err, "%s: cannot delete: %m", newest);
    if (resume && mg_rundir_trim(r, step, err))
        return -1;
    return mg_rundir_write_config(r, cfg, err);
}
