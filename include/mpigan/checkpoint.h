/* Checkpoints: one HDF5 file holding everything a run needs to continue exactly.
 *
 * Rank 0 writes and reads them; the trainer broadcasts what was read (mg_trainer_broadcast_state).
 * Nothing random needs saving: every random number is a function of (seed, step, row), so the
 * step counters and the configuration are the whole RNG state. The schema is documented in
 * README.md ("Checkpoint files"). */
#ifndef MPIGAN_CHECKPOINT_H
#define MPIGAN_CHECKPOINT_H

#include <stdint.h>
#include <stdio.h>

#include "mpigan/error.h"
#include "mpigan/train.h"

#define MG_CHECKPOINT_FORMAT "mpigan-checkpoint"
#define MG_CHECKPOINT_VERSION 1

/* What a checkpoint says about itself, read without building networks. */
typedef struct {
    int format_version;
    char mpigan_version[32];
    int64_t step;       /* completed steps */
    int64_t minibatch;  /* real minibatches consumed */
    double epoch;
    uint64_t seed;
    int ranks;          /* rank count of the run that wrote it */
    int channels, height, width; /* shape of one example (G's output) */
    char *config_yaml;  /* the run's effective configuration (malloc'd; mg_checkpoint_info_free) */
} mg_checkpoint_info;

/* Writes the whole trainer state to `path`, through `path`.tmp and a rename, so that `path` is
 * either the old file or the complete new one. `config_yaml` is the effective configuration. */
int mg_checkpoint_write(const mg_trainer *t, const char *config_yaml, const char *path,
                        mg_error *err);

/* Reads the attributes and the configuration text. Checks the format name and version. */
int mg_checkpoint_read_info(mg_checkpoint_info *info, const char *path, mg_error *err);
void mg_checkpoint_info_free(mg_checkpoint_info *info);

/* Loads parameters, optimizer state and counters into t, whose networks were built from a
 * configuration: every tensor must exist with the shape t expects, else the error names the first
 * that does not ("<path>: /generator/h1/W has shape (1200, 600) in the checkpoint, the
 * configuration makes it (1200, 1200)"). Only this process's t is touched. */
int mg_checkpoint_load(mg_trainer *t, const char *path, mg_error *err);

/* Loads only the generator's parameters into g (built from the checkpoint's configuration), for
 * sampling; the same checks as mg_checkpoint_load. */
int mg_checkpoint_load_generator(mg_net *g, const char *path, mg_error *err);

/* The step in a checkpoint file name ckpt-<step>.h5, or -1 when the name is not of that form. */
long long mg_checkpoint_step_of(const char *path);

/* In run directory `dir`: writes ckpt-<step, 8 digits>.h5, points latest.h5 (a symbolic link,
 * replaced atomically) at it, and deletes the oldest ckpt-*.h5 beyond the newest `keep`. The path
 * written goes to path_out (may be NULL). */
int mg_checkpoint_save(const mg_trainer *t, const char *config_yaml, const char *dir, int keep,
                       char *path_out, size_t path_n, mg_error *err);

/* The newest checkpoint of run directory `dir` (by step in the file name). */
int mg_checkpoint_find_latest(char *path, size_t n, const char *dir, mg_error *err);

/* What a user may name a checkpoint by: a checkpoint file; a run directory (its newest
 * checkpoint); or "latest", the newest checkpoint of `dir` (NULL: the current directory). */
int mg_checkpoint_resolve(char *path, size_t n, const char *spec, const char *dir, mg_error *err);

/* `mpigan info`: step, epoch, versions, configuration summary and every tensor with its shape. */
int mg_checkpoint_describe(FILE *out, const char *path, mg_error *err);

#endif
