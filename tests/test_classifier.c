/* The classifier (classifier.h, classify.h), under mpiexec with 1, 2 or 4 ranks: it learns, it
 * trains alike on any rank count, its evaluation figures are the same bits on any rank count,
 * its checkpoints load back and are told from a GAN's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/checkpoint.h"
#include "mpigan/classifier.h"
#include "mpigan/classify.h"
#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "fixtures.h"
#include "helpers.h"
#include "testlib.h"

#define STEPS 20

/* A classifier of mg_fixture_labeled_blobs' 4 quadrants: 36 -> ReLU 16 (dropout on its input) ->
 * 4 logits, Adam, global batch 8, with overrides. */
static mg_config make_config(const char *const *set, int n_set)
{
    const char *dummy = mg_test_write_file("dummy-images.idx", "x", 1);
    const char *labels = mg_test_write_file("dummy-labels.idx", "x", 1);
    char text[9000];
    snprintf(text, sizeof text,
             "seed: 11\n"
             "data: {train_images: %s, train_labels: %s, classes: 4, train_count: 1,\n"
             "       valid_count: 0}\n"
             "classifier:\n"
             "  layers:\n"
             "    - {type: relu, units: 16, irange: 0.3, keep: 0.8}\n"
             "    - {type: linear, units: 4, irange: 0.3}\n"
             "  optimizer: {type: adam, lr: 0.01}\n"
             "train: {batch_size: 8, steps: %d}\n",
             dummy, labels, STEPS);
    mg_config cfg;
    mg_error err;
    const int rc = mg_config_parse(&cfg, text, "classifier.yaml", set, n_set, &err);
    if (rc)
        fprintf(stderr, "config: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    return cfg;
}

static mg_classifier_spec spec_of(const mg_config *cfg)
{
    mg_classifier_spec s;
    memset(&s, 0, sizeof s);
    s.seed = cfg->seed;
    s.net = cfg->classifier.net;
    s.optim = cfg->classifier.optim;
    s.train = cfg->train;
    s.classes = cfg->data.classes;
    return s;
}

static void init_ok(mg_classifier *c, const mg_config *cfg, const mg_dataset *ds,
                    const mg_comm *comm)
{
    mg_error err;
    const mg_classifier_spec spec = spec_of(cfg);
    const int rc = mg_classifier_init(c, &spec, ds, comm, &err);
    if (rc)
        fprintf(stderr, "classifier: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
}

/* It learns the quadrants: training accuracy (of the last 20 of 300 steps, dropout on) and the
 * accuracy of the trained classifier on the whole set far above chance (0.25). */
static void test_learns(void)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_labeled_blobs(256);
    const char *set = "train.steps=300";
    mg_config cfg = make_config(&set, 1);
    mg_classifier c;
    init_ok(&c, &cfg, &ds, world);
    const double before = mg_classifier_accuracy(&c.net, &ds, world);
    double acc = 0;
    mg_classifier_stats s;
    for (int i = 0; i < 300; i++) {
        mg_classifier_step(&c, &s);
        CU_ASSERT(isfinite(s.loss));
        if (i >= 280)
            acc += s.accuracy / 20;
    }
    const double after = mg_classifier_accuracy(&c.net, &ds, world);
    if (c.rank == 0)
        printf("\n  quadrants of 256 blobs: accuracy %.3f before, %.3f after 300 steps (training "
               "batches %.3f)",
               before, after, acc);
    CU_ASSERT(after >= 0.9);
    CU_ASSERT(acc >= 0.8);
    CU_ASSERT_EQUAL(c.step, 300);
    CU_ASSERT(mg_classifier_epoch(&c) > 9);
    mg_classifier_free(&c);
    mg_dataset_free(&ds);
}

/* Trains STEPS steps on comm; rank 0 returns the parameters (malloc'd). */
static mg_real *train_on(const mg_comm *comm, const mg_config *cfg, const mg_dataset *ds,
                         size_t *n)
{
    mg_classifier c;
    init_ok(&c, cfg, ds, comm);
    mg_classifier_stats s;
    for (int i = 0; i < STEPS; i++)
        mg_classifier_step(&c, &s);
    mg_error err;
    CU_ASSERT(mg_classifier_check_replicas(&c, &err) == 0);
    mg_real *p = NULL;
    *n = c.net.n_params;
    if (mg_comm_rank(comm) == 0) {
        p = malloc(*n * sizeof *p);
        memcpy(p, c.net.params, *n * sizeof *p);
    }
    mg_classifier_free(&c);
    return p;
}

/* The whole job, its first two ranks and rank 0 alone compute the same up to summation order
 * (dropout masks and the data order are drawn by global row). */
static void test_invariance(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world), size = mg_comm_size(world);
    mg_dataset ds = mg_fixture_labeled_blobs(64);
    static const char *const sgd[] = {"classifier.optimizer.type=sgd",
                                      "classifier.optimizer.momentum=0.9"};
    for (int v = 0; v < 2; v++) {
        mg_config cfg = make_config(v ? sgd : NULL, v ? 2 : 0);
        const int sizes[3] = {size, size >= 2 ? 2 : 1, 1};
        mg_real *got[3] = {NULL, NULL, NULL};
        size_t n = 0;
        for (int k = 0; k < 3; k++) {
            mg_comm *sub = mg_comm_split(world, rank < sizes[k] ? 0 : -1);
            if (sub) {
                got[k] = train_on(sub, &cfg, &ds, &n);
                mg_comm_free(sub);
            }
        }
        if (rank == 0) {
            for (int k = 0; k < 2; k++) {
                const double e = mg_test_max_rel_diff(got[2], got[k], n);
                printf("\n  classifier, %s: %d ranks vs 1: max relative difference %.3g "
                       "(tolerance 1e-5)",
                       v ? "sgd" : "adam", sizes[k], e);
                CU_ASSERT(e <= 1e-5);
            }
        }
        for (int k = 0; k < 3; k++)
            free(got[k]);
    }
    mg_dataset_free(&ds);
}

