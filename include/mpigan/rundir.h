/* A run directory: where a training run writes its configuration, records, checkpoints and
 * samples (README "What a run writes"). Rank 0 alone calls these. */
#ifndef MPIGAN_RUNDIR_H
#define MPIGAN_RUNDIR_H

#include <stdint.h>

#include "mpigan/config.h"
#include "mpigan/error.h"

/* Creates the run directory (parents too) and writes config.yaml. A directory that already
 * holds a run (metrics.jsonl) is refused unless `force`. */
int mg_rundir_create(const char *dir, const mg_config *cfg, int force, mg_error *err);

/* For a resumed run: drops the records of metrics.jsonl after `step` (written after the
 * checkpoint the run resumes from, and about to be written again). Missing file: nothing to do. */
int mg_rundir_trim_metrics(const char *dir, int64_t step, mg_error *err);

#endif
