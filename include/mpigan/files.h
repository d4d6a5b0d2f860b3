/* Files that mpigan writes: every one whole or not at all, and never through a link it did not
 * make.
 *
 * A new file is written under a fresh temporary name beside its destination, created exclusively
 * (O_CREAT | O_EXCL | O_NOFOLLOW: never an existing file, never through a symbolic link someone
 * planted), then synced, renamed over the destination (a link there is replaced, not followed)
 * and its directory synced, so after a crash or a power cut the destination is the old file or the
 * complete new one. Appended files are opened with O_NOFOLLOW and must be regular files.
 *
 * Errors follow the writers' convention of h5io.h: `what` gets only what failed ("No space left on
 * device"); the caller names the file ("<path>: cannot write run record: ..."). */
#ifndef MPIGAN_FILES_H
#define MPIGAN_FILES_H

#include <stddef.h>
#include <stdio.h>

#include "mpigan/error.h"

/* Paths a configuration or a run directory may hold, NUL included. */
#define MG_PATH_MAX 1024

/* Checks that the directory `path` would be created in exists and is writable, so that the
 * common failures read as the system's own words ("No such file or directory"). */
int mg_file_dir_writable(const char *path, mg_error *what);

/* 0 if path's file system has room for `bytes` more (with 5% and 1 MB of slack), else -1 with how
 * much is free. */
int mg_file_room(const char *path, double bytes, mg_error *what);

/* A fresh name beside path, "<path>.tmp-XXXXXX", for a writer that creates its file itself by
 * name and exclusively (HDF5's H5F_ACC_EXCL): the name did not exist when it was chosen. */
int mg_file_temp_name(char *tmp, size_t n, const char *path, mg_error *what);

/* fsync(tmp), rename(tmp, path), then (best effort) fsync of the directory: afterwards path is the
 * complete new file, even across a power cut. */
int mg_file_commit_name(const char *tmp, const char *path, mg_error *what);

/* fsync of the directory that holds path, best effort: what makes a rename there durable. */
void mg_file_sync_dir(const char *path);

/* A new file written through stdio. */
typedef struct {
    FILE *f;
    char tmp[MG_PATH_MAX + 32];
    char path[MG_PATH_MAX];
} mg_file;

/* Opens a fresh temporary beside path for writing into o->f. */
int mg_file_create(mg_file *o, const char *path, mg_error *what);
/* Flushes o->f, checks that every write reached the file, syncs and renames it over path. The
 * temporary is gone afterwards, whether this worked or not. */
int mg_file_commit(mg_file *o, mg_error *what);
/* Gives up: closes and removes the temporary; path is untouched. */
void mg_file_discard(mg_file *o);

/* All of text (n bytes) as the new file path. */
int mg_file_write(const char *path, const void *text, size_t n, mg_error *what);

/* Opens path for appending (created if missing, mode 0666 less the umask): never through a
 * symbolic link, never anything but a regular file (a FIFO would block). */
int mg_file_open_append(int *fd, const char *path, mg_error *what);

/* Writes all n bytes at the end of fd, or none: a write cut short (a full disk) is cut back off
 * with ftruncate, so a file of records never holds half of one. */
int mg_file_append(int fd, const void *buf, size_t n, mg_error *what);

/* Opens an existing file for reading only if it is a regular file: a FIFO, a device or a
 * directory where a file is expected is refused ("not a regular file") instead of blocking. */
int mg_file_open_read(int *fd, const char *path, mg_error *what);

/* ---- Files that mpigan reads ----
 *
 * An input file is opened only if it is a regular file: a FIFO would block in open(2) until a
 * writer came (forever), a device could be read without end, and neither has a size to check a
 * header against. Messages are the readers' ("<path>: ..."), whole lines. */

/* Opens path for reading: "<path>: cannot open: <reason>" (a directory: "Is a directory"), or
 * "<path>: not a regular file", without blocking on a FIFO. */
int mg_file_open_input(int *fd, const char *path, mg_error *err);

/* The same check for a library that opens the file by name itself (HDF5, libmatio): 0 if path is
 * a regular file that can be opened for reading, else -1 with the same messages. */
int mg_file_check_input(const char *path, mg_error *err);

/* A message is one line whatever it echoes: control characters in it (a newline in a file name
 * given in a quoted YAML string, say) become '?'. err may be NULL. Returns -1, so that a reader's
 * failing path can end `return mg_file_one_line(err);`. */
int mg_file_one_line(mg_error *err);

#endif
