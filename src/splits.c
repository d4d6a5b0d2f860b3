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

static int read_idx(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    mg_idx_header h;
    const char *path = cfg->data.train_images;
    if (mg_idx_read_header(&h, path, err))
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

/* data_batch_1.bin ... data_batch_5.bin, all 50,000 examples. */
static int read_cifar10_all(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    char names[5][MG_PATH_MAX + 32];
    const char *files[5];
    for (int i = 0; i < 5; i++) {
        snprintf(names[i], sizeof names[i], "%s/data_batch_%d.bin", cfg->data.path, i + 1);
        files[i] = names[i];
    }
    return mg_cifar10_read(ds, NULL, files, 5, err);
}

static int read_cifar10(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    if (read_cifar10_all(ds, cfg, err))
        return -1;
    char what[MG_PATH_MAX + 64];
    snprintf(what, sizeof what, "%s/data_batch_{1..5}.bin", cfg->data.path);
    return select_train(ds, cfg, what, err);
}

static int read_tfd(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    if (mg_tfd_read(ds, NULL, NULL, cfg->data.path, cfg->data.fold,
                    (enum mg_tfd_split)cfg->data.split, err))
        return -1;
    return select_train(ds, cfg, cfg->data.path, err);
}

static int read_hdf5(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
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

int mg_split_read_train(mg_dataset *ds, const mg_config *cfg, mg_error *err)
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
            return -1;
        }
        if (cfg->data.preprocess == MG_PREPROCESS_GCN)
            mg_gcn(ds, cfg->data.gcn_scale);
        return 0;
    }
    return mg_fail(err, "%s: data.format %s is not supported", cfg->source, cfg->data.format);
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
        if (mg_idx_read_header(&h, cfg->data.train_images, err))
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
                                        : mg_h5data_read(ds, NULL, cfg->data.path, cfg->data.images,
                                                         NULL, 0, -1, err);
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
        return mg_idx_read_images(ds, cfg->data.test_images, 0, -1, err);
    }
    if (!strcmp(format, "cifar10")) {
        char name[MG_PATH_MAX + 32];
        snprintf(name, sizeof name, "%s/test_batch.bin", cfg->data.path);
        const char *files[1] = {name};
        return mg_cifar10_read(ds, NULL, files, 1, err);
    }
    if (!strcmp(format, "tfd"))
        return mg_tfd_read(ds, NULL, NULL, cfg->data.path, cfg->data.fold, MG_TFD_TEST, err);
    if (!cfg->data.test_path[0])
        return mg_fail(err, "%s: data.test_path is not set: there is no test set", cfg->source);
    return mg_h5data_read(ds, NULL, cfg->data.test_path, cfg->data.images, NULL, 0, -1, err);
}

int mg_split_read(mg_dataset *ds, const mg_config *cfg, enum mg_split_kind which,
                          int max_count, mg_error *err)
{
    memset(ds, 0, sizeof *ds);
    if ((which == MG_SPLIT_VALID ? read_valid : read_test)(ds, cfg, err)) {
        mg_dataset_free(ds);
        return -1;
    }
    if (max_count > 0 && ds->n > max_count)
        keep_rows(ds, 0, max_count);
    if (cfg->data.preprocess == MG_PREPROCESS_GCN)
        mg_gcn(ds, cfg->data.gcn_scale);
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
    if (rank == 0 && mg_split_read_train(&mine, cfg, err) == 0 && compact(&mine, err) == 0)
        memcpy(shape, (int[5]){mine.n, mine.channels, mine.height, mine.width, mine.bytes != NULL},
               sizeof shape);
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
