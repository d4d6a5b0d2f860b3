/* Tests of the TFD reader: TFD-like files written here with libmatio, as MATLAB v5 (plain and
 * compressed) and v7.3, read back split by split, pixel by pixel and label by label; a file
 * written by scipy (whose loadmat is how pylearn2 reads TFD) to pin the image orientation
 * independently of the column-major layout code in this file; and, for every bad file or
 * argument, the exact one-line message, with nothing at all printed to stderr. */
/* dup, dup2, fileno: POSIX. */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mpigan/cifar10.h"
#include "mpigan/h5data.h"
#include "mpigan/splits.h"
#include "mpigan/tfd.h"

/* The standard file: N examples of S x S pixels. */
#define N 12
#define S 6

/* Pixel (i, r, c): distinct within an image and not symmetric in r and c, so that a transposed,
 * shifted or mirrored read shows; one 255 for the top of the scale ((0, 0, 0) is 0). */
static uint8_t pix(size_t i, size_t r, size_t c)
{
    if (i == 11 && r == 0 && c == 1)
        return 255;
    return (uint8_t)((i * 23 + r * 6 + c) % 256);
}

/* Fold f of example i cycles 0..3, so split s of fold f holds exactly the examples i with
 * (i + f) % 4 == s: three of them, a different three for each fold. */
static int fold_of(size_t i, int f)
{
    return (int)((i + (size_t)f) % 4);
}

/* Expression labels -1 where fold 0 leaves the example unlabeled, as in TFD. */
static double lab_ex(size_t i)
{
    return fold_of(i, 0) == 0 ? -1.0 : (double)(i % 7);
}

static int32_t lab_id(size_t i)
{
    return (int32_t)(100 + i);
}

/* Byte b as the reader stores it: b / 255 rounded once to mg_real, so comparisons are exact. */
static mg_real byte_real(unsigned b)
{
    return (mg_real)b / (mg_real)255;
}

/* One variable to write; name NULL leaves it out. */
typedef struct {
    const char *name;
    enum matio_classes cls;
    enum matio_types type;
    int rank;
    size_t dims[3];
    const void *data;
} tvar;

enum { V_IMAGES, V_FOLDS, V_LABS_EX, V_LABS_ID, V_COUNT };

/* The standard file's data, column-major as MATLAB stores it. */
static uint8_t images_cm[N * S * S]; /* (N, S, S): (i, r, c) at i + N * (r + S * c) */
static double folds_cm[N * 5];       /* (N, 5) */
static double labs_ex_cm[N];         /* (N, 1) */
static int32_t labs_id_cm[N];        /* (N, 1) */

static void std_vars(tvar v[V_COUNT])
{
    for (size_t i = 0; i < N; i++) {
        for (size_t r = 0; r < S; r++)
            for (size_t c = 0; c < S; c++)
                images_cm[i + N * (r + S * c)] = pix(i, r, c);
        for (int f = 0; f < 5; f++)
            folds_cm[i + N * (size_t)f] = fold_of(i, f);
        labs_ex_cm[i] = lab_ex(i);
        labs_id_cm[i] = lab_id(i);
    }
    v[V_IMAGES] = (tvar){"images", MAT_C_UINT8, MAT_T_UINT8, 3, {N, S, S}, images_cm};
    v[V_FOLDS] = (tvar){"folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 5, 0}, folds_cm};
    v[V_LABS_EX] = (tvar){"labs_ex", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 1, 0}, labs_ex_cm};
    v[V_LABS_ID] = (tvar){"labs_id", MAT_C_INT32, MAT_T_INT32, 2, {N, 1, 0}, labs_id_cm};
}

typedef struct {
    const char *tag;
    enum mat_ft ver;
    enum matio_compression compress;
} mat_format;

