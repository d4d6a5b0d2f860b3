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

/* mg_trainer_init with the trainer's part of a configuration. */
int mg_fixture_trainer(mg_trainer *t, const mg_config *cfg, const mg_dataset *ds,
                       const mg_comm *comm, mg_error *err);

/* A trainer's checkpoint view, as a training session makes it; the metrics window and elapsed
 * seconds live in the fixture (zeros unless a load put something there). */
mg_checkpoint_state mg_fixture_state(mg_trainer *t);

/* mg_checkpoint_write, _load and _save of a trainer through that view. */
int mg_fixture_write(const mg_trainer *t, const char *yaml, const char *path, mg_error *err);
int mg_fixture_load(mg_trainer *t, const char *path, mg_error *err);
int mg_fixture_save(const mg_trainer *t, const char *yaml, const char *dir, int keep, char *out,
                    size_t n, mg_error *err);

#endif
