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

#endif