static const mat_format formats[] = {
    {"v5", MAT_FT_MAT5, MAT_COMPRESSION_NONE},
    {"v5z", MAT_FT_MAT5, MAT_COMPRESSION_ZLIB},
    {"v73", MAT_FT_MAT73, MAT_COMPRESSION_NONE},
    {"v73z", MAT_FT_MAT73, MAT_COMPRESSION_ZLIB},
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

/* Writes the named variables of v to <tmpdir>/<tag>_<name>. Returns NULL, having written
 * nothing, only when this libmatio cannot create v7.3 files (built without HDF5). */
static const char *write_mat(const char *name, const mat_format *fmt, const tvar *v, int nv)
{
    char file[256];
    snprintf(file, sizeof file, "%s_%s", fmt->tag, name);
    const char *path = mg_test_path(file);
    mat_t *mat = Mat_CreateVer(path, NULL, fmt->ver);
    if (!mat) {
        if (fmt->ver == MAT_FT_MAT73) {
            static int noted;
            if (!noted++)
                printf("\n  note: this libmatio cannot create v7.3 files (built without HDF5); "
                       "v7.3 cases skipped\n");
            return NULL;
        }
        fprintf(stderr, "%s: Mat_CreateVer failed\n", path);
        exit(2);
    }
    for (int k = 0; k < nv; k++) {
        if (!v[k].name)
            continue;
        size_t dims[3] = {v[k].dims[0], v[k].dims[1], v[k].dims[2]};
        matvar_t *var = Mat_VarCreate(v[k].name, v[k].cls, v[k].type, v[k].rank, dims,
                                      (void *)v[k].data, MAT_F_DONT_COPY_DATA);
        if (!var || Mat_VarWrite(mat, var, fmt->compress) != 0) {
            fprintf(stderr, "%s: cannot write %s\n", path, v[k].name);
            exit(2);
        }
        Mat_VarFree(var);
    }
    if (Mat_Close(mat) != 0) {
        fprintf(stderr, "%s: Mat_Close failed\n", path);
        exit(2);
    }
    return path;
}

/* ---- stderr capture: the reader's only output is its error message ---- */

static int saved_stderr = -1;

/* Own storage: mg_test_path's slots are shared with the file paths under test. */
static const char *stderr_path(void)
{
    static char path[4200];
    if (!path[0])
        snprintf(path, sizeof path, "%s/stderr.txt", mg_test_tmpdir());
    return path;
}

static void stderr_begin(void)
{
    fflush(stderr);
    const char *path = stderr_path();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    saved_stderr = dup(STDERR_FILENO);
    if (fd < 0 || saved_stderr < 0 || dup2(fd, STDERR_FILENO) < 0) {
        perror(path);
        exit(2);
    }
    close(fd);
}

/* Restores stderr and returns what was written to it meanwhile (static storage). */
static const char *stderr_end(void)
{
    static char text[4096];
    fflush(stderr);
    if (dup2(saved_stderr, STDERR_FILENO) < 0) {
        perror("dup2");
        exit(2);
    }
    close(saved_stderr);
    FILE *f = fopen(stderr_path(), "rb");
    size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[got] = '\0';
    return text;
}

/* ---- reading back ---- */

/* Reads split `split` of fold `fold` of a standard file and checks it against what was
 * written: the examples in file order, every pixel in place, both labels. */
static void check_split(const char *path, int fold, int split)
{
    size_t want[N], n_want = 0;
    for (size_t i = 0; i < N; i++)
        if (fold_of(i, fold) == split)
            want[n_want++] = i;
    mg_dataset ds;
    int32_t *ex = NULL, *id = NULL;
    mg_error err = {{0}};
    stderr_begin();
    int rc = mg_tfd_read(&ds, &ex, &id, path, fold, (enum mg_tfd_split)split, &err);
    const char *printed = stderr_end();
    CU_ASSERT_STRING_EQUAL(printed, "");
    if (rc != 0) {
        fprintf(stderr, "\n  %s fold %d split %d: %s\n", path, fold, split, err.msg);
        CU_FAIL("mg_tfd_read failed");
        return;
    }
    CU_ASSERT_EQUAL(ds.n, (int)n_want);
    CU_ASSERT_EQUAL(ds.channels, 1);
    CU_ASSERT_EQUAL(ds.height, S);
    CU_ASSERT_EQUAL(ds.width, S);
    CU_ASSERT_EQUAL(ds.dim, (size_t)(S * S));
    int bad_pixels = 0, bad_labels = 0;
    for (int k = 0; k < ds.n && k < (int)n_want; k++) {
        for (size_t r = 0; r < S; r++)
            for (size_t c = 0; c < S; c++)
                bad_pixels +=
                    ds.x[(size_t)k * ds.dim + r * S + c] != byte_real(pix(want[k], r, c));
        bad_labels += ex[k] != (int32_t)lab_ex(want[k]) || id[k] != lab_id(want[k]);
    }
    if (bad_pixels || bad_labels)
        fprintf(stderr, "\n  %s fold %d split %d: %d pixels, %d labels wrong\n", path, fold,
                split, bad_pixels, bad_labels);
    CU_ASSERT_EQUAL(bad_pixels, 0);
    CU_ASSERT_EQUAL(bad_labels, 0);
    mg_dataset_free(&ds);
    free(ex);
    free(id);
}

static void test_tfd_read(void)
{
    tvar v[V_COUNT];
    std_vars(v);
    for (size_t f = 0; f < N_FORMATS; f++) {
        const char *path = write_mat("tfd.mat", &formats[f], v, V_COUNT);
        if (!path)
            continue;
        for (int fold = 0; fold < 5; fold++)
            for (int split = 0; split < 4; split++)
                check_split(path, fold, split);
    }
}

/* The labels are returned only when asked for; a file without them gives -1 for every example. */
static void test_tfd_labels(void)
{
    tvar v[V_COUNT];
    std_vars(v);
    for (size_t f = 0; f < N_FORMATS; f++) {
        const char *path = write_mat("tfd.mat", &formats[f], v, V_COUNT);
        if (!path)
            continue;
        mg_dataset ds;
        int32_t *id = NULL;
        mg_error err = {{0}};
        /* fold 1, train: examples 0, 4, 8 */
        CU_ASSERT_EQUAL_FATAL(mg_tfd_read(&ds, NULL, &id, path, 1, MG_TFD_TRAIN, &err), 0);
        CU_ASSERT_EQUAL(ds.n, 3);
        CU_ASSERT(id[0] == 100 && id[1] == 104 && id[2] == 108);
        mg_dataset_free(&ds);
        free(id);
        CU_ASSERT_EQUAL_FATAL(mg_tfd_read(&ds, NULL, NULL, path, 1, MG_TFD_TRAIN, &err), 0);
        CU_ASSERT_EQUAL(ds.n, 3);
        mg_dataset_free(&ds);

        tvar bare[2] = {v[V_IMAGES], v[V_FOLDS]};
        path = write_mat("bare.mat", &formats[f], bare, 2);
        int32_t *ex = NULL;
        CU_ASSERT_EQUAL_FATAL(mg_tfd_read(&ds, &ex, &id, path, 1, MG_TFD_TRAIN, &err), 0);
        CU_ASSERT_EQUAL(ds.n, 3);
        for (int k = 0; k < 3; k++)
            CU_ASSERT(ex[k] == -1 && id[k] == -1);
        CU_ASSERT_EQUAL(ds.x[1 * ds.dim + 2 * S + 3], byte_real(pix(4, 2, 3)));
        mg_dataset_free(&ds);
        free(ex);
        free(id);
    }
}

/* folds of any numeric class, as MATLAB may save them: the same selection as double. */
static void test_tfd_fold_classes(void)
{
    tvar v[V_COUNT];
    std_vars(v);
    static uint8_t folds_u8[N * 5];
    static int16_t folds_i16[N * 5];
    static float folds_f32[N * 5];
    for (size_t k = 0; k < N * 5; k++) {
        folds_u8[k] = (uint8_t)folds_cm[k];
        folds_i16[k] = (int16_t)folds_cm[k];
        folds_f32[k] = (float)folds_cm[k];
    }
    const tvar classes[] = {
        {"folds", MAT_C_UINT8, MAT_T_UINT8, 2, {N, 5, 0}, folds_u8},
        {"folds", MAT_C_INT16, MAT_T_INT16, 2, {N, 5, 0}, folds_i16},
        {"folds", MAT_C_SINGLE, MAT_T_SINGLE, 2, {N, 5, 0}, folds_f32},
    };
    for (size_t f = 0; f < N_FORMATS; f++)
        for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
            v[V_FOLDS] = classes[k];
            const char *path = write_mat("classes.mat", &formats[f], v, V_COUNT);
            if (!path)
                break;
            check_split(path, 2, MG_TFD_VALID);
            check_split(path, 4, MG_TFD_UNLABELED);
        }
}

