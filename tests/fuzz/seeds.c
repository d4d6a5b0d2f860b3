/* Writes the seed corpus of every fuzz target, small valid files of each format and a few
 * near-misses, into DIR/<target>/ (run.sh adds the configurations of configs/):
 *   fuzz_idx, fuzz_idx_gz   IDX images (n, rows, cols) and (n, dim), labels; raw and gzip
 *   fuzz_cifar10            1 and 3 records
 *   fuzz_h5data             mg_h5data_write's uint8 and float32 files with labels, and an
 *                           h5py-like (N, D) float64 contiguous dataset with int64 labels
 *   fuzz_tfd                MATLAB v5 (plain and compressed) and v7.3, with and without labels
 *   fuzz_checkpoint         checkpoints of FUZZ_CKPT_CONFIG, SGD and Adam
 * usage: fuzz_seeds DIR */
#include <errno.h>
#include <hdf5.h>
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "fuzz.h"
#include "mpigan/checkpoint.h"
#include "mpigan/config.h"
#include "mpigan/cifar10.h"
#include "mpigan/h5data.h"
#include "mpigan/splits.h"
#include "mpigan/tfd.h"

static const char *dir;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_seeds: %s: %s\n", what, strerror(errno));
    exit(1);
}

static const char *seed_path(const char *target, const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    return path;
}

static void write_bytes(const char *target, const char *name, const void *b, size_t n, int gz)
{
    const char *path = seed_path(target, name);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (!g || gzwrite(g, b, (unsigned)n) != (int)n || gzclose(g) != Z_OK)
            die(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0)
        die(path);
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* An IDX file: magic 00 00 08 ndims, sizes, then bytes i * 37. */
static size_t idx_bytes(uint8_t *b, int ndims, const uint32_t *dims)
{
    b[0] = 0, b[1] = 0, b[2] = 8, b[3] = (uint8_t)ndims;
    size_t n = 4, count = 1;
    for (int d = 0; d < ndims; d++, n += 4) {
        be32(b + n, dims[d]);
        count *= dims[d];
    }
    for (size_t i = 0; i < count; i++)
        b[n++] = (uint8_t)(i * 37);
    return n;
}

static void idx_seeds(void)
{
    static uint8_t b[4096];
    const uint32_t d3[3] = {3, 4, 4}, d2[2] = {2, 5}, d1[1] = {7};
    size_t n3 = idx_bytes(b, 3, d3);
    write_bytes("fuzz_idx", "images3", b, n3, 0);
    write_bytes("fuzz_idx", "images3.gz", b, n3, 1);
    write_bytes("fuzz_idx", "images3-short", b, n3 - 5, 0);
    write_bytes("fuzz_idx_gz", "images3", b, n3, 0);
    size_t n2 = idx_bytes(b, 2, d2);
    write_bytes("fuzz_idx", "images2", b, n2, 0);
    write_bytes("fuzz_idx_gz", "images2", b, n2, 0);
    size_t n1 = idx_bytes(b, 1, d1);
    write_bytes("fuzz_idx", "labels", b, n1, 0);
    write_bytes("fuzz_idx", "labels.gz", b, n1, 1);
    write_bytes("fuzz_idx_gz", "labels", b, n1, 0);
}

static void cifar_seeds(void)
{
    static uint8_t b[3 * 3073];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)(i % 3073 == 0 ? i / 3073 * 4 : i * 13);
    write_bytes("fuzz_cifar10", "one", b, 3073, 0);
    write_bytes("fuzz_cifar10", "three", b, sizeof b, 0);
}

