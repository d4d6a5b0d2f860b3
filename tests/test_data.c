/* Tests of the IDX reader: files written here, raw and gzip, read back exactly; every bad file
 * gives its exact one-line message; and, when present, the real Fashion-MNIST files. */
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/idx.h"
#include "mpigan/splits.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* An IDX file in memory: 4-byte magic, big-endian sizes, then data. */
typedef struct {
    unsigned char *bytes;
    size_t len;
} blob;

static void blob_free(blob *b)
{
    free(b->bytes);
    b->bytes = NULL;
    b->len = 0;
}

/* Header of the given type and dims, then ndata bytes of pattern(i). nsizes < ndims writes a
 * truncated header. */
static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 37 + 11) % 256);
}

static blob make_idx_raw(int type, int ndims, int nsizes, const uint32_t *dims, size_t ndata)
{
    blob b;
    b.len = 4 + 4 * (size_t)nsizes + ndata;
    b.bytes = mg_xmalloc(b.len);
    unsigned char *p = b.bytes;
    *p++ = 0;
    *p++ = 0;
    *p++ = (unsigned char)type;
    *p++ = (unsigned char)ndims;
    for (int d = 0; d < nsizes; d++) {
        *p++ = (unsigned char)(dims[d] >> 24);
        *p++ = (unsigned char)(dims[d] >> 16);
        *p++ = (unsigned char)(dims[d] >> 8);
        *p++ = (unsigned char)dims[d];
    }
    for (size_t i = 0; i < ndata; i++)
        *p++ = pattern(i);
    return b;
}

static blob make_idx(int ndims, const uint32_t *dims, size_t ndata)
{
    return make_idx_raw(0x08, ndims, ndims, dims, ndata);
}

static size_t product(int ndims, const uint32_t *dims)
{
    size_t n = 1;
    for (int d = 0; d < ndims; d++)
        n *= dims[d];
    return n;
}

static const char *write_raw(const char *name, const blob *b)
{
    return mg_test_write_file(name, b->bytes, b->len);
}

/* Writes b gzip-compressed at the given level (0: stored blocks, no compression). */
static const char *write_gz(const char *name, const blob *b, int level)
{
    static char paths[8][4200];
    static int slot;
    char *path = paths[slot++ % 8];
    char mode[8];
    snprintf(path, 4200, "%s/%s", mg_test_tmpdir(), name);
    snprintf(mode, sizeof mode, "wb%d", level);
    gzFile gz = gzopen(path, mode);
    if (!gz) {
        perror(path);
        exit(2);
    }
    if (b->len && gzwrite(gz, b->bytes, (unsigned)b->len) != (int)b->len) {
        fprintf(stderr, "%s: gzwrite failed\n", path);
        exit(2);
    }
    if (gzclose(gz) != Z_OK) {
        fprintf(stderr, "%s: gzclose failed\n", path);
        exit(2);
    }
    return path;
}

static long file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        exit(2);
    }
    return (long)st.st_size;
}

