/* Files that mpigan writes (files.h). */
#define _GNU_SOURCE /* O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC, getrandom */
#include "mpigan/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The directory part of path: "." for a bare name, "/" for "/name". */
static int dir_of(char *dir, size_t n, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (len + 2 > n)
        return -1;
    if (slash == NULL)
        strcpy(dir, ".");
    else {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    return 0;
}

int mg_file_dir_writable(const char *path, mg_error *what)
{
    char dir[MG_PATH_MAX + 64];
    struct stat st;
    if (dir_of(dir, sizeof dir, path) != 0)
        return mg_fail(what, "%s", strerror(ENAMETOOLONG));
    if (stat(dir, &st) != 0)
        return mg_fail(what, "%s", strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return mg_fail(what, "%s", strerror(ENOTDIR));
    if (access(dir, W_OK | X_OK) != 0)
        return mg_fail(what, "%s", strerror(errno));
    return 0;
}

int mg_file_room(const char *path, double bytes, mg_error *what)
{
    char dir[MG_PATH_MAX + 64];
    struct statvfs fs;
    const double need = bytes * 1.05 + (1 << 20);
    if (dir_of(dir, sizeof dir, path) == 0 && statvfs(dir, &fs) == 0 &&
        (double)fs.f_bavail * fs.f_frsize < need)
        return mg_fail(what, "no room: %.0f bytes free on its file system, about %.0f needed",
                       (double)fs.f_bavail * fs.f_frsize, need);
    return 0;
}

/* "<path>.tmp-" and six characters of [a-z0-9] from the kernel's random bytes. */
static int temp_candidate(char *tmp, size_t n, const char *path)
{
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[6];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* No entropy source: the pid and a counter still make a name this process alone uses. */
        static unsigned counter;
        uint64_t v = ((uint64_t)getpid() << 20) ^ ++counter;
        for (int i = 0; i < 6; i++, v /= 36)
            r[i] = (unsigned char)(v % 36);
    }
    char suffix[7];
    for (int i = 0; i < 6; i++)
        suffix[i] = digits[r[i] % 36];
    suffix[6] = '\0';
    int len = snprintf(tmp, n, "%s.tmp-%s", path, suffix);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* A new temporary beside path, created exclusively; its descriptor, or -1 with what. */
static int create_temp(char *tmp, size_t n, const char *path, mg_error *what)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        if (temp_candidate(tmp, n, path))
            return mg_fail(what, "%s", strerror(ENAMETOOLONG));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return mg_fail(what, "%s", strerror(errno));
    }
    return mg_fail(what, "no free temporary name beside it");
}

int mg_file_temp_name(char *tmp, size_t n, const char *path, mg_error *what)
{
    int fd = create_temp(tmp, n, path, what);
    if (fd < 0)
        return -1;
    /* The caller's library creates the file again by name, exclusively: free the name for it. */
    close(fd);
    unlink(tmp);
    return 0;
}

int mg_file_commit_name(const char *tmp, const char *path, mg_error *what)
{
    int fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return mg_fail(what, "%s", strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return mg_fail(what, "cannot sync: %s", strerror(e));
    }
    if (close(fd) != 0)
        return mg_fail(what, "%s", strerror(errno));
    if (rename(tmp, path) != 0)
        return mg_fail(what, "%s", strerror(errno));
    mg_file_sync_dir(path);
    return 0;
}

void mg_file_sync_dir(const char *path)
{
    /* A rename is durable once the directory is synced. Best effort: path already is the complete
     * new file, so failing now would report an error about a good file (and some file systems
     * refuse fsync on a directory). */
    char dir[MG_PATH_MAX + 64];
    if (dir_of(dir, sizeof dir, path) == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            (void)close(dfd);
        }
    }
}

