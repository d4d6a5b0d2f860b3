/* HDF5 input files: a dataset of images (N, C, H, W) or (N, D), uint8 or float, as h5py writes
 * NumPy arrays, and optionally integer labels (N).
 *
 * The file is untrusted input: shape and element type are checked before anything is allocated,
 * and only the selected examples are read (a hyperslab of the first axis), a block at a time, so
 * a part of a file bigger than memory can be used and memory holds the examples once plus one
 * block. Every float is checked: NaN or Inf in training data would only show up, much later, as
 * a NaN loss.
 *
 * What mg_h5data_write makes (the format the readers above accept, plus provenance):
 *   /          attributes format = "mpigan-data", format_version = 1, source, created,
 *              channels, height, width
 *   /images    (N, C, H, W) uint8 when every value is a byte / 255 exactly as the readers make it,
 *              else float32; chunks of up to 256 examples, shuffle + gzip level 1 + Fletcher32
 *   /labels    (N) int32, when given */
#include "mpigan/h5data.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"

#define H5DATA_FORMAT "mpigan-data"
#define H5DATA_VERSION 1
/* 4096 x 4096 pixels per example, as for IDX files: far above any image a GAN here trains on,
 * and small enough that no product of sizes below can overflow 64 bits. */
#define H5DATA_MAX_EXAMPLE (1u << 24)
/* Bytes read or written per HDF5 call (at least one example). */
#define H5DATA_BLOCK_BYTES ((size_t)16 << 20)
/* Examples per chunk when writing: 256 CIFAR-10 images are 768 KiB as bytes, 3 MiB as float32. */
#define H5DATA_CHUNK_EXAMPLES 256

/* b / 255 rounded once to mg_real: what every reader of bytes stores. */
static void byte_lut(mg_real *lut)
{
    for (int b = 0; b < 256; b++)
        lut[b] = (mg_real)b / (mg_real)255;
}

/* "16-bit integers", "signed 8-bit integers", "16-bit floats", "string values". */
static void describe_type(char *buf, size_t n, const mg_h5_info *info)
{
    if (info->cls == H5T_INTEGER)
        snprintf(buf, n, "%s%zu-bit integers", info->size == 1 && info->is_signed ? "signed " : "",
                 8 * info->size);
    else if (info->cls == H5T_FLOAT)
        snprintf(buf, n, "%zu-bit floats", 8 * info->size);
    else {
        char t[32];
        mg_h5_type_str(t, sizeof t, info);
        snprintf(buf, n, "%s values", t);
    }
}

/* Opens the description of dataset name, which must exist: "<path>: no dataset <name>". */
static int dataset_info(hid_t f, const char *path, const char *name, mg_h5_info *info,
                        mg_error *err)
{
    int there = mg_h5r_exists(f, path, name, err);
    if (there < 0)
        return -1;
    if (there == 0)
        return mg_fail(err, "%s: no dataset %s", path, name);
    return mg_h5r_info(f, path, name, info, err);
}

/* Checks /images and finds the example shape (C, H, W): (N, D) is (N, 1, 1, D). */
static int check_images(const char *path, const char *name, const mg_h5_info *in, int *chw,
                        mg_error *err)
{
    char shape[160], type[64];
    mg_h5_shape_str(shape, sizeof shape, in->rank, in->dims);
    if (in->rank != 4 && in->rank != 2)
        return mg_fail(err, "%s: %s has rank %d %s; images must be (N, C, H, W) or (N, D)", path,
                       name, in->rank, shape);
    int is_u8 = in->cls == H5T_INTEGER && in->size == 1 && !in->is_signed;
    int is_float = in->cls == H5T_FLOAT && (in->size == 4 || in->size == 8);
    if (!is_u8 && !is_float) {
        describe_type(type, sizeof type, in);
        return mg_fail(err, "%s: %s holds %s; images must be uint8 or float", path, name, type);
    }
    hsize_t e[3] = {1, 1, in->dims[1]};
    if (in->rank == 4)
        memcpy(e, in->dims + 1, sizeof e);
    /* Each size is checked before it is multiplied in, so the product stays below 2^48. */
    hsize_t per = 1;
    for (int i = 0; i < 3; i++) {
        if (e[i] == 0 || e[i] > H5DATA_MAX_EXAMPLE || per * e[i] > H5DATA_MAX_EXAMPLE)
            return mg_fail(err, "%s: %s has shape %s; an example must hold 1 to %u values", path,
                           name, shape, H5DATA_MAX_EXAMPLE);
        per *= e[i];
        chw[i] = (int)e[i];
    }
    if (in->dims[0] > INT_MAX)
        return mg_fail(err, "%s: %s holds %llu examples, more than the limit %d", path, name,
                       (unsigned long long)in->dims[0], INT_MAX);
    return 0;
}

