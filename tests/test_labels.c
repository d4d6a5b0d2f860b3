/* Labels: the condition joined to a network's input, fake labels by global row, and the labels of
 * every data format as the splits of a configuration read them, on files this test writes; every
 * bad label file with its exact message. */
#include <matio.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/h5data.h"
#include "mpigan/labels.h"
#include "mpigan/splits.h"
#include "testlib.h"

/* ---- the condition ---- */

static void test_join(void)
{
    /* Two rows of 3 values, 3 classes: flat (plane 1) and as maps of 2 values. */
    const mg_real x[6] = {1, 2, 3, 4, 5, 6};
    const int32_t labels[2] = {2, 0};
    mg_real out[2 * (3 + 3 * 2)];
    mg_label_join(out, x, 2, 3, labels, 3, 1);
    const mg_real flat[12] = {1, 2, 3, 0, 0, 1, 4, 5, 6, 1, 0, 0};
    CU_ASSERT_EQUAL(memcmp(out, flat, sizeof flat), 0);
    mg_label_join(out, x, 2, 3, labels, 3, 2);
    const mg_real maps[18] = {1, 2, 3, 0, 0, 0, 0, 1, 1, 4, 5, 6, 1, 1, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(memcmp(out, maps, sizeof maps), 0);
    /* The image part of a joined row's gradient, packed in place. */
    mg_rows_head(out, out, 2, 3, 9);
    CU_ASSERT_EQUAL(memcmp(out, x, sizeof x), 0);
}

/* Uniform draws: every class about equally often over 120,000 rows (binomial standard deviation
 * sqrt(n p (1 - p)) = 104 for 12,000 of 120,000 at p = 0.1; 6 of them allowed, a fixed seed),
 * and a row's label depends only on (key, row). */
static void test_draw_uniform(void)
{
    const mg_rng_key key = {.seed = 3, .stream = mg_rng_stream(MG_STREAM_LABELS, 1), .step = 9};
    int count[10] = {0};
    const int n = 120000;
    for (int r = 0; r < n; r++) {
        const int32_t c = mg_label_draw(&key, (uint64_t)r, 10, NULL);
        CU_ASSERT_FATAL(c >= 0 && c < 10);
        count[c]++;
    }
    printf("\n    uniform, 10 classes, %d rows:", n);
    for (int c = 0; c < 10; c++) {
        printf(" %d", count[c]);
        CU_ASSERT(abs(count[c] - n / 10) <= 6 * 104);
    }
    CU_ASSERT_EQUAL(mg_label_draw(&key, 77, 10, NULL), mg_label_draw(&key, 77, 10, NULL));
    /* Another step, another stream: other labels for the same rows. */
    mg_rng_key other = key;
    other.step = 10;
    int same = 0;
    for (int r = 0; r < 1000; r++)
        same += mg_label_draw(&key, (uint64_t)r, 10, NULL) ==
                mg_label_draw(&other, (uint64_t)r, 10, NULL);
    CU_ASSERT(same > 50 && same < 150); /* 1 in 10 by chance */
}

/* Frequency draws follow the training split's class counts; a class without examples is never
 * drawn. Counts 0, 30, 10, 60 of 100: p = 0, 0.3, 0.1, 0.6. */
static void test_draw_frequency(void)
{
    int32_t labels[100];
    for (int i = 0; i < 100; i++)
        labels[i] = i < 30 ? 1 : i < 40 ? 2 : 3;
    int64_t cum[5];
    mg_label_cumulative(cum, labels, 100, 4);
    const int64_t want_cum[5] = {0, 0, 30, 40, 100};
    CU_ASSERT_EQUAL(memcmp(cum, want_cum, sizeof cum), 0);
    const mg_rng_key key = {.seed = 4, .stream = mg_rng_stream(MG_STREAM_LABELS, 0), .step = 1};
    int count[4] = {0};
    const int n = 100000;
    for (int r = 0; r < n; r++)
        count[mg_label_draw(&key, (uint64_t)r, 4, cum)]++;
    /* sd of a count at p: sqrt(n p (1 - p)) = 145 (0.3), 95 (0.1), 155 (0.6); 6 of them. */
    printf("\n    frequency 0/0.3/0.1/0.6, %d rows: %d %d %d %d", n, count[0], count[1], count[2],
           count[3]);
    CU_ASSERT_EQUAL(count[0], 0);
    CU_ASSERT(abs(count[1] - 30000) <= 6 * 145);
    CU_ASSERT(abs(count[2] - 10000) <= 6 * 95);
    CU_ASSERT(abs(count[3] - 60000) <= 6 * 155);
}

static void test_check(void)
{
    mg_error err;
    const int32_t good[3] = {0, 9, 4}, bad[3] = {0, 10, 4}, negative[2] = {1, -1};
    CU_ASSERT_EQUAL(mg_labels_check(good, 3, 10, "f", "example", &err), 0);
    MG_ASSERT_FAILS(mg_labels_check(bad, 3, 10, "f", "example", &err), err, "f",
                    "example 1 has label 10, not in 0..9");
    MG_ASSERT_FAILS(mg_labels_check(negative, 2, 10, "f", "example", &err), err, "f",
                    "example 1 has label -1, not in 0..9");
}

/* ---- files of every format ---- */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* An IDX file of n images of 2x2 pixels (pixel values from i), raw. */
static const char *idx_images(const char *name, int n)
{
    uint8_t buf[16 + 4 * 64];
    uint8_t hdr[4] = {0, 0, 8, 3};
    memcpy(buf, hdr, 4);
    be32(buf + 4, (uint32_t)n), be32(buf + 8, 2), be32(buf + 12, 2);
    for (int i = 0; i < 4 * n; i++)
        buf[16 + i] = (uint8_t)(i * 7);
    return mg_test_write_file(name, buf, 16 + 4 * (size_t)n);
}

/* An IDX label file of the n given labels. */
static const char *idx_labels(const char *name, const uint8_t *labels, int n)
{
    uint8_t buf[8 + 64];
    uint8_t hdr[4] = {0, 0, 8, 1};
    memcpy(buf, hdr, 4);
    be32(buf + 4, (uint32_t)n);
    memcpy(buf + 8, labels, (size_t)n);
    return mg_test_write_file(name, buf, 8 + (size_t)n);
}

/* A classifier configuration on data `data` (YAML flow mapping body): a linear layer of 10
 * logits. */
static int parse_classifier(mg_config *cfg, const char *data, mg_error *err)
{
    char yaml[20100];
    snprintf(yaml, sizeof yaml,
             "data: {%s}\nclassifier: {layers: [{type: linear, units: %s}]}\n", data,
             strstr(data, "format: tfd") ? "7" : "10");
    return mg_config_parse(cfg, yaml, "c.yaml", NULL, 0, err);
}

static void parse_ok(mg_config *cfg, const char *data)
{
    mg_error err;
    const int rc = parse_classifier(cfg, data, &err);
    if (rc)
        fprintf(stderr, "\n  config: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
}

static void test_idx(void)
{
    uint8_t lab[20], lab10[10];
    for (int i = 0; i < 20; i++)
        lab[i] = (uint8_t)((i * 3) % 10);
    memcpy(lab10, lab, 10);
    const char *images = idx_images("images.idx", 20);
    const char *labels = idx_labels("labels.idx", lab, 20);
    const char *test_images = idx_images("t-images.idx", 10);
    const char *test_labels = idx_labels("t-labels.idx", lab10, 10);
    char data[20000];
    snprintf(data, sizeof data,
             "train_images: %s, train_labels: %s, test_images: %s, test_labels: %s, classes: 10, "
             "train_count: 12, valid_count: 5",
             images, labels, test_images, test_labels);
    mg_config cfg;
    mg_error err;
    mg_dataset ds;
    parse_ok(&cfg, data);
    CU_ASSERT_FATAL(mg_split_read_train(&ds, &cfg, &err) == 0);
    CU_ASSERT_EQUAL(ds.n, 12);
    CU_ASSERT_EQUAL(ds.classes, 10);
    CU_ASSERT_FATAL(ds.labels != NULL);
    for (int i = 0; i < 12; i++)
        CU_ASSERT_EQUAL(ds.labels[i], lab[i]);
    mg_dataset_free(&ds);
    CU_ASSERT_FATAL(mg_split_read(&ds, &cfg, MG_SPLIT_VALID, 0, &err) == 0);
    CU_ASSERT_EQUAL_FATAL(ds.n, 5);
    for (int i = 0; i < 5; i++) /* the last 5 of the file */
        CU_ASSERT_EQUAL(ds.labels[i], lab[15 + i]);
    mg_dataset_free(&ds);
    CU_ASSERT_FATAL(mg_split_read(&ds, &cfg, MG_SPLIT_TEST, 3, &err) == 0);
    CU_ASSERT_EQUAL_FATAL(ds.n, 3);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(ds.labels[i], lab10[i]);
    mg_dataset_free(&ds);

    /* The test labels given for the training images: another split's count. */
    snprintf(data, sizeof data, "train_images: %s, train_labels: %s, classes: 10, "
             "train_count: 12, valid_count: 5", images, test_labels);
    parse_ok(&cfg, data);
    MG_ASSERT_FAILS(mg_split_read_train(&ds, &cfg, &err), err, test_labels,
                    "10 labels, but %s holds 20 images (the labels of another split?)", images);
    MG_ASSERT_FAILS(mg_split_read(&ds, &cfg, MG_SPLIT_VALID, 0, &err), err, test_labels,
                    "10 labels, but %s holds 20 images (the labels of another split?)", images);
    /* A label beyond data.classes, wherever it is in the file (here among the validation
     * examples, refused for the training split too). */
    uint8_t big[20];
    memcpy(big, lab, 20);
    big[17] = 10;
    const char *bad = idx_labels("bad-labels.idx", big, 20);
    snprintf(data, sizeof data, "train_images: %s, train_labels: %s, classes: 10, "
             "train_count: 12, valid_count: 5", images, bad);
    parse_ok(&cfg, data);
    MG_ASSERT_FAILS(mg_split_read_train(&ds, &cfg, &err), err, bad,
                    "example 17 has label 10, not in 0..9");
    /* Images given as labels; labels given as images. */
    snprintf(data, sizeof data, "train_images: %s, train_labels: %s, classes: 10, "
             "train_count: 12, valid_count: 5", images, images);
    parse_ok(&cfg, data);
    MG_ASSERT_FAILS(mg_split_read_train(&ds, &cfg, &err), err, images,
                    "a label file needs 1 dimension, this one has 3");
    CU_ASSERT_PTR_NULL(ds.labels);
}

/* CIFAR-10: the label byte of every record; the batches and test_batch.bin in a folder. */
static void test_cifar10(void)
{
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/cifar", mg_test_tmpdir());
    CU_ASSERT_FATAL(mkdir(dir, 0777) == 0);
    static uint8_t rec[3073];
    int32_t want[20];
    for (int b = 0; b <= 5; b++) {
        if (b == 0)
            snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        else
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        for (int r = 0; r < 4; r++) {
            rec[0] = (uint8_t)((b * 3 + r * 7) % 10);
            if (b > 0)
                want[(b - 1) * 4 + r] = rec[0];
            CU_ASSERT_FATAL(fwrite(rec, 1, sizeof rec, f) == sizeof rec);
        }
        CU_ASSERT_FATAL(fclose(f) == 0);
    }
    char data[8400];
    snprintf(data, sizeof data, "format: cifar10, path: %s, train_count: 15, valid_count: 5", dir);
    mg_config cfg;
    mg_error err;
    mg_dataset ds;
    parse_ok(&cfg, data);
    CU_ASSERT_EQUAL(cfg.data.classes, 10); /* CIFAR-10's own */
    CU_ASSERT_FATAL(mg_split_read_train(&ds, &cfg, &err) == 0);
    CU_ASSERT_EQUAL_FATAL(ds.n, 15);
    CU_ASSERT_FATAL(ds.labels != NULL);
    for (int i = 0; i < 15; i++)
        CU_ASSERT_EQUAL(ds.labels[i], want[i]);
    mg_dataset_free(&ds);
    CU_ASSERT_FATAL(mg_split_read(&ds, &cfg, MG_SPLIT_VALID, 0, &err) == 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(ds.labels[i], want[15 + i]);
    mg_dataset_free(&ds);
    CU_ASSERT_FATAL(mg_split_read(&ds, &cfg, MG_SPLIT_TEST, 0, &err) == 0);
    CU_ASSERT_EQUAL_FATAL(ds.n, 4);
    for (int r = 0; r < 4; r++)
        CU_ASSERT_EQUAL(ds.labels[r], (r * 7) % 10);
    mg_dataset_free(&ds);
    /* A label byte above 9 (the reader's own check) and another class count. */
    snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 3073, SEEK_SET);
    fputc(12, f);
    CU_ASSERT_FATAL(fclose(f) == 0);
    MG_ASSERT_FAILS(mg_split_read_train(&ds, &cfg, &err), err, path,
                    "record 1 has label 12; CIFAR-10 labels are 0 to 9");
    snprintf(data + strlen(data), sizeof data - strlen(data), ", classes: 7");
    CU_ASSERT(parse_classifier(&cfg, data, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "c.yaml:1: data.classes: CIFAR-10 has 10 classes, got 7");
}

/* TFD: labs_ex of the labelled splits, 1 to 7 in the file, classes 0 to 6 (pylearn2's labs_ex -
 * 1); the unlabeled split has none. 12 examples of 4 x 4, fold 0 of example i is i % 4. */
enum { T_N = 12, T_S = 4 };

static const char *write_tfd(const char *name, const double *labs_ex)
{
    static uint8_t images[T_N * T_S * T_S];
    static double folds[T_N * 5];
    for (int i = 0; i < T_N * T_S * T_S; i++)
        images[i] = (uint8_t)i;
    for (int i = 0; i < T_N; i++)
        for (int f = 0; f < 5; f++)
            folds[i + T_N * f] = (i + f) % 4;
    const char *path = mg_test_path(name);
    mat_t *mat = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
    CU_ASSERT_FATAL(mat != NULL);
    size_t idims[3] = {T_N, T_S, T_S}, fdims[2] = {T_N, 5}, ldims[2] = {T_N, 1};
    matvar_t *v[3] = {
        Mat_VarCreate("images", MAT_C_UINT8, MAT_T_UINT8, 3, idims, images, MAT_F_DONT_COPY_DATA),
        Mat_VarCreate("folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, fdims, folds, MAT_F_DONT_COPY_DATA),
        labs_ex ? Mat_VarCreate("labs_ex", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, ldims, (void *)labs_ex,
                                MAT_F_DONT_COPY_DATA)
                : NULL};
    for (int k = 0; k < 3; k++) {
        if (!v[k])
            continue;
        CU_ASSERT_FATAL(Mat_VarWrite(mat, v[k], MAT_COMPRESSION_NONE) == 0);
        Mat_VarFree(v[k]);
    }
    Mat_Close(mat);
    return path;
}

static void test_tfd(void)
{
    double labs_ex[T_N];
    for (int i = 0; i < T_N; i++)
        labs_ex[i] = i % 4 == 0 ? -1 : 1 + i % 7;
    const char *path = write_tfd("tfd.mat", labs_ex);
    char data[8400];
    snprintf(data, sizeof data, "format: tfd, path: %s, split: train, train_count: 0, "
             "valid_count: 0", path);
    mg_config cfg;
    mg_error err;
    mg_dataset ds;
    parse_ok(&cfg, data);
    CU_ASSERT_EQUAL(cfg.data.classes, 7);
    /* train: examples 1, 5, 9; valid: 2, 6, 10 (valid_count 0: the fold's); test: 3, 7, 11. */
    const enum mg_split_kind kinds[2] = {MG_SPLIT_VALID, MG_SPLIT_TEST};
    for (int s = 0; s < 3; s++) {
        int rc = s == 0 ? mg_split_read_train(&ds, &cfg, &err)
                        : mg_split_read(&ds, &cfg, kinds[s - 1], 0, &err);
        CU_ASSERT_FATAL(rc == 0);
        CU_ASSERT_EQUAL_FATAL(ds.n, 3);
        CU_ASSERT_FATAL(ds.labels != NULL);
        for (int k = 0; k < 3; k++)
            CU_ASSERT_EQUAL(ds.labels[k], (1 + s + 4 * k) % 7); /* labs_ex - 1 */
        mg_dataset_free(&ds);
    }
    /* A value outside 1..7 in a labelled row; a labelled row without one, where labels are
     * needed (a classifier), and where they are not (an unconditional GAN: left out). */
    labs_ex[5] = 9;
    const char *nine = write_tfd("tfd-nine.mat", labs_ex);
    snprintf(data, sizeof data, "format: tfd, path: %s, split: train, train_count: 0, "
             "valid_count: 0", nine);
    parse_ok(&cfg, data);
    MG_ASSERT_FAILS(mg_split_read_train(&ds, &cfg, &err), err, nine,
                    "example 1 of the train split has labs_ex 9; TFD's expression labels are 1 to "
                    "7");
    const char *none = write_tfd("tfd-none.mat", NULL);
    snprintf(data, sizeof data, "format: tfd, path: %s, split: train, train_count: 0, "
             "valid_count: 0", none);
    parse_ok(&cfg, data);
    MG_ASSERT_FAILS(mg_split_read_train(&ds, &cfg, &err), err, none,
                    "example 0 of the train split has no expression label (labs_ex -1, or no "
                    "labs_ex)");
    char yaml[9000];
    snprintf(yaml, sizeof yaml,
             "data: {%s}\ngenerator: {layers: [{type: sigmoid, units: 16}]}\n"
             "discriminator: {layers: [{type: sigmoid, units: 1}]}\n", data);
    CU_ASSERT_FATAL(mg_config_parse(&cfg, yaml, "g.yaml", NULL, 0, &err) == 0);
    CU_ASSERT_FATAL(mg_split_read_train(&ds, &cfg, &err) == 0);
    CU_ASSERT_PTR_NULL(ds.labels);
    mg_dataset_free(&ds);
    /* The unlabeled split has no labels to train a classifier or a conditional GAN on. */
    snprintf(data, sizeof data, "format: tfd, path: %s", path);
    CU_ASSERT(parse_classifier(&cfg, data, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "c.yaml: classifier.layers: a classifier trains on labels, "
                                    "and data.split unlabeled has none: use train, valid or test");
}

/* HDF5: the dataset data.labels names, beside the images, with the test file's of the same
 * name. */
static void test_hdf5(void)
{
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_dataset_alloc(&ds, 8, 1, 2, 2, &err) == 0);
    for (size_t i = 0; i < 32; i++)
        ds.x[i] = (mg_real)(i % 5) / 4;
    int32_t labels[8] = {3, 1, 4, 1, 5, 9, 2, 6};
    const char *path = mg_test_path("data.h5");
    CU_ASSERT_FATAL(mg_h5data_write(path, &ds, labels, "test", &err) == 0);
    labels[3] = 12;
    const char *bad = mg_test_path("bad.h5");
    CU_ASSERT_FATAL(mg_h5data_write(bad, &ds, labels, "test", &err) == 0);
    mg_dataset_free(&ds);
    char data[13000];
    snprintf(data, sizeof data, "format: hdf5, path: %s, test_path: %s, labels: /labels, "
             "classes: 10, train_count: 6, valid_count: 2", path, path);
    mg_config cfg;
    parse_ok(&cfg, data);
    CU_ASSERT_FATAL(mg_split_read_train(&ds, &cfg, &err) == 0);
    CU_ASSERT_EQUAL_FATAL(ds.n, 6);
    const int32_t want[8] = {3, 1, 4, 1, 5, 9, 2, 6};
    CU_ASSERT_EQUAL(memcmp(ds.labels, want, 6 * sizeof *want), 0);
    mg_dataset_free(&ds);
    CU_ASSERT_FATAL(mg_split_read(&ds, &cfg, MG_SPLIT_VALID, 0, &err) == 0);
    CU_ASSERT_EQUAL(memcmp(ds.labels, want + 6, 2 * sizeof *want), 0);
    mg_dataset_free(&ds);
    CU_ASSERT_FATAL(mg_split_read(&ds, &cfg, MG_SPLIT_TEST, 0, &err) == 0);
    CU_ASSERT_EQUAL(memcmp(ds.labels, want, 8 * sizeof *want), 0);
    mg_dataset_free(&ds);
    snprintf(data, sizeof data, "format: hdf5, path: %s, labels: /labels, classes: 10, "
             "train_count: 6, valid_count: 2", bad);
    parse_ok(&cfg, data);
    MG_ASSERT_FAILS(mg_split_read_train(&ds, &cfg, &err), err, bad,
                    "/labels: example 3 has label 12, not in 0..9");
    /* Labels that do not train need not be named; a classifier's must be. */
    snprintf(data, sizeof data, "format: hdf5, path: %s, classes: 10", path);
    CU_ASSERT(parse_classifier(&cfg, data, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "c.yaml: classifier.layers: a classifier trains on labels: "
                                    "set data.labels");
}

static const mg_test tests[] = {
    {"join", test_join},
    {"draw_uniform", test_draw_uniform},
    {"draw_frequency", test_draw_frequency},
    {"check", test_check},
    {"idx", test_idx},
    {"cifar10", test_cifar10},
    {"tfd", test_tfd},
    {"hdf5", test_hdf5},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("labels", tests, argc, argv);
}
