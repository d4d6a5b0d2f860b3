/* The splits a configuration names, in any supported format (splits.h): the training split loaded
 * once per node, the validation and test splits, and the paper's preprocessing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/cifar10.h"
#include "mpigan/h5data.h"
#include "mpigan/idx.h"
#include "mpigan/splits.h"
#include "mpigan/tfd.h"
#include "h5io.h"

/* The training examples of a source of n examples: the first train_count (0: all but the last
 * valid_count, which validate). */
static int select_train(mg_dataset *ds, const mg_config *cfg, const char *what, mg_error *err)
{
    const int64_t have = ds->n;
    const int train = cfg->data.train_count, valid = cfg->data.valid_count;
    if ((int64_t)train + valid > have || (train == 0 && valid >= have))
        return mg_fail(err,
                       "%s: data.train_count %d + data.valid_count %d is more than the %lld "
                       "examples of the file",
                       what, train, valid, (long long)have);
    ds->n = train > 0 ? train : (int)(have - valid); /* the rest stays allocated, unused */
    return 0;
}

/* G's last layer makes the examples D sees, so the data's must have as many values. Checked from
 * a file's header before its data is read: a 1.6 MB gzip file whose 16-byte IDX header promises
 * 100 x 4096 x 4096 took 2.9 GB before train.c found it did not match. */
static int check_dim(const mg_config *cfg, const char *what, uint64_t dim, uint64_t c, uint64_t h,
                     uint64_t w, mg_error *err)
{
    const mg_net_spec *g = &cfg->generator.net;
    if (g->n_layers < 1)
        return 0;
    if (g->layers[g->n_layers - 1].op != MG_OP_DENSE) {
        /* A convolutional G: its output shape from its spec (a spec whose shapes do not chain is
         * the trainer's to report). */
        int oc, oh, ow;
        mg_error ignored;
        if (mg_net_out_shape(g, cfg->generator.noise_dim, 1, 1, &oc, &oh, &ow, &ignored) ||
            (uint64_t)oc * oh * ow == dim)
            return 0;
        return mg_fail(err,
                       "%s: the generator makes %dx%dx%d = %lld values per example but the data "
                       "has %llu (%llux%llux%llu)",
                       what, oc, oh, ow, (long long)oc * oh * ow, (unsigned long long)dim,
                       (unsigned long long)c, (unsigned long long)h, (unsigned long long)w);
    }
    if ((uint64_t)g->layers[g->n_layers - 1].units == dim)
        return 0;
    return mg_fail(err,
                   "%s: generator.layers.%d.units is %d but the data has %llu values per example "
                   "(%llux%llux%llu)",
                   what, g->n_layers - 1, g->layers[g->n_layers - 1].units,
                   (unsigned long long)dim, (unsigned long long)c, (unsigned long long)h,
                   (unsigned long long)w);
}

/* The header of an IDX image file, checked against the configuration. */
static int idx_header(mg_idx_header *h, const mg_config *cfg, const char *path, mg_error *err)
{
    if (mg_idx_read_header(h, path, err))
        return -1;
    if (h->ndims != 2 && h->ndims != 3)
        return 0; /* the reader says what is wrong */
    uint64_t height = h->ndims == 3 ? h->dims[1] : 1, width = h->dims[h->ndims - 1];
    return check_dim(cfg, path, height * width, 1, height, width, err);
}

static int read_idx(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    mg_idx_header h;
    const char *path = cfg->data.train_images;
    if (idx_header(&h, cfg, path, err))
        return -1;
    /* Read only what trains: the split is checked against the header first. */
    mg_dataset probe = {.n = (int)h.dims[0]};
    if (select_train(&probe, cfg, path, err))
        return -1;
    /* Pixels that stay pixels are read as bytes: no float copy of the whole set ever exists. */
    if (cfg->data.preprocess == MG_PREPROCESS_SCALE)
        return mg_idx_read_image_bytes(ds, path, 0, probe.n, err);
    return mg_idx_read_images(ds, path, 0, probe.n, err);
}

/* A file of CIFAR-10's folder data.path. */
static int cifar10_name(char *name, size_t n, const mg_config *cfg, const char *file,
                        mg_error *err)
{
    int len = snprintf(name, n, "%s/%s", cfg->data.path, file);
    if (len < 0 || (size_t)len >= n)
        return mg_fail(err, "%s/%s: path too long", cfg->data.path, file);
    return 0;
}