/* Flips every bit of n bytes at offset. */
static void flip_bytes(const char *path, long offset, int n)
{
    FILE *f = fopen(path, "r+b");
    unsigned char buf[64];
    if (!f || n > 64 || fseek(f, offset, SEEK_SET) != 0 ||
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    for (int i = 0; i < n; i++)
        buf[i] ^= 0xff;
    if (fseek(f, offset, SEEK_SET) != 0 || fwrite(buf, 1, (size_t)n, f) != (size_t)n ||
        fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* Cuts a file to its first len bytes. */
static void cut_file(const char *path, long len)
{
    if (truncate(path, len) != 0) {
        perror(path);
        exit(2);
    }
}

/* Byte b as the reader stores it: b / 255 rounded once to mg_real, so comparisons are exact. */
static mg_real scaled(unsigned char b)
{
    return (mg_real)b / (mg_real)255;
}

/* Asserts that ds holds examples [first, first + n) of a file written by make_idx, every value
 * exact. */
static void check_images(const mg_dataset *ds, int first, int n, int height, int width)
{
    CU_ASSERT_EQUAL(ds->n, n);
    CU_ASSERT_EQUAL(ds->channels, 1);
    CU_ASSERT_EQUAL(ds->height, height);
    CU_ASSERT_EQUAL(ds->width, width);
    CU_ASSERT_EQUAL(ds->dim, (size_t)height * width);
    if (ds->n != n || ds->dim != (size_t)height * width)
        return;
    size_t bad = 0;
    for (size_t i = 0; i < (size_t)n * ds->dim; i++)
        bad += ds->x[i] != scaled(pattern((size_t)first * ds->dim + i));
    if (bad)
        fprintf(stderr, "\n  %zu of %zu values differ\n", bad, (size_t)n * ds->dim);
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_data_raw(void)
{
    const uint32_t dims[3] = {5, 3, 4};
    blob b = make_idx(3, dims, product(3, dims));
    const char *path = write_raw("images.idx", &b);
    mg_dataset ds;
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, path, 0, -1, &err), 0);
    check_images(&ds, 0, 5, 3, 4);
    /* A few positions by hand: byte 0 is 11, byte 13 (example 1, row 0, col 1) is 236. */
    CU_ASSERT_EQUAL(ds.x[0], (mg_real)11 / 255);
    CU_ASSERT_EQUAL(ds.x[1 * 12 + 0 * 4 + 1], (mg_real)236 / 255);
    mg_dataset_free(&ds);
    CU_ASSERT_PTR_NULL(ds.x);

    mg_idx_header h;
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_header(&h, path, &err), 0);
    CU_ASSERT_EQUAL(h.type, 0x08);
    CU_ASSERT_EQUAL(h.ndims, 3);
    CU_ASSERT_EQUAL(h.dims[0], 5);
    CU_ASSERT_EQUAL(h.dims[1], 3);
    CU_ASSERT_EQUAL(h.dims[2], 4);
    CU_ASSERT_EQUAL(h.dims[3], 0);
    blob_free(&b);

    /* Two dimensions (n, dim): each example is one row of dim pixels. */
    const uint32_t flat[2] = {4, 7};
    b = make_idx(2, flat, 28);
    path = write_raw("flat.idx", &b);
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, path, 0, -1, &err), 0);
    check_images(&ds, 0, 4, 1, 7);
    mg_dataset_free(&ds);
    blob_free(&b);

    /* Every byte value once, so that 0 and 255 map to exactly 0 and 1. */
    const uint32_t all[3] = {1, 16, 16};
    b = make_idx(3, all, 256);
    for (int i = 0; i < 256; i++)
        b.bytes[16 + i] = (unsigned char)i;
    path = write_raw("all.idx", &b);
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, path, 0, 1, &err), 0);
    CU_ASSERT_EQUAL(ds.x[0], 0);
    CU_ASSERT_EQUAL(ds.x[255], 1);
    for (int i = 0; i < 256; i++)
        CU_ASSERT_EQUAL(ds.x[i], scaled((unsigned char)i));
    mg_dataset_free(&ds);
    blob_free(&b);
}

static void test_data_gz(void)
{
    const uint32_t dims[3] = {5, 3, 4};
    blob b = make_idx(3, dims, product(3, dims));
    mg_dataset ds;
    mg_error err = {""};
    for (int level = 0; level <= 9; level += 9) {
        const char *path = write_gz(level ? "images9.gz" : "images0.gz", &b, level);
        CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, path, 0, -1, &err), 0);
        check_images(&ds, 0, 5, 3, 4);
        mg_dataset_free(&ds);
        mg_idx_header h;
        CU_ASSERT_EQUAL_FATAL(mg_idx_read_header(&h, path, &err), 0);
        CU_ASSERT_EQUAL(h.ndims, 3);
        CU_ASSERT_EQUAL(h.dims[0], 5);
        CU_ASSERT_EQUAL(h.dims[2], 4);
    }
    blob_free(&b);

    /* Several 1 MiB chunks, so the output grows while data arrives and kept ranges straddle
     * chunk boundaries: 3000 examples of 28 x 28 (2.35 MB). */
    const uint32_t big[3] = {3000, 28, 28};
    b = make_idx(3, big, product(3, big));
    const char *gz = write_gz("big.gz", &b, 6);
    const char *raw = write_raw("big.idx", &b);
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, gz, 0, -1, &err), 0);
    check_images(&ds, 0, 3000, 28, 28);
    mg_dataset_free(&ds);
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, gz, 1300, 1400, &err), 0);
    check_images(&ds, 1300, 1400, 28, 28);
    mg_dataset_free(&ds);
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, raw, 1337, 1000, &err), 0);
    check_images(&ds, 1337, 1000, 28, 28);
    mg_dataset_free(&ds);
    blob_free(&b);
}

