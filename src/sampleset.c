/* Sample sets in HDF5 (README.md, "Sample files").
 *
 * A run's snapshots (samples.h5):
 *   /          attributes format = "mpigan-samples", format_version, mpigan_version, created
 *   /samples   float32 (snapshots, n, C, H, W), extendible along the first axis, one chunk per
 *              snapshot: appending writes one chunk and reading one snapshot reads one chunk
 *   /steps     int64 (snapshots), extendible: the step each snapshot was taken after
 *   /z         float32 (n, noise_dim): the fixed noise every snapshot was generated from
 *   /labels    int32 (n), a conditional G's: the class each sample was generated for
 * A file of `mpigan sample`: /samples (n, C, H, W), /z, /labels (conditional), attributes format,
 * format_version, checkpoint, step. Always float32 on disk: HDF5 converts from mg_real when it is double. Every
 * dataset has the Fletcher32 checksum filter. */
#include "mpigan/sampleset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5io.h"

#ifndef MPIGAN_VERSION
#error "MPIGAN_VERSION must be defined by the build"
#endif

#define SAMPLES_FORMAT "mpigan-samples"
#define SAMPLES_VERSION 1
#define STEPS_CHUNK 64 /* steps per chunk of /steps: 512 bytes */

static int check_args(const char *path, const char *verb, const mg_real *x, mg_image_shape s,
                      const mg_real *z, int noise_dim, mg_error *err)
{
    if (!x || !z || s.n < 1 || s.channels < 1 || s.height < 1 || s.width < 1 || noise_dim < 1)
        return mg_fail(err, "%s: cannot %s samples: empty samples or noise", path, verb);
    /* HDF5 chunks (one snapshot each) are limited to 4 GiB. */
    double bytes = 4.0 * s.n * s.channels * s.height * s.width;
    if (bytes >= 4294967296.0)
        return mg_fail(err, "%s: cannot %s samples: %.0f bytes per snapshot, more than HDF5's "
                            "4 GiB chunk limit", path, verb, bytes);
    return 0;
}

static void shape_dims(hsize_t *dims, mg_image_shape s)
{
    dims[0] = (hsize_t)s.n;
    dims[1] = (hsize_t)s.channels;
    dims[2] = (hsize_t)s.height;
    dims[3] = (hsize_t)s.width;
}