/* Converts nb examples of dim floats (float or double, as read) into x, checking each value:
 * NaN and Inf are refused, and a double beyond mg_real's range. `first` numbers the examples in
 * the file, for messages. */
static int convert_floats(mg_real *x, const void *buf, int is_double, size_t nb, size_t dim,
                          long long first, const char *path, const char *name, mg_error *err)
{
    for (size_t i = 0; i < nb; i++) {
        for (size_t j = 0; j < dim; j++) {
            size_t k = i * dim + j;
            double v = is_double ? ((const double *)buf)[k] : ((const float *)buf)[k];
            if (isnan(v))
                return mg_fail(err, "%s: %s example %lld holds NaN", path, name,
                               first + (long long)i);
            if (isinf(v))
                return mg_fail(err, "%s: %s example %lld holds %sInf", path, name,
                               first + (long long)i, v < 0 ? "-" : "");
            x[k] = (mg_real)v;
            if (isinf(x[k]))
                return mg_fail(err, "%s: %s example %lld holds %g, beyond the range of %s", path,
                               name, first + (long long)i, v, MG_REAL_NAME);
        }
    }
    return 0;
}

/* Reads examples [first, first + n) of images (checked: in) into ds->x, a block at a time. */
static int read_images(hid_t f, const char *path, const char *name, const mg_h5_info *in,
                       hsize_t first, mg_dataset *ds, mg_error *err)
{
    int is_u8 = in->cls == H5T_INTEGER;
    size_t esz = is_u8 ? 1 : in->size;
    hid_t mem = is_u8 ? H5T_NATIVE_UCHAR : esz == 8 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
    size_t dim = ds->dim;
    size_t block = H5DATA_BLOCK_BYTES / (dim * esz);
    block = block < 1 ? 1 : block;
    block = block > (size_t)ds->n ? (size_t)ds->n : block;
    if (block == 0)
        return 0;
    void *buf = malloc(block * dim * esz); /* (block, dim) as in the file */
    if (!buf)
        return mg_fail(err, "%s: out of memory (%zu bytes)", path, block * dim * esz);
    mg_real lut[256];
    byte_lut(lut);
    int rc = 0;
    for (size_t i0 = 0; i0 < (size_t)ds->n && rc == 0; i0 += block) {
        size_t nb = (size_t)ds->n - i0 < block ? (size_t)ds->n - i0 : block;
        mg_real *x = ds->x + i0 * dim; /* (nb, dim) */
        rc = mg_h5r_rows(f, path, name, mem, in->rank, in->dims, first + i0, nb, buf, err);
        if (rc == 0 && is_u8) {
            const unsigned char *b = buf;
            for (size_t k = 0; k < nb * dim; k++)
                x[k] = lut[b[k]];
        } else if (rc == 0) {
            rc = convert_floats(x, buf, esz == 8, nb, dim, (long long)(first + i0), path, name,
                                err);
        }
    }
    free(buf);
    return rc;
}