static void test_data_selection(void)
{
    const uint32_t dims[3] = {10, 2, 3};
    blob b = make_idx(3, dims, product(3, dims));
    const char *paths[2] = {write_raw("sel.idx", &b), write_gz("sel.gz", &b, 6)};
    mg_dataset ds;
    mg_error err = {""};
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, paths[k], 3, 4, &err), 0);
        check_images(&ds, 3, 4, 2, 3);
        mg_dataset_free(&ds);
        CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, paths[k], 7, -1, &err), 0); /* to the end */
        check_images(&ds, 7, 3, 2, 3);
        mg_dataset_free(&ds);
        CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, paths[k], 9, 1, &err), 0); /* the last */
        check_images(&ds, 9, 1, 2, 3);
        mg_dataset_free(&ds);
        /* An empty selection is not an error: zero examples, x still a valid pointer. */
        CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, paths[k], 10, -1, &err), 0);
        CU_ASSERT_EQUAL(ds.n, 0);
        CU_ASSERT_PTR_NOT_NULL(ds.x);
        mg_dataset_free(&ds);
    }
    blob_free(&b);
}

static void test_data_labels(void)
{
    const uint32_t n = 300;
    blob b = make_idx(1, &n, n);
    const char *paths[2] = {write_raw("labels.idx", &b), write_gz("labels.gz", &b, 6)};
    mg_error err = {""};
    for (int k = 0; k < 2; k++) {
        uint8_t *labels;
        int nl;
        CU_ASSERT_EQUAL_FATAL(mg_idx_read_labels(&labels, &nl, paths[k], &err), 0);
        CU_ASSERT_EQUAL(nl, 300);
        CU_ASSERT_EQUAL(memcmp(labels, b.bytes + 8, n), 0);
        free(labels);
    }
    blob_free(&b);
}

/* The same file read as values and as bytes: the same rows, the same means; bytes are found
 * in values only when every value is exactly a byte's; widening gives the values back. */
static void test_data_bytes(void)
{
    const uint32_t dims[3] = {300, 4, 5};
    blob b = make_idx(3, dims, product(3, dims));
    const char *path = write_gz("bytes.gz", &b, 6);
    mg_dataset v, by;
    mg_error err;
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&v, path, 10, 200, &err), 0);
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_image_bytes(&by, path, 10, 200, &err), 0);
    CU_ASSERT(v.bytes == NULL && v.x != NULL && by.x == NULL && by.bytes != NULL);
    CU_ASSERT_EQUAL(by.n, 200);
    CU_ASSERT_EQUAL(by.dim, 20);
    mg_real row[20];
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        mg_dataset_row(&by, (size_t)i, row);
        bad += memcmp(row, v.x + (size_t)i * 20, sizeof row) != 0;
        bad += by.bytes[(size_t)i * 20 + 3] != pattern((size_t)(i + 10) * 20 + 3);
    }
    CU_ASSERT_EQUAL(bad, 0);
    double m1[20], m2[20];
    mg_dataset_pixel_mean(&v, m1);
    mg_dataset_pixel_mean(&by, m2);
    CU_ASSERT(memcmp(m1, m2, sizeof m1) == 0);
    CU_ASSERT(mg_values_are_bytes(v.x, 200 * 20));
    v.x[77] += (mg_real)1e-3;
    CU_ASSERT(!mg_values_are_bytes(v.x, 200 * 20));
    v.x[77] = -mg_byte_value(3);
    CU_ASSERT(!mg_values_are_bytes(v.x, 200 * 20));
    v.x[77] = NAN;
    CU_ASSERT(!mg_values_are_bytes(v.x, 200 * 20));
    CU_ASSERT_EQUAL_FATAL(mg_dataset_widen(&by, &err), 0);
    CU_ASSERT(by.bytes == NULL && by.x != NULL);
    CU_ASSERT(memcmp(by.x, v.x, 77 * sizeof *v.x) == 0);
    mg_dataset_free(&v);
    mg_dataset_free(&by);
    blob_free(&b);
}

