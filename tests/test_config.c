/* Configuration: parsing, defaults, path resolution, overrides, the effective-config round trip,
 * and the exact message for every kind of bad input. */
#define _GNU_SOURCE
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpigan/config.h"

/* Eight lines, so that text appended to it starts at line 9. The data file does not exist:
 * error tests fail before the file check, which comes last. */
#define MINIMAL                                                                                    \
    "data:\n"                                                                                      \
    "  train_images: train.idx\n"                                                                  \
    "generator:\n"                                                                                 \
    "  layers:\n"                                                                                  \
    "    - {type: sigmoid, units: 784}\n"                                                          \
    "discriminator:\n"                                                                             \
    "  layers:\n"                                                                                  \
    "    - {type: sigmoid, units: 1}\n"

/* The same with three discriminator layers (lines 8 to 10). */
#define THREE_D                                                                                    \
    "data:\n"                                                                                      \
    "  train_images: train.idx\n"                                                                  \
    "generator:\n"                                                                                 \
    "  layers:\n"                                                                                  \
    "    - {type: sigmoid, units: 784}\n"                                                          \
    "discriminator:\n"                                                                             \
    "  layers:\n"                                                                                  \
    "    - {type: relu, units: 10}\n"                                                              \
    "    - {type: relu, units: 10}\n"                                                              \
    "    - {type: sigmoid, units: 1}\n"

/* Config does not read data files, only opens them: any bytes do. */
static const char *touch(const char *name)
{
    return mg_test_write_file(name, "x", 1);
}

static void expect_error_at(const char *yaml, const char *name, const char *const *sets, int n,
                            const char *want, int line)
{
    mg_config cfg;
    mg_error err = {{0}};
    int rc = mg_config_parse(&cfg, yaml, name, sets, n, &err);
    if (rc != -1 || strcmp(err.msg, want) != 0)
        fprintf(stderr, "\n  test_config.c:%d:\n    want: %s\n    got:  %s\n", line, want,
                rc == 0 ? "(success)" : err.msg);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
}

/* Parses `yaml` as "cfg.yaml" and asserts the exact, whole error line. */
#define EXPECT_ERROR(yaml, want) expect_error_at((yaml), "cfg.yaml", NULL, 0, (want), __LINE__)
#define EXPECT_SET_ERROR(yaml, sets, want)                                                         \
    expect_error_at((yaml), "cfg.yaml", (sets), (int)(sizeof(sets) / sizeof *(sets)), (want),      \
                    __LINE__)

static int parse_ok_at(mg_config *cfg, const char *yaml, const char *name, const char *const *sets,
                       int n, int line)
{
    mg_error err = {{0}};
    int rc = mg_config_parse(cfg, yaml, name, sets, n, &err);
    if (rc != 0)
        fprintf(stderr, "\n  test_config.c:%d: unexpected error: %s\n", line, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return rc;
}

/* Parses `yaml` as <tmpdir>/cfg.yaml, with a train.idx beside it. */
#define PARSE_OK(cfg, yaml, sets, n)                                                               \
    parse_ok_at((cfg), (yaml), mg_test_path("cfg.yaml"), (sets), (n), __LINE__)

static const char paper_mnist[] =
    "# The paper's MNIST model (Goodfellow et al. 2014, adversarial/mnist.yaml).\n"
    "seed: 20140610\n"
    "data:\n"
    "  format: idx\n"
    "  train_images: mnist/train-images-idx3-ubyte.gz\n"
    "  test_images: mnist/t10k-images-idx3-ubyte.gz\n"
    "  train_count: 50000\n"
    "  valid_count: 10000\n"
    "generator:\n"
    "  noise_dim: 100\n"
    "  prior: uniform_sqrt3\n"
    "  output_bias_from_data: true\n"
    "  layers:\n"
    "    - {name: h0, type: relu, units: 1200, irange: 0.05}\n"
    "    - {name: h1, type: relu, units: 1200, irange: 0.05}\n"
    "    - {name: y, type: sigmoid, units: 784, irange: 0.05}\n"
    "  optimizer: &sgd\n"
    "    type: sgd\n"
    "    lr: 0.1\n"
    "    lr_decay: 1.000004\n"
    "    min_lr: 0.000001\n"
    "    momentum: 0.5\n"
    "    final_momentum: 0.7\n"
    "    momentum_start: 1\n"
    "    momentum_saturate: 250\n"
    "discriminator:\n"
    "  layers:\n"
    "    - name: h0\n"
    "      type: maxout\n"
    "      units: 240\n"
    "      pieces: 5\n"
    "      irange: 0.005\n"
    "      keep: 0.8\n"
    "      input_scale: 1.25\n"
    "    - {name: h1, type: maxout, units: 240, pieces: 5, irange: 0.005, keep: 0.5}\n"
    "    - {name: y, type: sigmoid, units: 1, irange: 0.005, keep: 0.5}\n"
    "  optimizer: *sgd\n"
    "train:\n"
    "  batch_size: 100\n"
    "  k: 1\n"
    "  mode: alternating\n"
    "  generator_loss: nonsaturating\n"
    "  epochs: 300\n"
    "  steps: 0\n"
    "  check_every: 100\n"
    "  log_every: 50\n"
    "eval: {every: 5, samples: 2000, points: 500}\n"
    "output:\n"
    "  dir: runs/mnist\n";

static void make_mnist_files(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/mnist", mg_test_tmpdir());
    if (mkdir(dir, 0755) != 0 && access(dir, F_OK) != 0) {
        perror(dir);
        exit(2);
    }
    touch("mnist/train-images-idx3-ubyte.gz");
    touch("mnist/t10k-images-idx3-ubyte.gz");
}

static void check_sgd(const mg_optim_spec *o)
{
    CU_ASSERT_EQUAL(o->type, MG_OPTIM_SGD);
    CU_ASSERT_EQUAL(o->lr, 0.1);
    CU_ASSERT_EQUAL(o->lr_decay, 1.000004);
    CU_ASSERT_EQUAL(o->min_lr, 0.000001);
    CU_ASSERT_EQUAL(o->momentum, 0.5);
    CU_ASSERT_EQUAL(o->final_momentum, 0.7);
    CU_ASSERT_EQUAL(o->momentum_start, 1);
    CU_ASSERT_EQUAL(o->momentum_saturate, 250);
    /* Adam's keys keep their defaults, so the struct is the same however it was written. */
    CU_ASSERT_EQUAL(o->beta1, 0.5);
    CU_ASSERT_EQUAL(o->beta2, 0.999);
    CU_ASSERT_EQUAL(o->eps, 1e-8);
}

/* Values are compared exactly: each is the strtod of the literal the test also compiles. */
static void test_paper_mnist(void)
{
    make_mnist_files();
    mg_config cfg;
    PARSE_OK(&cfg, paper_mnist, NULL, 0);
    CU_ASSERT_STRING_EQUAL(cfg.source, mg_test_path("cfg.yaml"));
    CU_ASSERT_EQUAL(cfg.seed, 20140610u);
    CU_ASSERT_STRING_EQUAL(cfg.data.format, "idx");
    CU_ASSERT_STRING_EQUAL(cfg.data.train_images, mg_test_path("mnist/train-images-idx3-ubyte.gz"));
    CU_ASSERT_STRING_EQUAL(cfg.data.test_images, mg_test_path("mnist/t10k-images-idx3-ubyte.gz"));
    CU_ASSERT_EQUAL(cfg.data.train_count, 50000);
    CU_ASSERT_EQUAL(cfg.data.valid_count, 10000);

    CU_ASSERT_EQUAL(cfg.generator.noise_dim, 100);
    CU_ASSERT_EQUAL(cfg.generator.prior, MG_PRIOR_UNIFORM_SQRT3);
    CU_ASSERT_EQUAL(cfg.generator.output_bias_from_data, 1);
    const mg_net_spec *g = &cfg.generator.net;
    CU_ASSERT_EQUAL_FATAL(g->n_layers, 3);
    const char *g_names[] = {"h0", "h1", "y"};
    const enum mg_act g_types[] = {MG_ACT_RELU, MG_ACT_RELU, MG_ACT_SIGMOID};
    const int g_units[] = {1200, 1200, 784};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(g->layers[i].name, g_names[i]);
        CU_ASSERT_EQUAL(g->layers[i].type, g_types[i]);
        CU_ASSERT_EQUAL(g->layers[i].units, g_units[i]);
        CU_ASSERT_EQUAL(g->layers[i].pieces, 1);
        CU_ASSERT_EQUAL(g->layers[i].irange, 0.05);
        CU_ASSERT_EQUAL(g->layers[i].keep, 1.0);
        CU_ASSERT_EQUAL(g->layers[i].input_scale, 1.0);
        CU_ASSERT_EQUAL(g->layers[i].leak, 0.0);
    }
    check_sgd(&cfg.generator.optim);

    const mg_net_spec *d = &cfg.discriminator.net;
    CU_ASSERT_EQUAL_FATAL(d->n_layers, 3);
    CU_ASSERT_STRING_EQUAL(d->layers[0].name, "h0");
    CU_ASSERT_EQUAL(d->layers[0].type, MG_ACT_MAXOUT);
    CU_ASSERT_EQUAL(d->layers[0].units, 240);
    CU_ASSERT_EQUAL(d->layers[0].pieces, 5);
    CU_ASSERT_EQUAL(d->layers[0].irange, 0.005);
    CU_ASSERT_EQUAL(d->layers[0].keep, 0.8);
    CU_ASSERT_EQUAL(d->layers[0].input_scale, 1.25);
    CU_ASSERT_STRING_EQUAL(d->layers[1].name, "h1");
    CU_ASSERT_EQUAL(d->layers[1].type, MG_ACT_MAXOUT);
    CU_ASSERT_EQUAL(d->layers[1].pieces, 5);
    CU_ASSERT_EQUAL(d->layers[1].keep, 0.5);
    CU_ASSERT_EQUAL(d->layers[1].input_scale, 2.0); /* 1/keep when not given */
    CU_ASSERT_STRING_EQUAL(d->layers[2].name, "y");
    CU_ASSERT_EQUAL(d->layers[2].type, MG_ACT_SIGMOID);
    CU_ASSERT_EQUAL(d->layers[2].units, 1);
    CU_ASSERT_EQUAL(d->layers[2].pieces, 1);
    CU_ASSERT_EQUAL(d->layers[2].input_scale, 2.0);
    check_sgd(&cfg.discriminator.optim); /* through the YAML alias */

    CU_ASSERT_EQUAL(cfg.train.batch_size, 100);
    CU_ASSERT_EQUAL(cfg.train.k, 1);
    CU_ASSERT_EQUAL(cfg.train.mode, MG_MODE_ALTERNATING);
    CU_ASSERT_EQUAL(cfg.train.generator_loss, MG_GEN_LOSS_NONSATURATING);
    CU_ASSERT_EQUAL(cfg.train.epochs, 300);
    CU_ASSERT_EQUAL(cfg.train.steps, 0);
    CU_ASSERT_EQUAL(cfg.train.check_every, 100);
    CU_ASSERT_EQUAL(cfg.train.log_every, 50);
    CU_ASSERT_EQUAL(cfg.eval.every, 5);
    CU_ASSERT_EQUAL(cfg.eval.samples, 2000);
    CU_ASSERT_EQUAL(cfg.eval.points, 500);
    CU_ASSERT_STRING_EQUAL(cfg.output.dir, "runs/mnist"); /* where the user runs, unresolved */
}

static void check_default_optim(const mg_optim_spec *o)
{
    CU_ASSERT_EQUAL(o->type, MG_OPTIM_SGD);
    CU_ASSERT_EQUAL(o->lr, 0.1);
    CU_ASSERT_EQUAL(o->lr_decay, 1.0);
    CU_ASSERT_EQUAL(o->min_lr, 0.0);
    CU_ASSERT_EQUAL(o->momentum, 0.0);
    CU_ASSERT_EQUAL(o->final_momentum, 0.0);
    CU_ASSERT_EQUAL(o->momentum_start, 0);
    CU_ASSERT_EQUAL(o->momentum_saturate, 0);
    CU_ASSERT_EQUAL(o->beta1, 0.5);
    CU_ASSERT_EQUAL(o->beta2, 0.999);
    CU_ASSERT_EQUAL(o->eps, 1e-8);
}