/* data_batch_1.bin ... data_batch_5.bin, all 50,000 examples of 3 x 32 x 32. */
static int read_cifar10_all(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    char names[5][MG_PATH_MAX + 32];
    const char *files[5];
    for (int i = 0; i < 5; i++) {
        char file[32];
        snprintf(file, sizeof file, "data_batch_%d.bin", i + 1);
        if (cifar10_name(names[i], sizeof names[i], cfg, file, err))
            return -1;
        files[i] = names[i];
    }
    if (check_dim(cfg, files[0], 3 * 32 * 32, 3, 32, 32, err))
        return -1;
    return mg_cifar10_read(ds, NULL, files, 5, err);
}

static int read_cifar10(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    if (read_cifar10_all(ds, cfg, err))
        return -1;
    char what[MG_PATH_MAX + 64];
    if (cifar10_name(what, sizeof what, cfg, "data_batch_{1..5}.bin", err))
        return -1;
    return select_train(ds, cfg, what, err);
}

static int read_tfd(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    if (mg_tfd_read(ds, NULL, NULL, cfg->data.path, cfg->data.fold,
                    (enum mg_tfd_split)cfg->data.split, err))
        return -1;
    return select_train(ds, cfg, cfg->data.path, err);
}

/* The shape of an HDF5 file's images, from the dataset's header, checked against the
 * configuration before any of it is read (a chunked, compressed dataset can inflate far beyond
 * its file). A file or dataset that cannot be probed is left to mg_h5data_read to report. */
static int hdf5_dims(const mg_config *cfg, const char *path, mg_error *err)
{
    hid_t f;
    mg_error ignored;
    if (mg_h5_open(&f, path, 0, &ignored))
        return 0;
    mg_h5_info in;
    int rc = 0;
    if (mg_h5r_exists(f, path, cfg->data.images, &ignored) == 1 &&
        mg_h5r_info(f, path, cfg->data.images, &in, &ignored) == 0 &&
        (in.rank == 2 || in.rank == 4)) {
        /* (N, D) is read as (N, 1, 1, D); (N, C, H, W) as it is. Each dim < 2^64, the product
         * saturated: only a match matters. */
        uint64_t c = in.rank == 4 ? in.dims[1] : 1, h = in.rank == 4 ? in.dims[2] : 1;
        uint64_t w = in.dims[in.rank - 1], dim = c;
        dim = h && dim > UINT64_MAX / h ? UINT64_MAX : dim * h;
        dim = w && dim > UINT64_MAX / w ? UINT64_MAX : dim * w;
        if (dim > 0) /* an empty example is the reader's to describe */
            rc = check_dim(cfg, path, dim, c, h, w, err);
    }
    H5Fclose(f);
    return rc;
}

static int read_hdf5(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    if (hdf5_dims(cfg, cfg->data.path, err))
        return -1;
    /* Labels do not train a GAN, but a named labels dataset is read, so that one that does not
     * match the images is an error now rather than in a later evaluation. */
    const char *labels_name = cfg->data.labels[0] ? cfg->data.labels : NULL;
    int32_t *labels = NULL;
    if (mg_h5data_read(ds, labels_name ? &labels : NULL, cfg->data.path, cfg->data.images,
                       labels_name, 0, -1, err))
        return -1;
    free(labels);
    return select_train(ds, cfg, cfg->data.path, err);
}

/* data.range for pixels as the file gives them ([0, 1] otherwise; GCN makes its own values). */
static int ranged(const mg_config *cfg)
{
    return cfg->data.preprocess == MG_PREPROCESS_SCALE &&
           (cfg->data.range[0] != 0 || cfg->data.range[1] != 1);
}

/* The preprocessing a configuration asks for, after the reader: GCN or data.range. */
static void preprocess(mg_dataset *ds, const mg_config *cfg)
{
    if (cfg->data.preprocess == MG_PREPROCESS_GCN)
        mg_gcn(ds, cfg->data.gcn_scale);
    else if (ranged(cfg))
        mg_dataset_rescale(ds, cfg->data.range[0], cfg->data.range[1]);
}

/* The training split as read, and GCN'd if asked: values of a file of pixels stay in [0, 1]. */
static int read_train(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    static const struct {
        const char *format;
        int (*read)(mg_dataset *, const mg_config *, mg_error *);
    } readers[] = {
        {"idx", read_idx}, {"cifar10", read_cifar10}, {"tfd", read_tfd}, {"hdf5", read_hdf5}};
    memset(ds, 0, sizeof *ds);
    for (size_t i = 0; i < sizeof readers / sizeof *readers; i++) {
        if (strcmp(cfg->data.format, readers[i].format) != 0)
            continue;
        if (readers[i].read(ds, cfg, err)) {
            mg_dataset_free(ds);
            return mg_file_one_line(err);
        }
        if (cfg->data.preprocess == MG_PREPROCESS_GCN)
            mg_gcn(ds, cfg->data.gcn_scale);
        return 0;
    }
    mg_fail(err, "%s: data.format %s is not supported", cfg->source, cfg->data.format);
    return mg_file_one_line(err);
}

