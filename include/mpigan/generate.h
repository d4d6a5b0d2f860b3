/* Sampling a generator outside training: the noise of a sample set, G loaded from a checkpoint,
 * and samples drawn over any number of ranks with the same result bit for bit. */
#ifndef MPIGAN_GENERATE_H
#define MPIGAN_GENERATE_H

#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/error.h"
#include "mpigan/nn.h"
#include "mpigan/real.h"

/* Rows of G's output per forward pass of mg_generate: g must be made for at least this many. */
#define MG_GENERATE_CHUNK 256

/* Noise rows [first, first + n) of a sample set into z (n, noise_dim): drawn from the configured
 * prior by (seed, set, row), so a set is the same whichever rank draws which rows. Set 0 is the
 * fixed noise of the training snapshots, set 1 `mpigan sample`'s default, set 2 the estimates
 * during training. */
void mg_sample_noise(mg_real *z, const mg_config *cfg, int64_t first, int n, uint64_t set);

/* Collective: G as cfg describes it (conditional on data.classes when cfg's is), for up to
 * max_rows rows per pass, its parameters and its
 * batch norms' running averages (what sampling normalises with) read from checkpoint `path` by
 * rank 0 and broadcast. On an error every rank returns -1 (err set on rank 0) with nothing to
 * free. */
int mg_generator_load(mg_net *g, const mg_config *cfg, int max_rows, const char *path,
                      const mg_comm *comm, mg_error *err);

/* Collective: n samples of G (no dropout) for rows 0..n-1 of noise set `set`. The ranks compute
 * whole chunks of MG_GENERATE_CHUNK rows with one BLAS thread each (restored afterwards), so
 * every forward pass has the same rows and shape on any number of ranks, and the samples are the
 * same bit for bit. x (n, G's output) and z (n, noise_dim) are filled on root; other ranks may
 * pass NULL. */
void mg_generate(mg_real *x, mg_real *z, mg_net *g, const mg_config *cfg, int64_t n, uint64_t set,
                 const mg_comm *comm, int root);

/* The labels of a conditional G's samples. Sample i of a set has class i mod classes, so that a
 * set holds every class alike and the same rows whatever its size; drawn for one class `cls`, the
 * samples are the set's rows cls, cls + classes, cls + 2 classes, ... (their noise and label, the
 * same images). */
#define MG_ALL_CLASSES (-1)

/* The global row of a set behind sample j of a draw: j, or with a class cls + classes j. */
int64_t mg_sample_row(int64_t j, int classes, int cls);

/* mg_generate for G conditioned on `classes` (0: unconditional; cls must be MG_ALL_CLASSES): the
 * labels of the samples into labels (n) on root when not NULL; cls: MG_ALL_CLASSES, or one class,
 * as mg_sample_row says. */
void mg_generate_labeled(mg_real *x, mg_real *z, int32_t *labels, mg_net *g, const mg_config *cfg,
                         int64_t n, uint64_t set, int cls, const mg_comm *comm, int root);

#endif
