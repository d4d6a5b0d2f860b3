/* Data and helpers the training and checkpoint tests share (float build). */
#ifndef MPIGAN_FIXTURES_H
#define MPIGAN_FIXTURES_H

#include "mpigan/checkpoint.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/train.h"

/* n 6x6 "images" (1, 6, 6): a Gaussian blob whose position varies per example, so D has
 * something to learn; the same for every rank and run. */
mg_dataset mg_fixture_blobs(int n);
/* The same blobs on side x side images (mg_fixture_blobs is side 6). */
mg_dataset mg_fixture_blobs_sized(int n, int side);

/* mg_fixture_blobs(n) with labels: the quadrant of each blob's centre (0 to 3: column above 2 or
 * not, row above 2 or not), a function of the image, so a conditional GAN has a condition that
 * says something about it and a classifier can learn it exactly. */
mg_dataset mg_fixture_labeled_blobs(int n);

/* Overrides that make a fixture configuration a conditional GAN on the 4 classes of
 * mg_fixture_labeled_blobs, its fake labels drawn `draw` (uniform, frequency): MG_FIXTURE_CONDITIONAL_N entries. */
const char *const *mg_fixture_conditional(const char *draw);
#define MG_FIXTURE_CONDITIONAL_N 4

/* The test model's optimizers, G's and D's: the paper's SGD schedule at a small scale (momentum
 * ramp over epochs 1 to 3), and Adam. */
extern const char *const mg_fixture_sgd[2];
extern const char *const mg_fixture_adam[2];

/* G's layers of the test model, without and with dropout on G's first layer. */
#define MG_FIXTURE_G_LAYERS                                                                    \
    "    - {type: relu, units: 24, irange: 0.3}\n"                                             \
    "    - {type: sigmoid, units: 36, irange: 0.3}\n"
#define MG_FIXTURE_G_LAYERS_DROPOUT                                                            \
    "    - {type: relu, units: 24, irange: 0.3, keep: 0.8}\n"                                  \
    "    - {type: sigmoid, units: 36, irange: 0.3}\n"

/* The test model for mg_fixture_blobs: G 8 -> 24 -> 36 (g_layers), D 36 -> maxout 12x3 -> tanh 10
 * -> 1 with dropout, the optimizers `optim` (G's, D's), global batch 8, k 2, `steps` steps, with
 * "key=value" overrides as --set applies them. A configuration that does not parse fails the
 * test. */
mg_config mg_fixture_config(const char *const optim[2], const char *g_layers, int steps,
                            const char *const *set, int n_set);

/* A DCGAN of the test's size for mg_fixture_blobs: G 8 -> deconv (8, 3, 3) -> batch norm + ReLU
 * -> deconv stride 2 to (1, 6, 6) + sigmoid; D conv stride 2 to (4, 3, 3) + leaky ReLU -> conv
 * (8, 3, 3) -> batch norm + leaky ReLU -> conv to 1 logit; normal(0, 0.2) weights, Adam,
 * global batch 8, k 1, `steps` steps, with overrides. */
mg_config mg_fixture_dcgan_config(int steps, const char *const *set, int n_set);

/* The effective configuration as YAML (malloc'd), what a run stores in its checkpoints. */
char *mg_fixture_yaml(const mg_config *cfg);

/* mg_trainer_init with the trainer's part of a configuration. */
int mg_fixture_trainer(mg_trainer *t, const mg_config *cfg, const mg_dataset *ds,
                       const mg_comm *comm, mg_error *err);

/* A trainer's checkpoint view, as a training session makes it (its optimizers' whole state while
 * mg_trainer_whole_optims holds it); the metrics window and elapsed seconds live in the fixture
 * (zeros unless a load put something there). */
mg_checkpoint_state mg_fixture_state(mg_trainer *t);

/* mg_checkpoint_write, _load and _save of a trainer through that view. */
int mg_fixture_write(const mg_trainer *t, const char *yaml, const char *path, mg_error *err);
int mg_fixture_load(mg_trainer *t, const char *path, mg_error *err);
int mg_fixture_save(const mg_trainer *t, const char *yaml, const char *dir, int keep, char *out,
                    size_t n, mg_error *err);

/* That, or the test fails with the reason. */
void mg_fixture_trainer_ok(mg_trainer *t, const mg_config *cfg, const mg_dataset *ds,
                           const mg_comm *comm);

/* `steps` training steps. */
void mg_fixture_train(mg_trainer *t, int steps);

#endif
