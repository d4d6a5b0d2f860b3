/* IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw.
 *
 * A file is untrusted input: its header may promise any size. Nothing is allocated from the
 * header alone. A raw file's promise is checked against its size on disk before anything is
 * allocated; a gzip file's real size is known only once it is decompressed, so its data is read
 * in chunks into a buffer that grows as bytes actually arrive, and never inflated past the
 * promise and one byte (a small stream can hold terabytes of zeros). Every promised byte is read
 * whichever examples are kept, so a short or over-long file is an error in every case. Callers
 * that know the shape they want (splits.c) check the header first (mg_idx_read_header). Only
 * regular files are read: a FIFO would block in open(2). */
/* open, fstat, O_CLOEXEC: POSIX.1-2008, also under -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include "mpigan/idx.h"
#include "mpigan/files.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAX_NDIMS 4
/* Sizes are counts of examples and pixels; INT_MAX keeps every count an int. */
#define IDX_MAX_DIM 2147483647u
/* 4096 x 4096 pixels per example: far above any image a GAN here trains on, and small enough
 * that n * dim (< 2^55) cannot overflow 64 bits. */
#define IDX_MAX_EXAMPLE (1u << 24)
/* Bytes decompressed per gzread, and zlib's input buffer. */
#define IDX_CHUNK (1u << 20)
#define IDX_GZ_BUFFER (1u << 18)

/* An open IDX file: data_bytes is the size on disk less the header for a raw file, or -1 when
 * the size is not known before reading (gzip). */
typedef struct {
    const char *path;
    gzFile gz;
    int64_t file_bytes;
    int64_t data_bytes;
} idx_file;

static int idx_open(idx_file *f, const char *path, mg_error *err)
{
    f->path = path;
    f->gz = NULL;
    f->file_bytes = -1;
    f->data_bytes = -1;
    /* A regular file only: a FIFO would block open(2), and its size could not be checked. */
    int fd;
    if (mg_file_open_input(&fd, path, err))
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mg_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    f->file_bytes = (int64_t)st.st_size;
    /* gzdopen reads gzip or raw data, decided by the first bytes; it owns fd from here. */
    errno = 0;
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        int e = errno ? errno : ENOMEM;
        close(fd);
        return mg_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    if (gzbuffer(f->gz, IDX_GZ_BUFFER) != 0) {
        gzclose(f->gz);
        f->gz = NULL;
        return mg_fail(err, "%s: cannot set the gzip buffer size", path);
    }
    return 0;
}

/* Closes f; an error here matters only when nothing else went wrong (rc == 0). */
static int idx_close(idx_file *f, int rc, mg_error *err)
{
    if (!f->gz)
        return rc;
    int z = gzclose(f->gz);
    f->gz = NULL;
    if (rc == 0 && z != Z_OK)
        return mg_fail(err, "%s: cannot close (zlib error %d)", f->path, z);
    return rc;
}

/* After a short or failed gzread: 0 if that was a clean end of file, else the error. A gzip
 * stream cut short is Z_BUF_ERROR ("unexpected end of file"), a corrupt one Z_DATA_ERROR. */
static int idx_check(const idx_file *f, int saved_errno, mg_error *err)
{
    int code;
    const char *msg = gzerror(f->gz, &code);
    if (code == Z_OK)
        return 0;
    if (code == Z_ERRNO)
        return mg_fail(err, "%s: cannot read: %s", f->path, strerror(saved_errno));
    /* zlib prefixes the name it was opened with, "<fd:3>: ", which means nothing to a user. */
    const char *rest = strstr(msg, ">: ");
    if (strncmp(msg, "<fd:", 4) == 0 && rest)
        msg = rest + 3;
    return mg_fail(err, "%s: corrupt gzip data: %s", f->path, msg);
}

