/* The Toronto Face Database as its authors distribute it: TFD_48x48.mat / TFD_96x96.mat, MATLAB
 * v5 or v7.3 files read with libmatio (which reads v7.3 through HDF5).
 *
 * Variables: images (N x S x S uint8), folds (N x 5, any numeric class, each value 0 unlabeled,
 * 1 train, 2 valid, 3 test), and optionally labs_ex / labs_id (N x 1). MATLAB stores arrays
 * column-major, so pixel (i, r, c) of images is byte i + N * (r + S * c); pylearn2 (scipy's
 * loadmat) sees the same array as images[i, r, c], and an example here is the row-major S x S
 * image [r][c] of that view.
 *
 * A file is untrusted: every variable's class, rank and dims are read first (Mat_VarReadInfo,
 * no data) and checked, including that its size could be held in a file of this size, before
 * any data is read; every fold value of the file is checked whichever fold is asked for.
 *
 * libmatio reads a variable whole, so the whole of images is in memory while the split is
 * copied out: 0.24 GB for TFD_48x48 (102236 x 48 x 48 bytes), 0.94 GB for TFD_96x96. */
/* fstat, fseeko: POSIX.1-2008, also under -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include "mpigan/tfd.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "h5io.h"
#include "mpigan/files.h"

#define TFD_FOLDS 5
/* 4096 x 4096 pixels, as the IDX reader: far above TFD's 96 x 96. */
#define TFD_MAX_SIDE 4096u
/* deflate (the compression of v5 files and of MATLAB's HDF5 chunks) expands at most 1032:1, so
 * a variable larger than 1032 times the whole file cannot be in it: its header is damaged. */
#define TFD_MAX_EXPANSION 1032u
/* Examples copied per block: BLOCK output rows of 96 * 96 values stay in cache while the
 * column-major pixel planes are walked. */
#define TFD_BLOCK 16
/* A v5 variable's header sizes that no real file comes near (MATLAB names have at most 63
 * characters; TFD's arrays have 2 or 3 dimensions), checked before libmatio allocates them. */
#define V5_MAX_NAME 4096u
#define V5_MAX_DIMS 1024u
#define V5_MATRIX 14u     /* miMATRIX */
#define V5_COMPRESSED 15u /* miCOMPRESSED: a zlib stream of one miMATRIX element */

static const char *const split_names[] = {"unlabeled", "train", "valid", "test"};

/* libmatio logs through one process-wide function (there is no getter to restore a previous
 * one). By default it writes to stderr; this one keeps only the last message, so that a failure
 * reaches the user as our one line. Mat_LogInitFunc also routes HDF5's error stack here.
 *
 * The log is also the only sign of some damage: libmatio 1.5 returns a handle for a v7.3 file
 * whose HDF5 part fails to open (a truncated one, say), and a variable of a v5 file cut short,
 * filled past the cut with whatever memory held; each logs the failure and goes on. So every
 * matio call here starts with an empty log, and anything logged is an error. */
static char tfd_matio_log[512];

static void tfd_log(int level, char *message)
{
    (void)level;
    snprintf(tfd_matio_log, sizeof tfd_matio_log, "%s", message ? message : "");
}

/* The gist of the last message, on one line: HDF5's stack entries run over several lines, the
 * "minor:" one says what went wrong ("File has been truncated"). */
static const char *matio_said(void)
{
    char *msg = tfd_matio_log, *minor = strstr(msg, "minor: ");
    if (minor)
        msg = minor + strlen("minor: ");
    msg[strcspn(msg, "\n")] = '\0';
    return msg;
}

/* MATLAB's name of a class, as class() would print it. */
static const char *class_name(const matvar_t *v)
{
    if (v->isLogical)
        return "logical";
    switch (v->class_type) {
    case MAT_C_EMPTY: return "an empty value";
    case MAT_C_CELL: return "cell";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_OBJECT: return "object";
    case MAT_C_CHAR: return "char";
    case MAT_C_SPARSE: return "sparse";
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_FUNCTION: return "function";
    case MAT_C_OPAQUE: return "opaque";
    }
    return "an unknown class";
}

