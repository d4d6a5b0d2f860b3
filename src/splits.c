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
#include "mpigan/labels.h"
#include "mpigan/splits.h"
#include "mpigan/tfd.h"
#include "h5io.h"

/* ---- labels ---- */

/* Labels are read wherever the configuration's data has them (mg_config_has_labels), and checked
 * against data.classes. A conditional GAN and a classifier need them; where TFD's labelled rows
 * carry no expression label, they are then an error, and otherwise left out. */
static int labels_needed(const mg_config *cfg)
{
    return cfg->conditional.enabled || mg_config_is_classifier(cfg);
}

/* ds takes the labels (ds->n of them), checked against data.classes; `what` names their file. */
static int attach_labels(mg_dataset *ds, int32_t *labels, const mg_config *cfg, const char *what,
                         mg_error *err)
{
    if (mg_labels_check(labels, ds->n, cfg->data.classes, what, "example", err)) {
        free(labels);
        return -1;
    }
    ds->labels = labels;
    ds->classes = cfg->data.classes;
    return 0;
}

/* Bytes as int32 labels: a new array of n. */
static int32_t *widen_labels(const uint8_t *b, int n)
{
    int32_t *l = mg_xmalloc((n > 0 ? (size_t)n : 1) * sizeof *l);
    for (int i = 0; i < n; i++)
        l[i] = b[i];
    return l;
}

/* Rows [first, first + count) of an IDX label file that belongs to an image file of n_images
 * examples, into ds->labels. A file of another count holds the labels of another split (t10k's
 * for the training images, say): refused, as is any label outside 0..classes-1. */
static int idx_labels(mg_dataset *ds, const mg_config *cfg, const char *path, const char *images,
                      int64_t n_images, int first, mg_error *err)
{
    uint8_t *b;
    int n;
    if (mg_idx_read_labels(&b, &n, path, err))
        return -1;
    if (n != n_images) {
        free(b);
        return mg_fail(err, "%s: %d labels, but %s holds %lld images (the labels of another "
                            "split?)",
                       path, n, images, (long long)n_images);
    }
    int32_t *all = widen_labels(b, n);
    free(b);
    if (mg_labels_check(all, n, cfg->data.classes, path, "example", err)) {
        free(all);
        return -1;
    }
    memmove(all, all + first, (size_t)ds->n * sizeof *all);
    ds->labels = all; /* the rest stays allocated, unused */
    ds->classes = cfg->data.classes;
    return 0;
}

/* TFD's labs_ex (1 to 7, as pylearn2 reads them: class labs_ex - 1) of the rows of a labelled
 * split. A row without one (-1, or no labs_ex in the file) leaves the split without labels,
 * which is an error only where they are needed. */
static int tfd_labels(mg_dataset *ds, int32_t *labs_ex, const mg_config *cfg, const char *split,
                      mg_error *err)
{
    int missing = 0;
    for (int i = 0; i < ds->n; i++)
        missing |= labs_ex[i] == -1;
    if ((missing && !labels_needed(cfg)) ||
        mg_tfd_expression_classes(labs_ex, ds->n, cfg->data.path, split, err)) {
        free(labs_ex);
        return missing && !labels_needed(cfg) ? 0 : -1;
    }
    return attach_labels(ds, labs_ex, cfg, cfg->data.path, err);
}

static const char *const tfd_split_names[] = {"unlabeled", "train", "valid", "test"};

/* mg_tfd_read, with the split's expression labels where the configuration has labels. */
static int read_tfd_split(mg_dataset *ds, const mg_config *cfg, enum mg_tfd_split split,
                          mg_error *err)
{
    const int want = mg_config_has_labels(cfg) && split != MG_TFD_UNLABELED;
    int32_t *labs_ex = NULL;
    if (mg_tfd_read(ds, want ? &labs_ex : NULL, NULL, cfg->data.path, cfg->data.fold, split, err))
        return -1;
    return want ? tfd_labels(ds, labs_ex, cfg, tfd_split_names[split], err) : 0;
}

/* ---- the training split ---- */

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
    if ((cfg->data.preprocess == MG_PREPROCESS_SCALE ? mg_idx_read_image_bytes
                                                      : mg_idx_read_images)(ds, path, 0, probe.n,
                                                                            err))
        return -1;
    if (!cfg->data.train_labels[0])
        return 0;
    return idx_labels(ds, cfg, cfg->data.train_labels, path, h.dims[0], 0, err);
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