/* Evaluation: the accuracy, the probabilities and the features are the same bits on the whole job
 * and on rank 0 alone (chunks of 256 rows, one BLAS thread); probabilities sum to 1, the features
 * are the last layer's input, and argmax of the probabilities gives the accuracy. */
static void test_outputs(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world);
    enum { N = 700 }; /* 3 chunks, the last partial: every rank count splits it differently */
    mg_dataset ds = mg_fixture_labeled_blobs(N);
    mg_config cfg = make_config(NULL, 0);
    mg_classifier c;
    init_ok(&c, &cfg, &ds, world);
    mg_classifier_stats s;
    for (int i = 0; i < 30; i++)
        mg_classifier_step(&c, &s);
    const int nf = c.net.layer[c.net.n_layers - 1].in;
    CU_ASSERT_EQUAL(nf, 16);
    mg_real *p[2], *f[2];
    double acc[2];
    for (int v = 0; v < 2; v++) {
        p[v] = rank == 0 ? malloc((size_t)N * 4 * sizeof(mg_real)) : NULL;
        f[v] = rank == 0 ? malloc((size_t)N * nf * sizeof(mg_real)) : NULL;
    }
    mg_classifier_outputs(p[0], f[0], &c.net, ds.x, N, world, 0);
    acc[0] = mg_classifier_accuracy(&c.net, &ds, world);
    mg_comm *self = mg_comm_split(world, rank == 0 ? 0 : -1);
    if (self) {
        mg_classifier_outputs(p[1], f[1], &c.net, ds.x, N, self, 0);
        acc[1] = mg_classifier_accuracy(&c.net, &ds, self);
        mg_comm_free(self);
        CU_ASSERT(memcmp(p[0], p[1], (size_t)N * 4 * sizeof(mg_real)) == 0);
        CU_ASSERT(memcmp(f[0], f[1], (size_t)N * nf * sizeof(mg_real)) == 0);
        CU_ASSERT_EQUAL(acc[0], acc[1]);
        double worst = 0;
        int right = 0;
        for (int i = 0; i < N; i++) {
            double sum = 0;
            int best = 0;
            for (int k = 0; k < 4; k++) {
                sum += p[0][i * 4 + k];
                best = p[0][i * 4 + k] > p[0][i * 4 + best] ? k : best;
            }
            worst = fmax(worst, fabs(sum - 1));
            right += best == ds.labels[i];
        }
        /* A float softmax of 4 classes sums to 1 within a few 2^-24. */
        CU_ASSERT(worst <= 4 * 6e-8);
        MG_ASSERT_CLOSE((double)right / N, acc[0], 1e-12);
        /* The features of example 3: ReLU(x W0 + b0), as the network computes it. */
        const mg_real *W = mg_net_weights(&c.net, 0), *b = mg_net_bias(&c.net, 0);
        double err = 0;
        for (int u = 0; u < nf; u++) {
            double h = b[u];
            for (int j = 0; j < 36; j++)
                h += (double)ds.x[3 * 36 + j] * W[j * nf + u];
            err = fmax(err, fabs((h > 0 ? h : 0) - f[0][3 * nf + u]));
        }
        CU_ASSERT(err <= 1e-5);
        printf("\n  %d examples on %d rank%s and on 1: the same bits; accuracy %.4f, softmax sums "
               "within %.2g of 1, features within %.2g of a double computation",
               N, mg_comm_size(world), mg_comm_size(world) == 1 ? "" : "s", acc[0], worst, err);
    }
    for (int v = 0; v < 2; v++) {
        free(p[v]);
        free(f[v]);
    }
    mg_classifier_free(&c);
    mg_dataset_free(&ds);
}

