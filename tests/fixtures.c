#define _GNU_SOURCE /* open_memstream */
#include "fixtures.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "testlib.h"

#include "mpigan/rng.h"

mg_dataset mg_fixture_blobs(int n)
{
    return mg_fixture_blobs_sized(n, 6);
}

mg_dataset mg_fixture_blobs_sized(int n, int side)
{
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_dataset_alloc(&ds, n, 1, side, side, &err) == 0);
    mg_rng_key key = {.seed = 99, .stream = 12345, .step = 0};
    for (int i = 0; i < n; i++) {
        mg_real u[2];
        mg_rng_uniform(u, 2, 0, 1, &key, (uint64_t)i);
        int cx = (int)(u[0] * (side - 1)), cy = (int)(u[1] * (side - 1));
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
                ds.x[((size_t)i * side + y) * side + x] =
                    (mg_real)exp(-0.5 * ((x - cx) * (x - cx) + (y - cy) * (y - cy)));
    }
    return ds;
}

mg_dataset mg_fixture_labeled_blobs(int n)
{
    mg_dataset ds = mg_fixture_blobs(n);
    ds.labels = malloc((size_t)n * sizeof *ds.labels);
    CU_ASSERT_FATAL(ds.labels != NULL);
    ds.classes = 4;
    mg_rng_key key = {.seed = 99, .stream = 12345, .step = 0};
    for (int i = 0; i < n; i++) {
        mg_real u[2]; /* the blob's centre, as mg_fixture_blobs drew it */
        mg_rng_uniform(u, 2, 0, 1, &key, (uint64_t)i);
        const int cx = (int)(u[0] * 5), cy = (int)(u[1] * 5);
        ds.labels[i] = (int32_t)((cx > 2) + 2 * (cy > 2));
    }
    return ds;
}

const char *const *mg_fixture_conditional(const char *draw)
{
    static char labels[4200], fake[64];
    static const char *set[4];
    snprintf(labels, sizeof labels, "data.train_labels=%s",
             mg_test_write_file("dummy-labels.idx", "x", 1));
    snprintf(fake, sizeof fake, "conditional.fake_labels=%s", draw);
    set[0] = "conditional.enabled=true";
    set[1] = labels;
    set[2] = fake;
    set[3] = "data.classes=4";
    return set;
}

int mg_fixture_trainer(mg_trainer *t, const mg_config *cfg, const mg_dataset *ds,
                       const mg_comm *comm, mg_error *err)
{
    const mg_gan_spec spec = mg_config_gan(cfg);
    return mg_trainer_init(t, &spec, ds, comm, err);
}

static mg_metrics_window fixture_window;
static double fixture_elapsed;

mg_checkpoint_state mg_fixture_state(mg_trainer *t)
{
    return (mg_checkpoint_state){
        .g = &t->g, .d = &t->d, .g_opt = t->whole_g ? t->whole_g : &t->g_opt,
        .d_opt = t->whole_d ? t->whole_d : &t->d_opt,
        .step = &t->step, .minibatch = &t->minibatch, .skipped = &t->skipped,
        .window = &fixture_window, .elapsed_s = &fixture_elapsed,
        .batches_per_epoch = t->batches_per_epoch, .seed = t->spec.seed, .ranks = t->nranks,
        .batch_size = t->batch, .channels = t->data->channels, .height = t->data->height,
        .width = t->data->width, .classes = t->spec.classes};
}

int mg_fixture_write(const mg_trainer *t, const char *yaml, const char *path, mg_error *err)
{
    const mg_checkpoint_state s = mg_fixture_state((mg_trainer *)t);
    return mg_checkpoint_write(&s, yaml, path, err);
}

int mg_fixture_load(mg_trainer *t, const char *path, mg_error *err)
{
    const mg_checkpoint_state s = mg_fixture_state(t);
    return mg_checkpoint_load(&s, path, err);
}

int mg_fixture_save(const mg_trainer *t, const char *yaml, const char *dir, int keep, char *out,
                    size_t n, mg_error *err)
{
    const mg_checkpoint_state s = mg_fixture_state((mg_trainer *)t);
    return mg_checkpoint_save(&s, yaml, dir, keep, out, n, err);
}