/* Checks labels against the N of images and reads rows [first, first + n) as int32. */
static int read_labels(hid_t f, const char *path, const char *name, const char *images,
                       hsize_t n_images, hsize_t first, int n, int32_t **labels, mg_error *err)
{
    mg_h5_info in;
    char shape[160], type[64];
    if (dataset_info(f, path, name, &in, err))
        return -1;
    if (in.rank != 1 || in.dims[0] != n_images) {
        mg_h5_shape_str(shape, sizeof shape, in.rank, in.dims);
        return mg_fail(err, "%s: %s has shape %s, %s has %llu examples", path, name, shape,
                       images, (unsigned long long)n_images);
    }
    if (in.cls != H5T_INTEGER) {
        mg_h5_type_str(type, sizeof type, &in);
        return mg_fail(err, "%s: %s holds %s; labels must be integers", path, name, type);
    }
    int32_t *lab = malloc(n > 0 ? (size_t)n * sizeof *lab : 1); /* (n) */
    if (!lab)
        return mg_fail(err, "%s: out of memory", path);
    /* Any integer type: HDF5 converts (and clamps) to int32. */
    if (mg_h5r_rows(f, path, name, H5T_NATIVE_INT32, 1, in.dims, first, (hsize_t)n, lab, err)) {
        free(lab);
        return -1;
    }
    *labels = lab;
    return 0;
}

int mg_h5data_read(mg_dataset *ds, int32_t **labels, const char *path, const char *images,
                   const char *labels_name, int first, int count, mg_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (labels)
        *labels = NULL;
    if (!images) {
        mg_fail(err, "%s: no images dataset named", path);
        return mg_file_one_line(err);
    }
    hid_t f;
    if (mg_h5_open(&f, path, 0, err))
        return -1;
    mg_h5_info in;
    int chw[3];
    int rc = dataset_info(f, path, images, &in, err);
    if (rc == 0)
        rc = check_images(path, images, &in, chw, err);
    long long n_file = rc == 0 ? (long long)in.dims[0] : 0; /* <= INT_MAX, checked */
    long long end = count < 0 ? n_file : (long long)first + count;
    if (rc == 0 && (first < 0 || first > n_file || end > n_file)) {
        if (count < 0)
            rc = mg_fail(err, "%s: examples [%d, end) asked for, %s holds %lld", path, first,
                         images, n_file);
        else
            rc = mg_fail(err, "%s: examples [%d, %lld) asked for, %s holds %lld", path, first,
                         end, images, n_file);
    }
    int n = rc == 0 ? (int)(end - first) : 0; /* in [0, INT_MAX]: inside the file */
    int32_t *lab = NULL;
    if (rc == 0 && labels && labels_name)
        rc = read_labels(f, path, labels_name, images, in.dims[0], (hsize_t)first, n, &lab, err);
    mg_error alloc;
    if (rc == 0 && (rc = mg_dataset_alloc(ds, n, chw[0], chw[1], chw[2], &alloc)))
        rc = mg_fail(err, "%s: %s", path, alloc.msg);
    if (rc == 0)
        rc = read_images(f, path, images, &in, (hsize_t)first, ds, err);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot close", path);
    if (rc) {
        free(lab);
        mg_dataset_free(ds);
        return mg_file_one_line(err); /* the file's and the datasets' names on one line */
    }
    if (labels)
        *labels = lab;
    return 0;
}

/* ---- writing ---- */

typedef struct {
    const mg_dataset *ds;
    const int32_t *labels;
    const char *source;
    int as_bytes; /* every value is lut[b] for a byte b */
} h5data_out;

/* 1 if every value is exactly b / 255 as the readers store it (so uint8 loses nothing), 0 if
 * not, -1 with what is wrong if a value cannot be stored at all: a file the reader refuses must
 * not be written. */