static int is_numeric_class(enum matio_classes c)
{
    return c == MAT_C_DOUBLE || c == MAT_C_SINGLE || (c >= MAT_C_INT8 && c <= MAT_C_UINT64);
}

/* "1000x48x48" */
static const char *dims_str(const matvar_t *v, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < v->rank && used < len; d++) {
        int w = snprintf(buf + used, len - used, d ? "x%zu" : "%zu", v->dims[d]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

/* A value as the user would type it: integers without a decimal point. */
static const char *value_str(double x, char *buf, size_t len)
{
    if (x == floor(x) && fabs(x) < 1e15)
        snprintf(buf, len, "%.0f", x);
    else
        snprintf(buf, len, "%.17g", x);
    return buf;
}

/* Elements of v (product of its dims), or SIZE_MAX when the product overflows. */
static size_t numel(const matvar_t *v)
{
    size_t n = 1;
    for (int d = 0; d < v->rank; d++) {
        if (v->dims[d] != 0 && n > SIZE_MAX / v->dims[d])
            return SIZE_MAX;
        n *= v->dims[d];
    }
    return n;
}

/* The open file and everything read from it, freed in one place. */
typedef struct {
    const char *path;
    int64_t file_bytes;
    mat_t *mat;
    char **dir; /* (n_vars) names of the file's variables, owned by mat */
    size_t n_vars;
    matvar_t *images, *folds, *labs[2]; /* data, once read */
    size_t *sel;                        /* (n) selected examples, in file order */
    int32_t *lab_out[2];                /* (n) each */
} tfd_file;

/* libmatio opens the file by name: it must be a regular file (a FIFO would block its open), and
 * its size bounds every variable in it. */
static int tfd_stat(tfd_file *f, mg_error *err)
{
    int fd;
    if (mg_file_open_input(&fd, f->path, err))
        return -1;
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : 0;
    close(fd);
    if (e)
        return mg_fail(err, "%s: cannot open: %s", f->path, strerror(e));
    f->file_bytes = (int64_t)st.st_size;
    return 0;
}

/* ---- MATLAB v5 structure, checked before libmatio walks it ----
 *
 * Listing a v5 file's variables (Mat_GetDir) reads every variable's header, and libmatio 1.5
 * allocates (and fills) a name as long as the header says, before it finds the file is shorter:
 * a 656-byte file asking for a 1.7 GB name took 1.7 GB and a second to refuse (found by
 * fuzz_tfd). So the headers are walked here first: a 128-byte file header, then one element per
 * variable, a tag (type, bytes) and its bytes; a matrix (uncompressed, or in a zlib stream)
 * begins with its array flags (16 bytes), its dims (tag, 4 bytes each, padded to 8) and its name
 * (tag and bytes, or a small element of at most 4 bytes inside its tag). */

static uint32_t v5_u32(const unsigned char *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Bytes the header of a matrix needs: flags, dims tag, dims, name tag (the dims' size known). */
#define V5_HEAD_MAX (24u + 4u * V5_MAX_DIMS + 8u)

/* The first `have` bytes of a matrix of `total` bytes: 1 if its dims and name fit it and are of
 * sane sizes, 0 if more bytes are needed to tell, -1 (err set) if not. */
static int v5_check_matrix(const tfd_file *f, long long at, const unsigned char *m, size_t have,
                           uint64_t total, int big, mg_error *err)
{
    if (have < 24)
        return total < 24 ? mg_fail(err, "%s: not a MATLAB .mat file (v5 or v7.3), or truncated",
                                    f->path)
                          : 0;
    uint32_t dims_type = v5_u32(m + 16, big), dims_bytes = v5_u32(m + 20, big);
    uint64_t name_at = 24 + ((uint64_t)dims_bytes + 7) / 8 * 8;
    if (dims_type >> 16) /* a small element: the dims inside the tag */
        dims_bytes = dims_type >> 16, name_at = 24;
    /* Dimensions are int32s: a byte count off a multiple of 4 has libmatio read the name tag
     * from inside them, where this walk would not (fuzz_tfd: 10 bytes of dims, then 3.2 GB
     * asked for a name). */
    if (dims_bytes % 4 != 0 || dims_bytes > 4 * V5_MAX_DIMS || name_at + 8 > total)
        return mg_fail(err, "%s: damaged MATLAB v5 file: the variable at byte %lld has %u bytes "
                       "of dimensions", f->path, at, dims_bytes);
    if (have < name_at + 8)
        return 0;
    uint32_t name_type = v5_u32(m + name_at, big), name_bytes = v5_u32(m + name_at + 4, big);
    if (name_type >> 16) /* a small element: the name inside the tag */
        return 1;
    if (name_bytes > V5_MAX_NAME || name_at + 8 + name_bytes > total)
        return mg_fail(err, "%s: damaged MATLAB v5 file: the variable at byte %lld has a name of "
                       "%u bytes", f->path, at, name_bytes);
    return 1;
}

/* A compressed variable of `bytes` bytes at `at` (fp just after its tag): its stream is inflated
 * only as far as the matrix header, which must then pass v5_check_matrix. A stream that does not
 * inflate is left to libmatio, which says what is wrong. */
static int v5_check_compressed(const tfd_file *f, FILE *fp, long long at, uint64_t bytes,
                               int big, mg_error *err)
{
    unsigned char in[16384], out[8 + V5_HEAD_MAX];
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return mg_fail(err, "%s: out of memory", f->path);
    z.next_out = out;
    z.avail_out = sizeof out;
    int rc = 0, zrc = Z_OK;
    while (rc == 0 && zrc == Z_OK) {
        if (z.avail_in == 0) {
            size_t want = bytes < sizeof in ? (size_t)bytes : sizeof in;
            if (want == 0 || fread(in, 1, want, fp) != want)
                break;
            bytes -= want;
            z.next_in = in;
            z.avail_in = (uInt)want;
        }
        zrc = inflate(&z, Z_NO_FLUSH);
        size_t have = sizeof out - z.avail_out;
        if (have >= 8 && v5_u32(out, big) == V5_MATRIX)
            rc = v5_check_matrix(f, at, out + 8, have - 8, v5_u32(out + 4, big), big, err);
        else if (have >= 8)
            break; /* not a matrix: libmatio's to judge */
        if (z.avail_out == 0)
            break;
    }
    inflateEnd(&z);
    return rc < 0 ? -1 : 0;
}

/* A v7.3 file is HDF5, which libmatio reads trusting it: a variable never written reads as fill
 * values, and a damaged element size or address makes HDF5 allocate and fill gigabytes before it
 * fails (fuzz_tfd: files of 3.6 kB took 1.6 and 4.2 GB). So the variables read are checked with
 * mpigan's own HDF5 reader first: numbers of at most 8 bytes, every value stored in the file. A
 * file HDF5 cannot open is left to libmatio, which says so. */
static int v73_check(const tfd_file *f, mg_error *err)
{
    static const char *const names[] = {"images", "folds", "labs_ex", "labs_id"};
    hid_t h;
    mg_error ignored;
    if (mg_h5_open(&h, f->path, 0, &ignored))
        return 0;
    int rc = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names && rc == 0; i++) {
        mg_h5_info info;
        int there = mg_h5r_exists(h, f->path, names[i], err);
        if (there <= 0) {
            rc = there;
            continue;
        }
        if (mg_h5r_info(h, f->path, names[i], &info, err))
            rc = -1;
        else if ((info.cls != H5T_INTEGER && info.cls != H5T_FLOAT) || info.size > 8)
            rc = mg_fail(err, "%s: %s holds %zu-byte values; MATLAB variables hold numbers of 1 "
                         "to 8 bytes", f->path, names[i], info.size);
        else
            rc = mg_h5r_stored(h, f->path, names[i], err);
    }
    if (H5Fclose(h) < 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot close", f->path);
    return rc;
}

/* Walks the variables of a v5 file, checks those of a v7.3 file, and refuses any other file
 * before libmatio sees it: libmatio would read it as MATLAB v4, whose headerless records it
 * trusts (a 250-byte file made it allocate 1.7 GB; TFD was never distributed as v4). */
static int mat_check(const tfd_file *f, mg_error *err)
{
    if (f->file_bytes < 128)
        return mg_fail(err, "%s: not a MATLAB .mat file (v5 or v7.3), or truncated", f->path);
    FILE *fp = fopen(f->path, "rb");
    if (!fp)
        return 0; /* libmatio reports it */
    unsigned char h[128];
    int rc = 0, big = -1;
    if (fread(h, 1, sizeof h, fp) == sizeof h)
        big = h[126] == 'M' && h[127] == 'I' ? 1 : h[126] == 'I' && h[127] == 'M' ? 0 : -1;
    /* Version 0x0100 is v5; 0x0200 is v7.3, an HDF5 file behind the same header. */
    int version = big < 0 ? 0 : big ? h[124] << 8 | h[125] : h[125] << 8 | h[124];
    if (version != 0x0100) {
        fclose(fp);
        if (version == 0x0200)
            return v73_check(f, err);
        return mg_fail(err, "%s: not a MATLAB .mat file (v5 or v7.3), or truncated", f->path);
    }
    const long long end = (long long)f->file_bytes;
    for (long long at = 128; at < end && rc == 0;) {
        unsigned char tag[8];
        if (end - at < 8 || fseeko(fp, (off_t)at, SEEK_SET) != 0 || fread(tag, 1, 8, fp) != 8) {
            rc = mg_fail(err, "%s: not a MATLAB .mat file (v5 or v7.3), or truncated", f->path);
            break;
        }
        uint32_t type = v5_u32(tag, big), bytes = v5_u32(tag + 4, big);
        /* libmatio refuses any other element at the top level (and its walk would then go on
         * from inside it, out of step with this one). */
        if ((type != V5_MATRIX && type != V5_COMPRESSED) || bytes > (uint64_t)(end - at - 8)) {
            rc = mg_fail(err, "%s: not a MATLAB .mat file (v5 or v7.3), or truncated", f->path);
            break;
        }
        if (type == V5_MATRIX) {
            unsigned char m[V5_HEAD_MAX];
            size_t have = bytes < sizeof m ? bytes : sizeof m;
            if (fread(m, 1, have, fp) != have)
                rc = mg_fail(err, "%s: cannot read: %s", f->path, strerror(errno));
            else if (v5_check_matrix(f, at, m, have, bytes, big, err) < 0)
                rc = -1;
        } else {
            rc = v5_check_compressed(f, fp, at, bytes, big, err);
        }
        at += 8 + (long long)bytes; /* as libmatio steps: a matrix is padded inside its bytes */
    }
    fclose(fp);
    return rc;
}

/* For a variable the file lists that matio then fails to read, or reads only with complaints. */
static int matio_fail(const tfd_file *f, const char *name, mg_error *err)
{
    const char *said = matio_said();
    if (said[0])
        return mg_fail(err, "%s: cannot read %s (truncated or corrupt?): %s", f->path, name,
                       said);
    return mg_fail(err, "%s: cannot read %s (truncated or corrupt?)", f->path, name);
}

/* Class, rank and dims of variable `name` (no data) into *out; *out stays NULL, with no error,
 * when the file has no such variable. */
static int var_info(tfd_file *f, const char *name, matvar_t **out, mg_error *err)
{
    *out = NULL;
    int listed = 0;
    for (size_t k = 0; k < f->n_vars && !listed; k++)
        listed = f->dir[k] && strcmp(f->dir[k], name) == 0;
    if (!listed)
        return 0;
    tfd_matio_log[0] = '\0';
    *out = Mat_VarReadInfo(f->mat, name);
    if (!*out || tfd_matio_log[0])
        return matio_fail(f, name, err);
    return 0;
}

/* A variable whose class and dims promise more bytes than the file could hold. */
static int check_fits(const tfd_file *f, const matvar_t *v, mg_error *err)
{
    size_t n = numel(v), esz = Mat_SizeOfClass(v->class_type);
    char dims[128];
    if (f->file_bytes < 0)
        return 0;
    uint64_t limit = (uint64_t)f->file_bytes * TFD_MAX_EXPANSION;
    if (n == SIZE_MAX || esz == 0 || n > limit / esz)
        return mg_fail(err, "%s: %s is %s %s, more than a file of %lld bytes can hold", f->path,
                       v->name, dims_str(v, dims, sizeof dims), class_name(v),
                       (long long)f->file_bytes);
    return 0;
}

/* The element types num_at reads. */
static int is_numeric_type(enum matio_types t)
{
    return t == MAT_T_DOUBLE || t == MAT_T_SINGLE || t == MAT_T_INT8 || t == MAT_T_UINT8 ||
           t == MAT_T_INT16 || t == MAT_T_UINT16 || t == MAT_T_INT32 || t == MAT_T_UINT32 ||
           t == MAT_T_INT64 || t == MAT_T_UINT64;
}

/* Reads the data of a variable already checked from its info, and checks that matio returned
 * what the info promised: the same dims, real numbers of one known size each (of type `type`
 * unless that is MAT_T_UNKNOWN). */
static int var_read(tfd_file *f, const matvar_t *info, enum matio_types type, matvar_t **out,
                    mg_error *err)
{
    tfd_matio_log[0] = '\0';
    matvar_t *v = Mat_VarRead(f->mat, info->name);
    *out = v;
    if (!v || tfd_matio_log[0])
        return matio_fail(f, info->name, err);
    size_t n = numel(v), esz = Mat_SizeOf(v->data_type);
    int same = v->rank == info->rank && v->class_type == info->class_type && !v->isComplex;
    for (int d = 0; same && d < v->rank; d++)
        same = v->dims[d] == info->dims[d];
    if (!same || !is_numeric_type(v->data_type) || (type && v->data_type != type) ||
        (size_t)v->data_size != esz || (n && !v->data) || n > v->nbytes / esz)
        return mg_fail(err, "%s: %s read back from matio not as its header describes it",
                       f->path, info->name);
    return 0;
}

/* Element k of a real numeric variable as a double (exact for every integer class up to 2^53,
 * which covers every valid value here). */
static double num_at(const matvar_t *v, size_t k)
{
    const void *p = v->data;
    switch (v->data_type) {
    case MAT_T_DOUBLE: return ((const double *)p)[k];
    case MAT_T_SINGLE: return ((const float *)p)[k];
    case MAT_T_INT8: return ((const int8_t *)p)[k];
    case MAT_T_UINT8: return ((const uint8_t *)p)[k];
    case MAT_T_INT16: return ((const int16_t *)p)[k];
    case MAT_T_UINT16: return ((const uint16_t *)p)[k];
    case MAT_T_INT32: return ((const int32_t *)p)[k];
    case MAT_T_UINT32: return ((const uint32_t *)p)[k];
    case MAT_T_INT64: return (double)((const int64_t *)p)[k];
    case MAT_T_UINT64: return (double)((const uint64_t *)p)[k];
    default: return NAN; /* not reached: var_read accepts only the types above */
    }
}

/* images: N x S x S uint8, real. */
static int check_images(const tfd_file *f, const matvar_t *v, mg_error *err)
{
    char dims[128];
    if (v->rank != 3)
        return mg_fail(err, "%s: images is %s (rank %d); TFD images are N x S x S uint8",
                       f->path, dims_str(v, dims, sizeof dims), v->rank);
    if (v->class_type != MAT_C_UINT8 || v->isLogical)
        return mg_fail(err, "%s: images holds %s; TFD images are N x S x S uint8", f->path,
                       class_name(v));
    if (v->isComplex)
        return mg_fail(err, "%s: images is complex; TFD images are N x S x S uint8", f->path);
    if (v->dims[1] != v->dims[2])
        return mg_fail(err, "%s: images is %s, not square", f->path,
                       dims_str(v, dims, sizeof dims));
    if (v->dims[1] == 0 || v->dims[1] > TFD_MAX_SIDE)
        return mg_fail(err, "%s: images is %s; sides of 1 to %u pixels are supported", f->path,
                       dims_str(v, dims, sizeof dims), TFD_MAX_SIDE);
    if (v->dims[0] > INT_MAX)
        return mg_fail(err, "%s: images holds %zu examples, more than %d", f->path, v->dims[0],
                       INT_MAX);
    return check_fits(f, v, err);
}

/* folds: N x 5, real numbers (values are checked once read). */
static int check_folds(const tfd_file *f, const matvar_t *v, size_t n, mg_error *err)
{
    char dims[128];
    if (!is_numeric_class(v->class_type) && v->class_type != MAT_C_EMPTY)
        return mg_fail(err, "%s: folds holds %s; TFD folds are N x 5 numbers", f->path,
                       class_name(v));
    if (v->isComplex)
        return mg_fail(err, "%s: folds is complex; TFD folds are N x 5 numbers", f->path);
    if (v->rank != 2)
        return mg_fail(err, "%s: folds is %s (rank %d); TFD folds are N x 5", f->path,
                       dims_str(v, dims, sizeof dims), v->rank);
    if (v->dims[1] != TFD_FOLDS)
        return mg_fail(err, "%s: folds is %s; TFD folds are N x 5", f->path,
                       dims_str(v, dims, sizeof dims));
    if (v->dims[0] != n)
        return mg_fail(err, "%s: folds is %s, images has %zu examples", f->path,
                       dims_str(v, dims, sizeof dims), n);
    if (v->class_type == MAT_C_EMPTY) /* 0 x 5 with images of 0 examples */
        return 0;
    return check_fits(f, v, err);
}

/* labs_ex / labs_id: N x 1, real numbers. */
static int check_labels(const tfd_file *f, const matvar_t *v, size_t n, mg_error *err)
{
    char dims[128];
    if (!is_numeric_class(v->class_type))
        return mg_fail(err, "%s: %s holds %s; TFD labels are N x 1 numbers", f->path, v->name,
                       class_name(v));
    if (v->isComplex)
        return mg_fail(err, "%s: %s is complex; TFD labels are N x 1 numbers", f->path,
                       v->name);
    if (v->rank != 2 || v->dims[1] != 1)
        return mg_fail(err, "%s: %s is %s; TFD labels are N x 1", f->path, v->name,
                       dims_str(v, dims, sizeof dims));
    if (v->dims[0] != n)
        return mg_fail(err, "%s: %s has %zu rows, images has %zu examples", f->path, v->name,
                       v->dims[0], n);
    return check_fits(f, v, err);
}

/* Checks every value of folds and lists the examples of (fold, split) in f->sel. */
static int select_examples(tfd_file *f, size_t n_all, int fold, int split, size_t *n_sel,
                           mg_error *err)
{
    const matvar_t *v = f->folds;
    char val[64];
    size_t count = 0;
    for (size_t col = 0; col < TFD_FOLDS; col++)
        for (size_t i = 0; i < n_all; i++) {
            double x = num_at(v, i + n_all * col);
            if (!(x == 0 || x == 1 || x == 2 || x == 3))
                /* MATLAB's 1-based (row, column), to look the value up where it was written. */
                return mg_fail(err, "%s: folds(%zu, %zu) is %s; folds hold 0 (unlabeled), "
                               "1 (train), 2 (valid) or 3 (test)", f->path, i + 1, col + 1,
                               value_str(x, val, sizeof val));
            count += col == (size_t)fold && x == split;
        }
    if (count == 0)
        return mg_fail(err, "%s: fold %d has no %s examples", f->path, fold,
                       split_names[split]);
    f->sel = malloc(count * sizeof *f->sel);
    if (!f->sel)
        return mg_fail(err, "%s: out of memory (%zu example indices)", f->path, count);
    size_t k = 0;
    for (size_t i = 0; i < n_all; i++)
        if (num_at(v, i + n_all * (size_t)fold) == split)
            f->sel[k++] = i;
    *n_sel = count;
    return 0;
}

/* Copies the selected examples, transposing MATLAB's column-major (N, S, S) to rows (S, S). */
static void copy_images(mg_dataset *ds, const tfd_file *f, size_t n_all)
{
    const uint8_t *img = f->images->data; /* (S, S, N) in C order: pixel (i, r, c) */
    size_t s = (size_t)ds->height, n = (size_t)ds->n;
    mg_real lut[256];
    for (int b = 0; b < 256; b++)
        lut[b] = (mg_real)b / (mg_real)255;
    for (size_t k0 = 0; k0 < n; k0 += TFD_BLOCK) {
        size_t k1 = n - k0 < TFD_BLOCK ? n : k0 + TFD_BLOCK;
        for (size_t c = 0; c < s; c++)
            for (size_t r = 0; r < s; r++) {
                const uint8_t *plane = img + n_all * (r + s * c); /* (N): pixel (r, c) of all */
                for (size_t k = k0; k < k1; k++)
                    ds->x[k * ds->dim + r * s + c] = lut[plane[f->sel[k]]];
            }
    }
}

/* The selected rows of a label variable, each an integer that fits in int32. */
static int copy_labels(int32_t *out, const tfd_file *f, const matvar_t *v, size_t n,
                       mg_error *err)
{
    char val[64];
    for (size_t k = 0; k < n; k++) {
        double x = num_at(v, f->sel[k]);
        if (x != floor(x)) /* NaN too */
            return mg_fail(err, "%s: %s(%zu) is %s; labels are integers", f->path, v->name,
                           f->sel[k] + 1, value_str(x, val, sizeof val));
        if (x < INT32_MIN || x > INT32_MAX)
            return mg_fail(err, "%s: %s(%zu) is %s; labels are 32-bit integers", f->path,
                           v->name, f->sel[k] + 1, value_str(x, val, sizeof val));
        out[k] = (int32_t)x;
    }
    return 0;
}

static int tfd_read(tfd_file *f, mg_dataset *ds, int want_labs[2], int fold, int split,
                    mg_error *err)
{
    static const char *const lab_names[2] = {"labs_ex", "labs_id"};
    const char *path = f->path;
    matvar_t *images_info = NULL, *folds_info = NULL, *lab_info[2] = {NULL, NULL};
    int rc = -1;

    if (tfd_stat(f, err) || mat_check(f, err))
        return -1;
    if (Mat_LogInitFunc("mpigan", tfd_log) != 0)
        return mg_fail(err, "%s: cannot set up libmatio's logging", path);
    tfd_matio_log[0] = '\0';
    f->mat = Mat_Open(path, MAT_ACC_RDONLY);
    enum mat_ft ver = f->mat ? Mat_GetVersion(f->mat) : MAT_FT_UNDEFINED;
    /* Mat_Open falls back to MATLAB v4, whose headerless layout accepts many files that are not
     * .mat files at all; TFD was never distributed in it. Listing the variables walks a v5
     * file's every variable header, so a cut anywhere shows here (see tfd_matio_log). */
    if (ver == MAT_FT_MAT5 || ver == MAT_FT_MAT73)
        f->dir = Mat_GetDir(f->mat, &f->n_vars);
    if ((ver != MAT_FT_MAT5 && ver != MAT_FT_MAT73) || tfd_matio_log[0] ||
        (ver == MAT_FT_MAT73 && !f->dir))
        return mg_fail(err, "%s: not a MATLAB .mat file (v5 or v7.3), or truncated", path);
    if (!f->dir)
        f->n_vars = 0; /* a v5 header and nothing after it */

    if (var_info(f, "images", &images_info, err))
        goto out;
    if (!images_info) {
        mg_fail(err, "%s: no variable images", path);
        goto out;
    }
    if (check_images(f, images_info, err))
        goto out;
    size_t n_all = images_info->dims[0], side = images_info->dims[1];
    if (var_info(f, "folds", &folds_info, err))
        goto out;
    if (!folds_info) {
        mg_fail(err, "%s: no variable folds", path);
        goto out;
    }
    if (check_folds(f, folds_info, n_all, err))
        goto out;
    for (int l = 0; l < 2; l++)
        if (want_labs[l] && (var_info(f, lab_names[l], &lab_info[l], err) ||
                             (lab_info[l] && check_labels(f, lab_info[l], n_all, err))))
            goto out;

    /* Every header is sane: now the data, smallest first, so a bad fold costs no image read. */
    size_t n = 0;
    if (n_all == 0) {
        mg_fail(err, "%s: fold %d has no %s examples", path, fold, split_names[split]);
        goto out;
    }
    if (var_read(f, folds_info, MAT_T_UNKNOWN, &f->folds, err) ||
        select_examples(f, n_all, fold, split, &n, err))
        goto out;
    for (int l = 0; l < 2; l++) {
        if (!want_labs[l])
            continue;
        if (lab_info[l] && var_read(f, lab_info[l], MAT_T_UNKNOWN, &f->labs[l], err))
            goto out;
        f->lab_out[l] = malloc(n * sizeof(int32_t));
        if (!f->lab_out[l]) {
            mg_fail(err, "%s: out of memory (%zu labels)", path, n);
            goto out;
        }
        if (!lab_info[l]) /* the file has no such labels: every example's is absent */
            for (size_t k = 0; k < n; k++)
                f->lab_out[l][k] = -1;
        else if (copy_labels(f->lab_out[l], f, f->labs[l], n, err))
            goto out;
    }
    if (var_read(f, images_info, MAT_T_UINT8, &f->images, err))
        goto out;
    if (mg_dataset_alloc(ds, (int)n, 1, (int)side, (int)side, err)) {
        mg_fail(err, "%s: out of memory (%zu examples of %zu x %zu pixels)", path, n, side,
                side);
        goto out;
    }
    copy_images(ds, f, n_all);
    rc = 0;
out:
    Mat_VarFree(images_info);
    Mat_VarFree(folds_info);
    Mat_VarFree(lab_info[0]);
    Mat_VarFree(lab_info[1]);
    return rc;
}

int mg_tfd_read(mg_dataset *ds, int32_t **labs_ex, int32_t **labs_id, const char *path, int fold,
                enum mg_tfd_split split, mg_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (labs_ex)
        *labs_ex = NULL;
    if (labs_id)
        *labs_id = NULL;
    if (fold < 0 || fold >= TFD_FOLDS) {
        mg_fail(err, "%s: fold %d asked for; TFD has folds 0 to 4", path, fold);
        return mg_file_one_line(err);
    }
    if ((int)split < MG_TFD_UNLABELED || (int)split > MG_TFD_TEST) {
        mg_fail(err, "%s: split %d asked for; TFD splits are 0 (unlabeled) to 3 (test)", path,
                (int)split);
        return mg_file_one_line(err);
    }

    tfd_file f = {.path = path};
    int want_labs[2] = {labs_ex != NULL, labs_id != NULL};
    int rc = tfd_read(&f, ds, want_labs, fold, (int)split, err);
    if (f.mat && Mat_Close(f.mat) != 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot close", path);
    Mat_VarFree(f.images);
    Mat_VarFree(f.folds);
    Mat_VarFree(f.labs[0]);
    Mat_VarFree(f.labs[1]);
    free(f.sel);
    if (rc) {
        mg_dataset_free(ds);
        free(f.lab_out[0]);
        free(f.lab_out[1]);
        return mg_file_one_line(err); /* the file's name, and libmatio's words, on one line */
    }
    if (labs_ex)
        *labs_ex = f.lab_out[0];
    if (labs_id)
        *labs_id = f.lab_out[1];
    return 0;
}

int mg_tfd_expression_classes(int32_t *labs_ex, int n, const char *path, const char *split,
                              mg_error *err)
{
    for (int i = 0; i < n; i++) {
        if (labs_ex[i] == -1)
            return mg_fail(err, "%s: example %d of the %s split has no expression label "
                                "(labs_ex -1, or no labs_ex)",
                           path, i, split);
        if (labs_ex[i] < 1 || labs_ex[i] > 7)
            return mg_fail(err, "%s: example %d of the %s split has labs_ex %ld; TFD's "
                                "expression labels are 1 to 7",
                           path, i, split, (long)labs_ex[i]);
    }
    for (int i = 0; i < n; i++)
        labs_ex[i] -= 1;
    return 0;
}