/* A file written by scipy.io.savemat (scipy 1.10, compressed v5) from numpy arrays in the view
 * pylearn2 gets from loadmat: images (3, 4, 4) uint8 with images[i, r, c] = 16 i + 4 r + c except
 * images[2, 3, 2] = 255; folds (3, 5) double [[1 0 0 0 0], [0 1 2 3 0], [1 2 1 1 1]];
 * labs_ex (3, 1) double [5, -1, 2]; labs_id (3, 1) int32 [7, 8, 9]. Its bytes come from scipy, not
 * from this file's column-major layout, so it pins which index is the image row. */
static const unsigned char scipy_mat[] = {
    0x4d, 0x41, 0x54, 0x4c, 0x41, 0x42, 0x20, 0x35, 0x2e, 0x30, 0x20, 0x4d, 0x41, 0x54, 0x2d,
    0x66, 0x69, 0x6c, 0x65, 0x20, 0x50, 0x6c, 0x61, 0x74, 0x66, 0x6f, 0x72, 0x6d, 0x3a, 0x20,
    0x70, 0x6f, 0x73, 0x69, 0x78, 0x2c, 0x20, 0x43, 0x72, 0x65, 0x61, 0x74, 0x65, 0x64, 0x20,
    0x6f, 0x6e, 0x3a, 0x20, 0x4d, 0x6f, 0x6e, 0x20, 0x4e, 0x6f, 0x76, 0x20, 0x32, 0x33, 0x20,
    0x31, 0x39, 0x3a, 0x33, 0x35, 0x3a, 0x31, 0x34, 0x20, 0x32, 0x30, 0x32, 0x36, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x49, 0x4d, 0x0f, 0x00, 0x00, 0x00, 0x62, 0x00, 0x00,
    0x00, 0x78, 0x9c, 0xe3, 0x63, 0x60, 0x60, 0x28, 0x00, 0x62, 0x36, 0x20, 0xe6, 0x00, 0x62,
    0x4e, 0x06, 0x08, 0x60, 0x05, 0x62, 0x1e, 0x20, 0x66, 0x06, 0x62, 0x16, 0x28, 0x06, 0x01,
    0x46, 0xa8, 0xda, 0xcc, 0xdc, 0xc4, 0xf4, 0xd4, 0x62, 0x06, 0x06, 0x26, 0x20, 0xdb, 0x00,
    0x24, 0x21, 0xa0, 0xc0, 0x22, 0xa2, 0xc2, 0x21, 0xa1, 0xc1, 0x23, 0xa3, 0xc3, 0x28, 0xa8,
    0xc8, 0x2a, 0xaa, 0xca, 0x29, 0xa9, 0xc9, 0x2b, 0xab, 0xcb, 0x24, 0xa4, 0xc4, 0x26, 0xa6,
    0xc6, 0x25, 0xa5, 0xc5, 0x27, 0xf7, 0x9f, 0x59, 0x58, 0x99, 0x5d, 0x5c, 0x9d, 0x5b, 0x5a,
    0x9b, 0x5f, 0x5e, 0x1f, 0x00, 0x5f, 0x91, 0x08, 0x9a, 0x0f, 0x00, 0x00, 0x00, 0x3d, 0x00,
    0x00, 0x00, 0x78, 0x9c, 0xe3, 0x63, 0x60, 0x60, 0xd8, 0x00, 0xc4, 0x6c, 0x40, 0xcc, 0x01,
    0xa5, 0x41, 0x80, 0x15, 0xca, 0x67, 0x86, 0xb2, 0x19, 0xa1, 0x74, 0x5a, 0x7e, 0x4e, 0x4a,
    0x31, 0x90, 0xe6, 0x04, 0xe2, 0x0a, 0x06, 0x18, 0xf8, 0x60, 0xcf, 0x80, 0x02, 0x70, 0xf2,
    0x1d, 0x50, 0xc5, 0x61, 0x7c, 0x74, 0xf5, 0x1c, 0x38, 0xc4, 0x11, 0xe6, 0x01, 0x00, 0xdb,
    0xe0, 0x0b, 0x69, 0x0f, 0x00, 0x00, 0x00, 0x36, 0x00, 0x00, 0x00, 0x78, 0x9c, 0xe3, 0x63,
    0x60, 0x60, 0x08, 0x00, 0x62, 0x36, 0x20, 0xe6, 0x80, 0xd2, 0x20, 0xc0, 0x0a, 0xe5, 0x33,
    0x03, 0x31, 0x23, 0x14, 0xb3, 0x03, 0x71, 0x4e, 0x62, 0x52, 0x71, 0x7c, 0x6a, 0x05, 0x03,
    0x27, 0x90, 0x2d, 0xc1, 0x00, 0x03, 0x22, 0x0e, 0x10, 0xfa, 0xc3, 0x7e, 0xa8, 0x80, 0x03,
    0x00, 0xae, 0x64, 0x05, 0xce, 0x0f, 0x00, 0x00, 0x00, 0x32, 0x00, 0x00, 0x00, 0x78, 0x9c,
    0xe3, 0x63, 0x60, 0x60, 0xf0, 0x00, 0x62, 0x36, 0x20, 0xe6, 0x00, 0x62, 0x1e, 0x06, 0x08,
    0x60, 0x85, 0xf2, 0x99, 0x81, 0x98, 0x11, 0x8a, 0xd9, 0x81, 0x38, 0x27, 0x31, 0xa9, 0x38,
    0x3e, 0x33, 0x05, 0x2c, 0xcf, 0x03, 0x15, 0x03, 0xa9, 0xe3, 0x84, 0xea, 0x03, 0x00, 0x79,
    0x59, 0x03, 0x81
};