static void h5data_seeds(void)
{
    mg_dataset ds;
    mg_error err;
    int32_t labels[3] = {0, 7, -1};
    if (mg_dataset_alloc(&ds, 3, 1, 2, 3, &err))
        die(err.msg);
    for (size_t i = 0; i < 3 * ds.dim; i++)
        ds.x[i] = (mg_real)(i * 11 % 256) / (mg_real)255; /* bytes: written as uint8 */
    if (mg_h5data_write(seed_path("fuzz_h5data", "uint8.h5"), &ds, labels, "seed", &err))
        die(err.msg);
    ds.x[4] = (mg_real)0.3; /* not a byte / 255: float32 */
    if (mg_h5data_write(seed_path("fuzz_h5data", "float.h5"), &ds, NULL, "seed", &err))
        die(err.msg);
    mg_dataset_free(&ds);

    /* As h5py writes a NumPy array by default: contiguous, no filters, no attributes. */
    const char *path = seed_path("fuzz_h5data", "h5py.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {2, 3}, ldims[1] = {2};
    double x[6] = {0, 0.5, 1, -1, 2, 0.25};
    int64_t lab[2] = {1, 2};
    hid_t s = H5Screate_simple(2, dims, NULL), ls = H5Screate_simple(1, ldims, NULL);
    hid_t d = H5Dcreate2(f, "/images", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t l = H5Dcreate2(f, "/labels", H5T_STD_I64LE, ls, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0 || d < 0 || l < 0 ||
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0 ||
        H5Dwrite(l, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab) < 0 ||
        H5Dclose(d) < 0 || H5Dclose(l) < 0 || H5Sclose(s) < 0 || H5Sclose(ls) < 0 ||
        H5Fclose(f) < 0)
        die(path);
}

/* images N x S x S uint8 and folds N x 5 (double), MATLAB's column-major order. */
static void tfd_seed(const char *name, enum mat_ft ver, enum matio_compression z, int labels)
{
    enum { N = 4, S = 3 };
    uint8_t images[N * S * S];
    double folds[N * 5], ex[N] = {1, 2, -1, 4}, id[N] = {10, 11, 12, 13};
    for (int i = 0; i < N * S * S; i++)
        images[i] = (uint8_t)(i * 29);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 5; k++)
            folds[i + N * k] = (i + k) % 4;
    const char *path = seed_path("fuzz_tfd", name);
    mat_t *mat = Mat_CreateVer(path, NULL, ver);
    if (!mat) {
        fprintf(stderr, "fuzz_seeds: %s: this libmatio cannot write it; skipped\n", path);
        return;
    }
    size_t idims[3] = {N, S, S}, fdims[2] = {N, 5}, ldims[2] = {N, 1};
    matvar_t *v[4] = {
        Mat_VarCreate("images", MAT_C_UINT8, MAT_T_UINT8, 3, idims, images, 0),
        Mat_VarCreate("folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, fdims, folds, 0),
        labels ? Mat_VarCreate("labs_ex", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, ldims, ex, 0) : NULL,
        labels ? Mat_VarCreate("labs_id", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, ldims, id, 0) : NULL,
    };
    for (int k = 0; k < 4; k++) {
        if (k < 2 && !v[k])
            die(path);
        if (v[k] && Mat_VarWrite(mat, v[k], z) != 0)
            die(path);
        Mat_VarFree(v[k]);
    }
    if (Mat_Close(mat) != 0)
        die(path);
}

static void checkpoint_seed(const char *name, const char *optim)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, FUZZ_CKPT_CONFIG("%s"), optim, optim);
    mg_error err;
    mg_config cfg;
    mg_net g, d;
    mg_optim g_opt, d_opt;
    if (mg_config_parse_networks(&cfg, yaml, "seed.yaml", &err) ||
        mg_net_init(&g, &cfg.generator.net, cfg.generator.noise_dim, 2, &err) ||
        mg_net_init(&d, &cfg.discriminator.net, FUZZ_CKPT_SIDE * FUZZ_CKPT_SIDE, 4, &err) ||
        mg_optim_init(&g_opt, &cfg.generator.optim, g.n_params, &err) ||
        mg_optim_init(&d_opt, &cfg.discriminator.optim, d.n_params, &err))
        die(err.msg);
    mg_net_init_params(&g, cfg.seed, 0);
    mg_net_init_params(&d, cfg.seed, 1);
    int64_t step = 3, minibatch = 3, skipped = 0;
    mg_metrics_window window = {.steps = 1, .d_loss = 1.3, .g_loss = 0.7, .d_real = 0.5,
                                .d_fake = 0.5};
    double elapsed = 1.5;
    g_opt.t = d_opt.t = 3;
    const mg_checkpoint_state st = {
        .g = &g, .d = &d, .g_opt = &g_opt, .d_opt = &d_opt, .step = &step,
        .minibatch = &minibatch, .skipped = &skipped, .window = &window, .elapsed_s = &elapsed,
        .batches_per_epoch = 2, .seed = cfg.seed, .ranks = 1, .batch_size = 4, .channels = 1,
        .height = FUZZ_CKPT_SIDE, .width = FUZZ_CKPT_SIDE};
    if (mg_checkpoint_write(&st, yaml, seed_path("fuzz_checkpoint", name), &err))
        die(err.msg);
    mg_net_free(&g);
    mg_net_free(&d);
    mg_optim_free(&g_opt);
    mg_optim_free(&d_opt);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    dir = argv[1];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        die(dir);
    idx_seeds();
    cifar_seeds();
    h5data_seeds();
    tfd_seed("v5.mat", MAT_FT_MAT5, MAT_COMPRESSION_NONE, 1);
    tfd_seed("v5z.mat", MAT_FT_MAT5, MAT_COMPRESSION_ZLIB, 0);
    tfd_seed("v73.mat", MAT_FT_MAT73, MAT_COMPRESSION_NONE, 1);
    checkpoint_seed("sgd.h5", "sgd");
    checkpoint_seed("adam.h5", "adam");
    return 0;
}