static void test_data_pixel_mean(void)
{
    mg_dataset ds;
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_dataset_alloc(&ds, 3, 2, 2, 2, &err), 0);
    CU_ASSERT_EQUAL(ds.n, 3);
    CU_ASSERT_EQUAL(ds.dim, 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ds.x);
    for (size_t i = 0; i < 3 * ds.dim; i++)
        CU_ASSERT_EQUAL(ds.x[i], 0); /* zeroed */
    /* x[i][j] = (i + 1) * j / 16, so the mean of pixel j is 2 j / 16: sums of values on a
     * 1/16 grid are exact in double, and the division by 3 is rounded once. */
    for (int i = 0; i < 3; i++)
        for (size_t j = 0; j < ds.dim; j++)
            ds.x[(size_t)i * ds.dim + j] = (mg_real)((i + 1) * (double)j / 16);
    double mean[8];
    mg_dataset_pixel_mean(&ds, mean);
    for (size_t j = 0; j < 8; j++)
        MG_ASSERT_CLOSE(mean[j], 2.0 * j / 16, 1e-15);
    mg_dataset_free(&ds);

    /* Over a file: the mean of pixel j is the mean of its bytes / 255, summed here in integers;
     * the reader's sum of n values in double is off by at most n ulps of the total. */
    const uint32_t dims[3] = {1000, 4, 5};
    blob b = make_idx(3, dims, product(3, dims));
    const char *path = write_gz("mean.gz", &b, 6);
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&ds, path, 0, -1, &err), 0);
    double m[20];
    mg_dataset_pixel_mean(&ds, m);
    for (size_t j = 0; j < 20; j++) {
        long sum = 0;
        for (size_t i = 0; i < 1000; i++)
            sum += pattern(i * 20 + j);
        /* Each stored value carries a relative rounding error of half an mg_real epsilon. */
        double tol = (sizeof(mg_real) == 4 ? 0x1p-24 : 0x1p-53) + 1000 * 0x1p-52;
        MG_ASSERT_CLOSE(m[j], (double)sum / 255 / 1000, tol);
    }
    mg_dataset_free(&ds);
    blob_free(&b);

    /* A dataset of no examples is allowed; its mean is 0. */
    CU_ASSERT_EQUAL_FATAL(mg_dataset_alloc(&ds, 0, 1, 2, 2, &err), 0);
    mg_dataset_pixel_mean(&ds, m);
    for (size_t j = 0; j < 4; j++)
        CU_ASSERT_EQUAL(m[j], 0);
    mg_dataset_free(&ds);
}