static unsigned scipy_pixel(size_t i, size_t r, size_t c)
{
    return i == 2 && r == 3 && c == 2 ? 255 : (unsigned)(16 * i + 4 * r + c);
}

static void test_tfd_scipy(void)
{
    const char *path = mg_test_write_file("scipy.mat", scipy_mat, sizeof scipy_mat);
    mg_dataset ds;
    int32_t *ex = NULL, *id = NULL;
    mg_error err = {{0}};
    /* fold 0, train: examples 0 and 2 */
    int rc = mg_tfd_read(&ds, &ex, &id, path, 0, MG_TFD_TRAIN, &err);
    if (rc)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(ds.n, 2);
    CU_ASSERT(ds.channels == 1 && ds.height == 4 && ds.width == 4);
    const size_t want[2] = {0, 2};
    int bad = 0;
    for (int k = 0; k < 2; k++)
        for (size_t r = 0; r < 4; r++)
            for (size_t c = 0; c < 4; c++)
                bad += ds.x[(size_t)k * 16 + r * 4 + c] !=
                       byte_real(scipy_pixel(want[k], r, c));
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(ex[0] == 5 && ex[1] == 2);
    CU_ASSERT(id[0] == 7 && id[1] == 9);
    mg_dataset_free(&ds);
    free(ex);
    free(id);
    /* fold 3, test: example 1 alone, unlabeled in expression */
    CU_ASSERT_EQUAL_FATAL(mg_tfd_read(&ds, &ex, &id, path, 3, MG_TFD_TEST, &err), 0);
    CU_ASSERT_EQUAL(ds.n, 1);
    CU_ASSERT_EQUAL(ds.x[1 * 4 + 3], byte_real(scipy_pixel(1, 1, 3)));
    CU_ASSERT(ex[0] == -1 && id[0] == 8);
    mg_dataset_free(&ds);
    free(ex);
    free(id);
}

/* ---- errors ---- */

/* mg_tfd_read fails with exactly "<path>: <rest>", leaves nothing allocated, prints nothing. */
static void expect_error(const char *path, int fold, int split, int want_labels,
                         const char *rest)
{
    char want[1024];
    snprintf(want, sizeof want, "%s: %s", path, rest);
    mg_dataset ds;
    int32_t *ex = (int32_t *)&ds, *id = (int32_t *)&ds; /* must come back NULL */
    mg_error err = {{0}};
    stderr_begin();
    int rc = mg_tfd_read(&ds, want_labels ? &ex : NULL, want_labels ? &id : NULL, path, fold,
                         (enum mg_tfd_split)split, &err);
    const char *printed = stderr_end();
    if (rc != -1 || strcmp(err.msg, want) != 0)
        fprintf(stderr, "\n  rc %d\n  got:  %s\n  want: %s\n", rc, err.msg, want);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    if (printed[0])
        fprintf(stderr, "\n  printed to stderr: %s\n", printed);
    CU_ASSERT_STRING_EQUAL(printed, "");
    CU_ASSERT(ds.n == 0 && ds.x == NULL);
    if (want_labels)
        CU_ASSERT(ex == NULL && id == NULL);
    if (rc == 0) {
        mg_dataset_free(&ds);
        if (want_labels) {
            free(ex);
            free(id);
        }
    }
}