/* A checkpoint of a classifier: written and loaded back bit for bit, loaded for evaluation on
 * every rank; a GAN's checkpoint refused where a classifier's is wanted, and the reverse. */
static void test_checkpoint(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world);
    mg_dataset ds = mg_fixture_labeled_blobs(64);
    mg_config cfg = make_config(NULL, 0);
    mg_classifier c;
    init_ok(&c, &cfg, &ds, world);
    mg_classifier_stats s;
    for (int i = 0; i < 7; i++)
        mg_classifier_step(&c, &s);
    char path[4200];
    snprintf(path, sizeof path, "%s", mg_test_path("classifier.h5"));
    int64_t minibatch = c.step;
    mg_checkpoint_state st = {.c = &c.net, .c_opt = &c.opt, .classes = 4, .step = &c.step,
                              .minibatch = &minibatch, .skipped = &c.skipped,
                              .batches_per_epoch = c.batches_per_epoch, .seed = 11,
                              .ranks = c.nranks, .batch_size = c.batch, .channels = 1,
                              .height = 6, .width = 6};
    mg_error err;
    int ok = 1;
    if (rank == 0) {
        char *yaml = mg_fixture_yaml(&cfg);
        ok = mg_checkpoint_write(&st, yaml, path, &err) == 0;
        if (!ok)
            fprintf(stderr, "\n  write: %s", err.msg);
        free(yaml);
    }
    CU_ASSERT_FATAL(mg_comm_all_ok(world, ok));
    mg_classifier back;
    init_ok(&back, &cfg, &ds, world);
    int64_t mb = 0;
    mg_checkpoint_state bst = st;
    bst.c = &back.net, bst.c_opt = &back.opt, bst.step = &back.step, bst.minibatch = &mb;
    bst.skipped = &back.skipped;
    if (rank == 0) {
        CU_ASSERT_FATAL(mg_checkpoint_load(&bst, path, &err) == 0);
        CU_ASSERT(memcmp(back.net.params, c.net.params, c.net.n_params * sizeof(mg_real)) == 0);
        CU_ASSERT(memcmp(back.opt.m, c.opt.m, c.opt.n * sizeof(mg_real)) == 0);
        CU_ASSERT_EQUAL(back.step, 7);
        mg_checkpoint_info info;
        CU_ASSERT_FATAL(mg_checkpoint_read_info(&info, path, &err) == 0);
        CU_ASSERT_STRING_EQUAL(info.kind, "classifier");
        CU_ASSERT_EQUAL(info.classes, 4);
        mg_checkpoint_info_free(&info);
        /* A GAN's load of it, and a classifier's of a GAN checkpoint. */
        mg_trainer t;
        mg_config gan = mg_fixture_config(mg_fixture_sgd, MG_FIXTURE_G_LAYERS, 5, NULL, 0);
        mg_comm *self = mg_comm_split(world, 0);
        mg_fixture_trainer_ok(&t, &gan, &ds, self);
        char want[4400];
        snprintf(want, sizeof want, "%s: holds a classifier (mpigan classifier train), not a GAN",
                 path);
        CU_ASSERT(mg_fixture_load(&t, path, &err) == -1);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
        const char *gpath = mg_test_path("gan.h5");
        char *yaml = mg_fixture_yaml(&gan);
        CU_ASSERT_FATAL(mg_fixture_write(&t, yaml, gpath, &err) == 0);
        free(yaml);
        snprintf(want, sizeof want, "%s: holds a GAN (mpigan train), not a classifier", gpath);
        CU_ASSERT(mg_checkpoint_load(&bst, gpath, &err) == -1);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
        CU_ASSERT(mg_checkpoint_load_classifier(&back.net, gpath, &err) == -1);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
        mg_trainer_free(&t);
        mg_comm_free(self);
    } else {
        mg_comm_split(world, -1);
    }
    /* For evaluation, on every rank; examples of another shape refused. */
    mg_classifier_model m;
    CU_ASSERT_FATAL(mg_classifier_model_load(&m, path, 1, 6, 6, world, &err) == 0);
    CU_ASSERT_EQUAL(m.classes, 4);
    CU_ASSERT_EQUAL(m.features, 16);
    CU_ASSERT(memcmp(m.net.params, c.net.params, c.net.n_params * sizeof(mg_real)) == 0);
    mg_classifier_model_free(&m);
    CU_ASSERT(mg_classifier_model_load(&m, path, 1, 28, 28, world, &err) == -1);
    if (rank == 0) {
        char want[4400];
        snprintf(want, sizeof want,
                 "%s: the classifier takes examples of 1x6x6, these are 1x28x28", path);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
    }
    mg_classifier_free(&back);
    mg_classifier_free(&c);
    mg_dataset_free(&ds);
}