int mg_split_read_train(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    if (read_train(ds, cfg, err))
        return -1;
    if (ranged(cfg))
        mg_dataset_rescale(ds, cfg->data.range[0], cfg->data.range[1]);
    return 0;
}

/* Keeps rows [first, first + count) of ds, moved to the front (the rest stays allocated). */
static void keep_rows(mg_dataset *ds, int first, int count)
{
    if (first > 0)
        memmove(ds->x, ds->x + (size_t)first * ds->dim, (size_t)count * ds->dim * sizeof *ds->x);
    ds->n = count;
}

static int read_valid(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    const char *format = cfg->data.format;
    const int valid = cfg->data.valid_count;
    if (valid == 0) {
        if (!strcmp(format, "tfd"))
            return mg_tfd_read(ds, NULL, NULL, cfg->data.path, cfg->data.fold, MG_TFD_VALID, err);
        return mg_fail(err, "%s: data.valid_count is 0: there are no validation examples",
                       cfg->source);
    }
    if (!strcmp(format, "idx")) {
        mg_idx_header h;
        if (idx_header(&h, cfg, cfg->data.train_images, err))
            return -1;
        if (valid > (int64_t)h.dims[0])
            return mg_fail(err, "%s: data.valid_count %d is more than the %lld examples of the file",
                           cfg->data.train_images, valid, (long long)h.dims[0]);
        return mg_idx_read_images(ds, cfg->data.train_images, (int)h.dims[0] - valid, valid, err);
    }
    /* The other formats: the whole source, then its last valid_count examples. */
    int rc = !strcmp(format, "cifar10") ? read_cifar10_all(ds, cfg, err)
             : !strcmp(format, "tfd")   ? mg_tfd_read(ds, NULL, NULL, cfg->data.path, cfg->data.fold,
                                                      (enum mg_tfd_split)cfg->data.split, err)
             : hdf5_dims(cfg, cfg->data.path, err)
                 ? -1
                 : mg_h5data_read(ds, NULL, cfg->data.path, cfg->data.images, NULL, 0, -1, err);
    if (rc)
        return -1;
    if (valid > ds->n)
        return mg_fail(err, "%s: data.valid_count %d is more than the %d examples of the file",
                       cfg->data.path, valid, ds->n);
    keep_rows(ds, ds->n - valid, valid);
    return 0;
}

static int read_test(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    const char *format = cfg->data.format;
    if (!strcmp(format, "idx")) {
        if (!cfg->data.test_images[0])
            return mg_fail(err, "%s: data.test_images is not set: there is no test set",
                           cfg->source);
        mg_idx_header h;
        if (idx_header(&h, cfg, cfg->data.test_images, err))
            return -1;
        return mg_idx_read_images(ds, cfg->data.test_images, 0, -1, err);
    }
    if (!strcmp(format, "cifar10")) {
        char name[MG_PATH_MAX + 32];
        if (cifar10_name(name, sizeof name, cfg, "test_batch.bin", err) ||
            check_dim(cfg, name, 3 * 32 * 32, 3, 32, 32, err))
            return -1;
        const char *files[1] = {name};
        return mg_cifar10_read(ds, NULL, files, 1, err);
    }
    if (!strcmp(format, "tfd"))
        return mg_tfd_read(ds, NULL, NULL, cfg->data.path, cfg->data.fold, MG_TFD_TEST, err);
    if (!cfg->data.test_path[0])
        return mg_fail(err, "%s: data.test_path is not set: there is no test set", cfg->source);
    if (hdf5_dims(cfg, cfg->data.test_path, err))
        return -1;
    return mg_h5data_read(ds, NULL, cfg->data.test_path, cfg->data.images, NULL, 0, -1, err);
}

int mg_split_read(mg_dataset *ds, const mg_config *cfg, enum mg_split_kind which,
                          int max_count, mg_error *err)
{
    memset(ds, 0, sizeof *ds);
    if ((which == MG_SPLIT_VALID ? read_valid : read_test)(ds, cfg, err)) {
        mg_dataset_free(ds);
        return mg_file_one_line(err);
    }
    if (max_count > 0 && ds->n > max_count)
        keep_rows(ds, 0, max_count);
    preprocess(ds, cfg);
    return 0;
}

/* Rank 0: byte-valued examples held as floats (CIFAR-10, TFD, uint8 HDF5 read by the general
 * readers) are turned into bytes, 4 times smaller; other values stay as they are. */
static int compact(mg_dataset *ds, mg_error *err)
{
    const size_t n = (size_t)ds->n * ds->dim;
    if (ds->bytes || !mg_values_are_bytes(ds->x, n))
        return 0;
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return mg_fail(err, "out of memory for %zu bytes of training examples", n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)lrint(ds->x[i] * 255.0);
    free(ds->x);
    ds->x = NULL;
    ds->bytes = b;
    return 0;
}