/* Arguments, and files that are not .mat files at all. */
static void test_tfd_errors_args(void)
{
    tvar v[V_COUNT];
    std_vars(v);
    const char *path = write_mat("tfd.mat", &formats[0], v, V_COUNT);
    expect_error(path, 5, MG_TFD_TRAIN, 1, "fold 5 asked for; TFD has folds 0 to 4");
    expect_error(path, -1, MG_TFD_TRAIN, 1, "fold -1 asked for; TFD has folds 0 to 4");
    expect_error(path, 0, 4, 1, "split 4 asked for; TFD splits are 0 (unlabeled) to 3 (test)");

    expect_error(mg_test_path("missing.mat"), 0, MG_TFD_TRAIN, 1,
                 "cannot open: No such file or directory");
    expect_error(mg_test_tmpdir(), 0, MG_TFD_TRAIN, 1, "cannot open: Is a directory");
    /* Issue 14, 7: libmatio opens by name, and blocked forever on a FIFO. */
    alarm(20);
    const char *fifo = mg_test_path("fifo.mat");
    CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
    expect_error(fifo, 0, MG_TFD_TRAIN, 1, "not a regular file");
    expect_error("/dev/zero", 0, MG_TFD_TRAIN, 0, "not a regular file");
    alarm(0);
    /* Issue 14, 6: one line, whatever the name holds. */
    char nl[4200], shown[4200];
    snprintf(nl, sizeof nl, "%s/T\nFD.mat", mg_test_tmpdir());
    snprintf(shown, sizeof shown, "%s/T?FD.mat", mg_test_tmpdir());
    mg_dataset ds;
    mg_error err;
    CU_ASSERT(mg_tfd_read(&ds, NULL, NULL, nl, 0, MG_TFD_TRAIN, &err) == -1);
    MG_ASSERT_FAILS(-1, err, shown, "cannot open: No such file or directory");
    CU_ASSERT(mg_tfd_read(&ds, NULL, NULL, nl, 7, MG_TFD_TRAIN, &err) == -1);
    MG_ASSERT_FAILS(-1, err, shown, "fold 7 asked for; TFD has folds 0 to 4");
    static const char text[] = "images = zeros(12, 6, 6);\nfolds = ones(12, 5);\n";
    expect_error(mg_test_write_file("text.mat", text, sizeof text - 1), 0, MG_TFD_TRAIN, 1,
                 "not a MATLAB .mat file (v5 or v7.3), or truncated");
    expect_error(mg_test_write_file("empty.mat", "", 0), 0, MG_TFD_TRAIN, 1,
                 "not a MATLAB .mat file (v5 or v7.3), or truncated");
    /* A MATLAB v4 record header (type 2, then rows, columns, imaginary flag and a name length
     * of 0x4d41544c): libmatio's v4 reader allocated the 1.3 GB name before reading it (found by
     * the fuzzer, a 250-byte file). Refused before libmatio sees it. */
    unsigned char v4[256] = {2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x4c, 0x54, 0x41, 0x4d};
    expect_error(mg_test_write_file("v4.mat", (const char *)v4, sizeof v4), 0, MG_TFD_TRAIN, 1,
                 "not a MATLAB .mat file (v5 or v7.3), or truncated");
}

