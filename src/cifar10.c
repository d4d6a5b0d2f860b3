/* CIFAR-10, binary version (cifar-10-binary.tar.gz, directory cifar-10-batches-bin/).
 *
 * A file is records of 3073 bytes and nothing else: a label byte (0..9), then the 32 x 32 image as
 * 1024 red, 1024 green and 1024 blue bytes, each plane row-major. That is (3, 32, 32)
 * channel-first, so a record's pixels go to its row of the data set in their own order.
 *
 * The format has no header, so a file's size is the only promise it makes: every file is opened
 * and measured (fstat) before anything is allocated, and must be a whole number of records. The
 * official batches hold 10,000 records each; any whole number is accepted. Records are numbered
 * from 0 within their file in messages. */
/* fstat: POSIX.1-2008, also under -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include "mpigan/cifar10.h"
#include "mpigan/files.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE) /* 3072 */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)            /* 3073 */
#define CIFAR_LABELS 10
/* Records per read(2): 768 KiB, a few hundred reads for a 30 MB batch. */
#define CIFAR_BATCH 256

typedef struct {
    const char *path;
    int fd;
    int64_t records; /* file size / 3073 */
} cifar_file;

/* Opens path and counts its records from its size. */
static int cifar_open(cifar_file *f, const char *path, mg_error *err)
{
    f->path = path;
    f->records = 0;
    /* A regular file only: a FIFO would block open(2), and has no size to check. */
    if (mg_file_open_input(&f->fd, path, err))
        return -1;
    struct stat st;
    int rc = 0;
    if (fstat(f->fd, &st) != 0)
        rc = mg_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (rc == 0) {
        long long bytes = (long long)st.st_size;
        long long records = bytes / CIFAR_RECORD, over = bytes % CIFAR_RECORD;
        if (bytes == 0)
            rc = mg_fail(err, "%s: empty: no CIFAR-10 records", path);
        else if (over != 0)
            rc = mg_fail(err, "%s: %lld bytes is not a whole number of %d-byte CIFAR-10 records "
                         "(%lld record%s and %lld byte%s over)", path, bytes, CIFAR_RECORD,
                         records, records == 1 ? "" : "s", over, over == 1 ? "" : "s");
        f->records = records;
    }
    if (rc) {
        close(f->fd);
        f->fd = -1;
    }
    return rc;
}

/* Reads exactly n bytes, which begin with record `record` of the file. */
static int cifar_read(const cifar_file *f, unsigned char *buf, size_t n, int64_t record,
                      mg_error *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(f->fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return mg_fail(err, "%s: read failed: %s", f->path, strerror(errno));
        if (r == 0) /* measured at open, shorter now: cut while we read */
            return mg_fail(err, "%s: truncated while reading (record %lld)", f->path,
                           (long long)(record + (int64_t)(got / CIFAR_RECORD)));
        got += (size_t)r;
    }
    return 0;
}

/* Reads all records of f into x (records, 3072) and lab (records), checking every label. */
static int cifar_read_file(const cifar_file *f, mg_real *x, uint8_t *lab, const mg_real *lut,
                           unsigned char *buf, mg_error *err)
{
    for (int64_t r0 = 0; r0 < f->records; r0 += CIFAR_BATCH) {
        int64_t nr = f->records - r0 < CIFAR_BATCH ? f->records - r0 : CIFAR_BATCH;
        if (cifar_read(f, buf, (size_t)nr * CIFAR_RECORD, r0, err))
            return -1;
        for (int64_t r = 0; r < nr; r++) {
            const unsigned char *rec = buf + (size_t)r * CIFAR_RECORD; /* (3073) */
            if (rec[0] >= CIFAR_LABELS)
                return mg_fail(err, "%s: record %lld has label %d; CIFAR-10 labels are 0 to 9",
                               f->path, (long long)(r0 + r), rec[0]);
            lab[r0 + r] = rec[0];
            mg_real *row = x + (size_t)(r0 + r) * CIFAR_PIXELS; /* (3, 32, 32) */
            for (int j = 0; j < CIFAR_PIXELS; j++)
                row[j] = lut[rec[1 + j]];
        }
    }
    return 0;
}

int mg_cifar10_read(mg_dataset *ds, uint8_t **labels, const char *const *files, int n_files,
                    mg_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (labels)
        *labels = NULL;
    if (!files || n_files < 1)
        return mg_fail(err, "mg_cifar10_read: no files given");

    /* Every file open and measured first: a bad last batch fails before the first is read. */
    cifar_file *f = mg_xcalloc((size_t)n_files, sizeof *f);
    for (int i = 0; i < n_files; i++)
        f[i].fd = -1;
    int rc = 0;
    int64_t n = 0;
    for (int i = 0; i < n_files && rc == 0; i++) {
        if ((rc = cifar_open(&f[i], files[i], err)))
            break;
        n += f[i].records;
        if (n > INT_MAX)
            rc = mg_fail(err, "%s: %lld records in all, more than the limit %d", files[i],
                         (long long)n, INT_MAX);
    }

    uint8_t *lab = NULL;       /* (n) */
    unsigned char *buf = NULL; /* (CIFAR_BATCH, 3073) */
    if (rc == 0)
        rc = mg_dataset_alloc(ds, (int)n, 3, CIFAR_SIDE, CIFAR_SIDE, err);
    if (rc == 0) {
        lab = malloc((size_t)n);
        buf = malloc((size_t)CIFAR_BATCH * CIFAR_RECORD);
        if (!lab || !buf)
            rc = mg_fail(err, "%s: out of memory", files[0]);
    }
    if (rc == 0) {
        mg_real lut[256]; /* b / 255 rounded once, as the IDX reader does */
        for (int b = 0; b < 256; b++)
            lut[b] = (mg_real)b / (mg_real)255;
        int64_t at = 0; /* first example of the current file */
        for (int i = 0; i < n_files && rc == 0; i++) {
            rc = cifar_read_file(&f[i], ds->x + (size_t)at * CIFAR_PIXELS, lab + at, lut, buf,
                                 err);
            at += f[i].records;
        }
    }
    for (int i = 0; i < n_files; i++)
        if (f[i].fd >= 0 && close(f[i].fd) != 0 && rc == 0)
            rc = mg_fail(err, "%s: cannot close: %s", f[i].path, strerror(errno));
    free(f);
    free(buf);
    if (rc) {
        free(lab);
        mg_dataset_free(ds);
        return mg_file_one_line(err); /* a newline in a file's name shown as '?' */
    }
    if (labels)
        *labels = lab;
    else
        free(lab);
    return 0;
}