static void test_defaults(void)
{
    touch("train.idx");
    mg_config cfg;
    PARSE_OK(&cfg, MINIMAL, NULL, 0);
    CU_ASSERT_EQUAL(cfg.seed, 1);
    CU_ASSERT_STRING_EQUAL(cfg.data.format, "idx");
    CU_ASSERT_STRING_EQUAL(cfg.data.test_images, "");
    CU_ASSERT_EQUAL(cfg.data.train_count, 50000);
    CU_ASSERT_EQUAL(cfg.data.valid_count, 10000);
    CU_ASSERT_EQUAL(cfg.generator.noise_dim, 100);
    CU_ASSERT_EQUAL(cfg.generator.prior, MG_PRIOR_UNIFORM);
    CU_ASSERT_EQUAL(cfg.generator.output_bias_from_data, 0);
    check_default_optim(&cfg.generator.optim);
    check_default_optim(&cfg.discriminator.optim);
    const mg_layer_spec *l = &cfg.generator.net.layers[0];
    CU_ASSERT_STRING_EQUAL(l->name, "h0");
    CU_ASSERT_EQUAL(l->pieces, 1);
    CU_ASSERT_EQUAL(l->irange, 0.05);
    CU_ASSERT_EQUAL(l->keep, 1.0);
    CU_ASSERT_EQUAL(l->input_scale, 1.0);
    CU_ASSERT_EQUAL(cfg.train.batch_size, 100);
    CU_ASSERT_EQUAL(cfg.train.k, 1);
    CU_ASSERT_EQUAL(cfg.train.mode, MG_MODE_ALTERNATING);
    CU_ASSERT_EQUAL(cfg.train.generator_loss, MG_GEN_LOSS_NONSATURATING);
    CU_ASSERT_EQUAL(cfg.train.epochs, 1);
    CU_ASSERT_EQUAL(cfg.train.steps, 0);
    CU_ASSERT_EQUAL(cfg.train.check_every, 100);
    CU_ASSERT_EQUAL(cfg.train.log_every, 50);
    CU_ASSERT_EQUAL(cfg.train.overlap, 1);
    CU_ASSERT_EQUAL(cfg.train.shared_allreduce, 1);
    CU_ASSERT_STRING_EQUAL(cfg.output.dir, "");

    /* mg_config_defaults plus the given keys is exactly the parsed struct, padding included. */
    mg_config want;
    mg_config_defaults(&want);
    snprintf(want.source, sizeof want.source, "%s", mg_test_path("cfg.yaml"));
    snprintf(want.data.train_images, sizeof want.data.train_images, "%s", mg_test_path("train.idx"));
    want.generator.net.n_layers = 1;
    want.generator.net.layers[0] = (mg_layer_spec){.name = "h0",
                                                   .op = MG_OP_DENSE,
                                                   .type = MG_ACT_SIGMOID,
                                                   .units = 784,
                                                   .pieces = 1,
                                                   .stride = {1, 1},
                                                   .tied_bias = 1,
                                                   .bias = 1,
                                                   .sync = 1,
                                                   .bn_momentum = 0.1,
                                                   .bn_eps = 1e-5,
                                                   .init = MG_INIT_UNIFORM,
                                                   .irange = 0.05,
                                                   .std = 0.02,
                                                   .keep = 1.0,
                                                   .input_scale = 1.0};
    want.discriminator.net.n_layers = 1;
    want.discriminator.net.layers[0] = want.generator.net.layers[0];
    want.discriminator.net.layers[0].units = 1;
    CU_ASSERT(memcmp(&cfg, &want, sizeof cfg) == 0);

    /* Empty sections are all defaults. */
    mg_config empty;
    PARSE_OK(&empty, MINIMAL "train:\noutput:\n", NULL, 0);
    CU_ASSERT(memcmp(&cfg, &empty, sizeof cfg) == 0);
}