/* Each bad variable, in every format. */
static void test_tfd_errors(void)
{
    static uint8_t images_square5[N * S * 5];
    static double images_double[N * S * S];
    static double folds_11[11 * 5], folds_7[N * 5], folds_half[N * 5], folds_nan[N * 5];
    static double folds_no_test2[N * 5], labs_ex_half[N], labs_ex_big[N];
    static char folds_char[N * 5];
    tvar v[V_COUNT];
    std_vars(v);
    for (size_t k = 0; k < N * S * S; k++)
        images_double[k] = images_cm[k];
    for (size_t i = 0; i < 11; i++)
        for (size_t f = 0; f < 5; f++)
            folds_11[i + 11 * f] = folds_cm[i + N * f];
    memcpy(folds_7, folds_cm, sizeof folds_cm);
    folds_7[4 + N * 2] = 7;     /* folds(5, 3) */
    memcpy(folds_half, folds_cm, sizeof folds_cm);
    folds_half[1 + N * 0] = 0.5; /* folds(2, 1) */
    memcpy(folds_nan, folds_cm, sizeof folds_cm);
    folds_nan[11 + N * 4] = NAN; /* folds(12, 5) */
    memcpy(folds_no_test2, folds_cm, sizeof folds_cm);
    for (size_t i = 0; i < N; i++)
        if (folds_no_test2[i + N * 2] == MG_TFD_TEST)
            folds_no_test2[i + N * 2] = MG_TFD_UNLABELED;
    memcpy(labs_ex_half, labs_ex_cm, sizeof labs_ex_cm);
    labs_ex_half[5] = 2.5; /* labs_ex(6): example 5 is in fold 0's train split */
    memcpy(labs_ex_big, labs_ex_cm, sizeof labs_ex_cm);
    labs_ex_big[9] = 3e9; /* labs_ex(10), in the same split */
    for (size_t k = 0; k < N * 5; k++)
        folds_char[k] = (char)('0' + folds_cm[k]);

    for (size_t f = 0; f < N_FORMATS; f++) {
        const mat_format *fmt = &formats[f];
        tvar w[V_COUNT];
        const char *path;
#define WRITE_WITH(var, ...)                                                                   \
    (memcpy(w, v, sizeof w), w[var] = (tvar)__VA_ARGS__, write_mat("bad.mat", fmt, w, V_COUNT))

        if (!(path = WRITE_WITH(V_IMAGES, {NULL, MAT_C_EMPTY, MAT_T_UNKNOWN, 0, {0}, NULL})))
            continue; /* no v7.3 here */
        expect_error(path, 0, MG_TFD_TRAIN, 1, "no variable images");
        path = WRITE_WITH(V_FOLDS, {NULL, MAT_C_EMPTY, MAT_T_UNKNOWN, 0, {0}, NULL});
        expect_error(path, 0, MG_TFD_TRAIN, 1, "no variable folds");
        path = WRITE_WITH(V_IMAGES, {"images", MAT_C_UINT8, MAT_T_UINT8, 2, {N, S * S, 0},
                                     images_cm});
        expect_error(path, 0, MG_TFD_TRAIN, 1,
                     "images is 12x36 (rank 2); TFD images are N x S x S uint8");
        path = WRITE_WITH(V_IMAGES, {"images", MAT_C_DOUBLE, MAT_T_DOUBLE, 3, {N, S, S},
                                     images_double});
        expect_error(path, 0, MG_TFD_TRAIN, 1,
                     "images holds double; TFD images are N x S x S uint8");
        path = WRITE_WITH(V_IMAGES, {"images", MAT_C_UINT8, MAT_T_UINT8, 3, {N, S, 5},
                                     images_square5});
        expect_error(path, 0, MG_TFD_TRAIN, 1, "images is 12x6x5, not square");
        path = WRITE_WITH(V_FOLDS, {"folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {11, 5, 0},
                                    folds_11});
        expect_error(path, 0, MG_TFD_TRAIN, 1, "folds is 11x5, images has 12 examples");
        path = WRITE_WITH(V_FOLDS, {"folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 4, 0},
                                    folds_cm});
        expect_error(path, 0, MG_TFD_TRAIN, 1, "folds is 12x4; TFD folds are N x 5");
        /* Every fold value is checked, whichever fold is asked for. */
        path = WRITE_WITH(V_FOLDS, {"folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 5, 0},
                                    folds_7});
        expect_error(path, 0, MG_TFD_TRAIN, 1,
                     "folds(5, 3) is 7; folds hold 0 (unlabeled), 1 (train), 2 (valid) or 3 "
                     "(test)");
        path = WRITE_WITH(V_FOLDS, {"folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 5, 0},
                                    folds_half});
        expect_error(path, 4, MG_TFD_TRAIN, 1,
                     "folds(2, 1) is 0.5; folds hold 0 (unlabeled), 1 (train), 2 (valid) or 3 "
                     "(test)");
        path = WRITE_WITH(V_FOLDS, {"folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 5, 0},
                                    folds_nan});
        expect_error(path, 0, MG_TFD_TRAIN, 1,
                     "folds(12, 5) is nan; folds hold 0 (unlabeled), 1 (train), 2 (valid) or 3 "
                     "(test)");
        path = WRITE_WITH(V_FOLDS, {"folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 5, 0},
                                    folds_no_test2});
        expect_error(path, 2, MG_TFD_TEST, 1, "fold 2 has no test examples");
        check_split(path, 2, MG_TFD_VALID); /* the other splits of that fold are fine */
        path = WRITE_WITH(V_LABS_EX, {"labs_ex", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {11, 1, 0},
                                      labs_ex_cm});
        expect_error(path, 0, MG_TFD_TRAIN, 1, "labs_ex has 11 rows, images has 12 examples");
        /* ... an error only when the labels are asked for */
        mg_dataset ds;
        mg_error err = {{0}};
        CU_ASSERT_EQUAL(mg_tfd_read(&ds, NULL, NULL, path, 0, MG_TFD_TRAIN, &err), 0);
        CU_ASSERT_EQUAL(ds.n, 3);
        mg_dataset_free(&ds);
        path = WRITE_WITH(V_LABS_EX, {"labs_ex", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 1, 0},
                                      labs_ex_half});
        expect_error(path, 0, MG_TFD_TRAIN, 1, "labs_ex(6) is 2.5; labels are integers");
        check_split(path, 0, MG_TFD_VALID); /* only the labels of the examples read count */
        path = WRITE_WITH(V_LABS_EX, {"labs_ex", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {N, 1, 0},
                                      labs_ex_big});
        expect_error(path, 0, MG_TFD_TRAIN, 1,
                     "labs_ex(10) is 3000000000; labels are 32-bit integers");
        path = WRITE_WITH(V_FOLDS, {"folds", MAT_C_CHAR, MAT_T_UINT8, 2, {N, 5, 0},
                                    folds_char});
        expect_error(path, 0, MG_TFD_TRAIN, 1, "folds holds char; TFD folds are N x 5 numbers");
#undef WRITE_WITH
    }
}