/* Reads up to n bytes; *got is how many arrived before the end of the file. */
static int idx_read(idx_file *f, void *buf, size_t n, size_t *got, mg_error *err)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < IDX_CHUNK ? n - *got : IDX_CHUNK;
        errno = 0;
        int r = gzread(f->gz, (unsigned char *)buf + *got, (unsigned)want);
        int e = errno;
        if (r < 0)
            return idx_check(f, e, err) ? -1 : mg_fail(err, "%s: cannot read", f->path);
        if (r == 0)
            return idx_check(f, e, err);
        *got += (size_t)r;
    }
    return 0;
}

/* Reads and checks the header: magic, type, number of dimensions, each size in 1..2^31-1.
 * expect_ndims only fills in the magic shown in the message for a non-IDX file. */
static int idx_read_header(idx_file *f, mg_idx_header *hdr, int expect_ndims, mg_error *err)
{
    const char *path = f->path;
    unsigned char magic[4], sizes[4 * IDX_MAX_NDIMS];
    size_t got;
    memset(hdr, 0, sizeof *hdr);
    if (idx_read(f, magic, 4, &got, err))
        return -1;
    if (got < 4)
        return mg_fail(err, "%s: not an IDX file (shorter than its 4-byte magic)", path);
    if (magic[0] != 0 || magic[1] != 0)
        return mg_fail(err,
                       "%s: not an IDX file (magic bytes 00 00 08 %02x expected, got %02x %02x "
                       "%02x %02x)",
                       path, expect_ndims, magic[0], magic[1], magic[2], magic[3]);
    if (magic[2] != IDX_TYPE_UBYTE)
        return mg_fail(err, "%s: IDX element type 0x%02x is not supported (only unsigned bytes, "
                       "0x08)", path, magic[2]);
    int ndims = magic[3];
    if (ndims < 1 || ndims > IDX_MAX_NDIMS)
        return mg_fail(err, "%s: IDX files with %d dimensions are not supported", path, ndims);
    if (idx_read(f, sizes, 4 * (size_t)ndims, &got, err))
        return -1;
    if (got < 4 * (size_t)ndims)
        return mg_fail(err, "%s: truncated header (%zu of %d dimension sizes present)", path,
                       got / 4, ndims);
    hdr->type = magic[2];
    hdr->ndims = ndims;
    /* Dimensions are numbered from 0, as in the format's description ("size in dimension 0"). */
    for (int d = 0; d < ndims; d++) {
        const unsigned char *b = sizes + 4 * d;
        uint32_t s = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (s == 0)
            return mg_fail(err, "%s: dimension %d is 0", path, d);
        if (s > IDX_MAX_DIM)
            return mg_fail(err, "%s: dimension %d is %" PRIu32 ", more than the limit %u", path,
                           d, s, IDX_MAX_DIM);
        hdr->dims[d] = s;
    }
    if (f->file_bytes >= 0 && gzdirect(f->gz))
        f->data_bytes = f->file_bytes - 4 - 4 * ndims;
    return 0;
}

/* Where kept bytes go: labels as bytes, images as mg_real scaled to [0, 1]. The buffer grows
 * (doubling, never past `limit` values) only as data arrives. */
typedef struct {
    void *buf;     /* (cap) uint8_t or mg_real */
    size_t len, cap, limit;
    int to_real;
    mg_real lut[256]; /* b / 255, correctly rounded in mg_real */
} idx_sink;

static int sink_reserve(idx_sink *s, size_t want, const char *path, mg_error *err)
{
    if (want <= s->cap)
        return 0;
    size_t cap = s->cap < IDX_CHUNK ? IDX_CHUNK : s->cap > s->limit / 2 ? s->limit : 2 * s->cap;
    cap = cap < want ? want : cap;
    cap = cap > s->limit ? s->limit : cap;
    size_t esz = s->to_real ? sizeof(mg_real) : 1;
    void *p = realloc(s->buf, cap * esz);
    if (!p)
        return mg_fail(err, "%s: out of memory (%zu bytes)", path, cap * esz);
    s->buf = p;
    s->cap = cap;
    return 0;
}