static void test_layer_defaults(void)
{
    touch("train.idx");
    mg_config cfg;
    PARSE_OK(&cfg,
             "data: {train_images: train.idx}\n"
             "generator:\n"
             "  layers:\n"
             "    - {type: leaky_relu, units: 8}\n"
             "    - {type: leaky_relu, units: 8, leak: 0.01, keep: 0.25}\n"
             "    - {type: maxout, units: 4, pieces: 3, input_scale: 1.5, keep: 0.5}\n"
             "    - {name: Out_1, type: tanh, units: 2, irange: 0}\n"
             "discriminator:\n"
             "  layers: [{type: linear, units: 3}, {type: sigmoid, units: 1}]\n"
             "  optimizer: {type: adam}\n",
             NULL, 0);
    const mg_layer_spec *l = cfg.generator.net.layers;
    CU_ASSERT_EQUAL_FATAL(cfg.generator.net.n_layers, 4);
    CU_ASSERT_STRING_EQUAL(l[0].name, "h0");
    CU_ASSERT_EQUAL(l[0].leak, 0.2);
    CU_ASSERT_STRING_EQUAL(l[1].name, "h1");
    CU_ASSERT_EQUAL(l[1].leak, 0.01);
    CU_ASSERT_EQUAL(l[1].input_scale, 4.0);
    CU_ASSERT_EQUAL(l[2].pieces, 3);
    CU_ASSERT_EQUAL(l[2].input_scale, 1.5); /* given: not 1/keep */
    CU_ASSERT_EQUAL(l[2].leak, 0.0);
    CU_ASSERT_STRING_EQUAL(l[3].name, "Out_1");
    CU_ASSERT_EQUAL(l[3].type, MG_ACT_TANH);
    CU_ASSERT_EQUAL(l[3].irange, 0.0);
    CU_ASSERT_EQUAL(cfg.discriminator.net.layers[0].type, MG_ACT_LINEAR);
    const mg_optim_spec *o = &cfg.discriminator.optim;
    CU_ASSERT_EQUAL(o->type, MG_OPTIM_ADAM);
    CU_ASSERT_EQUAL(o->lr, 0.0002); /* Adam's own default */
    CU_ASSERT_EQUAL(o->beta1, 0.5);
    CU_ASSERT_EQUAL(o->beta2, 0.999);
    CU_ASSERT_EQUAL(o->eps, 1e-8);

    /* Momentum ramp ends default to where it starts; key order does not matter. */
    PARSE_OK(&cfg, MINIMAL "  optimizer: {momentum_start: 3, momentum: 0.5, lr: 0.05, type: sgd}\n",
             NULL, 0);
    o = &cfg.discriminator.optim;
    CU_ASSERT_EQUAL(o->lr, 0.05);
    CU_ASSERT_EQUAL(o->final_momentum, 0.5);
    CU_ASSERT_EQUAL(o->momentum_saturate, 3);
    PARSE_OK(&cfg, MINIMAL "  optimizer: {lr: 0.001, type: adam, beta1: 0.9}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.discriminator.optim.lr, 0.001);
    CU_ASSERT_EQUAL(cfg.discriminator.optim.beta1, 0.9);
}

static void test_bools(void)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "OFF"};
    touch("train.idx");
    char yaml[512];
    mg_config cfg;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        snprintf(yaml, sizeof yaml,
                 "data: {train_images: train.idx}\n"
                 "generator: {output_bias_from_data: %s, layers: [{type: tanh, units: 2}]}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 yes[i]);
        PARSE_OK(&cfg, yaml, NULL, 0);
        CU_ASSERT_EQUAL(cfg.generator.output_bias_from_data, 1);
        snprintf(yaml, sizeof yaml,
                 "data: {train_images: train.idx}\n"
                 "generator: {output_bias_from_data: %s, layers: [{type: tanh, units: 2}]}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 no[i]);
        PARSE_OK(&cfg, yaml, NULL, 0);
        CU_ASSERT_EQUAL(cfg.generator.output_bias_from_data, 0);
    }
    EXPECT_ERROR(MINIMAL "  output_bias_from_data: maybe\n",
                 "cfg.yaml:9: discriminator.output_bias_from_data: unknown key");
    EXPECT_ERROR(
        "generator:\n  output_bias_from_data: maybe\n",
        "cfg.yaml:2: generator.output_bias_from_data: expected true or false, got \"maybe\"");
    EXPECT_ERROR("generator:\n  output_bias_from_data: 1\n",
                 "cfg.yaml:2: generator.output_bias_from_data: expected true or false, got \"1\"");
    EXPECT_ERROR("generator:\n  output_bias_from_data:\n",
                 "cfg.yaml:2: generator.output_bias_from_data: expected true or false, got \"\"");
    EXPECT_ERROR("train:\n  shared_allreduce: sometimes\n",
                 "cfg.yaml:2: train.shared_allreduce: expected true or false, got \"sometimes\"");
    PARSE_OK(&cfg, MINIMAL "train: {shared_allreduce: off}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.train.shared_allreduce, 0);
}

/* data.range: a list of two numbers, the smaller first; for pixels as the file gives them only;
 * within what G's last activation can draw. */
static void test_range(void)
{
    touch("train.idx");
    mg_config cfg;
    PARSE_OK(&cfg, MINIMAL, NULL, 0);
    CU_ASSERT_EQUAL(cfg.data.range[0], 0);
    CU_ASSERT_EQUAL(cfg.data.range[1], 1);
    CU_ASSERT_EQUAL(mg_config_pixel_span(&cfg), 1);
#define TANH_G(data)                                                                               \
    "data: {train_images: train.idx" data "}\n"                                                    \
    "generator: {layers: [{type: tanh, units: 784}]}\n"                                            \
    "discriminator: {layers: [{type: sigmoid, units: 1}]}\n"
    PARSE_OK(&cfg, TANH_G(", range: [-1, 1]"), NULL, 0);
    CU_ASSERT_EQUAL(cfg.data.range[0], -1);
    CU_ASSERT_EQUAL(cfg.data.range[1], 1);
    CU_ASSERT_EQUAL(mg_config_pixel_span(&cfg), 2);
    const char *sets[] = {"data.range=[-0.5, 0.5]"};
    PARSE_OK(&cfg, TANH_G(""), sets, 1);
    CU_ASSERT_EQUAL(cfg.data.range[0], -0.5);
    CU_ASSERT_EQUAL(cfg.data.range[1], 0.5);
    const char *spaced[] = {"data.range=[ -1 ,1 ]"};
    PARSE_OK(&cfg, TANH_G(""), spaced, 1);
    CU_ASSERT_EQUAL(cfg.data.range[0], -1);
    CU_ASSERT_EQUAL(cfg.data.range[1], 1);
    const char *short_list[] = {"data.range=[-1]"};
    EXPECT_SET_ERROR(TANH_G(""), short_list,
                     "--set data.range: expected a list of 2 numbers, got 1");
    EXPECT_ERROR(TANH_G(", preprocess: gcn"),
                 "cfg.yaml: G's last layer is tanh, whose outputs lie in [-1, 1], and "
                 "data.preprocess gcn makes values outside it: make it linear");
    EXPECT_ERROR(TANH_G(", range: [1, -1]"),
                 "cfg.yaml: data.range: [1, -1] is empty: the first value must be the smaller");
    EXPECT_ERROR(TANH_G(", range: 1"), "cfg.yaml:1: data.range: expected a list of 2 numbers");
    EXPECT_ERROR(TANH_G(", range: [0, 0.5, 1]"),
                 "cfg.yaml:1: data.range: expected a list of 2 numbers, got 3");
    EXPECT_ERROR(TANH_G(", range: [low, 1]"),
                 "cfg.yaml:1: data.range.0: expected a number, got \"low\"");
    EXPECT_ERROR(TANH_G(", range: [-1, 1], preprocess: gcn"),
                 "cfg.yaml: data.range: applies to pixels as the file gives them, and "
                 "data.preprocess gcn makes other values");
    EXPECT_ERROR(TANH_G(", range: [-2, 1]"),
                 "cfg.yaml: G's last layer is tanh, whose outputs lie in [-1, 1], but data.range "
                 "is [-2, 1]");
    EXPECT_ERROR("data: {train_images: train.idx, range: [-1, 1]}\n"
                 "generator: {layers: [{type: sigmoid, units: 784}]}\n",
                 "cfg.yaml: G's last layer is sigmoid, whose outputs lie in [0, 1], but data.range "
                 "is [-1, 1] (use [0, 1], or a tanh output for [-1, 1])");
#undef TANH_G
}

static void test_ints(void)
{
    touch("train.idx");
    mg_config cfg;
    PARSE_OK(&cfg,
             MINIMAL "seed: 18446744073709551615\ntrain: {steps: 9223372036854775807, "
                     "check_every: 2147483647, epochs: +0}\n",
             NULL, 0);
    CU_ASSERT_EQUAL(cfg.seed, UINT64_MAX);
    CU_ASSERT_EQUAL(cfg.train.steps, INT64_MAX);
    CU_ASSERT_EQUAL(cfg.train.check_every, 2147483647);
    CU_ASSERT_EQUAL(cfg.train.epochs, 0);
    PARSE_OK(&cfg, MINIMAL "seed: 0\ntrain: {batch_size: 010}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.seed, 0);
    CU_ASSERT_EQUAL(cfg.train.batch_size, 10); /* decimal, not YAML 1.1's octal */

    EXPECT_ERROR("seed: 18446744073709551616\n",
                 "cfg.yaml:1: seed: integer out of range, got 18446744073709551616");
    EXPECT_ERROR("seed: -1\n", "cfg.yaml:1: seed: must be >= 0, got -1");
    EXPECT_ERROR("seed: 1.5\n", "cfg.yaml:1: seed: expected an integer, got \"1.5\"");
    EXPECT_ERROR("train:\n  steps: 9223372036854775808\n",
                 "cfg.yaml:2: train.steps: integer out of range, got 9223372036854775808");
    EXPECT_ERROR("train:\n  batch_size: 2147483648\n",
                 "cfg.yaml:2: train.batch_size: integer out of range, got 2147483648");
    EXPECT_ERROR("train:\n  epochs: -2147483649\n",
                 "cfg.yaml:2: train.epochs: integer out of range, got -2147483649");
    EXPECT_ERROR("train:\n  batch_size: 12.5\n",
                 "cfg.yaml:2: train.batch_size: expected an integer, got \"12.5\"");
    EXPECT_ERROR("train:\n  batch_size: 1e3\n",
                 "cfg.yaml:2: train.batch_size: expected an integer, got \"1e3\"");
    EXPECT_ERROR("train:\n  batch_size: 0x10\n",
                 "cfg.yaml:2: train.batch_size: expected an integer, got \"0x10\"");
    EXPECT_ERROR("train:\n  batch_size: \"\"\n",
                 "cfg.yaml:2: train.batch_size: expected an integer, got \"\"");
    EXPECT_ERROR("train:\n  batch_size: ten\n",
                 "cfg.yaml:2: train.batch_size: expected an integer, got \"ten\"");
}

static void test_paths(void)
{
    touch("train.idx");
    touch("test.idx");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/sub", mg_test_tmpdir());
    if (mkdir(dir, 0755) != 0 && access(dir, F_OK) != 0) {
        perror(dir);
        exit(2);
    }
    mg_config cfg;
    /* Relative to the file's directory; absolute kept; output.dir left alone. */
    const char *yaml = "data: {train_images: ../train.idx, test_images: %s}\n"
                       "generator: {layers: [{type: tanh, units: 2}]}\n"
                       "discriminator: {layers: [{type: sigmoid, units: 1}]}\n"
                       "output: {dir: out/here}\n";
    char text[8400];
    snprintf(text, sizeof text, yaml, mg_test_path("test.idx"));
    parse_ok_at(&cfg, text, mg_test_path("sub/cfg.yaml"), NULL, 0, __LINE__);
    CU_ASSERT_STRING_EQUAL(cfg.data.train_images, mg_test_path("sub/../train.idx"));
    CU_ASSERT_STRING_EQUAL(cfg.data.test_images, mg_test_path("test.idx"));
    CU_ASSERT_STRING_EQUAL(cfg.output.dir, "out/here");
    /* YAML's null is no file, not a file named "~". */
    parse_ok_at(&cfg,
                "data: {train_images: ../train.idx, test_images: ~}\n"
                "generator: {layers: [{type: tanh, units: 2}]}\n"
                "discriminator: {layers: [{type: sigmoid, units: 1}]}\n"
                "output: {dir: }\n",
                mg_test_path("sub/cfg.yaml"), NULL, 0, __LINE__);
    CU_ASSERT_STRING_EQUAL(cfg.data.test_images, "");
    CU_ASSERT_STRING_EQUAL(cfg.output.dir, "");

    /* A relative configuration name: its directory is taken from the working directory, so the
     * stored path stays right when the effective configuration is copied elsewhere. */
    char old[4200], cwd[4200];
    CU_ASSERT_FATAL(getcwd(old, sizeof old) != NULL);
    CU_ASSERT_FATAL(chdir(mg_test_tmpdir()) == 0);
    CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
    char want[8400];
    int rc = parse_ok_at(&cfg, text, "sub/cfg.yaml", NULL, 0, __LINE__);
    snprintf(want, sizeof want, "%s/sub/../train.idx", cwd);
    CU_ASSERT(rc == 0 && strcmp(cfg.data.train_images, want) == 0);
    CU_ASSERT_STRING_EQUAL(cfg.source, "sub/cfg.yaml");
    rc = parse_ok_at(&cfg, MINIMAL, "cfg.yaml", NULL, 0, __LINE__);
    snprintf(want, sizeof want, "%s/train.idx", cwd);
    CU_ASSERT(rc == 0 && strcmp(cfg.data.train_images, want) == 0);

    /* A path given with --set is a command-line path: relative to the working directory. */
    const char *sets[] = {"data.train_images=train.idx"};
    rc = parse_ok_at(&cfg, text, "sub/cfg.yaml", sets, 1, __LINE__);
    CU_ASSERT(rc == 0 && strcmp(cfg.data.train_images, want) == 0);
    CU_ASSERT_FATAL(chdir(old) == 0);

    /* No shell expansion: "~" is a directory name like any other. */
    snprintf(want, sizeof want,
             "%s:1: data.train_images: cannot open \"%s/~/train.idx\": No such file or directory",
             mg_test_path("cfg.yaml"), mg_test_tmpdir());
    expect_error_at("data: {train_images: ~/train.idx}\n"
                    "generator: {layers: [{type: tanh, units: 2}]}\n"
                    "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                    mg_test_path("cfg.yaml"), NULL, 0, want, __LINE__);
    snprintf(want, sizeof want,
             "%s:2: data.test_images: cannot open \"%s/$HOME/t.idx\": No such file or directory",
             mg_test_path("cfg.yaml"), mg_test_tmpdir());
    expect_error_at("data: {train_images: train.idx,\n"
                    "       test_images: $HOME/t.idx}\n"
                    "generator: {layers: [{type: tanh, units: 2}]}\n"
                    "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                    mg_test_path("cfg.yaml"), NULL, 0, want, __LINE__);
    /* A path with a line break (quoted in the file) is shown on one line. */
    snprintf(want, sizeof want,
             "%s:1: data.train_images: cannot open \"%s/a?b\": No such file or directory",
             mg_test_path("cfg.yaml"), mg_test_tmpdir());
    expect_error_at("data: {train_images: \"a\\nb\"}\n"
                    "generator: {layers: [{type: tanh, units: 2}]}\n"
                    "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                    mg_test_path("cfg.yaml"), NULL, 0, want, __LINE__);
    snprintf(want, sizeof want, "%s:2: data.train_images: cannot open \"%s/.\": Is a directory",
             mg_test_path("cfg.yaml"), mg_test_tmpdir());
    expect_error_at("data:\n  train_images: .\n"
                    "generator: {layers: [{type: tanh, units: 2}]}\n"
                    "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                    mg_test_path("cfg.yaml"), NULL, 0, want, __LINE__);
    snprintf(want, sizeof want,
             "--set data.train_images: cannot open \"/nonexistent/x.idx\": No such file or "
             "directory");
    const char *bad_set[] = {"data.train_images=/nonexistent/x.idx"};
    expect_error_at(MINIMAL, mg_test_path("cfg.yaml"), bad_set, 1, want, __LINE__);
    EXPECT_ERROR("data:\n  train_images: \"\"\n",
                 "cfg.yaml:2: data.train_images: must not be empty");
}

static void test_load_file(void)
{
    touch("train.idx");
    const char *path = mg_test_write_file("load.yaml", MINIMAL "train: {k: 2}\n",
                                          strlen(MINIMAL "train: {k: 2}\n"));
    mg_config cfg;
    mg_error err = {{0}};
    const char *sets[] = {"train.k=3"};
    int rc = mg_config_load(&cfg, path, sets, 1, &err);
    if (rc)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(cfg.source, path);
    CU_ASSERT_STRING_EQUAL(cfg.data.train_images, mg_test_path("train.idx"));
    CU_ASSERT_EQUAL(cfg.train.k, 3);

    const char *missing = mg_test_path("missing.yaml");
    char want[8400];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
    CU_ASSERT_EQUAL(mg_config_load(&cfg, missing, NULL, 0, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    snprintf(want, sizeof want, "%s: cannot read: Is a directory", mg_test_tmpdir());
    CU_ASSERT_EQUAL(mg_config_load(&cfg, mg_test_tmpdir(), NULL, 0, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    /* A NUL byte must not end the file early: it is a YAML error. */
    static const char nul[] = "seed: 1\n\0garbage: [\n";
    path = mg_test_write_file("nul.yaml", nul, sizeof nul - 1);
    snprintf(want, sizeof want,
             "%s: YAML syntax error: control characters are not allowed (byte 8)", path);
    CU_ASSERT_EQUAL(mg_config_load(&cfg, path, NULL, 0, &err), -1);
    if (strcmp(err.msg, want) != 0)
        fprintf(stderr, "\n    want: %s\n    got:  %s\n", want, err.msg);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
}

static void test_errors_syntax(void)
{
    EXPECT_ERROR(
        "data:\n  train_images: a: b\n",
        "cfg.yaml:2:18: YAML syntax error: mapping values are not allowed in this context");
    EXPECT_ERROR("train:\n  k: [1, 2\n",
                 "cfg.yaml:3:1: YAML syntax error: did not find expected ',' or ']'");
    EXPECT_ERROR("seed: 1\n---\nseed: 2\n",
                 "cfg.yaml:3: expected one YAML document, found a second");
    EXPECT_ERROR("- seed\n- 1\n", "cfg.yaml:1: expected a mapping at the top level");
    EXPECT_ERROR("\n\n42\n", "cfg.yaml:3: expected a mapping at the top level");
    /* Empty documents are valid and then lack the required keys. */
    EXPECT_ERROR("", "cfg.yaml: data.train_images: required key missing for format idx");
    EXPECT_ERROR("# nothing\n", "cfg.yaml: data.train_images: required key missing for format idx");
    EXPECT_ERROR("---\n", "cfg.yaml: data.train_images: required key missing for format idx");
    EXPECT_ERROR("[a]: 1\n", "cfg.yaml:1: mapping keys must be scalars");
}

static void test_errors_keys(void)
{
    EXPECT_ERROR(MINIMAL "train:\n  batchsize: 10\n",
                 "cfg.yaml:10: train.batchsize: unknown key (did you mean train.batch_size?)");
    EXPECT_ERROR(MINIMAL "train:\n  frobnicate: 10\n",
                 "cfg.yaml:10: train.frobnicate: unknown key");
    EXPECT_ERROR(MINIMAL "trian:\n  k: 1\n",
                 "cfg.yaml:9: trian: unknown key (did you mean train?)");
    EXPECT_ERROR(MINIMAL "    - {type: sigmoid, units: 1, kep: 0.5}\n",
                 "cfg.yaml:9: discriminator.layers.1.kep: unknown key (did you mean "
                 "discriminator.layers.1.keep?)");
    EXPECT_ERROR(MINIMAL "  optimizer: {momentun: 0.5}\n",
                 "cfg.yaml:9: discriminator.optimizer.momentun: unknown key (did you mean "
                 "discriminator.optimizer.momentum?)");
    EXPECT_ERROR(MINIMAL "train:\n  k: 1\n  batch_size: 5\n  k: 2\n",
                 "cfg.yaml:12: train.k: duplicate key (first at line 10)");
    EXPECT_ERROR(MINIMAL "data: {}\n", "cfg.yaml:9: data: duplicate key (first at line 1)");
    /* A key is any scalar: one with a line break (quoted, or a plain one folded over lines, as
     * fuzz_config found) is shown on one line, like a bad value. */
    EXPECT_ERROR(MINIMAL "train:\n  \"batch\\nsize\": 10\n",
                 "cfg.yaml:10: train.batch?size: unknown key (did you mean train.batch_size?)");
    EXPECT_ERROR(MINIMAL "train: {k: 1, e\n\n  irbeta1}\n",
                 "cfg.yaml:9: train.e?irbeta1: unknown key");
    /* A key path cut at its 255 bytes does not end in half a UTF-8 sequence ("é" is 2 bytes). */
    char yaml[1024], want[1024], a[249];
    memset(a, 'a', 248);
    a[248] = '\0';
    snprintf(yaml, sizeof yaml, MINIMAL "train:\n  %s\xc3\xa9: 1\n", a);
    snprintf(want, sizeof want, "cfg.yaml:10: train.%s: unknown key", a);
    EXPECT_ERROR(yaml, want);
    EXPECT_ERROR("seed: 1\n", "cfg.yaml: data.train_images: required key missing for format idx");
    EXPECT_ERROR("data: {train_images: x}\n", "cfg.yaml: generator.layers: required key missing");
    EXPECT_ERROR("data: {train_images: x}\ngenerator:\n  layers:\n",
                 "cfg.yaml: generator.layers: required key missing");
    EXPECT_ERROR("data: {train_images: x}\ngenerator: {layers: [{type: tanh, units: 2}]}\n",
                 "cfg.yaml: discriminator.layers: required key missing");
    EXPECT_ERROR("generator: {layers: [{units: 2}]}\n",
                 "cfg.yaml: generator.layers.0.type: required key missing");
    EXPECT_ERROR("generator: {layers: [{type: relu, units: 2}, {type: relu}]}\n",
                 "cfg.yaml: generator.layers.1.units: required key missing");
    EXPECT_ERROR("generator: {layers: [{type: maxout, units: 2}]}\n",
                 "cfg.yaml: generator.layers.0.pieces: required key missing for type maxout");
}

static void test_errors_types(void)
{
    EXPECT_ERROR(MINIMAL "train: 5\n", "cfg.yaml:9: train: expected a mapping");
    EXPECT_ERROR(MINIMAL "train: [1, 2]\n", "cfg.yaml:9: train: expected a mapping");
    EXPECT_ERROR("generator:\n  layers: {type: relu}\n",
                 "cfg.yaml:2: generator.layers: expected a list");
    EXPECT_ERROR("generator:\n  layers:\n    - relu\n",
                 "cfg.yaml:3: generator.layers.0: expected a mapping");
    EXPECT_ERROR("generator:\n  optimizer: sgd\n",
                 "cfg.yaml:2: generator.optimizer: expected a mapping");
    EXPECT_ERROR("train:\n  batch_size: [1]\n", "cfg.yaml:2: train.batch_size: expected a scalar");
    EXPECT_ERROR("data:\n  train_images: {a: 1}\n",
                 "cfg.yaml:2: data.train_images: expected a scalar");
    EXPECT_ERROR("generator:\n  layers: [{type: relu, units: 2, keep: abc}]\n",
                 "cfg.yaml:2: generator.layers.0.keep: expected a number, got \"abc\"");
    EXPECT_ERROR("generator:\n  layers: [{type: relu, units: 2, keep: 0.5x}]\n",
                 "cfg.yaml:2: generator.layers.0.keep: expected a number, got \"0.5x\"");
    EXPECT_ERROR("generator:\n  layers: [{type: relu, units: 2, keep: .nan}]\n",
                 "cfg.yaml:2: generator.layers.0.keep: expected a number, got \".nan\"");
    EXPECT_ERROR("generator:\n  layers: [{type: relu, units: 2, keep: nan}]\n",
                 "cfg.yaml:2: generator.layers.0.keep: expected a finite number, got \"nan\"");
    EXPECT_ERROR("generator:\n  optimizer: {lr: 1e999}\n",
                 "cfg.yaml:2: generator.optimizer.lr: expected a finite number, got \"1e999\"");
    EXPECT_ERROR("generator:\n  optimizer: {lr: -inf}\n",
                 "cfg.yaml:2: generator.optimizer.lr: expected a finite number, got \"-inf\"");
    EXPECT_ERROR(
        MINIMAL "train:\n  mode: both\n",
        "cfg.yaml:10: train.mode: expected one of alternating, simultaneous; got \"both\"");
    EXPECT_ERROR("train:\n  generator_loss: Minimax\n",
                 "cfg.yaml:2: train.generator_loss: expected one of nonsaturating, minimax; got "
                 "\"Minimax\"");
    EXPECT_ERROR("generator:\n  prior: gaussian\n",
                 "cfg.yaml:2: generator.prior: expected one of uniform, uniform_sqrt3, normal; got "
                 "\"gaussian\"");
    EXPECT_ERROR("data:\n  format: mat\n",
                 "cfg.yaml:2: data.format: expected one of idx, cifar10, tfd, hdf5; got \"mat\"");
    EXPECT_ERROR("generator:\n  layers: [{type: softmax, units: 2}]\n",
                 "cfg.yaml:2: generator.layers.0.type: expected one of linear, relu, leaky_relu, "
                 "sigmoid, tanh, maxout, conv, maxout_conv, deconv, reshape, batchnorm; got "
                 "\"softmax\"");
    EXPECT_ERROR(
        "generator:\n  optimizer: {type: rmsprop}\n",
        "cfg.yaml:2: generator.optimizer.type: expected one of sgd, adam; got \"rmsprop\"");
    EXPECT_ERROR("generator:\n  output_bias_from_data: \"true\\0\"\n",
                 "cfg.yaml:2: generator.output_bias_from_data: must not contain a NUL byte");
    EXPECT_ERROR("output:\n  dir: \"a\\0b\"\n",
                 "cfg.yaml:2: output.dir: must not contain a NUL byte");
    /* One line, however the value was written. */
    EXPECT_ERROR("train:\n  mode: \"a\\nb\"\n",
                 "cfg.yaml:2: train.mode: expected one of alternating, simultaneous; got \"a?b\"");
}

static void test_errors_values(void)
{
    EXPECT_ERROR(MINIMAL "train:\n  batch_size: 0\n",
                 "cfg.yaml:10: train.batch_size: must be in [1, 16777216], got 0");
    EXPECT_ERROR("train: {k: 0}\n", "cfg.yaml:1: train.k: must be in [1, 65534], got 0");
    EXPECT_ERROR("train: {epochs: -1}\n", "cfg.yaml:1: train.epochs: must be >= 0, got -1");
    EXPECT_ERROR("train: {steps: -1}\n", "cfg.yaml:1: train.steps: must be >= 0, got -1");
    EXPECT_ERROR("train: {node_ranks: -2}\n", "cfg.yaml:1: train.node_ranks: must be >= 0, got -2");
    EXPECT_ERROR("train: {node_ranks: two}\n",
                 "cfg.yaml:1: train.node_ranks: expected an integer, got \"two\"");
    EXPECT_ERROR("train: {check_every: -1}\n",
                 "cfg.yaml:1: train.check_every: must be >= 0, got -1");
    EXPECT_ERROR("train: {log_every: 0}\n", "cfg.yaml:1: train.log_every: must be >= 1, got 0");
    EXPECT_ERROR("data: {train_count: -1}\n", "cfg.yaml:1: data.train_count: must be >= 0, got -1");
    EXPECT_ERROR("data: {fold: 5}\n", "cfg.yaml:1: data.fold: must be in [0, 4], got 5");
    EXPECT_ERROR("data: {format: cifar10}\n", "cfg.yaml: data.path: required key missing for format cifar10");
    EXPECT_ERROR("data: {format: tfd, path: \"\"}\n", "cfg.yaml:1: data.path: must not be empty");
    EXPECT_ERROR("data: {split: training}\n",
                 "cfg.yaml:1: data.split: expected one of unlabeled, train, valid, test; got \"training\"");
    EXPECT_ERROR("data: {preprocess: gcn, train_images: x}\n"
                 "generator: {output_bias_from_data: true, layers: [{type: sigmoid, units: 2}]}\n",
                 "cfg.yaml: G's last layer is sigmoid, whose outputs lie in [0, 1], and "
                 "data.preprocess gcn makes values outside it: make it linear");
    EXPECT_ERROR("data: {train_images: x}\n"
                 "generator: {output_bias_from_data: true, layers: [{type: relu, units: 2}]}\n",
                 "cfg.yaml: generator.output_bias_from_data: needs G's last layer sigmoid, tanh "
                 "or linear (one whose inverse gives the bias), not relu");
    EXPECT_ERROR("data: {valid_count: -5}\n", "cfg.yaml:1: data.valid_count: must be >= 0, got -5");
    EXPECT_ERROR("generator: {noise_dim: 0}\n",
                 "cfg.yaml:1: generator.noise_dim: must be in [1, 16777216], got 0");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 0}\n",
                 "cfg.yaml:3: generator.layers.0.units: must be in [1, 16777216], got 0");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: maxout, units: 2, pieces: 1}\n",
                 "cfg.yaml:3: generator.layers.0.pieces: must be in [2, 1024], got 1");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, keep: 1.5}\n",
                 "cfg.yaml:3: generator.layers.0.keep: must be in (0, 1], got 1.5");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, keep: 0}\n",
                 "cfg.yaml:3: generator.layers.0.keep: must be in (0, 1], got 0");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, irange: -0.1}\n",
                 "cfg.yaml:3: generator.layers.0.irange: must be >= 0, got -0.1");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, input_scale: 0}\n",
                 "cfg.yaml:3: generator.layers.0.input_scale: must be > 0, got 0");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: leaky_relu, units: 2, leak: 1}\n",
                 "cfg.yaml:3: generator.layers.0.leak: must be in [0, 1), got 1");
    EXPECT_ERROR("generator:\n  optimizer:\n    lr: 0\n",
                 "cfg.yaml:3: generator.optimizer.lr: must be > 0, got 0");
    EXPECT_ERROR("generator:\n  optimizer:\n    lr_decay: 0.5\n",
                 "cfg.yaml:3: generator.optimizer.lr_decay: must be >= 1, got 0.5");
    EXPECT_ERROR("generator:\n  optimizer:\n    min_lr: -1e-9\n",
                 "cfg.yaml:3: generator.optimizer.min_lr: must be >= 0, got -1e-9");
    EXPECT_ERROR("generator:\n  optimizer:\n    momentum: 1\n",
                 "cfg.yaml:3: generator.optimizer.momentum: must be in [0, 1), got 1");
    EXPECT_ERROR("generator:\n  optimizer:\n    final_momentum: -0.1\n",
                 "cfg.yaml:3: generator.optimizer.final_momentum: must be in [0, 1), got -0.1");
    EXPECT_ERROR(
        "generator:\n  optimizer:\n    momentum_start: 5\n    momentum_saturate: 2\n",
        "cfg.yaml:4: generator.optimizer.momentum_saturate: must be >= momentum_start (5), "
        "got 2");
    EXPECT_ERROR("generator:\n  optimizer:\n    type: adam\n    beta2: 1\n",
                 "cfg.yaml:4: generator.optimizer.beta2: must be in [0, 1), got 1");
    EXPECT_ERROR("generator:\n  optimizer:\n    type: adam\n    eps: 0\n",
                 "cfg.yaml:4: generator.optimizer.eps: must be > 0, got 0");
}