/* Reads a whole file into memory (for damaging it). */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        perror(path);
        exit(2);
    }
    unsigned char *b = mg_xmalloc((size_t)st.st_size + 1);
    if (fread(b, 1, (size_t)st.st_size, f) != (size_t)st.st_size || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
    *len = (size_t)st.st_size;
    return b;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Files cut short or damaged after they were written. */
static void test_tfd_errors_damaged(void)
{
    tvar v[V_COUNT];
    std_vars(v);
    char name[64], want[1024];
    /* Cut in half, in every format: inside images (v5) or the HDF5 structure (v7.3). */
    for (size_t f = 0; f < N_FORMATS; f++) {
        const char *path = write_mat("whole.mat", &formats[f], v, V_COUNT);
        if (!path)
            continue;
        size_t len;
        unsigned char *b = slurp(path, &len);
        snprintf(name, sizeof name, "%s_half.mat", formats[f].tag);
        expect_error(mg_test_write_file(name, b, len / 2), 0, MG_TFD_TRAIN, 1,
                     "not a MATLAB .mat file (v5 or v7.3), or truncated");
        /* ... and by its last byte, inside labs_id */
        snprintf(name, sizeof name, "%s_short.mat", formats[f].tag);
        expect_error(mg_test_write_file(name, b, len - 1), 0, MG_TFD_TRAIN, 1,
                     "not a MATLAB .mat file (v5 or v7.3), or truncated");
        free(b);
    }

    /* A v5 file is a 128-byte header, then one element per variable: a tag (type, bytes), then
     * the bytes. Uncompressed, images is miMATRIX: tag, array flags (16 bytes), then the dims
     * (tag miINT32 with 12 bytes, then 12, 6, 6). */
    size_t len;
    unsigned char *b = slurp(write_mat("whole.mat", &formats[0], v, V_COUNT), &len);
    const unsigned char dims_elem[20] = {5, 0, 0, 0, 12, 0, 0, 0, N, 0, 0, 0, S, 0, 0, 0, S};
    CU_ASSERT_EQUAL_FATAL(memcmp(b + 128 + 8 + 16, dims_elem, sizeof dims_elem), 0);
    /* N = 2^31 - 1 examples promised by a 1448-byte file: refused before anything is read. */
    unsigned char *n_at = b + 128 + 8 + 16 + 8;
    n_at[0] = n_at[1] = n_at[2] = 0xff;
    n_at[3] = 0x7f;
    const char *path = mg_test_write_file("v5_huge.mat", b, len);
    snprintf(want, sizeof want,
             "images is 2147483647x6x6 uint8, more than a file of %zu bytes can hold", len);
    expect_error(path, 0, MG_TFD_TRAIN, 1, want);
    free(b);

    /* Header sizes libmatio would allocate before it finds the file shorter (fuzz_tfd: a
     * 656-byte file took 1.7 GB for a variable's name): checked against the variable first. The
     * name tag of images follows its dims (8 + 12 bytes, padded to 24): type 1, 6 bytes. */
    b = slurp(write_mat("whole.mat", &formats[0], v, V_COUNT), &len);
    unsigned char *name_tag = b + 128 + 8 + 16 + 24;
    CU_ASSERT_EQUAL_FATAL(le32(name_tag), 1);
    CU_ASSERT_EQUAL_FATAL(le32(name_tag + 4), 6);
    const unsigned char huge[4] = {0x06, 0x2d, 0x6c, 0x69}; /* 1768697094, as the fuzzer found */
    memcpy(name_tag + 4, huge, 4);
    expect_error(mg_test_write_file("v5_name.mat", b, len), 0, MG_TFD_TRAIN, 1,
                 "damaged MATLAB v5 file: the variable at byte 128 has a name of 1768697094 "
                 "bytes");
    memcpy(name_tag + 4, "\x06\0\0\0", 4);
    unsigned char *dims_bytes = b + 128 + 8 + 16 + 4;
    memset(dims_bytes, 0xff, 4);
    expect_error(mg_test_write_file("v5_dims.mat", b, len), 0, MG_TFD_TRAIN, 1,
                 "damaged MATLAB v5 file: the variable at byte 128 has 4294967295 bytes of "
                 "dimensions");
    /* Dims of 10 bytes, not whole int32s: libmatio then read a name tag 8 bytes before this
     * walk's (fuzz_tfd: a 656-byte file took 3.2 GB of resident memory before it was refused). */
    memcpy(dims_bytes, "\x0a\0\0\0", 4);
    expect_error(mg_test_write_file("v5_dims10.mat", b, len), 0, MG_TFD_TRAIN, 1,
                 "damaged MATLAB v5 file: the variable at byte 128 has 10 bytes of dimensions");
    free(b);
    /* The same inside a compressed variable: its stream inflated, the name length changed,
     * deflated again. */
    b = slurp(write_mat("whole.mat", &formats[1], v, V_COUNT), &len);
    CU_ASSERT_EQUAL_FATAL(le32(b + 128), 15);
    size_t zlen = le32(b + 128 + 4);
    uLongf plain_len = 8 + 16 + 24 + 8 + 8 + 8 + N * S * S + 64;
    unsigned char *plain = mg_xmalloc(plain_len);
    CU_ASSERT_FATAL(uncompress(plain, &plain_len, b + 136, zlen) == Z_OK);
    CU_ASSERT_EQUAL_FATAL(le32(plain + 8 + 16 + 24 + 4), 6);
    memcpy(plain + 8 + 16 + 24 + 4, huge, 4);
    uLongf z_len = compressBound(plain_len);
    unsigned char *z = mg_xmalloc(136 + z_len);
    memcpy(z, b, 128);
    CU_ASSERT_FATAL(compress(z + 136, &z_len, plain, plain_len) == Z_OK);
    const unsigned char ztag[8] = {15, 0, 0, 0, (unsigned char)z_len, (unsigned char)(z_len >> 8),
                                   (unsigned char)(z_len >> 16), 0};
    memcpy(z + 128, ztag, 8);
    expect_error(mg_test_write_file("v5z_name.mat", z, 136 + z_len), 0, MG_TFD_TRAIN, 1,
                 "damaged MATLAB v5 file: the variable at byte 128 has a name of 1768697094 "
                 "bytes");
    free(z);
    free(plain);
    free(b);

    /* v7.3 (HDF5): folds replaced by a dataset never written, which HDF5 would read as zeros,
     * or one of 16-byte floats: HDF5 converts what libmatio reads from the element size in the
     * file, and allocated and filled gigabytes for a damaged one (fuzz_tfd). Both are refused
     * by mpigan's own HDF5 reader before libmatio reads anything. */
    for (int k = 0; k < 2; k++) {
        const char *p73 = write_mat(k ? "v73_wide.mat" : "v73_unwritten.mat", &formats[2], v,
                                    V_COUNT);
        if (!p73)
            break; /* this libmatio writes no v7.3 */
        hid_t h = H5Fopen(p73, H5F_ACC_RDWR, H5P_DEFAULT);
        CU_ASSERT_FATAL(h >= 0 && H5Ldelete(h, "folds", H5P_DEFAULT) >= 0);
        hsize_t fdims[2] = {5, N}; /* MATLAB's (N, 5), as HDF5 sees it */
        hid_t space = H5Screate_simple(2, fdims, NULL), scalar = H5Screate(H5S_SCALAR);
        hid_t d = H5Dcreate2(h, "folds", k ? H5T_NATIVE_LDOUBLE : H5T_IEEE_F64LE, space,
                             H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        long double wide[5 * N];
        for (size_t i = 0; i < 5 * N; i++)
            wide[i] = folds_cm[i];
        CU_ASSERT_FATAL(d >= 0 && (!k || H5Dwrite(d, H5T_NATIVE_LDOUBLE, H5S_ALL, H5S_ALL,
                                                  H5P_DEFAULT, wide) >= 0));
        /* As libmatio marks a double, so that it would read this folds. */
        hid_t str = H5Tcopy(H5T_C_S1);
        CU_ASSERT_FATAL(str >= 0 && H5Tset_size(str, 6) >= 0);
        hid_t a = H5Acreate2(d, "MATLAB_class", str, scalar, H5P_DEFAULT, H5P_DEFAULT);
        CU_ASSERT_FATAL(a >= 0 && H5Awrite(a, str, "double") >= 0 && H5Aclose(a) >= 0);
        CU_ASSERT_FATAL(H5Tclose(str) >= 0 && H5Dclose(d) >= 0 && H5Sclose(space) >= 0 &&
                        H5Sclose(scalar) >= 0 && H5Fclose(h) >= 0);
        snprintf(want, sizeof want,
                 k ? "folds holds %zu-byte values; MATLAB variables hold numbers of 1 to 8 bytes"
                   : "folds holds no data in this file (never written, or stored in other files)",
                 sizeof(long double));
        expect_error(p73, 0, MG_TFD_TRAIN, 1, want);
    }

    /* Compressed (miCOMPRESSED, type 15), the variable's header inflates (listing the file's
     * variables works) but its data does not: matio's complaint ends our line. */
    b = slurp(write_mat("whole.mat", &formats[1], v, V_COUNT), &len);
    CU_ASSERT_EQUAL_FATAL(le32(b + 128), 15);
    size_t zbytes = le32(b + 128 + 4);
    CU_ASSERT_FATAL(zbytes > 100 && 128 + 8 + zbytes <= len);
    memset(b + 128 + 8 + 60, 0xff, zbytes - 60 - 8);
    path = mg_test_write_file("v5z_corrupt.mat", b, len);
    free(b);
    mg_dataset ds;
    mg_error err = {{0}};
    stderr_begin();
    int rc = mg_tfd_read(&ds, NULL, NULL, path, 0, MG_TFD_TRAIN, &err);
    const char *printed = stderr_end();
    snprintf(want, sizeof want, "%s: cannot read images (truncated or corrupt?): ", path);
    if (rc != -1 || strncmp(err.msg, want, strlen(want)) != 0)
        fprintf(stderr, "\n  rc %d\n  got:  %s\n  want: %s...\n", rc, err.msg, want);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(strncmp(err.msg, want, strlen(want)), 0);
    CU_ASSERT(strlen(err.msg) > strlen(want) && !strchr(err.msg, '\n'));
    CU_ASSERT_STRING_EQUAL(printed, "");
    CU_ASSERT(ds.n == 0 && ds.x == NULL);
}

static const mg_test tests[] = {
    {"tfd_read", test_tfd_read},
    {"tfd_labels", test_tfd_labels},
    {"tfd_fold_classes", test_tfd_fold_classes},
    {"tfd_scipy", test_tfd_scipy},
    {"tfd_errors_args", test_tfd_errors_args},
    {"tfd_errors", test_tfd_errors},
    {"tfd_errors_damaged", test_tfd_errors_damaged},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("tfd", tests, argc, argv);
}