static int sink_put(idx_sink *s, const unsigned char *bytes, size_t n, const char *path,
                    mg_error *err)
{
    if (sink_reserve(s, s->len + n, path, err))
        return -1;
    if (s->to_real) {
        mg_real *x = (mg_real *)s->buf + s->len;
        for (size_t i = 0; i < n; i++)
            x[i] = s->lut[bytes[i]];
    } else {
        memcpy((unsigned char *)s->buf + s->len, bytes, n);
    }
    s->len += n;
    return 0;
}

/* Reads the data section of n examples of `per` bytes, keeping examples [first, first + count)
 * in s, and checks that the file holds exactly n * per bytes. */
static int idx_read_body(idx_file *f, uint32_t n, uint64_t per, uint64_t first, uint64_t count,
                         idx_sink *s, mg_error *err)
{
    const char *path = f->path;
    uint64_t promised = (uint64_t)n * per; /* < 2^55: n < 2^31, per <= 2^24 */
    uint64_t keep_lo = first * per, keep_hi = (first + count) * per;
    size_t esz = s->to_real ? sizeof(mg_real) : 1;
    if (keep_hi - keep_lo > SIZE_MAX / esz)
        return mg_fail(err, "%s: %" PRIu64 " values do not fit in memory", path,
                       keep_hi - keep_lo);
    s->limit = (size_t)(keep_hi - keep_lo);

    if (f->data_bytes >= 0) {
        /* A raw file: its size settles both checks before anything is allocated. */
        if ((uint64_t)f->data_bytes < promised)
            return mg_fail(err, "%s: truncated: the header promises %" PRIu32 " x %" PRIu64
                           " bytes (%" PRIu64 "), the file holds %" PRId64,
                           path, n, per, promised, f->data_bytes);
        if ((uint64_t)f->data_bytes > promised)
            return mg_fail(err, "%s: %" PRIu64 " bytes after the %" PRIu64
                           " the header promises", path, (uint64_t)f->data_bytes - promised,
                           promised);
        if (sink_reserve(s, s->limit, path, err))
            return -1;
    }

    unsigned char *chunk = malloc(IDX_CHUNK);
    if (!chunk)
        return mg_fail(err, "%s: out of memory (%u bytes)", path, IDX_CHUNK);
    /* A gzip stream is inflated no further than the promise and one byte: a small file can hold
     * terabytes of zeros after a header that promised a few. */
    uint64_t pos = 0; /* data bytes read so far, including the one past the promise */
    int rc = 0;
    while (pos <= promised) {
        size_t got, want = promised + 1 - pos < IDX_CHUNK ? (size_t)(promised + 1 - pos)
                                                          : IDX_CHUNK;
        if ((rc = idx_read(f, chunk, want, &got, err)))
            break;
        if (got == 0)
            break;
        /* Keep the part of [pos, pos + got) inside [keep_lo, keep_hi). */
        uint64_t lo = pos > keep_lo ? pos : keep_lo;
        uint64_t hi = pos + got < keep_hi ? pos + got : keep_hi;
        if (lo < hi && (rc = sink_put(s, chunk + (lo - pos), (size_t)(hi - lo), path, err)))
            break;
        pos += got;
    }
    free(chunk);
    if (rc)
        return rc;
    if (pos < promised)
        return mg_fail(err, "%s: truncated: the header promises %" PRIu32 " x %" PRIu64
                       " bytes (%" PRIu64 "), the file holds %" PRIu64,
                       path, n, per, promised, pos);
    if (pos > promised) /* a raw file's excess was counted from its size above */
        return mg_fail(err, "%s: more data after the %" PRIu64 " bytes the header promises",
                       path, promised);
    return 0;
}

int mg_idx_read_header(mg_idx_header *hdr, const char *path, mg_error *err)
{
    idx_file f;
    if (idx_open(&f, path, err))
        return mg_file_one_line(err);
    int rc = idx_read_header(&f, hdr, 3, err);
    return idx_close(&f, rc, err) ? mg_file_one_line(err) : 0;
}