static void test_data_alloc_errors(void)
{
    mg_dataset ds;
    mg_error err = {""};
    CU_ASSERT_EQUAL(mg_dataset_alloc(&ds, -1, 1, 28, 28, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "mg_dataset_alloc: bad shape (-1, 1, 28, 28)");
    CU_ASSERT_PTR_NULL(ds.x);
    CU_ASSERT_EQUAL(mg_dataset_alloc(&ds, 10, 1, 0, 28, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "mg_dataset_alloc: bad shape (10, 1, 0, 28)");
    mg_dataset_free(&ds); /* harmless after a failure */
    mg_dataset_free(NULL);
}

/* Every bad file gives its own exact message, and leaves no dataset or labels behind. */
static void test_data_errors(void)
{
    mg_dataset ds;
    mg_idx_header h;
    uint8_t *labels;
    int nl;
    mg_error err = {""};
    int rc;
    const uint32_t dims[3] = {5, 3, 4};

    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no-such-file.gz", mg_test_tmpdir());
    rc = mg_idx_read_images(&ds, missing, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, missing, "cannot open: No such file or directory");
    CU_ASSERT_PTR_NULL(ds.x);
    CU_ASSERT_EQUAL(ds.n, 0);
    rc = mg_idx_read_images(&ds, mg_test_tmpdir(), 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, mg_test_tmpdir(), "cannot open: Is a directory");

    /* A PNG is not an IDX file; the magic expected depends on what is being read. */
    const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const char *path = mg_test_write_file("image.png", png, sizeof png);
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, path,
                 "not an IDX file (magic bytes 00 00 08 03 expected, got 89 50 4e 47)");
    rc = mg_idx_read_labels(&labels, &nl, path, &err);
    MG_ASSERT_FAILS(rc, err, path,
                 "not an IDX file (magic bytes 00 00 08 01 expected, got 89 50 4e 47)");
    CU_ASSERT_PTR_NULL(labels);
    CU_ASSERT_EQUAL(nl, 0);
    rc = mg_idx_read_header(&h, path, &err);
    MG_ASSERT_FAILS(rc, err, path,
                 "not an IDX file (magic bytes 00 00 08 03 expected, got 89 50 4e 47)");

    path = mg_test_write_file("short", "\0\0\x08", 3);
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, path, "not an IDX file (shorter than its 4-byte magic)");
    path = mg_test_write_file("empty", "", 0);
    rc = mg_idx_read_header(&h, path, &err);
    MG_ASSERT_FAILS(rc, err, path, "not an IDX file (shorter than its 4-byte magic)");

    /* 0x0d is float, valid IDX but not ours. */
    blob b = make_idx_raw(0x0d, 3, 3, dims, 60);
    path = write_raw("float.idx", &b);
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, path,
                 "IDX element type 0x0d is not supported (only unsigned bytes, 0x08)");
    blob_free(&b);

    const uint32_t five[5] = {1, 1, 1, 1, 1};
    b = make_idx_raw(0x08, 5, 5, five, 1);
    path = write_raw("five.idx", &b);
    rc = mg_idx_read_header(&h, path, &err);
    MG_ASSERT_FAILS(rc, err, path, "IDX files with 5 dimensions are not supported");
    blob_free(&b);
    b = make_idx_raw(0x08, 0, 0, five, 1);
    path = write_raw("zero.idx", &b);
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, path, "IDX files with 0 dimensions are not supported");
    blob_free(&b);

    /* A label file read as images, an image file read as labels. */
    const uint32_t n5 = 5;
    b = make_idx(1, &n5, 5);
    path = write_raw("labels1.idx", &b);
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, path, "an image file needs 2 or 3 dimensions, this one has 1");
    blob_free(&b);
    b = make_idx(3, dims, 60);
    path = write_raw("images3.idx", &b);
    rc = mg_idx_read_labels(&labels, &nl, path, &err);
    MG_ASSERT_FAILS(rc, err, path, "a label file needs 1 dimension, this one has 3");
    CU_ASSERT_PTR_NULL(labels);
    blob_free(&b);

    /* Four dimensions announced, three sizes and half of the fourth present. */
    const uint32_t four[4] = {2, 2, 2, 2};
    b = make_idx_raw(0x08, 4, 4, four, 0);
    b.len -= 2;
    path = write_raw("header.idx", &b);
    rc = mg_idx_read_header(&h, path, &err);
    MG_ASSERT_FAILS(rc, err, path, "truncated header (3 of 4 dimension sizes present)");
    blob_free(&b);

    const uint32_t zero[3] = {5, 3, 0};
    b = make_idx(3, zero, 0);
    path = write_raw("zerodim.idx", &b);
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, path, "dimension 2 is 0");
    blob_free(&b);
    const uint32_t huge[3] = {5, 0xffffffffu, 4};
    b = make_idx(3, huge, 0);
    path = write_raw("hugedim.idx", &b);
    rc = mg_idx_read_header(&h, path, &err);
    MG_ASSERT_FAILS(rc, err, path, "dimension 1 is 4294967295, more than the limit 2147483647");
    blob_free(&b);
    const uint32_t wide[3] = {5, 5000, 5000};
    b = make_idx(3, wide, 0);
    path = write_raw("wide.idx", &b);
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, path, "examples of 25000000 bytes, more than the limit 16777216");
    blob_free(&b);

    /* One data byte short and 16 too many, raw and gzip, whichever examples are asked for. */
    b = make_idx(3, dims, 59);
    const char *raw = write_raw("short.idx", &b), *gz = write_gz("short.gz", &b, 6);
    rc = mg_idx_read_images(&ds, raw, 0, 1, &err);
    MG_ASSERT_FAILS(rc, err, raw,
                 "truncated: the header promises 5 x 12 bytes (60), the file holds 59");
    rc = mg_idx_read_images(&ds, gz, 0, 1, &err);
    MG_ASSERT_FAILS(rc, err, gz,
                 "truncated: the header promises 5 x 12 bytes (60), the file holds 59");
    CU_ASSERT_PTR_NULL(ds.x);
    blob_free(&b);
    b = make_idx(3, dims, 76);
    raw = write_raw("long.idx", &b);
    gz = write_gz("long.gz", &b, 6);
    rc = mg_idx_read_images(&ds, raw, 4, 1, &err);
    MG_ASSERT_FAILS(rc, err, raw, "16 bytes after the 60 the header promises");
    rc = mg_idx_read_images(&ds, gz, 4, 1, &err);
    /* A gzip stream is inflated no further than the promise and one byte (test_data_gz_bomb). */
    MG_ASSERT_FAILS(rc, err, gz, "more data after the 60 bytes the header promises");
    blob_free(&b);
    b = make_idx(1, &n5, 4);
    gz = write_gz("labels-short.gz", &b, 6);
    rc = mg_idx_read_labels(&labels, &nl, gz, &err);
    MG_ASSERT_FAILS(rc, err, gz, "truncated: the header promises 5 x 1 bytes (5), the file holds 4");
    CU_ASSERT_PTR_NULL(labels);
    blob_free(&b);
    b = make_idx(1, &n5, 6);
    raw = write_raw("labels-long.idx", &b);
    rc = mg_idx_read_labels(&labels, &nl, raw, &err);
    MG_ASSERT_FAILS(rc, err, raw, "1 bytes after the 5 the header promises");
    blob_free(&b);

    /* A header promising 2^31-1 examples of 4096 x 4096 (2^55 bytes) over 1000 real bytes: the
     * reader must find out without trying to allocate the promise (which the sanitizer or the
     * allocator would refuse loudly). */
    const uint32_t liar[3] = {2147483647u, 4096, 4096};
    b = make_idx(3, liar, 1000);
    raw = write_raw("liar.idx", &b);
    gz = write_gz("liar.gz", &b, 6);
    rc = mg_idx_read_images(&ds, raw, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, raw, "truncated: the header promises 2147483647 x 16777216 bytes "
                               "(36028797002186752), the file holds 1000");
    rc = mg_idx_read_images(&ds, gz, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, gz, "truncated: the header promises 2147483647 x 16777216 bytes "
                              "(36028797002186752), the file holds 1000");
    blob_free(&b);

    b = make_idx(3, dims, 60);
    raw = write_raw("good.idx", &b);
    rc = mg_idx_read_images(&ds, raw, 0, 7, &err);
    MG_ASSERT_FAILS(rc, err, raw, "examples [0, 7) asked for, the file holds 5");
    rc = mg_idx_read_images(&ds, raw, -1, 2, &err);
    MG_ASSERT_FAILS(rc, err, raw, "examples [-1, 1) asked for, the file holds 5");
    rc = mg_idx_read_images(&ds, raw, 6, -1, &err);
    MG_ASSERT_FAILS(rc, err, raw, "examples [6, end) asked for, the file holds 5");
    rc = mg_idx_read_images(&ds, raw, 2147483647, 1, &err);
    MG_ASSERT_FAILS(rc, err, raw, "examples [2147483647, 2147483648) asked for, the file holds 5");
    blob_free(&b);
}