static void test_errors_layers(void)
{
    EXPECT_ERROR(THREE_D "    - {type: relu, units: 10}\n",
                 "cfg.yaml:11: discriminator.layers.3: the discriminator's last layer must be "
                 "sigmoid with 1 unit (got relu, 10 units)");
    EXPECT_ERROR("discriminator:\n  layers: [{type: sigmoid, units: 2}]\n",
                 "cfg.yaml:2: discriminator.layers.0: the discriminator's last layer must be "
                 "sigmoid with 1 unit (got sigmoid, 2 units)");
    EXPECT_ERROR("discriminator:\n  layers: [{type: tanh, units: 1}]\n",
                 "cfg.yaml:2: discriminator.layers.0: the discriminator's last layer must be "
                 "sigmoid with 1 unit (got tanh, 1 unit)");
    char yaml[4096] = "generator:\n  layers:\n";
    for (int i = 0; i < MG_MAX_LAYERS + 1; i++)
        strcat(yaml, "    - {type: relu, units: 2}\n");
    EXPECT_ERROR(yaml, "cfg.yaml:3: generator.layers: at most 16 layers, got 17");
    EXPECT_ERROR("generator:\n  layers: []\n",
                 "cfg.yaml:2: generator.layers: at least 1 layer, got 0");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, pieces: 2}\n",
                 "cfg.yaml:3: generator.layers.0.pieces: only for types maxout and maxout_conv");
    EXPECT_ERROR("generator:\n  layers:\n    - {leak: 0.1, units: 2, type: tanh}\n",
                 "cfg.yaml:3: generator.layers.0.leak: only for types leaky_relu, conv, deconv and batchnorm");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, name: a-b}\n",
                 "cfg.yaml:3: generator.layers.0.name: must be 1 to 31 characters of A-Z, a-z, 0-9 "
                 "and _, got \"a-b\"");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, name: \"\"}\n",
                 "cfg.yaml:3: generator.layers.0.name: must be 1 to 31 characters of A-Z, a-z, 0-9 "
                 "and _, got \"\"");
    EXPECT_ERROR("generator:\n  layers:\n"
                 "    - {type: relu, units: 2, name: abcdefghijklmnopqrstuvwxyz012345}\n",
                 "cfg.yaml:3: generator.layers.0.name: must be 1 to 31 characters of A-Z, a-z, 0-9 "
                 "and _, got \"abcdefghijklmnopqrstuvwxyz012345\"");
    EXPECT_ERROR(
        "generator:\n  layers:\n    - {type: relu, units: 2, name: x}\n"
        "    - {type: relu, units: 2, name: x}\n",
        "cfg.yaml:4: generator.layers.1.name: name \"x\" is already used by generator.layers.0");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, name: h1}\n"
                 "    - {type: relu, units: 2}\n",
                 "cfg.yaml:4: generator.layers.1: default name \"h1\" is already used by "
                 "generator.layers.0");
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 2, name: optimizer}\n",
                 "cfg.yaml:3: generator.layers.0.name: \"optimizer\" is reserved (checkpoints keep "
                 "optimizer state under it)");
    /* Names are per network: G and D may both have h0. */
    touch("train.idx");
    mg_config cfg;
    PARSE_OK(&cfg, MINIMAL, NULL, 0);
    CU_ASSERT_STRING_EQUAL(cfg.discriminator.net.layers[0].name, cfg.generator.net.layers[0].name);
}

