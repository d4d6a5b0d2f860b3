/* Checkpoints: one HDF5 file holding everything a run needs to continue exactly.
 *
 * Rank 0 writes and reads them through a plain view of what they hold (mg_checkpoint_state: the
 * networks, their optimizers and the counters); the trainer broadcasts what was read
 * (mg_trainer_broadcast_state).
 * Nothing random needs saving: every random number is a function of (seed, step, row), so the
 * step counters and the configuration are the whole RNG state. The schema is documented in
 * README.md ("Checkpoint files"). */
#ifndef MPIGAN_CHECKPOINT_H
#define MPIGAN_CHECKPOINT_H

#include <stdint.h>
#include <stdio.h>

#include "mpigan/error.h"
#include "mpigan/nn.h"
#include "mpigan/optim.h"

#define MG_CHECKPOINT_FORMAT "mpigan-checkpoint"
#define MG_CHECKPOINT_VERSION 1

/* What a checkpoint holds: the two networks of a GAN (`mpigan train`), or a classifier (`mpigan
 * classifier train`). Its root attribute `kind` names it; a file without one holds a GAN. */
#define MG_CHECKPOINT_GAN "gan"
#define MG_CHECKPOINT_CLASSIFIER "classifier"

/* What a checkpoint says about itself, read without building networks. */
typedef struct {
    char kind[16];      /* MG_CHECKPOINT_GAN or MG_CHECKPOINT_CLASSIFIER */
    int classes;        /* a GAN: the classes G and D are conditioned on (0: unconditional); a
                           classifier: its classes. 0 for files written before labels existed */
    int format_version;
    char mpigan_version[32];
    int64_t step;       /* completed steps */
    int64_t minibatch;  /* real minibatches consumed */
    double epoch;
    uint64_t seed;
    int ranks;          /* rank count of the run that wrote it */
    int channels, height, width; /* shape of one example (G's output; the classifier's input) */
    char *config_yaml;  /* the run's effective configuration (malloc'd; mg_checkpoint_info_free) */
} mg_checkpoint_info;

/* The metrics record in progress when a checkpoint is written (report.h): the sums over the steps
 * since the last record, so that a resumed run writes the records of an uninterrupted one. */
typedef struct {
    int64_t steps;                         /* steps summed */
    double d_loss, g_loss, d_real, d_fake; /* sums of the steps' means */
} mg_metrics_window;

/* What a checkpoint holds, as a view of the caller's objects: a write reads them, a load writes
 * into them (and only after the whole file was read and checked). */
typedef struct {
    mg_net *g, *d;             /* parameters */
    mg_optim *g_opt, *d_opt;   /* optimizer state and update counts */
    mg_net *c;                 /* a classifier's checkpoint instead: c and c_opt, g and d NULL;
                                  no window or elapsed_s (NULL) */
    mg_optim *c_opt;
    int classes;               /* the GAN's condition (0: none), or the classifier's classes: a
                                  load refuses a file of other classes */
    int64_t *step;             /* completed steps (generator updates) */
    int64_t *minibatch;        /* real minibatches consumed */
    int64_t *skipped;          /* updates left out for NaN or Inf gradients (train.nonfinite) */
    mg_metrics_window *window; /* the metrics record in progress */
    double *elapsed_s;         /* training seconds of the run so far */
    /* Written for readers (mpigan info, sampling), not loaded: */
    int64_t batches_per_epoch; /* for the fractional epoch */
    uint64_t seed;
    int ranks, batch_size;     /* of the run that writes it */
    int channels, height, width; /* one example, G's output */
} mg_checkpoint_state;

/* Writes the whole state to `path`, through `path`.tmp and a rename, so that `path` is
 * either the old file or the complete new one. `config_yaml` is the effective configuration. */
int mg_checkpoint_write(const mg_checkpoint_state *s, const char *config_yaml, const char *path,
                        mg_error *err);

/* Reads the attributes and the configuration text. Checks the format name and version. */
int mg_checkpoint_read_info(mg_checkpoint_info *info, const char *path, mg_error *err);
void mg_checkpoint_info_free(mg_checkpoint_info *info);

/* Loads parameters, optimizer state and counters into s's objects, whose networks were built from
 * a configuration: every tensor must exist with the shape they expect, else the error names the
 * first that does not ("<path>: /generator/h1/W has shape (1200, 600) in the checkpoint, the
 * configuration makes it (1200, 1200)"). Only this process's objects are touched, and nothing
 * is when the load fails. */
int mg_checkpoint_load(const mg_checkpoint_state *s, const char *path, mg_error *err);

/* Loads only the generator's parameters into g (built from a configuration whose G is conditioned
 * on `classes` classes, 0 for none), for sampling; the same checks as mg_checkpoint_load. */
int mg_checkpoint_load_generator(mg_net *g, int classes, const char *path, mg_error *err);

/* Loads only a classifier's parameters into c (built from its checkpoint's configuration), for
 * `mpigan eval --classifier`; a GAN's checkpoint is refused. */
int mg_checkpoint_load_classifier(mg_net *c, const char *path, mg_error *err);

/* The step in a checkpoint file name ckpt-<step>.h5, or -1 when the name is not of that form. */
long long mg_checkpoint_step_of(const char *path);

/* In run directory `dir`: writes ckpt-<step, 8 digits>.h5, points latest.h5 (a symbolic link,
 * replaced atomically) at it, and deletes the oldest ckpt-*.h5 beyond the newest `keep`. The path
 * written goes to path_out (may be NULL). */
int mg_checkpoint_save(const mg_checkpoint_state *s, const char *config_yaml, const char *dir,
                       int keep, char *path_out, size_t path_n, mg_error *err);

/* The checkpoint of run directory `dir` with the highest step in its file name. */
int mg_checkpoint_find_latest(char *path, size_t n, const char *dir, mg_error *err);

/* The checkpoint a run directory continues from: the one its latest.h5 names (a link to a
 * ckpt-<step>.h5 in dir), else the one of the highest step. */
int mg_checkpoint_find_current(char *path, size_t n, const char *dir, mg_error *err);

/* What a user may name a checkpoint by: a checkpoint file; a run directory (the checkpoint it
 * continues from: mg_checkpoint_find_current); or "latest", that of `dir` (NULL: the current
 * directory). */
int mg_checkpoint_resolve(char *path, size_t n, const char *spec, const char *dir, mg_error *err);

/* `mpigan info`: step, epoch, versions, configuration summary and every tensor with its shape. */
int mg_checkpoint_describe(FILE *out, const char *path, mg_error *err);

#endif