/* Damaged gzip streams: zlib's own words follow "corrupt gzip data: ". */
static void test_data_gz_errors(void)
{
    mg_dataset ds;
    mg_error err = {""};
    int rc;
    const uint32_t dims[3] = {20, 10, 10};
    blob b = make_idx(3, dims, product(3, dims));

    /* Stored blocks (level 0) copy the data verbatim, so flipped bytes in the middle are data
     * bytes and only the CRC-32 at the end can notice: always "incorrect data check". */
    const char *gz = write_gz("stored.gz", &b, 0);
    flip_bytes(gz, file_size(gz) / 2, 4);
    rc = mg_idx_read_images(&ds, gz, 0, 1, &err);
    MG_ASSERT_FAILS(rc, err, gz, "corrupt gzip data: incorrect data check");
    CU_ASSERT_PTR_NULL(ds.x);

    /* Compressed: the flip breaks the Huffman-coded stream itself. Which of zlib's messages
     * results depends on the bits hit and on zlib's version, so only the prefix is pinned. */
    gz = write_gz("deflated.gz", &b, 9);
    flip_bytes(gz, file_size(gz) / 2, 8);
    rc = mg_idx_read_images(&ds, gz, 0, 1, &err);
    CU_ASSERT_EQUAL(rc, -1);
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s: corrupt gzip data: ", gz);
    printf("\n    flipped deflate stream: %s ", err.msg);
    CU_ASSERT_EQUAL(strncmp(err.msg, prefix, strlen(prefix)), 0);
    CU_ASSERT(strlen(err.msg) > strlen(prefix));

    /* A download cut short: the stream ends without its final block and trailer. */
    gz = write_gz("cut.gz", &b, 6);
    cut_file(gz, file_size(gz) / 2);
    rc = mg_idx_read_images(&ds, gz, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, gz, "corrupt gzip data: unexpected end of file");
    blob_free(&b);
}

/* The real Fashion-MNIST files, when installed. */
static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}


/* Issue 14, 7 and 6: a FIFO (or a device) is refused without blocking in open(2); a name with a
 * newline is shown on one line. */
static void test_data_not_regular(void)
{
    alarm(20); /* the reader used to block forever on the FIFO: fail, don't hang */
    const char *fifo = mg_test_path("fifo.idx.gz");
    CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
    mg_dataset ds;
    mg_idx_header h;
    uint8_t *labels;
    int n;
    mg_error err;
    int rc = mg_idx_read_images(&ds, fifo, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, fifo, "not a regular file");
    CU_ASSERT_PTR_NULL(ds.x);
    rc = mg_idx_read_image_bytes(&ds, fifo, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, fifo, "not a regular file");
    rc = mg_idx_read_header(&h, fifo, &err);
    MG_ASSERT_FAILS(rc, err, fifo, "not a regular file");
    rc = mg_idx_read_labels(&labels, &n, fifo, &err);
    MG_ASSERT_FAILS(rc, err, fifo, "not a regular file");
    CU_ASSERT_PTR_NULL(labels);
    rc = mg_idx_read_images(&ds, "/dev/zero", 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, "/dev/zero", "not a regular file");

    char path[4200], shown[4200];
    snprintf(path, sizeof path, "%s/a\nb.idx", mg_test_tmpdir());
    snprintf(shown, sizeof shown, "%s/a?b.idx", mg_test_tmpdir());
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, shown, "cannot open: No such file or directory");
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f && fwrite("\0\0\x08\x03\0\0", 1, 6, f) == 6 && fclose(f) == 0);
    rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    MG_ASSERT_FAILS(rc, err, shown, "truncated header (0 of 3 dimension sizes present)");
    rc = mg_idx_read_labels(&labels, &n, path, &err);
    MG_ASSERT_FAILS(rc, err, shown, "truncated header (0 of 3 dimension sizes present)");
    alarm(0);
}