int mg_split_load_train(mg_dataset *ds, const mg_config *cfg, const mg_comm *comm,
                          mg_error *err)
{
    const int rank = mg_comm_rank(comm);
    mg_dataset mine = {0};
    mg_comm_waiting_for(comm, "loading the training set");
    /* n, channels, height, width, kept as bytes; n = 0 means rank 0 failed */
    int shape[5] = {0};
    /* Values are turned into bytes while still in [0, 1]; data.range then maps the values, or
     * says what the bytes stand for (on every rank, below). */
    if (rank == 0 && read_train(&mine, cfg, err) == 0 && compact(&mine, err) == 0) {
        if (!mine.bytes && ranged(cfg))
            mg_dataset_rescale(&mine, cfg->data.range[0], cfg->data.range[1]);
        memcpy(shape, (int[5]){mine.n, mine.channels, mine.height, mine.width, mine.bytes != NULL},
               sizeof shape);
    }
    mg_comm_bcast(comm, shape, sizeof shape, 0);
    if (shape[0] == 0) {
        mg_dataset_free(&mine);
        return -1;
    }

    memset(ds, 0, sizeof *ds);
    ds->n = shape[0];
    ds->channels = shape[1];
    ds->height = shape[2];
    ds->width = shape[3];
    ds->dim = (size_t)shape[1] * shape[2] * shape[3];
    const int as_bytes = shape[4];
    if (as_bytes && ranged(cfg)) {
        ds->ranged = 1;
        ds->lo = cfg->data.range[0];
        ds->hi = cfg->data.range[1];
    }
    const size_t bytes = (size_t)ds->n * ds->dim * (as_bytes ? 1 : sizeof(mg_real));
    void *base = NULL;
    if (cfg->data.shared_memory)
        ds->shared = mg_comm_shared_alloc(comm, bytes, &base);
    if (ds->shared) {
        if (as_bytes)
            ds->bytes = base;
        else
            ds->x = base;
        if (rank == 0) /* rank 0 leads its node */
            memcpy(base, as_bytes ? (void *)mine.bytes : (void *)mine.x, bytes);
        mg_dataset_free(&mine);
        mg_comm_shared_bcast(comm, ds->shared, 0);
        return 0;
    }
    /* Shared memory turned off, or no window to be had: every rank keeps a private copy. */
    if (rank == 0) {
        mine.ranged = ds->ranged;
        mine.lo = ds->lo;
        mine.hi = ds->hi;
        *ds = mine;
    } else {
        void *p = malloc(bytes ? bytes : 1);
        if (!p)
            mg_comm_abort(comm, 1); /* out of memory on one rank alone */
        if (as_bytes)
            ds->bytes = p;
        else
            ds->x = p;
    }
    mg_comm_bcast(comm, as_bytes ? (void *)ds->bytes : (void *)ds->x, bytes, 0);
    return 0;
}

/* ---- preprocessing ---- */

/* Global contrast normalisation, as pylearn2's global_contrast_normalize(X, scale, subtract_mean=
 * True, use_std=False, sqrt_bias=0, min_divisor=1e-8), which the paper's CIFAR-10 and TFD runs
 * applied (scale 55):
 *
 *     X = X - X.mean(axis=1)
 *     normalizers = sqrt((X ** 2).sum(axis=1)) / scale
 *     normalizers[normalizers < min_divisor] = 1.
 *     X /= normalizers
 *
 * So an example whose norm / scale is below 1e-8 (a constant image, centred to zeros) is divided
 * by 1: only centred, never blown up from rounding noise. Sums are in double: 3072 floats summed
 * in float would lose 3 to 4 digits of the mean. */
#define GCN_MIN_DIVISOR 1e-8

void mg_gcn(mg_dataset *ds, double scale)
{
    size_t dim = ds->dim;
    if (dim == 0)
        return;
    for (int i = 0; i < ds->n; i++) {
        mg_real *x = ds->x + (size_t)i * dim; /* (dim) */
        double sum = 0.0;
        for (size_t j = 0; j < dim; j++)
            sum += x[j];
        double mean = sum / (double)dim;
        /* The norm of the centred values as computed in double, before they are rounded. */
        double ss = 0.0;
        for (size_t j = 0; j < dim; j++) {
            double c = x[j] - mean;
            ss += c * c;
        }
        double divisor = sqrt(ss) / scale;
        if (divisor < GCN_MIN_DIVISOR)
            divisor = 1.0;
        for (size_t j = 0; j < dim; j++)
            x[j] = (mg_real)((x[j] - mean) / divisor);
    }
}
