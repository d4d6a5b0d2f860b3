/* The commands of the mpigan program, as library calls: each returns the process exit status.
 * src/main.c only parses the command line into these option structs. */
#ifndef MPIGAN_RUN_H
#define MPIGAN_RUN_H

#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/report.h"

enum {
    MG_EXIT_OK = 0,
    MG_EXIT_RUNTIME = 1, /* failed while training: a write failed, replicas drifted apart */
    MG_EXIT_INPUT = 2,   /* bad input found before training: command line, config, data, files */
    MG_EXIT_STOPPED = 3, /* stopped by a signal after writing a checkpoint: resume, or requeue */
};

typedef struct {
    const char *config;              /* NULL when resuming: the checkpoint's configuration */
    const char *const *overrides;    /* "key=value" */
    int n_overrides;
    const char *out;                 /* run directory, or NULL */
    const char *resume;              /* checkpoint file, run directory, "latest", or NULL */
    int force, quiet;
    enum mg_progress progress;
} mg_train_opts;

typedef struct {
    const char *checkpoint;          /* file, or run directory (its latest checkpoint) */
    int64_t n;                       /* samples */
    const char *out;                 /* HDF5 file */
    const char *png;                 /* grid picture, or NULL */
    int columns;                     /* of the grid; 0: square */
    uint64_t set;                    /* which noise set: 0 is the training snapshots' */
} mg_sample_opts;

typedef struct {
    const char *format;              /* idx, cifar10 or tfd */
    const char *const *inputs;       /* idx: images [labels]; cifar10: batch files; tfd: the .mat */
    int n_inputs;
    const char *out;                 /* HDF5 file */
    int fold;                        /* tfd */
    int split;                       /* tfd: an mg_tfd_split */
} mg_prepare_opts;

typedef struct {
    const char *checkpoint;          /* file, or run directory (its latest checkpoint) */
    const char *const *overrides;    /* "key=value" over the checkpoint's configuration */
    int n_overrides;
    int64_t samples;                 /* the window's centres: 10,000 */
    int valid_points;                /* validation examples that choose sigma: 1,000 */
    int test_points;                 /* test examples; 0: all */
    double sigma_lo, sigma_hi;       /* the sigma grid, log-spaced: 0.1 to 1 */
    int n_sigmas;                    /* 10 */
    int real;                        /* centres: the first `samples` training examples */
    uint64_t set;                    /* the generator's noise set (as mpigan sample's) */
    const char *out;                 /* JSON record; NULL: eval-<step>.json beside the checkpoint */
    int quiet;
} mg_eval_opts;

typedef struct {
    const char *run_dir;
    const char *out;                 /* NULL: RUN_DIR/plots */
    int width, height;               /* of each curve, in pixels */
} mg_plot_opts;

/* Serial: the pictures of a run (README "Evaluating and plotting"). */
int mg_run_plot(const mg_plot_opts *o);

/* Serial: converts a data set once into mpigan's HDF5 input format. */
int mg_run_prepare(const mg_prepare_opts *o);

/* Collective over comm. */
int mg_run_train(const mg_train_opts *o, const mg_comm *comm);
int mg_run_sample(const mg_sample_opts *o, const mg_comm *comm);
/* The Parzen window log-likelihood of the paper's Table 1 (see parzen.h). */
int mg_run_eval(const mg_eval_opts *o, const mg_comm *comm);
/* Serial. */
int mg_run_info(const char *checkpoint);

#endif