/* One gzip member holding n bytes (deflate at level 9). Members concatenate into one stream for
 * gzread, so a run of identical members writes gigabytes of zeros in milliseconds: one deflate
 * stream of 1.6 GB takes 17 s to compress here. */
static void write_member(FILE *out, const void *data, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    CU_ASSERT_FATAL(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    unsigned char buf[1 << 16];
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    int zrc;
    do {
        z.next_out = buf;
        z.avail_out = sizeof buf;
        zrc = deflate(&z, Z_FINISH);
        CU_ASSERT_FATAL(fwrite(buf, 1, sizeof buf - z.avail_out, out) == sizeof buf - z.avail_out);
    } while (zrc == Z_OK);
    CU_ASSERT_FATAL(zrc == Z_STREAM_END);
    deflateEnd(&z);
}

/* An IDX header with dims, then `mib` MiB of zeros: one member of the header, then one member of
 * 1 MiB of zeros written mib times. */
static const char *write_bomb(const char *name, int ndims, const uint32_t *dims, size_t mib)
{
    const char *path = mg_test_path(name);
    FILE *out = fopen(path, "wb");
    CU_ASSERT_FATAL(out != NULL);
    blob head = make_idx(ndims, dims, 0);
    write_member(out, head.bytes, head.len);
    blob_free(&head);
    char *member = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&member, &len);
    void *zeros = calloc(1, 1 << 20);
    CU_ASSERT_FATAL(mem && zeros);
    write_member(mem, zeros, 1 << 20);
    CU_ASSERT_FATAL(fclose(mem) == 0);
    for (size_t i = 0; i < mib; i++)
        CU_ASSERT_FATAL(fwrite(member, 1, len, out) == len);
    CU_ASSERT_FATAL(fclose(out) == 0);
    free(zeros);
    free(member);
    return path;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Issue 14, 8: a 1.6 MB gzip file whose header promises 100 x 4096 x 4096 bytes (and whose stream
 * holds them) reached 2.9 GB before the shape check. Its header is now checked against the
 * generator first; and a stream is never inflated past its header's promise. */
static void test_data_gz_bomb(void)
{
    const uint32_t big[3] = {100, 4096, 4096};
    const char *bomb = write_bomb("bomb.gz", 3, big, 1600); /* 1600 MiB: exactly the promise */
    struct stat st;
    CU_ASSERT_FATAL(stat(bomb, &st) == 0);
    char yaml[8400];
    snprintf(yaml, sizeof yaml,
             "data: {train_images: %s, train_count: 90, valid_count: 10}\n"
             "generator: {layers: [{type: relu, units: 1200}, {type: sigmoid, units: 784}]}\n"
             "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
             bomb);
    mg_config cfg;
    mg_error err;
    CU_ASSERT_FATAL(mg_config_parse(&cfg, yaml, "bomb.yaml", NULL, 0, &err) == 0);
    mg_dataset ds;
    const long rss0 = max_rss_kb();
    double t0 = now_s();
    int rc = mg_split_read_train(&ds, &cfg, &err);
    double s = now_s() - t0;
    const long grew = max_rss_kb() - rss0;
    MG_ASSERT_FAILS(rc, err, bomb,
                    "generator.layers.1.units is 784 but the data has 16777216 values per "
                    "example (1x4096x4096)");
    printf("\n    %lld-byte file promising 1677721600 bytes: refused in %.4f s, peak RSS grew "
           "%ld kB\n",
           (long long)st.st_size, s, grew);
    CU_ASSERT(grew < 100 * 1024);
    CU_ASSERT(s < 1.0);
    rc = mg_split_read(&ds, &cfg, MG_SPLIT_VALID, 0, &err);
    MG_ASSERT_FAILS(rc, err, bomb,
                    "generator.layers.1.units is 784 but the data has 16777216 values per "
                    "example (1x4096x4096)");
    char set[4300];
    snprintf(set, sizeof set, "data.test_images=%s", bomb);
    const char *sets[] = {set};
    CU_ASSERT_FATAL(mg_config_parse(&cfg, yaml, "bomb.yaml", sets, 1, &err) == 0);
    rc = mg_split_read(&ds, &cfg, MG_SPLIT_TEST, 0, &err);
    MG_ASSERT_FAILS(rc, err, bomb,
                    "generator.layers.1.units is 784 but the data has 16777216 values per "
                    "example (1x4096x4096)");

    /* A header promising one 28 x 28 example before 4 GiB of zeros: the reader stops at the
     * 785th byte instead of inflating (and counting) all of them. */
    const uint32_t one[3] = {1, 28, 28};
    const char *tail = write_bomb("tail.gz", 3, one, 4096);
    t0 = now_s();
    rc = mg_idx_read_images(&ds, tail, 0, -1, &err);
    s = now_s() - t0;
    MG_ASSERT_FAILS(rc, err, tail, "more data after the 784 bytes the header promises");
    printf("    a promise of 784 bytes before 4 GiB of zeros: refused in %.4f s\n", s);
    CU_ASSERT(s < 0.5);
    uint8_t *labels;
    int n;
    const uint32_t five = 5;
    tail = write_bomb("labels-tail.gz", 1, &five, 1);
    rc = mg_idx_read_labels(&labels, &n, tail, &err);
    MG_ASSERT_FAILS(rc, err, tail, "more data after the 5 bytes the header promises");
}

static void check_fashion(const char *images, const char *labels_path, int n)
{
    FILE *probe = fopen(images, "rb");
    if (!probe) {
        printf("\n    skipped: %s is not installed ", images);
        return;
    }
    fclose(probe);
    mg_dataset ds;
    mg_error err = {""};
    double t0 = seconds();
    int rc = mg_idx_read_images(&ds, images, 0, -1, &err);
    double dt = seconds() - t0;
    if (rc)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(ds.n, n);
    CU_ASSERT_EQUAL(ds.channels, 1);
    CU_ASSERT_EQUAL(ds.height, 28);
    CU_ASSERT_EQUAL(ds.width, 28);
    CU_ASSERT_EQUAL(ds.dim, 784);

    double mean[784], overall = 0, lo = 1, hi = 0;
    mg_dataset_pixel_mean(&ds, mean);
    for (int j = 0; j < 784; j++) {
        overall += mean[j] / 784;
        lo = mean[j] < lo ? mean[j] : lo;
        hi = mean[j] > hi ? mean[j] : hi;
    }
    printf("\n    %s: %d x 28 x 28 in %.3f s, pixel mean %.4f (per pixel %.4f..%.4f) ", images,
           ds.n, dt, overall, lo, hi);
    /* Fashion-MNIST's published mean pixel is 0.2860 (train) and 0.2868 (test); the border
     * pixels are nearly always black and the centre mostly garment. */
    MG_ASSERT_CLOSE(overall, 0.286, 0.002);
    CU_ASSERT(lo < 0.01);
    CU_ASSERT(hi > 0.5);

    /* A selection from the middle equals those rows of the whole. */
    mg_dataset part;
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_images(&part, images, n / 2 - 7, 100, &err), 0);
    CU_ASSERT_EQUAL(memcmp(part.x, ds.x + (size_t)(n / 2 - 7) * 784, 100 * 784 * sizeof(mg_real)),
                    0);
    mg_dataset_free(&part);
    mg_dataset_free(&ds);

    /* Ten classes, equally many of each. */
    uint8_t *labels;
    int nl;
    CU_ASSERT_EQUAL_FATAL(mg_idx_read_labels(&labels, &nl, labels_path, &err), 0);
    CU_ASSERT_EQUAL(nl, n);
    int count[256] = {0};
    for (int i = 0; i < nl; i++)
        count[labels[i]]++;
    for (int c = 0; c < 10; c++)
        CU_ASSERT_EQUAL(count[c], n / 10);
    free(labels);
}

static void test_data_fashion_mnist(void)
{
    check_fashion(FASHION_DIR "/train-images-idx3-ubyte.gz",
                  FASHION_DIR "/train-labels-idx1-ubyte.gz", 60000);
    check_fashion(FASHION_DIR "/t10k-images-idx3-ubyte.gz",
                  FASHION_DIR "/t10k-labels-idx1-ubyte.gz", 10000);
}

static const mg_test tests[] = {
    {"data_raw", test_data_raw},
    {"data_gz", test_data_gz},
    {"data_selection", test_data_selection},
    {"data_labels", test_data_labels},
    {"data_pixel_mean", test_data_pixel_mean},
    {"data_bytes", test_data_bytes},
    {"data_alloc_errors", test_data_alloc_errors},
    {"data_errors", test_data_errors},
    {"data_gz_errors", test_data_gz_errors},
    {"data_not_regular", test_data_not_regular},
    {"data_gz_bomb", test_data_gz_bomb},
    {"data_fashion_mnist", test_data_fashion_mnist},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("data", tests, argc, argv);
}
