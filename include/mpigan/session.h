/* A training session: `mpigan train` as a library object. It owns what a run needs (the
 * configuration, the training set, the trainer and, on rank 0, the run directory's report, sample
 * snapshots and Parzen estimates) and reads like a proxy application's prolog, loop and epilog:
 *
 *     mg_session *s;
 *     int status = mg_session_open(&s, &opts, comm);
 *     while (status == MG_EXIT_OK && !mg_session_done(s))
 *         status = mg_session_step(s);
 *     status = mg_session_close(s, status);
 *
 * Every function is collective over comm. Rank 0 prints every message ("mpigan: <one line>"), and
 * every decision that ends a run is agreed by all ranks, so that none is left waiting. */
#ifndef MPIGAN_SESSION_H
#define MPIGAN_SESSION_H

#include "mpigan/comm.h"
#include "mpigan/report.h"

typedef struct {
    const char *config;              /* NULL when resuming: the checkpoint's configuration */
    const char *const *overrides;    /* "key=value" */
    int n_overrides;
    const char *out;                 /* run directory, or NULL */
    const char *resume;              /* checkpoint file, run directory, "latest", or NULL */
    int force, quiet;
    enum mg_progress progress;
} mg_train_opts;

typedef struct mg_session mg_session;

/* Reads and checks the configuration, loads the training set, builds the trainer, resumes from
 * a checkpoint, prepares the run directory and prints the banner. MG_EXIT_OK, or the exit status
 * of a failure (*s is then NULL: nothing to close). */
int mg_session_open(mg_session **s, const mg_train_opts *o, const mg_comm *comm);

/* Non-zero once the configured steps are done. */
int mg_session_done(const mg_session *s);

/* One training step and what follows it: an estimate, the report, the checks, a snapshot and a
 * checkpoint when due. MG_EXIT_OK to go on; MG_EXIT_STOPPED after a stop signal (a checkpoint is
 * written); MG_EXIT_RUNTIME when something failed. */
int mg_session_step(mg_session *s);

/* The end: with status MG_EXIT_OK the last snapshot and checkpoint; then the timers and memory
 * over ranks, run.json, and everything freed. Returns the run's exit status. */
int mg_session_close(mg_session *s, int status);

#endif