/* CIFAR-10's files with their label bytes (the reader checks them: 0 to 9). */
static int read_cifar10_files(mg_dataset *ds, const mg_config *cfg, const char *const *files,
                              int n, mg_error *err)
{
    uint8_t *b = NULL;
    if (mg_cifar10_read(ds, &b, files, n, err))
        return -1;
    int32_t *labels = widen_labels(b, ds->n);
    free(b);
    return attach_labels(ds, labels, cfg, files[0], err);
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
    return read_cifar10_files(ds, cfg, files, 5, err);
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
    if (read_tfd_split(ds, cfg, (enum mg_tfd_split)cfg->data.split, err))
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

/* Examples of an HDF5 file, with the labels data.labels names (checked against the images and
 * data.classes). */
static int read_hdf5_file(mg_dataset *ds, const mg_config *cfg, const char *path, mg_error *err)
{
    if (hdf5_dims(cfg, path, err))
        return -1;
    const char *labels_name = cfg->data.labels[0] ? cfg->data.labels : NULL;
    int32_t *labels = NULL;
    if (mg_h5data_read(ds, labels_name ? &labels : NULL, path, cfg->data.images, labels_name, 0,
                       -1, err))
        return -1;
    if (!labels_name)
        return 0;
    char what[MG_PATH_MAX + 160];
    snprintf(what, sizeof what, "%s: %s", path, labels_name);
    return attach_labels(ds, labels, cfg, what, err);
}

static int read_hdf5(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    if (read_hdf5_file(ds, cfg, cfg->data.path, err))
        return -1;
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
    if (first > 0) {
        memmove(ds->x, ds->x + (size_t)first * ds->dim, (size_t)count * ds->dim * sizeof *ds->x);
        if (ds->labels)
            memmove(ds->labels, ds->labels + first, (size_t)count * sizeof *ds->labels);
    }
    ds->n = count;
}

static int read_valid(mg_dataset *ds, const mg_config *cfg, mg_error *err)
{
    const char *format = cfg->data.format;
    const int valid = cfg->data.valid_count;
    if (valid == 0) {
        if (!strcmp(format, "tfd"))
            return read_tfd_split(ds, cfg, MG_TFD_VALID, err);
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
        const int first = (int)h.dims[0] - valid;
        if (mg_idx_read_images(ds, cfg->data.train_images, first, valid, err))
            return -1;
        if (!cfg->data.train_labels[0])
            return 0;
        return idx_labels(ds, cfg, cfg->data.train_labels, cfg->data.train_images, h.dims[0],
                          first, err);
    }
    /* The other formats: the whole source, then its last valid_count examples. */
    int rc = !strcmp(format, "cifar10") ? read_cifar10_all(ds, cfg, err)
             : !strcmp(format, "tfd")
                 ? read_tfd_split(ds, cfg, (enum mg_tfd_split)cfg->data.split, err)
                 : read_hdf5_file(ds, cfg, cfg->data.path, err);
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
        if (idx_header(&h, cfg, cfg->data.test_images, err) ||
            mg_idx_read_images(ds, cfg->data.test_images, 0, -1, err))
            return -1;
        if (!cfg->data.test_labels[0])
            return 0;
        return idx_labels(ds, cfg, cfg->data.test_labels, cfg->data.test_images, h.dims[0], 0,
                          err);
    }
    if (!strcmp(format, "cifar10")) {
        char name[MG_PATH_MAX + 32];
        if (cifar10_name(name, sizeof name, cfg, "test_batch.bin", err) ||
            check_dim(cfg, name, 3 * 32 * 32, 3, 32, 32, err))
            return -1;
        const char *files[1] = {name};
        return read_cifar10_files(ds, cfg, files, 1, err);
    }
    if (!strcmp(format, "tfd"))
        return read_tfd_split(ds, cfg, MG_TFD_TEST, err);
    if (!cfg->data.test_path[0])
        return mg_fail(err, "%s: data.test_path is not set: there is no test set", cfg->source);
    return read_hdf5_file(ds, cfg, cfg->data.test_path, err);
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
    /* n, channels, height, width, kept as bytes, classes of the labels (0: none); n = 0 means
     * rank 0 failed */
    int shape[6] = {0};
    /* Values are turned into bytes while still in [0, 1]; data.range then maps the values, or
     * says what the bytes stand for (on every rank, below). */
    if (rank == 0 && read_train(&mine, cfg, err) == 0 && compact(&mine, err) == 0) {
        if (!mine.bytes && ranged(cfg))
            mg_dataset_rescale(&mine, cfg->data.range[0], cfg->data.range[1]);
        memcpy(shape, (int[6]){mine.n, mine.channels, mine.height, mine.width, mine.bytes != NULL,
                               mine.labels ? mine.classes : 0},
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
    ds->classes = shape[5];
    const size_t bytes = (size_t)ds->n * ds->dim * (as_bytes ? 1 : sizeof(mg_real));
    /* The labels follow the values in the same window, 8-byte aligned. */
    const size_t label_at = (bytes + 7) & ~(size_t)7;
    const size_t label_bytes = ds->classes ? (size_t)ds->n * sizeof *ds->labels : 0;
    void *base = NULL;
    if (cfg->data.shared_memory)
        ds->shared = mg_comm_shared_alloc(comm, label_at + label_bytes, &base);
    if (ds->shared) {
        if (as_bytes)
            ds->bytes = base;
        else
            ds->x = base;
        if (label_bytes)
            ds->labels = (int32_t *)((char *)base + label_at);
        if (rank == 0) { /* rank 0 leads its node */
            memcpy(base, as_bytes ? (void *)mine.bytes : (void *)mine.x, bytes);
            if (label_bytes)
                memcpy(ds->labels, mine.labels, label_bytes);
        }
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
        ds->labels = label_bytes ? malloc(label_bytes) : NULL;
        if (!p || (label_bytes && !ds->labels))
            mg_comm_abort(comm, 1); /* out of memory on one rank alone */
        if (as_bytes)
            ds->bytes = p;
        else
            ds->x = p;
    }
    mg_comm_bcast(comm, as_bytes ? (void *)ds->bytes : (void *)ds->x, bytes, 0);
    if (label_bytes)
        mg_comm_bcast(comm, ds->labels, label_bytes, 0);
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