int mg_file_create(mg_file *o, const char *path, mg_error *what)
{
    memset(o, 0, sizeof *o);
    if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path)
        return mg_fail(what, "%s", strerror(ENAMETOOLONG));
    int fd = create_temp(o->tmp, sizeof o->tmp, path, what);
    if (fd < 0)
        return -1;
    o->f = fdopen(fd, "w");
    if (!o->f) {
        int e = errno;
        close(fd);
        unlink(o->tmp);
        return mg_fail(what, "%s", strerror(e));
    }
    return 0;
}

int mg_file_commit(mg_file *o, mg_error *what)
{
    int bad = fflush(o->f) != 0 || ferror(o->f);
    int e = errno;
    if (fclose(o->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    o->f = NULL;
    if (bad) {
        unlink(o->tmp);
        return mg_fail(what, "%s", strerror(e ? e : EIO));
    }
    if (mg_file_commit_name(o->tmp, o->path, what)) {
        unlink(o->tmp);
        return -1;
    }
    return 0;
}

void mg_file_discard(mg_file *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp[0])
        unlink(o->tmp);
}

int mg_file_write(const char *path, const void *text, size_t n, mg_error *what)
{
    mg_file o;
    if (mg_file_create(&o, path, what))
        return -1;
    if (n > 0 && fwrite(text, 1, n, o.f) != n) {
        int e = errno;
        mg_file_discard(&o);
        return mg_fail(what, "%s", strerror(e ? e : EIO));
    }
    return mg_file_commit(&o, what);
}

int mg_file_open_append(int *fd, const char *path, mg_error *what)
{
    *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
    if (*fd < 0)
        return mg_fail(what, "%s", errno == ELOOP ? "a symbolic link, not a file" : strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return mg_fail(what, "not a regular file");
    }
    /* Writes block as usual from here on; O_NONBLOCK only kept the open of a FIFO from waiting. */
    int flags = fcntl(*fd, F_GETFL);
    if (flags < 0 || fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return mg_fail(what, "%s", strerror(e));
    }
    return 0;
}

int mg_file_append(int fd, const void *buf, size_t n, mg_error *what)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mg_fail(what, "%s", strerror(errno));
    const char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            if (done > 0 && ftruncate(fd, st.st_size) != 0)
                return mg_fail(what, "%s, and the part written could not be cut off: %s",
                               strerror(e), strerror(errno));
            return mg_fail(what, "%s", strerror(e));
        }
        done += (size_t)w;
    }
    return 0;
}

int mg_file_open_read(int *fd, const char *path, mg_error *what)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0)
        return mg_fail(what, "%s", strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int dir = S_ISDIR(st.st_mode);
        close(*fd);
        *fd = -1;
        return mg_fail(what, "%s", dir ? strerror(EISDIR) : "not a regular file");
    }
    int flags = fcntl(*fd, F_GETFL);
    if (flags < 0 || fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return mg_fail(what, "%s", strerror(e));
    }
    return 0;
}

int mg_file_open_input(int *fd, const char *path, mg_error *err)
{
    /* stat first: a device is never opened (opening some has effects), a FIFO never waited on. */
    struct stat st;
    *fd = -1;
    if (stat(path, &st) != 0)
        return mg_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return mg_fail(err, "%s: cannot open: %s", path, strerror(EISDIR));
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, "%s: not a regular file", path);
    /* It may have been replaced since: O_NONBLOCK keeps the open of a FIFO from waiting, and
     * fstat tells what was opened. */
    mg_error what;
    if (mg_file_open_read(fd, path, &what) == 0)
        return 0;
    return strcmp(what.msg, "not a regular file") == 0
               ? mg_fail(err, "%s: not a regular file", path)
               : mg_fail(err, "%s: cannot open: %s", path, what.msg);
}

int mg_file_check_input(const char *path, mg_error *err)
{
    int fd;
    if (mg_file_open_input(&fd, path, err))
        return -1;
    close(fd);
    return 0;
}

int mg_file_one_line(mg_error *err)
{
    if (err)
        for (char *p = err->msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    return -1;
}