static int all_bytes(const mg_dataset *ds, mg_error *what)
{
    mg_real lut[256];
    byte_lut(lut);
    int bytes = 1;
    for (int i = 0; i < ds->n; i++) {
        const mg_real *x = ds->x + (size_t)i * ds->dim; /* (dim) */
        for (size_t j = 0; j < ds->dim; j++) {
            double v = x[j];
            if (isnan(v))
                return mg_fail(what, "example %d holds NaN", i);
            if (isinf(v))
                return mg_fail(what, "example %d holds %sInf", i, v < 0 ? "-" : "");
            if (fabs(v) > FLT_MAX)
                return mg_fail(what, "example %d holds %g, beyond the range of float32", i, v);
            if (bytes) {
                /* v in [0, 1] (else rint is out of the table's range), then exactly lut[b]. */
                double b = rint(v * 255.0);
                bytes = v >= 0.0 && v <= 1.0 && x[j] == lut[(int)b];
            }
        }
    }
    return bytes;
}

/* Chunks of whole examples, at most H5DATA_BLOCK_BYTES each (at least one example), then
 * shuffle (groups the bytes of floats: better compression), gzip level 1 (fast; pixels compress
 * well already) and Fletcher32 (damaged data fails to read instead of loading as other numbers).
 */
static hid_t images_dcpl(const hsize_t *dims, size_t esz, hsize_t *rows_out)
{
    size_t per = (size_t)dims[1] * dims[2] * dims[3] * esz;
    hsize_t rows = dims[0] < H5DATA_CHUNK_EXAMPLES ? dims[0] : H5DATA_CHUNK_EXAMPLES;
    if (rows > 1 && rows * per > H5DATA_BLOCK_BYTES)
        rows = H5DATA_BLOCK_BYTES / per > 1 ? H5DATA_BLOCK_BYTES / per : 1;
    *rows_out = rows;
    hsize_t chunk[4] = {rows, dims[1], dims[2], dims[3]};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl >= 0 && (H5Pset_chunk(dcpl, 4, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
                      H5Pset_deflate(dcpl, 1) < 0 || H5Pset_fletcher32(dcpl) < 0)) {
        mg_h5_close(dcpl);
        return -1;
    }
    return dcpl;
}

/* Writes x as bytes, one chunk's worth of examples at a time, through a byte buffer. */
static int write_bytes(hid_t dset, hid_t fspace, const mg_dataset *ds, hsize_t rows)
{
    unsigned char *b = malloc((size_t)rows * ds->dim); /* (rows, dim) */
    if (!b)
        return -1;
    int rc = 0;
    for (hsize_t i0 = 0; i0 < (hsize_t)ds->n && rc == 0; i0 += rows) {
        hsize_t nb = (hsize_t)ds->n - i0 < rows ? (hsize_t)ds->n - i0 : rows;
        const mg_real *x = ds->x + (size_t)i0 * ds->dim; /* (nb, dim) */
        for (size_t k = 0; k < (size_t)nb * ds->dim; k++)
            b[k] = (unsigned char)rint(x[k] * 255.0); /* exact: all_bytes checked */
        hsize_t start[4] = {i0, 0, 0, 0};
        hsize_t size[4] = {nb, (hsize_t)ds->channels, (hsize_t)ds->height, (hsize_t)ds->width};
        hid_t mspace = H5Screate_simple(4, size, NULL);
        if (mspace < 0 ||
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, size, NULL) < 0 ||
            H5Dwrite(dset, H5T_NATIVE_UCHAR, mspace, fspace, H5P_DEFAULT, b) < 0)
            rc = -1;
        mg_h5_close(mspace);
    }
    free(b);
    return rc;
}