static int read_images(mg_dataset *ds, const char *path, int first, int count, int to_real,
                       mg_error *err)
{
    memset(ds, 0, sizeof *ds);
    idx_file f;
    mg_idx_header h;
    idx_sink s = {.to_real = to_real};
    if (idx_open(&f, path, err))
        return mg_file_one_line(err);
    int rc = idx_read_header(&f, &h, 3, err);
    if (rc)
        goto out;
    if (h.ndims != 2 && h.ndims != 3) {
        rc = mg_fail(err, "%s: an image file needs 2 or 3 dimensions, this one has %d", path,
                     h.ndims);
        goto out;
    }
    /* (n, rows, cols) is one channel of rows x cols; (n, dim) one row of dim. */
    uint32_t n = h.dims[0];
    uint32_t height = h.ndims == 3 ? h.dims[1] : 1;
    uint32_t width = h.ndims == 3 ? h.dims[2] : h.dims[1];
    uint64_t per = (uint64_t)height * width;
    if (per > IDX_MAX_EXAMPLE) {
        rc = mg_fail(err, "%s: examples of %" PRIu64 " bytes, more than the limit %u", path, per,
                     IDX_MAX_EXAMPLE);
        goto out;
    }
    int64_t end = count < 0 ? (int64_t)n : (int64_t)first + count;
    if (first < 0 || (int64_t)first > (int64_t)n || end > (int64_t)n) {
        if (count < 0)
            rc = mg_fail(err, "%s: examples [%d, end) asked for, the file holds %" PRIu32, path,
                         first, n);
        else
            rc = mg_fail(err, "%s: examples [%d, %" PRId64 ") asked for, the file holds %" PRIu32,
                         path, first, end, n);
        goto out;
    }
    for (int b = 0; b < 256; b++)
        s.lut[b] = (mg_real)b / (mg_real)255;
    if ((rc = idx_read_body(&f, n, per, (uint64_t)first, (uint64_t)(end - first), &s, err)))
        goto out;
    if (!s.buf && !(s.buf = calloc(1, sizeof(mg_real)))) { /* an empty selection */
        rc = mg_fail(err, "%s: out of memory", path);
        goto out;
    }
    ds->n = (int)(end - first);
    ds->channels = 1;
    ds->height = (int)height;
    ds->width = (int)width;
    ds->dim = (size_t)per;
    if (to_real)
        ds->x = s.buf;
    else
        ds->bytes = s.buf;
    s.buf = NULL;
out:
    free(s.buf);
    /* A message names the file as given: a newline in its name is shown as '?'. */
    return idx_close(&f, rc, err) ? mg_file_one_line(err) : 0;
}

int mg_idx_read_images(mg_dataset *ds, const char *path, int first, int count, mg_error *err)
{
    return read_images(ds, path, first, count, 1, err);
}

int mg_idx_read_image_bytes(mg_dataset *ds, const char *path, int first, int count, mg_error *err)
{
    return read_images(ds, path, first, count, 0, err);
}

int mg_idx_read_labels(uint8_t **labels, int *n, const char *path, mg_error *err)
{
    *labels = NULL;
    *n = 0;
    idx_file f;
    mg_idx_header h;
    idx_sink s = {.to_real = 0};
    if (idx_open(&f, path, err))
        return mg_file_one_line(err);
    int rc = idx_read_header(&f, &h, 1, err);
    if (rc)
        goto out;
    if (h.ndims != 1) {
        rc = mg_fail(err, "%s: a label file needs 1 dimension, this one has %d", path, h.ndims);
        goto out;
    }
    if ((rc = idx_read_body(&f, h.dims[0], 1, 0, h.dims[0], &s, err)))
        goto out;
    *labels = s.buf;
    *n = (int)h.dims[0];
    s.buf = NULL;
out:
    free(s.buf);
    rc = idx_close(&f, rc, err);
    if (rc && *labels) {
        free(*labels);
        *labels = NULL;
        *n = 0;
    }
    return rc ? mg_file_one_line(err) : 0;
}