static void test_errors_optimizer(void)
{
    EXPECT_ERROR("generator:\n  optimizer:\n    momentum: 0.5\n    type: adam\n",
                 "cfg.yaml:3: generator.optimizer.momentum: only for type sgd");
    EXPECT_ERROR("generator:\n  optimizer:\n    type: adam\n    lr_decay: 1.1\n",
                 "cfg.yaml:4: generator.optimizer.lr_decay: only for type sgd");
    EXPECT_ERROR("generator:\n  optimizer:\n    beta1: 0.9\n",
                 "cfg.yaml:3: generator.optimizer.beta1: only for type adam");
    EXPECT_ERROR("discriminator:\n  optimizer: {type: sgd, eps: 1e-7}\n",
                 "cfg.yaml:2: discriminator.optimizer.eps: only for type adam");
}

static void test_overrides(void)
{
    touch("train.idx");
    mg_config cfg;
    const char *good[] = {
        "train.batch_size=50",                 /* replace a value from the file */
        "train.k=3",                           /* add a key to a section of the file */
        "generator.optimizer.type=adam",       /* add a section */
        "discriminator.layers.0.keep=0.5",     /* a list element */
        "generator.output_bias_from_data=yes", /* typed as the file's keys are */
        "output.dir=runs/a=b c",               /* plain text after the first '=' */
        "train.epochs=2",
        "train.epochs=4", /* later wins */
    };
    PARSE_OK(&cfg, MINIMAL "train:\n  batch_size: 100\n  epochs: 9\n", good, 8);
    CU_ASSERT_EQUAL(cfg.train.batch_size, 50);
    CU_ASSERT_EQUAL(cfg.train.k, 3);
    CU_ASSERT_EQUAL(cfg.generator.optim.type, MG_OPTIM_ADAM);
    CU_ASSERT_EQUAL(cfg.generator.optim.lr, 0.0002);
    CU_ASSERT_EQUAL(cfg.discriminator.net.layers[0].keep, 0.5);
    CU_ASSERT_EQUAL(cfg.discriminator.net.layers[0].input_scale, 2.0);
    CU_ASSERT_EQUAL(cfg.generator.output_bias_from_data, 1);
    CU_ASSERT_STRING_EQUAL(cfg.output.dir, "runs/a=b c");
    CU_ASSERT_EQUAL(cfg.train.epochs, 4);

    /* Into a section left empty in the file, and a whole new top-level section. */
    const char *fill[] = {"train.k=2", "output.dir=o"};
    PARSE_OK(&cfg, MINIMAL "train:\n", fill, 2);
    CU_ASSERT_EQUAL(cfg.train.k, 2);
    CU_ASSERT_STRING_EQUAL(cfg.output.dir, "o");

    /* An override can fix what the file gets wrong: it is applied before checking. */
    const char *fix[] = {"train.batch_size=10"};
    PARSE_OK(&cfg, MINIMAL "train: {batch_size: 0}\n", fix, 1);
    CU_ASSERT_EQUAL(cfg.train.batch_size, 10);

    /* An empty file plus overrides: the overrides make the whole tree. */
    const char *only[] = {"data.train_images=/nonexistent", "train.k=2"};
    EXPECT_SET_ERROR("", only, "cfg.yaml: generator.layers: required key missing");
}

static void test_errors_overrides(void)
{
    const char *no_eq[] = {"train.batch_size"};
    EXPECT_SET_ERROR(MINIMAL, no_eq, "--set train.batch_size: expected key=value");
    const char *no_key[] = {"=5"};
    EXPECT_SET_ERROR(MINIMAL, no_key, "--set =5: expected key=value");
    const char *unknown[] = {"train.batchsize=5"};
    EXPECT_SET_ERROR(MINIMAL, unknown,
                     "--set train.batchsize: unknown key (did you mean train.batch_size?)");
    EXPECT_SET_ERROR(MINIMAL "train: {k: 1}\n", unknown,
                     "--set train.batchsize: unknown key (did you mean train.batch_size?)");
    const char *new_section[] = {"trian.k=2"};
    EXPECT_SET_ERROR(MINIMAL, new_section, "--set trian: unknown key (did you mean train?)");
    const char *bad_value[] = {"train.batch_size=0"};
    EXPECT_SET_ERROR(MINIMAL "train: {batch_size: 5}\n", bad_value,
                     "--set train.batch_size: must be in [1, 16777216], got 0");
    const char *mode[] = {"train.mode=both"};
    EXPECT_SET_ERROR(MINIMAL, mode,
                     "--set train.mode: expected one of alternating, simultaneous; got \"both\"");
    const char *empty[] = {"train.batch_size="};
    EXPECT_SET_ERROR(MINIMAL, empty, "--set train.batch_size: expected an integer, got \"\"");
    const char *range[] = {"discriminator.layers.5.keep=1"};
    EXPECT_SET_ERROR(THREE_D, range, "--set discriminator.layers.5.keep=1: the list has 3 entries");
    EXPECT_SET_ERROR(MINIMAL, range, "--set discriminator.layers.5.keep=1: the list has 1 entry");
    const char *not_index[] = {"generator.layers.first.units=3"};
    EXPECT_SET_ERROR(MINIMAL, not_index,
                     "--set generator.layers.first.units=3: generator.layers is a list; expected "
                     "an index, got \"first\"");
    const char *into_scalar[] = {"train.k.x=1"};
    EXPECT_SET_ERROR(MINIMAL "train: {k: 1}\n", into_scalar,
                     "--set train.k.x=1: train.k is a scalar (cfg.yaml:9), not a mapping");
    /* A section made a value by one --set and given a key by the next: the message says the
     * earlier --set is the cause, not the later (valid) one. */
    const char *set_then_key[] = {"train=5", "train.k=1"};
    EXPECT_SET_ERROR(MINIMAL "train: {k: 1}\n", set_then_key,
                     "--set train.k=1: train is a value of an earlier --set, not a mapping");
    const char *empty_comp[] = {"train..k=1"};
    EXPECT_SET_ERROR(MINIMAL, empty_comp, "--set train..k=1: empty key component");
    const char *whole_item[] = {"generator.layers.0=5"};
    EXPECT_SET_ERROR(MINIMAL, whole_item, "--set generator.layers.0: expected a mapping");
    const char *section[] = {"train=5"};
    EXPECT_SET_ERROR(MINIMAL "train: {k: 1}\n", section, "--set train: expected a mapping");
    const char *utf8[] = {"output.dir=\xff"};
    EXPECT_SET_ERROR(MINIMAL, utf8, "--set output.dir=\xff: not valid UTF-8");
    /* Later wins, for errors too: the first, bad value is gone. */
    const char *later[] = {"train.k=0", "train.k=-1"};
    EXPECT_SET_ERROR(MINIMAL, later, "--set train.k: must be in [1, 65534], got -1");
    /* A node from the file keeps its line even when an override made it wrong. */
    const char *relu[] = {"discriminator.layers.0.type=relu"};
    EXPECT_SET_ERROR(MINIMAL, relu,
                     "cfg.yaml:8: discriminator.layers.0: the discriminator's last layer must be "
                     "sigmoid with 1 unit (got relu, 1 unit)");
    const char *adam[] = {"discriminator.optimizer.type=adam"};
    EXPECT_SET_ERROR(MINIMAL "  optimizer: {momentum: 0.5}\n", adam,
                     "cfg.yaml:9: discriminator.optimizer.momentum: only for type sgd");
}


/* Issue 14, 1: every integer key has bounds, and every product of keys the program forms (G's
 * (k + 1) x batch_size rows of each layer, the snapshots, the Parzen estimates) fits an int. The
 * message names the largest factor's key, where it was given. */