static int write_images(hid_t f, const h5data_out *o, mg_error *what)
{
    const mg_dataset *ds = o->ds;
    hsize_t dims[4] = {(hsize_t)ds->n, (hsize_t)ds->channels, (hsize_t)ds->height,
                       (hsize_t)ds->width};
    hid_t ftype = o->as_bytes ? H5T_STD_U8LE : H5T_IEEE_F32LE;
    hid_t space = H5Screate_simple(4, dims, NULL);
    hsize_t rows; /* examples per chunk */
    hid_t dcpl = images_dcpl(dims, o->as_bytes ? 1 : 4, &rows), dset = -1;
    if (space >= 0 && dcpl >= 0)
        dset = H5Dcreate2(f, "/images", ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    mg_h5_close(dcpl);
    if (dset < 0) {
        mg_h5_close(space);
        return mg_fail(what, "cannot create /images");
    }
    int rc;
    if (o->as_bytes)
        rc = write_bytes(dset, space, ds, rows);
    else /* HDF5 converts mg_real to float32 (exact when mg_real is float) */
        rc = H5Dwrite(dset, MG_H5_REAL_MEM, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->x) < 0 ? -1 : 0;
    if (H5Dclose(dset) < 0)
        rc = -1;
    if (H5Sclose(space) < 0)
        rc = -1;
    if (rc)
        return mg_fail(what, "cannot write /images");
    return 0;
}

static int fill_data(hid_t f, const void *ctx, mg_error *what)
{
    const h5data_out *o = ctx;
    const mg_dataset *ds = o->ds;
    const int version = H5DATA_VERSION;
    char created[32];
    mg_h5_now_iso8601(created, sizeof created);
    if (mg_h5w_attr_str(f, "/", "format", H5DATA_FORMAT, what) ||
        mg_h5w_attr(f, "/", "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, what) ||
        mg_h5w_attr_str(f, "/", "source", o->source ? o->source : "", what) ||
        mg_h5w_attr_str(f, "/", "created", created, what) ||
        mg_h5w_attr(f, "/", "channels", H5T_STD_I32LE, H5T_NATIVE_INT, &ds->channels, what) ||
        mg_h5w_attr(f, "/", "height", H5T_STD_I32LE, H5T_NATIVE_INT, &ds->height, what) ||
        mg_h5w_attr(f, "/", "width", H5T_STD_I32LE, H5T_NATIVE_INT, &ds->width, what))
        return -1;
    if (write_images(f, o, what))
        return -1;
    if (o->labels) {
        hsize_t n = (hsize_t)ds->n;
        if (mg_h5w_dataset(f, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &n, o->labels,
                           what))
            return -1;
    }
    return 0;
}

static int h5data_write(const char *path, const mg_dataset *ds, const int32_t *labels,
                        const char *source, mg_error *err)
{
    mg_error what;
    if (!ds || !ds->x || ds->n < 1 || ds->channels < 1 || ds->height < 1 || ds->width < 1 ||
        ds->dim != (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width)
        return mg_fail(err, "%s: cannot write data: no examples, or a bad shape", path);
    if (ds->dim > H5DATA_MAX_EXAMPLE)
        return mg_fail(err, "%s: cannot write data: examples of %zu values, more than the limit "
                       "%u", path, ds->dim, H5DATA_MAX_EXAMPLE);
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
        return mg_fail(err, "%s: cannot write data: this HDF5 library has no gzip filter", path);
    int bytes = all_bytes(ds, &what);
    if (bytes < 0)
        return mg_fail(err, "%s: cannot write data: %s", path, what.msg);
    h5data_out o = {.ds = ds, .labels = labels, .source = source, .as_bytes = bytes};
    const double size = (double)ds->n * ds->dim * (bytes ? 1 : sizeof(float)) +
                        (labels ? 4.0 * ds->n : 0);
    if (mg_h5_write_new(path, fill_data, &o, size, &what))
        return mg_fail(err, "%s: cannot write data: %s", path, what.msg);
    return 0;
}

int mg_h5data_write(const char *path, const mg_dataset *ds, const int32_t *labels,
                    const char *source, mg_error *err)
{
    return h5data_write(path, ds, labels, source, err) ? mg_file_one_line(err) : 0;
}