const char *const mg_fixture_sgd[2] = {
    "{type: sgd, lr: 0.1, lr_decay: 1.0001, momentum: 0.5, final_momentum: 0.7,"
    " momentum_start: 1, momentum_saturate: 3}",
    "{type: sgd, lr: 0.1, momentum: 0.5}"};
const char *const mg_fixture_adam[2] = {"{type: adam, lr: 0.001, beta1: 0.5}",
                                        "{type: adam, lr: 0.002}"};

mg_config mg_fixture_config(const char *const optim[2], const char *g_layers, int steps,
                            const char *const *set, int n_set)
{
    const char *dummy = mg_test_write_file("dummy.idx", "x", 1);
    char text[4096];
    snprintf(text, sizeof text,
             "seed: 5\n"
             "data: {train_images: %s, train_count: 1, valid_count: 0}\n"
             "generator:\n"
             "  noise_dim: 8\n"
             "  output_bias_from_data: true\n"
             "  layers:\n%s"
             "  optimizer: %s\n"
             "discriminator:\n"
             "  layers:\n"
             "    - {type: maxout, units: 12, pieces: 3, irange: 0.3, keep: 0.8}\n"
             "    - {type: tanh, units: 10, irange: 0.3, keep: 0.5}\n"
             "    - {type: sigmoid, units: 1, irange: 0.3, keep: 0.5}\n"
             "  optimizer: %s\n"
             "train: {batch_size: 8, k: 2, steps: %d}\n",
             dummy, g_layers, optim[0], optim[1], steps);
    mg_config cfg;
    mg_error err;
    int rc = mg_config_parse(&cfg, text, "test.yaml", set, n_set, &err);
    if (rc)
        fprintf(stderr, "config: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    return cfg;
}

mg_config mg_fixture_dcgan_config(int steps, const char *const *set, int n_set)
{
    const char *dummy = mg_test_write_file("dummy.idx", "x", 1);
    char text[4096];
    snprintf(text, sizeof text,
             "seed: 7\n"
             "data: {train_images: %s, train_count: 1, valid_count: 0}\n"
             "generator:\n"
             "  noise_dim: 8\n"
             "  prior: normal\n"
             "  layers:\n"
             "    - {type: deconv, channels: 8, kernel: 3, bias: false, init: normal, std: 0.2}\n"
             "    - {type: batchnorm, activation: relu, init: normal, std: 0.2}\n"
             "    - {type: deconv, channels: 1, kernel: 4, stride: 2, pad: 1,\n"
             "       activation: sigmoid, init: normal, std: 0.2}\n"
             "  optimizer: {type: adam, lr: 0.002, beta1: 0.5}\n"
             "discriminator:\n"
             "  layers:\n"
             "    - {type: conv, channels: 4, kernel: 4, stride: 2, pad: 1,\n"
             "       activation: leaky_relu, init: normal, std: 0.2}\n"
             "    - {type: conv, channels: 8, kernel: 3, pad: 1, bias: false, init: normal,\n"
             "       std: 0.2}\n"
             "    - {type: batchnorm, activation: leaky_relu, init: normal, std: 0.2}\n"
             "    - {type: conv, channels: 1, kernel: 3, activation: sigmoid, init: normal,\n"
             "       std: 0.2}\n"
             "  optimizer: {type: adam, lr: 0.002, beta1: 0.5}\n"
             "train: {batch_size: 8, k: 1, steps: %d}\n",
             dummy, steps);
    mg_config cfg;
    mg_error err;
    int rc = mg_config_parse(&cfg, text, "dcgan-test.yaml", set, n_set, &err);
    if (rc)
        fprintf(stderr, "config: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    return cfg;
}

char *mg_fixture_yaml(const mg_config *cfg)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(mg_config_write(cfg, f) == 0);
    CU_ASSERT_FATAL(fclose(f) == 0);
    return text;
}

void mg_fixture_trainer_ok(mg_trainer *t, const mg_config *cfg, const mg_dataset *ds,
                           const mg_comm *comm)
{
    mg_error err;
    int rc = mg_fixture_trainer(t, cfg, ds, comm, &err);
    if (rc)
        fprintf(stderr, "trainer: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
}

void mg_fixture_train(mg_trainer *t, int steps)
{
    mg_step_stats s;
    for (int i = 0; i < steps; i++)
        mg_trainer_step(t, &s);
}