static void test_errors_sizes(void)
{
    /* k + 1 phases overflowed an int in train.c before; the noise streams bound k anyway. */
    EXPECT_ERROR("train: {k: 2147483647}\n",
                 "cfg.yaml:1: train.k: must be in [1, 65534], got 2147483647");
    EXPECT_ERROR("train: {k: 1073741823}\n",
                 "cfg.yaml:1: train.k: must be in [1, 65534], got 1073741823");
    EXPECT_ERROR(MINIMAL "train: {k: 65534}\n",
                 "cfg.yaml:9: train.k: 65534 makes (train.k + 1) x train.batch_size x "
                 "generator.layers.0.units = 65535 x 100 x 784 = 5137944000 activations in G's "
                 "layer 0, more than 2147483647");
    const char *k_set[] = {"train.k=65534"};
    EXPECT_SET_ERROR(MINIMAL, k_set,
                     "--set train.k: 65534 makes (train.k + 1) x train.batch_size x "
                     "generator.layers.0.units = 65535 x 100 x 784 = 5137944000 activations in "
                     "G's layer 0, more than 2147483647");
    /* Simultaneous steps make one block of fakes, not k + 1. */
    touch("train.idx");
    mg_config cfg;
    PARSE_OK(&cfg, MINIMAL "train: {k: 65534, mode: simultaneous}\n", NULL, 0);
    EXPECT_ERROR(MINIMAL "train: {batch_size: 16777216}\n",
                 "cfg.yaml:9: train.batch_size: 16777216 makes (train.k + 1) x train.batch_size x "
                 "generator.layers.0.units = 2 x 16777216 x 784 = 26306674688 activations in G's "
                 "layer 0, more than 2147483647");
    EXPECT_ERROR("generator:\n  noise_dim: 16777216\n  layers: [{type: relu, units: 2}]\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 "cfg.yaml:2: generator.noise_dim: 16777216 makes (train.k + 1) x "
                 "train.batch_size x generator.noise_dim = 2 x 100 x 16777216 = 3355443200 inputs "
                 "of G's layer 0, more than 2147483647");
    /* Weights: the later of two equal factors is the layer's own. */
    EXPECT_ERROR("generator:\n  layers:\n    - {type: relu, units: 60000}\n"
                 "    - {type: relu, units: 60000}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 "cfg.yaml:4: generator.layers.1.units: 60000 makes generator.layers.0.units x "
                 "generator.layers.1.units = 60000 x 60000 = 3600000000 weights in G's layer 1, "
                 "more than 2147483647");
    EXPECT_ERROR("generator: {layers: [{type: sigmoid, units: 784}]}\n"
                 "discriminator:\n  layers:\n    - {type: maxout, units: 240, pieces: 1000}\n"
                 "    - {type: maxout, units: 16000, pieces: 1000}\n"
                 "    - {type: sigmoid, units: 1}\n",
                 "cfg.yaml:5: discriminator.layers.1.units: 16000 makes 2 x train.batch_size x "
                 "discriminator.layers.1.units x discriminator.layers.1.pieces = 2 x 100 x 16000 "
                 "x 1000 = 3200000000 activations in D's layer 1, more than 2147483647");
    /* Snapshots and Parzen estimates (session.c), and the grid image.c draws. */
    EXPECT_ERROR("samples: {columns: 2147483647}\n",
                 "cfg.yaml:1: samples.columns: must be in [0, 16777216], got 2147483647");
    EXPECT_ERROR(MINIMAL "samples: {columns: 16777216}\n",
                 "cfg.yaml:9: samples.columns: 16777216 makes a sample grid of 16777216 columns, "
                 "at least 33554433 pixels wide, more than 1000000");
    EXPECT_ERROR(MINIMAL "samples: {count: 1000000, columns: 1}\n",
                 "cfg.yaml:9: samples.columns: 1 makes a sample grid of 1000000 rows, at least "
                 "2000001 pixels tall, more than 1000000");
    EXPECT_ERROR(MINIMAL "samples: {count: 2000000}\n",
                 "cfg.yaml:9: samples.count: 2000000 makes a sample grid of at least 524000000 "
                 "pixels (images of 784 values, at least 262 pixels each), more than 268435456");
    PARSE_OK(&cfg, MINIMAL "samples: {count: 2000000, png: false}\n", NULL, 0);
    EXPECT_ERROR(MINIMAL "samples: {count: 16777216}\n",
                 "cfg.yaml:9: samples.count: 16777216 makes samples.count x "
                 "generator.layers.0.units = 16777216 x 784 = 13153337344 values in a sample "
                 "snapshot, more than 2147483647");
    EXPECT_ERROR(MINIMAL "eval: {samples: 16777216}\n",
                 "cfg.yaml:9: eval.samples: 16777216 makes eval.samples x "
                 "generator.layers.0.units = 16777216 x 784 = 13153337344 values of samples for "
                 "the Parzen estimates, more than 2147483647");
    EXPECT_ERROR(MINIMAL "eval: {points: 16777216}\n",
                 "cfg.yaml:9: eval.points: 16777216 makes eval.points x generator.layers.0.units "
                 "= 16777216 x 784 = 13153337344 values of validation examples for the Parzen "
                 "estimates, more than 2147483647");
    /* The minibatch counter, k per step. */
    EXPECT_ERROR(MINIMAL "train: {steps: 9223372036854775807, k: 2}\n",
                 "cfg.yaml:9: train.steps: 9223372036854775807 makes train.steps x train.k = "
                 "9223372036854775807 x 2 = 1.845e+19 minibatches, more than "
                 "9223372036854775807");
    /* The largest of each that fits. */
    PARSE_OK(&cfg, MINIMAL "train: {k: 13696}\nsamples: {count: 1000000}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.train.k, 13696); /* 13697 x 100 x 784 < 2^31 */
}

/* Issue 14, 2: every real is used as a float; a value finite as a double but Inf, 0, 1 or
 * subnormal as a float is refused, naming the key. */
static void test_errors_precision(void)
{
    static const struct {
        const char *yaml;
        const char *key;
        int line;
    } big[] = {
        {"generator: {layers: [{type: relu, units: 2, irange: %s}]}\n", "generator.layers.0.irange", 1},
        {"generator: {layers: [{type: relu, units: 2, keep: 0.5, input_scale: %s}]}\n",
         "generator.layers.0.input_scale", 1},
        {"discriminator: {layers: [{type: sigmoid, units: 1, max_col_norm: %s}]}\n",
         "discriminator.layers.0.max_col_norm", 1},
        {"generator: {optimizer: {lr: %s}}\n", "generator.optimizer.lr", 1},
        {"generator: {optimizer: {lr_decay: %s}}\n", "generator.optimizer.lr_decay", 1},
        {"discriminator: {optimizer: {min_lr: %s}}\n", "discriminator.optimizer.min_lr", 1},
        {"discriminator:\n  optimizer: {type: adam, eps: %s}\n", "discriminator.optimizer.eps", 2},
        {"data: {gcn_scale: %s}\n", "data.gcn_scale", 1},
    };
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        char yaml[256], want[512];
        snprintf(yaml, sizeof yaml, big[i].yaml, "1e39");
        snprintf(want, sizeof want, "cfg.yaml:%d: %s: 1e39 is beyond single precision (largest "
                 "3.40282e+38)", big[i].line, big[i].key);
        expect_error_at(yaml, "cfg.yaml", NULL, 0, want, __LINE__);
        snprintf(yaml, sizeof yaml, big[i].yaml, "3.5e38");
        snprintf(want, sizeof want, "cfg.yaml:%d: %s: 3.5e38 is beyond single precision (largest "
                 "3.40282e+38)", big[i].line, big[i].key);
        expect_error_at(yaml, "cfg.yaml", NULL, 0, want, __LINE__);
    }
    const char *lr_set[] = {"generator.optimizer.lr=1e39"};
    EXPECT_SET_ERROR(MINIMAL, lr_set,
                     "--set generator.optimizer.lr: 1e39 is beyond single precision (largest "
                     "3.40282e+38)");
    EXPECT_ERROR("generator:\n  optimizer:\n    lr: 5e-324\n",
                 "cfg.yaml:3: generator.optimizer.lr: must be > 0, got 5e-324 (0 in single "
                 "precision)");
    EXPECT_ERROR("generator:\n  optimizer:\n    type: adam\n    eps: 1e-46\n",
                 "cfg.yaml:4: generator.optimizer.eps: must be > 0, got 1e-46 (0 in single "
                 "precision)");
    EXPECT_ERROR("generator:\n  layers: [{type: relu, units: 2, keep: 1e-50}]\n",
                 "cfg.yaml:2: generator.layers.0.keep: must be in (0, 1], got 1e-50 (0 in single "
                 "precision)");
    /* Below 1 as a double, 1 as a float: no decay at all (Adam would divide by 1 - 1^t). */
    EXPECT_ERROR("generator:\n  optimizer:\n    momentum: 0.99999999\n",
                 "cfg.yaml:3: generator.optimizer.momentum: must be in [0, 1), got 0.99999999 (1 "
                 "in single precision)");
    EXPECT_ERROR("generator:\n  optimizer: {type: adam, beta2: 0.999999999}\n",
                 "cfg.yaml:2: generator.optimizer.beta2: must be in [0, 1), got 0.999999999 (1 in "
                 "single precision)");
    EXPECT_ERROR("generator:\n  optimizer:\n    min_lr: 1e-40\n",
                 "cfg.yaml:3: generator.optimizer.min_lr: 1e-40 is too close to 0 for single "
                 "precision (smallest normal 1.17549e-38)");
    EXPECT_ERROR("generator:\n  optimizer:\n    lr: 1e-40\n",
                 "cfg.yaml:3: generator.optimizer.lr: 1e-40 is too close to 0 for single "
                 "precision (smallest normal 1.17549e-38)");
    /* What rounds to a float's 0 where 0 is allowed is 0. */
    touch("train.idx");
    mg_config cfg;
    PARSE_OK(&cfg, MINIMAL "  optimizer: {min_lr: 1e-50, momentum: 0.99999}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.discriminator.optim.momentum, 0.99999);
    PARSE_OK(&cfg, MINIMAL "  optimizer: {lr: 3.4e38, min_lr: 1.2e-38}\n", NULL, 0);

    /* The stall inspector: off, or from 10 ms to a day (1e-9 s printed a stall line per step). */
    EXPECT_ERROR("train: {stall_seconds: 1e-9}\n",
                 "cfg.yaml:1: train.stall_seconds: must be 0 (off) or in [0.01, 86400], got 1e-9");
    EXPECT_ERROR("train: {stall_seconds: 86401}\n",
                 "cfg.yaml:1: train.stall_seconds: must be 0 (off) or in [0.01, 86400], got 86401");
    EXPECT_ERROR("train: {stall_seconds: -1}\n",
                 "cfg.yaml:1: train.stall_seconds: must be 0 (off) or in [0.01, 86400], got -1");
    PARSE_OK(&cfg, MINIMAL "train: {stall_seconds: 0}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.train.stall_seconds, 0);
    PARSE_OK(&cfg, MINIMAL "train: {stall_seconds: 0.01}\n", NULL, 0);
    PARSE_OK(&cfg, MINIMAL "train: {stall_seconds: 86400}\n", NULL, 0);

    /* Buckets: auto by default (25 MB when the sums cross nodes, chosen by the trainer), or MB. */
    PARSE_OK(&cfg, MINIMAL, NULL, 0);
    CU_ASSERT_EQUAL(cfg.train.bucket_mb, MG_BUCKETS_AUTO);
    PARSE_OK(&cfg, MINIMAL "train: {bucket_mb: 5}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.train.bucket_mb, 5);
    PARSE_OK(&cfg, MINIMAL "train: {bucket_mb: 0}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.train.bucket_mb, 0);
    const char *auto_set[] = {"train.bucket_mb=auto"};
    PARSE_OK(&cfg, MINIMAL "train: {bucket_mb: 5}\n", auto_set, 1);
    CU_ASSERT_EQUAL(cfg.train.bucket_mb, MG_BUCKETS_AUTO);
    EXPECT_ERROR("train: {bucket_mb: big}\n",
                 "cfg.yaml:1: train.bucket_mb: expected a number or auto, got \"big\"");
    EXPECT_ERROR("train: {bucket_mb: -1}\n",
                 "cfg.yaml:1: train.bucket_mb: must be in [0, 1000000], got -1");
}

/* Issue 14, 3: an override changes the key it names, also where the file shares the mapping (or
 * list, or layer) by an alias; the others keep the file's values, and lines in messages. */
static void test_overrides_alias(void)
{
    make_mnist_files();
    const char *name = mg_test_path("paper.yaml");
    mg_config cfg;
    const char *g_lr[] = {"generator.optimizer.lr=0.5"};
    parse_ok_at(&cfg, paper_mnist, name, g_lr, 1, __LINE__);
    CU_ASSERT_EQUAL(cfg.generator.optim.lr, 0.5);
    CU_ASSERT_EQUAL(cfg.discriminator.optim.lr, 0.1);
    CU_ASSERT_EQUAL(cfg.discriminator.optim.momentum, 0.5);
    CU_ASSERT_EQUAL(cfg.generator.optim.momentum, 0.5);
    const char *d_both[] = {"discriminator.optimizer.momentum=0.25",
                            "discriminator.optimizer.final_momentum=0.3"};
    parse_ok_at(&cfg, paper_mnist, name, d_both, 2, __LINE__);
    CU_ASSERT_EQUAL(cfg.discriminator.optim.momentum, 0.25);
    CU_ASSERT_EQUAL(cfg.discriminator.optim.final_momentum, 0.3);
    CU_ASSERT_EQUAL(cfg.generator.optim.momentum, 0.5);
    CU_ASSERT_EQUAL(cfg.generator.optim.final_momentum, 0.7);

    /* A shared layer, and a shared list of layers. */
    touch("train.idx");
    const char *layers = "data: {train_images: train.idx}\n"
                         "generator:\n"
                         "  layers:\n"
                         "    - &hidden {type: relu, units: 10}\n"
                         "    - {type: sigmoid, units: 784}\n"
                         "discriminator:\n"
                         "  layers: [*hidden, {type: sigmoid, units: 1}]\n";
    const char *d_units[] = {"discriminator.layers.0.units=20"};
    PARSE_OK(&cfg, layers, d_units, 1);
    CU_ASSERT_EQUAL(cfg.discriminator.net.layers[0].units, 20);
    CU_ASSERT_EQUAL(cfg.generator.net.layers[0].units, 10);
    const char *shared_list = "data: {train_images: train.idx}\n"
                              "generator:\n"
                              "  layers: &net\n"
                              "    - {type: relu, units: 10}\n"
                              "    - {type: sigmoid, units: 1}\n"
                              "discriminator:\n"
                              "  layers: *net\n";
    const char *g_keep[] = {"generator.layers.0.keep=0.5"};
    PARSE_OK(&cfg, shared_list, g_keep, 1);
    CU_ASSERT_EQUAL(cfg.generator.net.layers[0].keep, 0.5);
    CU_ASSERT_EQUAL(cfg.discriminator.net.layers[0].keep, 1.0);
    /* The copy keeps the file's line for what is wrong with it. */
    const char *g_type[] = {"discriminator.layers.1.type=relu"};
    EXPECT_SET_ERROR(shared_list, g_type,
                     "cfg.yaml:5: discriminator.layers.1: the discriminator's last layer must be "
                     "sigmoid with 1 unit (got relu, 1 unit)");
    const char *adam[] = {"discriminator.optimizer.type=adam"};
    expect_error_at(paper_mnist, "paper.yaml", adam, 1,
                    "paper.yaml:20: discriminator.optimizer.lr_decay: only for type sgd",
                    __LINE__);
}

/* Issue 14, 4: an override replaces the file's value before anything is checked, so a bad value
 * it replaces is never seen (intended, README "Overrides"); one it does not replace is. */
static void test_overrides_replace_bad(void)
{
    touch("train.idx");
    mg_config cfg;
    const char *k[] = {"train.k=2"};
    PARSE_OK(&cfg, MINIMAL "train: {k: ten, batch_size: 10}\n", k, 1);
    CU_ASSERT_EQUAL(cfg.train.k, 2);
    const char *lr[] = {"discriminator.optimizer.lr=0.01"};
    PARSE_OK(&cfg, MINIMAL "  optimizer: {lr: 1e39}\n", lr, 1);
    CU_ASSERT_EQUAL(cfg.discriminator.optim.lr, 0.01);
    EXPECT_SET_ERROR(MINIMAL "train: {k: ten, batch_size: 0}\n", k,
                     "cfg.yaml:9: train.batch_size: must be in [1, 16777216], got 0");
}

/* Issue 14, 5: nesting is bounded before the tree is built: libyaml's scanner is quadratic in it
 * (200,000 levels took over a minute). */
static void test_errors_depth(void)
{
    const size_t depth = 200000;
    char *deep = mg_xmalloc(2 * depth + 2);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\n';
    deep[2 * depth + 1] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    EXPECT_ERROR(deep, "cfg.yaml:1: nesting deeper than 64 levels");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("\n    200,000 levels refused in %.4f s\n", s);
    CU_ASSERT(s < 0.25);
    /* In a file, under the 16 MiB cap: the same. */
    const char *path = mg_test_write_file("deep.yaml", deep, 2 * depth + 1);
    mg_config cfg;
    mg_error err;
    char want[4200];
    snprintf(want, sizeof want, "%s:1: nesting deeper than 64 levels", path);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(mg_config_load(&cfg, path, NULL, 0, &err), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    CU_ASSERT((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec) < 0.25);
    free(deep);

    /* Block style: 65 mappings, one per line; 64 are only a schema error. */
    char block[8192] = "";
    size_t n = 0;
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(block + n, sizeof block - n, "%*sk%d:\n", 2 * i, "", i);
    snprintf(block + n, sizeof block - n, "%*sv: 1\n", 2 * 65, "");
    EXPECT_ERROR(block, "cfg.yaml:65: nesting deeper than 64 levels");
    char flow[512] = "a: "; /* the top-level mapping and 63 lists: 64 levels */
    for (int i = 0; i < 63; i++)
        strcat(flow, "[");
    for (int i = 0; i < 63; i++)
        strcat(flow, "]");
    EXPECT_ERROR(flow, "cfg.yaml:1: a: unknown key");
    strcat(flow, "\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
    EXPECT_ERROR(flow, "cfg.yaml:2: nesting deeper than 64 levels");
    /* A syntax error is still reported as one, with its place. */
    EXPECT_ERROR("train: [[[\n", "cfg.yaml:2:1: YAML syntax error: did not find expected node content");
}

/* Issue 14, 6, 7 and 9: a name with a newline gives one line; a FIFO is refused without
 * blocking; a run directory leaves room for the files in it. */
static void test_errors_files(void)
{
    alarm(20); /* a FIFO opened for reading would block: fail, don't hang */
    touch("train.idx");
    char want[8400], path[4200];
    expect_error_at(MINIMAL "train: {k: 0}\n", "dir\nname.yaml", NULL, 0,
                    "dir?name.yaml:9: train.k: must be in [1, 65534], got 0", __LINE__);
    expect_error_at("seed: 1\n", "a\nb.yaml", NULL, 0,
                    "a?b.yaml: data.train_images: required key missing for format idx", __LINE__);
    snprintf(path, sizeof path, "%s/no\nsuch.yaml", mg_test_tmpdir());
    snprintf(want, sizeof want, "%s/no?such.yaml: cannot open: No such file or directory",
             mg_test_tmpdir());
    mg_config cfg;
    mg_error err;
    CU_ASSERT_EQUAL(mg_config_load(&cfg, path, NULL, 0, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    const char *fifo = mg_test_path("fifo.idx");
    CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
    snprintf(want, sizeof want, "%s:2: data.train_images: \"%s\" is not a regular file",
             mg_test_path("cfg.yaml"), fifo);
    expect_error_at("data:\n  train_images: fifo.idx\n"
                    "generator: {layers: [{type: tanh, units: 2}]}\n"
                    "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                    mg_test_path("cfg.yaml"), NULL, 0, want, __LINE__);
    snprintf(want, sizeof want, "%s:2: data.path: \"%s\" is not a regular file",
             mg_test_path("cfg.yaml"), fifo);
    expect_error_at("data:\n  path: fifo.idx\n  format: hdf5\n"
                    "generator: {layers: [{type: tanh, units: 2}]}\n"
                    "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                    mg_test_path("cfg.yaml"), NULL, 0, want, __LINE__);
    snprintf(want, sizeof want, "--set data.test_path: \"%s\" is not a regular file", fifo);
    const char *test_path[] = {"data.format=hdf5", "data.path=/dev/null", "data.test_path=x"};
    char set_test[4300];
    snprintf(set_test, sizeof set_test, "data.test_path=%s", fifo);
    test_path[2] = set_test;
    snprintf(want, sizeof want, "--set data.path: \"/dev/null\" is not a regular file");
    expect_error_at(MINIMAL, mg_test_path("cfg.yaml"), test_path, 3, want, __LINE__);
    snprintf(want, sizeof want, "--set data.test_path: \"%s\" is not a regular file", fifo);
    char set_path[4300];
    snprintf(set_path, sizeof set_path, "data.path=%s", mg_test_path("train.idx"));
    test_path[1] = set_path;
    expect_error_at(MINIMAL, mg_test_path("cfg.yaml"), test_path, 3, want, __LINE__);
    /* A folder is CIFAR-10's data.path only. */
    snprintf(want, sizeof want, "--set data.path: cannot open \"%s\": Is a directory",
             mg_test_tmpdir());
    char set_dir[4300];
    snprintf(set_dir, sizeof set_dir, "data.path=%s", mg_test_tmpdir());
    const char *dir_tfd[] = {"data.format=tfd", set_dir};
    expect_error_at(MINIMAL, mg_test_path("cfg.yaml"), dir_tfd, 2, want, __LINE__);
    const char *dir_cifar[] = {"data.format=cifar10", set_dir};
    parse_ok_at(&cfg, MINIMAL, mg_test_path("cfg.yaml"), dir_cifar, 2, __LINE__);
    /* The configuration itself may come through a pipe (<(...)); one with no writer reads as
     * empty instead of blocking. */
    snprintf(want, sizeof want, "%s: data.train_images: required key missing for format idx",
             fifo);
    CU_ASSERT_EQUAL(mg_config_load(&cfg, fifo, NULL, 0, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    /* output.dir: room for "/samples-<step>.png.tmp-XXXXXX" within MG_PATH_MAX, and names the
     * file system can hold. */
    char yaml[2400], dir[1100];
    memset(dir, 'd', 960);
    dir[960] = '\0';
    for (int i = 100; i < 960; i += 100)
        dir[i] = '/';
    snprintf(yaml, sizeof yaml, MINIMAL "output: {dir: %s}\n", dir);
    EXPECT_ERROR(yaml, "cfg.yaml:9: output.dir: 960 characters, more than the 959 a run "
                       "directory may have (its files' paths must fit in 1023)");
    dir[959] = '\0';
    snprintf(yaml, sizeof yaml, MINIMAL "output: {dir: %s}\n", dir);
    PARSE_OK(&cfg, yaml, NULL, 0);
    memset(dir, 'n', 256);
    dir[256] = '\0';
    snprintf(yaml, sizeof yaml, MINIMAL "output: {dir: runs/%s/x}\n", dir);
    EXPECT_ERROR(yaml, "cfg.yaml:9: output.dir: a name of 256 characters in it, more than the 255 "
                       "a file name may have");
    alarm(0);
}

static void roundtrip(const char *yaml, const char *out_name)
{
    mg_config cfg, back;
    mg_error err = {{0}};
    if (PARSE_OK(&cfg, yaml, NULL, 0))
        return;
    const char *path = mg_test_path(out_name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(mg_config_write(&cfg, f), 0);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
    int rc = mg_config_load(&back, path, NULL, 0, &err);
    if (rc)
        fprintf(stderr, "\n  re-reading %s: %s\n", path, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(back.source, path);
    memcpy(back.source, cfg.source, sizeof back.source); /* the one field that must differ */
    CU_ASSERT(memcmp(&cfg, &back, sizeof cfg) == 0);

    /* Writing what was read back gives the same text; without a source, no source comment. */
    char *first = NULL, *second = NULL;
    size_t n1 = 0, n2 = 0;
    FILE *m1 = open_memstream(&first, &n1), *m2 = open_memstream(&second, &n2);
    CU_ASSERT_FATAL(m1 && m2);
    mg_config_write(&back, m1);
    fclose(m1);
    back.source[0] = '\0';
    mg_config_write(&back, m2);
    fclose(m2);
    f = fopen(path, "r");
    char file[16384];
    size_t n = fread(file, 1, sizeof file - 1, f);
    fclose(f);
    file[n] = '\0';
    CU_ASSERT_STRING_EQUAL(first, file);
    CU_ASSERT(strstr(first, "# read from ") != NULL);
    CU_ASSERT(strstr(second, "# read from ") == NULL);
    free(first);
    free(second);
}

static void test_write_roundtrip(void)
{
    make_mnist_files();
    roundtrip(paper_mnist, "mnist-effective.yaml");

    /* Everything the paper config does not use, and a path that needs quoting. */
    touch("we ird: #\"x\\y.idx");
    roundtrip("seed: 18446744073709551615\n"
              "data: {train_images: \"we ird: #\\\"x\\\\y.idx\", train_count: 7, valid_count: 0,\n"
              "       range: [-1, 0.75]}\n"
              "generator:\n"
              "  noise_dim: 3\n"
              "  prior: normal\n"
              "  layers:\n"
              "    - {type: leaky_relu, units: 5, leak: 0.3, keep: 0.3}\n"
              "    - {type: linear, units: 4, irange: 0.1234567890123}\n"
              "    - {type: tanh, units: 4, name: out}\n"
              "    - {type: relu, units: 4, name: \"null\"}\n"
              "    - {type: relu, units: 4, name: \"007\"}\n"
              "    - {type: relu, units: 4, name: Yes}\n"
              "  optimizer: {type: adam, lr: 0.001, beta1: 0.9, beta2: 0.99, eps: 1e-7}\n"
              "discriminator:\n"
              "  layers: [{type: maxout, units: 3, pieces: 4}, {type: sigmoid, units: 1}]\n"
              "  optimizer: {momentum: 0.25, momentum_start: 2, momentum_saturate: 9}\n"
              "train: {batch_size: 3, k: 2, mode: simultaneous, generator_loss: minimax,\n"
              "        epochs: 0, steps: 9223372036854775807, check_every: 0, log_every: 1}\n"
              "output: {dir: \"r/\\ttab\\nnewline\\x01\"}\n",
              "odd-effective.yaml");
    /* YAML's other line breaks (NEL, LS, PS), which a quoted scalar folds to a space unless
     * escaped (fuzz_config found LS and NEL read back as spaces). */
    roundtrip("data: {train_images: \"we ird: #\\\"x\\\\y.idx\", images: \"a\\Nb\\Lc\\Pd\"}\n"
              "generator: {layers: [{type: tanh, units: 2}]}\n"
              "discriminator: {layers: [{type: sigmoid, units: 1}]}\n"
              "output: {dir: \"x\\u2028y\\x85z\"}\n",
              "breaks-effective.yaml");

    /* Every key is written, defaults included. */
    mg_config cfg;
    touch("train.idx");
    PARSE_OK(&cfg, MINIMAL, NULL, 0);
    char *text = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&text, &n);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_EQUAL(mg_config_write(&cfg, m), 0);
    fclose(m);
    static const char *const keys[] = {"\nseed: 1\n",
                                       "\n  format: idx\n",
                                       "\n  test_images: \"\"\n",
                                       "\n  train_count: 50000\n",
                                       "\n  valid_count: 10000\n",
                                       "\n  noise_dim: 100\n",
                                       "\n  prior: uniform\n",
                                       "\n  output_bias_from_data: false\n",
                                       "\n    - name: h0\n",
                                       "\n      irange: 0.05\n",
                                       "\n      keep: 1\n",
                                       "\n      input_scale: 1\n",
                                       "\n    type: sgd\n",
                                       "\n    lr: 0.1\n",
                                       "\n    lr_decay: 1\n",
                                       "\n    min_lr: 0\n",
                                       "\n    final_momentum: 0\n",
                                       "\n    momentum_saturate: 0\n",
                                       "\n  batch_size: 100\n",
                                       "\n  k: 1\n",
                                       "\n  mode: alternating\n",
                                       "\n  generator_loss: nonsaturating\n",
                                       "\n  epochs: 1\n",
                                       "\n  steps: 0\n",
                                       "\n  check_every: 100\n",
                                       "\n  log_every: 50\n",
                                       "\noutput:\n  dir: \"\"\n"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        if (!strstr(text, keys[i]))
            fprintf(stderr, "\n  missing from the written config: %s", keys[i] + 1);
        CU_ASSERT(strstr(text, keys[i]) != NULL);
    }
    CU_ASSERT(text[0] == '#'); /* the header comment */
    free(text);

    /* A source name cannot break out of its comment; names that other YAML readers would take
     * for a number, a boolean or null are quoted. */
    snprintf(cfg.source, sizeof cfg.source, "evil\nseed: 5\xe2\x80\xa8seed: 6");
    cfg.generator.net.layers[0] = cfg.discriminator.net.layers[0];
    snprintf(cfg.generator.net.layers[0].name, MG_NAME_MAX, "null");
    snprintf(cfg.discriminator.net.layers[0].name, MG_NAME_MAX, "007");
    text = NULL;
    m = open_memstream(&text, &n);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_EQUAL(mg_config_write(&cfg, m), 0);
    fclose(m);
    CU_ASSERT(strstr(text, "# read from evil?seed: 5?seed: 6\n") != NULL);
    CU_ASSERT(strstr(text, "\n    - name: \"null\"\n") != NULL);
    CU_ASSERT(strstr(text, "\n    - name: \"007\"\n") != NULL);
    mg_config back;
    PARSE_OK(&back, text, NULL, 0);
    CU_ASSERT_EQUAL(back.seed, 1);
    CU_ASSERT_STRING_EQUAL(back.generator.net.layers[0].name, "null");
    free(text);
}

/* Labels, conditional GANs and classifier configurations: keys, what they imply, and the exact
 * message of every misuse. */
#define LABELLED                                                                                   \
    "data:\n"                                                                                      \
    "  train_images: train.idx\n"                                                                  \
    "  train_labels: labels.idx\n"                                                                 \
    "  classes: 10\n"                                                                              \
    "generator:\n"                                                                                 \
    "  layers: [{type: sigmoid, units: 784}]\n"                                                    \
    "discriminator:\n"                                                                             \
    "  layers: [{type: sigmoid, units: 1}]\n"

#define CLASSIFIER                                                                                 \
    "data: {train_images: train.idx, train_labels: labels.idx, classes: 10}\n"                    \
    "classifier:\n"                                                                                \
    "  layers:\n"                                                                                  \
    "    - {type: relu, units: 20, keep: 0.8}\n"                                                   \
    "    - {type: linear, units: 10}\n"                                                            \
    "  optimizer: {type: adam, lr: 0.001}\n"

static void test_labels_and_classifier(void)
{
    touch("train.idx");
    touch("labels.idx");
    touch("t10k.idx");
    touch("cls.h5");
    mg_config cfg;
    PARSE_OK(&cfg, LABELLED "conditional: {enabled: true, fake_labels: frequency}\n"
                            "eval: {every: 1, classifier: cls.h5}\n", NULL, 0);
    CU_ASSERT_EQUAL(cfg.conditional.enabled, 1);
    CU_ASSERT_EQUAL(cfg.conditional.fake_labels, MG_LABELS_FREQUENCY);
    CU_ASSERT_EQUAL(mg_config_gan_classes(&cfg), 10);
    CU_ASSERT(mg_config_has_labels(&cfg));
    CU_ASSERT(!mg_config_is_classifier(&cfg));
    CU_ASSERT(strstr(cfg.data.train_labels, "/labels.idx") != NULL); /* resolved */
    CU_ASSERT(strstr(cfg.eval.classifier, "/cls.h5") != NULL);
    mg_gan_spec spec = mg_config_gan(&cfg);
    CU_ASSERT_EQUAL(spec.classes, 10);
    CU_ASSERT_EQUAL(spec.fake_labels, MG_LABELS_FREQUENCY);
    /* Labels alone do not make a GAN conditional. */
    PARSE_OK(&cfg, LABELLED, NULL, 0);
    CU_ASSERT_EQUAL(cfg.conditional.enabled, 0);
    CU_ASSERT_EQUAL(mg_config_gan_classes(&cfg), 0);
    CU_ASSERT_EQUAL(mg_config_gan(&cfg).classes, 0);
    roundtrip(LABELLED "conditional: {enabled: true}\neval: {classifier: cls.h5}\n",
              "conditional-effective.yaml");

    PARSE_OK(&cfg, CLASSIFIER "train: {batch_size: 50, epochs: 3}\n", NULL, 0);
    CU_ASSERT(mg_config_is_classifier(&cfg));
    CU_ASSERT_EQUAL(cfg.classifier.net.n_layers, 2);
    CU_ASSERT_EQUAL(cfg.classifier.net.layers[0].keep, 0.8);
    CU_ASSERT_EQUAL(cfg.classifier.optim.type, MG_OPTIM_ADAM);
    CU_ASSERT_EQUAL(cfg.generator.net.n_layers, 0);
    roundtrip(CLASSIFIER "train: {batch_size: 50, epochs: 3}\n", "classifier-effective.yaml");

    /* Labels and classes. */
    EXPECT_ERROR("data: {train_images: train.idx, train_labels: labels.idx}\n"
                 "generator: {layers: [{type: sigmoid, units: 784}]}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 "cfg.yaml: data.classes: required with data.train_labels: how many classes the "
                 "labels count (10 for MNIST and Fashion-MNIST)");
    EXPECT_ERROR(MINIMAL "conditional: {enabled: true}\n",
                 "cfg.yaml: conditional.enabled: a conditional GAN trains on labels: set "
                 "data.train_labels");
    EXPECT_ERROR(LABELLED "conditional: {enabled: true, fake_labels: often}\n",
                 "cfg.yaml:9: conditional.fake_labels: expected one of uniform, frequency; got "
                 "\"often\"");
    EXPECT_ERROR(LABELLED "conditional: {enable: true}\n",
                 "cfg.yaml:9: conditional.enable: unknown key (did you mean conditional.enabled?)");
    EXPECT_ERROR("data: {format: hdf5, path: x.h5, train_labels: labels.idx, classes: 10}\n"
                 "generator: {layers: [{type: sigmoid, units: 784}]}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 "cfg.yaml: data.train_labels: only for format idx (an HDF5 file names its labels "
                 "with data.labels)");
    EXPECT_ERROR("data: {format: hdf5, path: x.h5, labels: /labels}\n"
                 "generator: {layers: [{type: sigmoid, units: 784}]}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 "cfg.yaml: data.classes: required with data.labels: how many classes the labels "
                 "count (10 for MNIST and Fashion-MNIST)");
    EXPECT_ERROR("data: {train_images: train.idx, test_images: t10k.idx, test_labels: labels.idx}\n"
                 "generator: {layers: [{type: sigmoid, units: 784}]}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 "cfg.yaml: data.classes: required with data.test_labels: how many classes the "
                 "labels count (10 for MNIST and Fashion-MNIST)");
    EXPECT_ERROR("data: {train_images: train.idx, test_labels: labels.idx}\n"
                 "generator: {layers: [{type: sigmoid, units: 784}]}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 "cfg.yaml: data.test_labels: given without data.test_images");
    EXPECT_ERROR("data: {train_images: train.idx, classes: 70000}\n",
                 "cfg.yaml:1: data.classes: must be in [0, 65536], got 70000");

    /* A classifier configuration is one: no GAN sections or keys, logits of data.classes. */
    EXPECT_ERROR(CLASSIFIER "generator: {layers: [{type: sigmoid, units: 784}]}\n",
                 "cfg.yaml:7: generator: not for a classifier configuration (it has a classifier "
                 "section): a configuration trains a GAN or a classifier");
    EXPECT_ERROR(CLASSIFIER "samples: {every: 5}\n",
                 "cfg.yaml:7: samples: not for a classifier configuration (it has a classifier "
                 "section): a configuration trains a GAN or a classifier");
    EXPECT_ERROR(CLASSIFIER "train: {batch_size: 50, k: 2}\n",
                 "cfg.yaml:7: train.k: not for a classifier configuration: it trains a GAN");
    EXPECT_ERROR("data: {train_images: train.idx, train_labels: labels.idx, classes: 10}\n"
                 "classifier:\n  layers: [{type: relu, units: 10}]\n",
                 "cfg.yaml:3: classifier.layers.0: the classifier's last layer must be linear, one "
                 "unit per class (its logits go through a softmax), got relu");
    EXPECT_ERROR("data: {train_images: train.idx, train_labels: labels.idx, classes: 10}\n"
                 "classifier:\n  layers: [{type: relu, units: 10}, {type: linear, units: 12}]\n",
                 "cfg.yaml:3: classifier.layers.1.units: 12, but the data has 10 classes "
                 "(data.classes): one logit per class");
    EXPECT_ERROR("data: {train_images: train.idx, train_labels: labels.idx, classes: 10}\n"
                 "classifier: {optimizer: {type: adam}}\n",
                 "cfg.yaml: classifier.layers: required key missing");
    EXPECT_ERROR("data: {train_images: train.idx}\n"
                 "classifier:\n  layers: [{type: linear, units: 10}]\n",
                 "cfg.yaml: classifier.layers: a classifier trains on labels: set "
                 "data.train_labels");
    EXPECT_ERROR("data: {train_images: train.idx, train_labels: labels.idx, classes: 10,\n"
                 "       test_images: t10k.idx}\n"
                 "classifier:\n  layers: [{type: linear, units: 10}]\n",
                 "cfg.yaml: data.test_labels: required with data.test_images for a classifier "
                 "(its test accuracy)");
    /* A GAN configuration still needs both networks. */
    EXPECT_ERROR("data: {train_images: train.idx}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 "cfg.yaml: generator.layers: required key missing");
}

static void test_act_name(void)
{
    CU_ASSERT_STRING_EQUAL(mg_act_name(MG_ACT_LINEAR), "linear");
    CU_ASSERT_STRING_EQUAL(mg_act_name(MG_ACT_RELU), "relu");
    CU_ASSERT_STRING_EQUAL(mg_act_name(MG_ACT_LEAKY_RELU), "leaky_relu");
    CU_ASSERT_STRING_EQUAL(mg_act_name(MG_ACT_SIGMOID), "sigmoid");
    CU_ASSERT_STRING_EQUAL(mg_act_name(MG_ACT_TANH), "tanh");
    CU_ASSERT_STRING_EQUAL(mg_act_name(MG_ACT_MAXOUT), "maxout");
    CU_ASSERT_STRING_EQUAL(mg_act_name((enum mg_act)99), "unknown");
}

static const mg_test tests[] = {
    {"paper_mnist", test_paper_mnist},
    {"labels_and_classifier", test_labels_and_classifier},
    {"defaults", test_defaults},
    {"layer_defaults", test_layer_defaults},
    {"bools", test_bools},
    {"ints", test_ints},
    {"range", test_range},
    {"paths", test_paths},
    {"load_file", test_load_file},
    {"errors_syntax", test_errors_syntax},
    {"errors_keys", test_errors_keys},
    {"errors_types", test_errors_types},
    {"errors_values", test_errors_values},
    {"errors_layers", test_errors_layers},
    {"errors_optimizer", test_errors_optimizer},
    {"overrides", test_overrides},
    {"errors_overrides", test_errors_overrides},
    {"errors_sizes", test_errors_sizes},
    {"errors_precision", test_errors_precision},
    {"overrides_alias", test_overrides_alias},
    {"overrides_replace_bad", test_overrides_replace_bad},
    {"errors_depth", test_errors_depth},
    {"errors_files", test_errors_files},
    {"write_roundtrip", test_write_roundtrip},
    {"act_name", test_act_name},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("config", tests, argc, argv);
}