static void test_errors(void)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset plain = mg_fixture_blobs(64), ds = mg_fixture_labeled_blobs(64);
    mg_config cfg = make_config(NULL, 0);
    mg_classifier_spec spec = spec_of(&cfg);
    mg_classifier c;
    mg_error err;
    CU_ASSERT(mg_classifier_init(&c, &spec, &plain, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "the training split has no labels");
    ds.classes = 5;
    CU_ASSERT(mg_classifier_init(&c, &spec, &ds, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "the training split's labels count 5 classes, the "
                                    "classifier 4");
    ds.classes = 4;
    spec.net.layers[1].units = 3;
    CU_ASSERT(mg_classifier_init(&c, &spec, &ds, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "the classifier's last layer makes 3 values, not one per "
                                    "class (4)");
    mg_dataset_free(&plain);
    mg_dataset_free(&ds);
}

int main(int argc, char **argv)
{
    mg_comm_init(&argc, &argv);
    static const mg_test tests[] = {
        {"learns", test_learns},
        {"invariance", test_invariance},
        {"outputs", test_outputs},
        {"checkpoint", test_checkpoint},
        {"errors", test_errors},
        {NULL, NULL},
    };
    int rc = mg_test_main("classifier", tests, argc, argv);
    int all_ok = mg_comm_all_ok(mg_comm_world(), rc == 0);
    mg_comm_finalize();
    return all_ok ? rc : (rc ? rc : 1);
}
