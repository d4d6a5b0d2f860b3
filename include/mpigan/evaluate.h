/* `mpigan eval`: the Gaussian Parzen window log-likelihood of the paper's Table 1 (the estimate
 * itself is parzen.h) for a checkpoint's generator, over any number of ranks. */
#ifndef MPIGAN_EVALUATE_H
#define MPIGAN_EVALUATE_H

#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/error.h"

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

/* Collective over comm; returns the process exit status (MG_EXIT_*). */
int mg_evaluate(const mg_eval_opts *o, const mg_comm *comm);

/* What an evaluation found, as its record holds it. */
typedef struct {
    const char *checkpoint;
    int64_t step;
    int real, ranks;
    int64_t samples;
    int valid_points, test_points;
    int n_sigma, chosen;             /* the grid's size; the index of the chosen sigma */
    const double *sigmas, *valid_ll; /* (n_sigma) each: the grid, the mean validation LL at each */
    double test_ll, test_se;
    double seconds[4];               /* samples, validation, test, total */
} mg_eval_record;

/* The record as a JSON object (jansson, indented) at path, written whole or not at all
 * (files.h): checkpoint, step, real, ranks, samples, valid_points, test_points, sigmas, valid_ll,
 * sigma, test_ll, test_se, seconds and timers (samples, validation, test). A value that is not
 * finite is null, and the object "not_finite" says what it was, as in metrics.jsonl: "inf",
 * "-inf" or "nan" for a number, and for an array one as long, with null for its finite entries.
 * A checkpoint path that is not UTF-8 has U+FFFD for each of its non-ASCII bytes. Returns 0, or
 * -1 with "PATH: cannot write: ..." in err. */
int mg_eval_write_record(const char *path, const mg_eval_record *r, mg_error *err);

#endif