static int write_header(hid_t f, mg_error *what)
{
    const int version = SAMPLES_VERSION;
    char created[32];
    mg_h5_now_iso8601(created, sizeof created);
    if (mg_h5w_attr_str(f, "/", "format", SAMPLES_FORMAT, what) ||
        mg_h5w_attr(f, "/", "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, what) ||
        mg_h5w_attr_str(f, "/", "mpigan_version", MPIGAN_VERSION, what) ||
        mg_h5w_attr_str(f, "/", "created", created, what))
        return -1;
    return 0;
}

/* A dataset of `rank` dims whose first axis is unlimited and starts at 1 row, holding buf. */
static int create_extendible(hid_t f, const char *name, hid_t file_type, hid_t mem_type, int rank,
                             const hsize_t *dims, const hsize_t *chunk, const void *buf,
                             mg_error *what)
{
    hsize_t maxdims[MG_H5_MAX_RANK];
    for (int i = 0; i < rank; i++)
        maxdims[i] = i == 0 ? H5S_UNLIMITED : dims[i];
    hid_t space = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dset = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
        H5Pset_fletcher32(dcpl) >= 0)
        dset = H5Dcreate2(f, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = dset >= 0 && H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0 ? 0
                                                                                           : -1;
    if (dset >= 0 && H5Dclose(dset) < 0)
        rc = -1;
    mg_h5_close(dcpl);
    mg_h5_close(space);
    if (rc)
        return mg_fail(what, "cannot write %s", name);
    return 0;
}

typedef struct {
    const mg_real *x, *z;
    const int32_t *labels; /* (n) or NULL */
    mg_image_shape shape;
    int noise_dim;
    const char *checkpoint;
    int64_t step;
} sample_args;

/* /labels (n) int32, when the samples have labels. */
static int write_labels(hid_t f, const sample_args *a, mg_error *what)
{
    const hsize_t n = (hsize_t)a->shape.n;
    if (!a->labels)
        return 0;
    return mg_h5w_dataset(f, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &n, a->labels, what);
}

/* Writes a new file at path through path.tmp; `fill` writes the content. */
/* Bytes of a sample set's images and noise, as float32. */
static double image_bytes(mg_image_shape shape, int noise_dim)
{
    return (double)shape.n * ((double)shape.channels * shape.height * shape.width + noise_dim) *
           sizeof(float);
}

static int write_new(const char *path, const char *verb,
                     int (*fill)(hid_t f, const void *ctx, mg_error *what), const void *ctx,
                     double bytes, mg_error *err)
{
    mg_error what;
    if (mg_h5_write_new(path, fill, ctx, bytes, &what))
        return mg_fail(err, "%s: cannot %s samples: %s", path, verb, what.msg);
    return 0;
}

static int fill_snapshots(hid_t f, const void *ctx, mg_error *what)
{
    const sample_args *a = ctx;
    hsize_t dims[5] = {1}, chunk[5], zdims[2] = {(hsize_t)a->shape.n, (hsize_t)a->noise_dim};
    shape_dims(dims + 1, a->shape);
    memcpy(chunk, dims, sizeof chunk);
    const hsize_t one = 1, steps_chunk = STEPS_CHUNK;
    if (write_header(f, what) ||
        create_extendible(f, "/samples", H5T_IEEE_F32LE, MG_H5_REAL_MEM, 5, dims, chunk, a->x,
                          what) ||
        create_extendible(f, "/steps", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &one, &steps_chunk,
                          &a->step, what) ||
        mg_h5w_dataset(f, "/z", H5T_IEEE_F32LE, MG_H5_REAL_MEM, 2, zdims, a->z, what))
        return -1;
    return write_labels(f, a, what);
}

/* Grows dataset name (whose extent is dims) by one row along axis 0 and writes buf there. */
static int append_row(hid_t f, const char *name, hid_t mem_type, int rank, const hsize_t *dims,
                      const void *buf, mg_error *what)
{
    hsize_t grown[MG_H5_MAX_RANK], start[MG_H5_MAX_RANK] = {0}, count[MG_H5_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        grown[i] = dims[i];
        count[i] = dims[i];
    }
    grown[0] = dims[0] + 1;
    start[0] = dims[0];
    count[0] = 1;
    int rc = -1;
    hid_t dset = H5Dopen2(f, name, H5P_DEFAULT), fspace = -1, mspace = -1;
    if (dset >= 0 && H5Dset_extent(dset, grown) >= 0 && (fspace = H5Dget_space(dset)) >= 0 &&
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
        (mspace = H5Screate_simple(rank, count, NULL)) >= 0 &&
        H5Dwrite(dset, mem_type, mspace, fspace, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    mg_h5_close(mspace);
    mg_h5_close(fspace);
    if (dset >= 0 && H5Dclose(dset) < 0)
        rc = -1;
    if (rc)
        return mg_fail(what, "cannot write %s", name);
    return 0;
}

/* A conditional G's snapshots hold their labels: the same as this run's, or none for both. */
static int check_labels(hid_t f, const char *path, const sample_args *a, mg_error *err)
{
    const int there = mg_h5r_exists(f, path, "/labels", err);
    if (there < 0)
        return -1;
    if (!there != !a->labels)
        return mg_fail(err, "%s: holds samples %s labels, this run's G is %s", path,
                       there ? "with" : "without", a->labels ? "conditional" : "unconditional");
    if (!there)
        return 0;
    const hsize_t n = (hsize_t)a->shape.n;
    mg_h5_info info;
    if (mg_h5r_info(f, path, "/labels", &info, err))
        return -1;
    if (info.rank != 1 || info.dims[0] != n || info.cls != H5T_INTEGER) {
        char have[128];
        mg_h5_shape_str(have, sizeof have, info.rank, info.dims);
        return mg_fail(err, "%s: /labels has shape %s, this run labels %d samples", path, have,
                       a->shape.n);
    }
    int32_t *stored = mg_xmalloc((size_t)n * sizeof *stored);
    int rc = mg_h5r_dataset(f, path, "/labels", H5T_NATIVE_INT32, 1, &n, stored, err);
    if (rc == 0 && memcmp(stored, a->labels, (size_t)n * sizeof *stored) != 0)
        rc = mg_fail(err, "%s: holds samples of other labels /labels than this run's (another "
                          "run?)",
                     path);
    free(stored);
    return rc;
}

/* The existing file must hold snapshots of this shape, from this noise. */
static int check_existing(hid_t f, const char *path, const sample_args *a, hsize_t *n_snap,
                          mg_error *err)
{
    mg_h5_info s, z, st;
    char have[128], want[128];
    hsize_t dims[5], zdims[2] = {(hsize_t)a->shape.n, (hsize_t)a->noise_dim};
    shape_dims(dims + 1, a->shape);
    if (mg_h5r_format(f, path, SAMPLES_FORMAT, SAMPLES_VERSION, "sample file", err) ||
        mg_h5r_info(f, path, "/samples", &s, err))
        return -1;
    if (s.rank != 5) {
        mg_h5_shape_str(have, sizeof have, s.rank, s.dims);
        return mg_fail(err,
                       "%s: /samples has shape %s, not that of snapshots "
                       "(snapshots, %d, %d, %d, %d)",
                       path, have, a->shape.n, a->shape.channels, a->shape.height, a->shape.width);
    }
    if (memcmp(s.dims + 1, dims + 1, 4 * sizeof *dims) != 0) {
        mg_h5_shape_str(have, sizeof have, 4, s.dims + 1);
        mg_h5_shape_str(want, sizeof want, 4, dims + 1);
        return mg_fail(err, "%s: holds samples of shape %s, this run makes %s", path, have, want);
    }
    if (mg_h5r_info(f, path, "/z", &z, err) || mg_h5r_info(f, path, "/steps", &st, err))
        return -1;
    if (z.rank != 2 || z.dims[0] != zdims[0] || z.dims[1] != zdims[1]) {
        mg_h5_shape_str(have, sizeof have, z.rank, z.dims);
        mg_h5_shape_str(want, sizeof want, 2, zdims);
        return mg_fail(err, "%s: holds noise /z of shape %s, this run draws %s", path, have, want);
    }
    if (st.rank != 1 || st.dims[0] != s.dims[0] || st.cls != H5T_INTEGER) {
        mg_h5_shape_str(have, sizeof have, st.rank, st.dims);
        return mg_fail(err, "%s: /steps has shape %s, /samples holds %llu snapshots", path, have,
                       (unsigned long long)s.dims[0]);
    }
    /* Snapshots are comparable only when made from the same noise: the same run, resumed. The
     * stored z is float32; compare this run's z rounded the same way. */
    const size_t nz = (size_t)a->shape.n * (size_t)a->noise_dim;
    mg_real *stored = mg_xmalloc(nz * sizeof *stored), *mine = mg_xmalloc(nz * sizeof *mine);
    int rc = mg_h5r_dataset(f, path, "/z", MG_H5_REAL_MEM, 2, zdims, stored, err);
    for (size_t i = 0; i < nz; i++)
        mine[i] = (mg_real)(float)a->z[i];
    if (rc == 0 && memcmp(stored, mine, nz * sizeof *mine) != 0)
        rc = mg_fail(err, "%s: holds samples of other noise /z than this run's (another run?)",
                     path);
    free(stored);
    free(mine);
    *n_snap = s.dims[0];
    return rc ? rc : check_labels(f, path, a, err);
}

int mg_sampleset_append(const char *path, const mg_real *x, mg_image_shape shape, const mg_real *z,
                        int noise_dim, int64_t step, mg_error *err)
{
    return mg_sampleset_append_labeled(path, x, shape, z, noise_dim, NULL, step, err);
}

int mg_sampleset_append_labeled(const char *path, const mg_real *x, mg_image_shape shape,
                                const mg_real *z, int noise_dim, const int32_t *labels,
                                int64_t step, mg_error *err)
{
    mg_h5_quiet();
    if (check_args(path, "append", x, shape, z, noise_dim, err))
        return -1;
    const sample_args a = {.x = x, .z = z, .labels = labels, .shape = shape,
                           .noise_dim = noise_dim, .step = step};
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return mg_fail(err, "%s: cannot open: %s", path, strerror(errno));
        /* A new file goes through a temporary name too: a crash never leaves half a header. */
        return write_new(path, "append", fill_snapshots, &a, image_bytes(shape, noise_dim), err);
    }
    /* Appended in place: never through a link, never into a FIFO or a device. */
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, "%s: cannot append samples: %s", path,
                       S_ISLNK(st.st_mode) ? "a symbolic link, not a file" : "not a regular file");

    /* An append writes in place: one that ran out of space half-way would leave the file
     * damaged, with every earlier snapshot. Room for it is checked first. */
    mg_error room;
    if (mg_file_room(path, image_bytes(shape, 0), &room))
        return mg_fail(err, "%s: cannot append samples: %s", path, room.msg);
    hid_t f;
    if (mg_h5_open(&f, path, 1, err))
        return -1;
    hsize_t n_snap = 0;
    if (check_existing(f, path, &a, &n_snap, err)) {
        mg_h5_close(f);
        return -1;
    }
    mg_error what;
    hsize_t dims[5] = {n_snap};
    shape_dims(dims + 1, shape);
    /* /samples first: a crash between the two leaves /steps short, which the next append
     * reports rather than misattributing a snapshot to a step. */
    int rc = append_row(f, "/samples", MG_H5_REAL_MEM, 5, dims, x, &what);
    if (rc == 0)
        rc = append_row(f, "/steps", H5T_NATIVE_INT64, 1, &n_snap, &step, &what);
    if (mg_h5_finish(f, rc ? NULL : &what))
        rc = -1;
    if (rc)
        return mg_fail(err, "%s: cannot append samples: %s", path, what.msg);
    return 0;
}

static int fill_samples(hid_t f, const void *ctx, mg_error *what)
{
    const sample_args *a = ctx;
    hsize_t dims[4], zdims[2] = {(hsize_t)a->shape.n, (hsize_t)a->noise_dim};
    shape_dims(dims, a->shape);
    if (write_header(f, what) ||
        mg_h5w_attr_str(f, "/", "checkpoint", a->checkpoint ? a->checkpoint : "", what) ||
        mg_h5w_attr(f, "/", "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &a->step, what) ||
        mg_h5w_dataset(f, "/samples", H5T_IEEE_F32LE, MG_H5_REAL_MEM, 4, dims, a->x, what) ||
        mg_h5w_dataset(f, "/z", H5T_IEEE_F32LE, MG_H5_REAL_MEM, 2, zdims, a->z, what))
        return -1;
    return write_labels(f, a, what);
}

int mg_sampleset_write(const char *path, const mg_real *x, mg_image_shape shape, const mg_real *z,
                       int noise_dim, const char *checkpoint, int64_t step, mg_error *err)
{
    return mg_sampleset_write_labeled(path, x, shape, z, noise_dim, NULL, checkpoint, step, err);
}

int mg_sampleset_write_labeled(const char *path, const mg_real *x, mg_image_shape shape,
                               const mg_real *z, int noise_dim, const int32_t *labels,
                               const char *checkpoint, int64_t step, mg_error *err)
{
    mg_h5_quiet();
    if (check_args(path, "write", x, shape, z, noise_dim, err))
        return -1;
    const sample_args a = {.x = x, .z = z, .labels = labels, .shape = shape,
                           .noise_dim = noise_dim, .checkpoint = checkpoint, .step = step};
    return write_new(path, "write", fill_samples, &a, image_bytes(shape, noise_dim), err);
}

int mg_sampleset_trim(const char *path, int64_t step, int64_t *kept, mg_error *err)
{
    mg_h5_quiet();
    *kept = 0;
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : mg_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, "%s: cannot trim samples: %s", path,
                       S_ISLNK(st.st_mode) ? "a symbolic link, not a file" : "not a regular file");
    hid_t f;
    if (mg_h5_open(&f, path, 1, err))
        return -1;
    mg_h5_info s_info, st_info;
    int rc = mg_h5r_format(f, path, SAMPLES_FORMAT, SAMPLES_VERSION, "sample file", err) ||
                     mg_h5r_info(f, path, "/samples", &s_info, err) ||
                     mg_h5r_info(f, path, "/steps", &st_info, err)
                 ? -1
                 : 0;
    if (rc == 0 && (s_info.rank != 5 || st_info.rank != 1 || st_info.cls != H5T_INTEGER ||
                    st_info.dims[0] != s_info.dims[0])) {
        char have[128];
        mg_h5_shape_str(have, sizeof have, st_info.rank, st_info.dims);
        rc = mg_fail(err, "%s: /steps has shape %s, /samples holds %llu snapshots", path, have,
                     (unsigned long long)s_info.dims[0]);
    }
    const hsize_t n = rc == 0 ? st_info.dims[0] : 0;
    int64_t *steps = mg_xmalloc((n ? n : 1) * sizeof *steps);
    if (rc == 0 && n > 0)
        rc = mg_h5r_dataset(f, path, "/steps", H5T_NATIVE_INT64, 1, &n, steps, err);
    /* Snapshots are in step order: keep those up to `step`, the ones a run resumed there has. */
    hsize_t k = 0;
    while (rc == 0 && k < n && steps[k] <= step)
        k++;
    free(steps);
    mg_error what = {{0}};
    if (rc == 0 && k < n) {
        /* /steps first: a crash between the two leaves /samples long, which the next append
         * reports rather than misattributing a snapshot. */
        hsize_t dims[5];
        memcpy(dims, s_info.dims, sizeof dims);
        dims[0] = k;
        hid_t d1 = H5Dopen2(f, "/steps", H5P_DEFAULT);
        if (d1 < 0 || H5Dset_extent(d1, &k) < 0)
            rc = mg_fail(&what, "cannot shorten /steps");
        mg_h5_close(d1);
        hid_t d2 = rc == 0 ? H5Dopen2(f, "/samples", H5P_DEFAULT) : -1;
        if (rc == 0 && (d2 < 0 || H5Dset_extent(d2, dims) < 0))
            rc = mg_fail(&what, "cannot shorten /samples");
        mg_h5_close(d2);
    }
    if (mg_h5_finish(f, rc ? NULL : &what))
        rc = -1;
    if (rc && what.msg[0])
        return mg_fail(err, "%s: cannot trim samples: %s", path, what.msg);
    *kept = (int64_t)k;
    return rc;
}
