/* `mpigan eval`: the Gaussian Parzen window log-likelihood of the paper's Table 1 (the estimate
 * itself is parzen.h) for a checkpoint's generator, over any number of ranks; with a classifier
 * (classify.h), the figures of quality.h beside it: the Frechet distance of its penultimate
 * features (FID's formula), the classifier score, the class histogram and its coverage, and a
 * conditional generator's accuracy. */
#ifndef MPIGAN_EVALUATE_H
#define MPIGAN_EVALUATE_H

#include <jansson.h>
#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/error.h"
#include "mpigan/real.h"

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
    const char *classifier;          /* a classifier's checkpoint (or run directory), or NULL */
    int cls;                         /* MG_ALL_CLASSES, or a conditional G's samples of this class
                                        alone (with real: the training examples of this class) */
} mg_eval_opts;

/* Collective over comm; returns the process exit status (MG_EXIT_*). */
int mg_evaluate(const mg_eval_opts *o, const mg_comm *comm);

/* What a classifier says of a set of samples (rank 0), against the features of real examples:
 * the record's "classifier" object. */
typedef struct {
    const char *classifier;          /* its checkpoint */
    int classes, features;           /* its classes; the values of its penultimate layer */
    int64_t samples;                 /* samples measured */
    int real_points;                 /* real examples the distance is measured against */
    double fid;                      /* Frechet distance of the penultimate features */
    double score, score_sd;          /* classifier score over `splits` parts: mean, sd */
    int splits;
    const int *histogram;            /* (classes) the samples' predicted classes */
    int coverage;                    /* classes with at least half their fair share */
    double accuracy;                 /* a conditional G's: argmax on G(z, c) == c; NaN if none */
    double test_accuracy;            /* the classifier on the real examples; NaN without labels */
    int cls;                         /* the class of every sample (--class), or -1 */
    double seconds;
} mg_quality_record;

/* The figures of q from the classifier's outputs, rank 0: prob (n, classes) and feat (n,
 * features) of the samples, real_feat (n_real, features) of the real examples, the labels the
 * samples were drawn for (n; NULL unless conditional), histogram (classes) filled. Splits of the
 * score: 10, or fewer so that each holds at least 2 samples. -1 with one line (a metric's) when
 * a figure cannot be had (too few samples, non-finite features). */
int mg_quality_measure(mg_quality_record *q, int *histogram, const mg_real *prob,
                       const mg_real *feat, int64_t n, const mg_real *real_feat, int n_real,
                       const int32_t *labels, mg_error *err);

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
    const mg_quality_record *quality; /* with --classifier, else NULL */
} mg_eval_record;

/* The record as a JSON object (jansson, indented) at path, written whole or not at all
 * (files.h): checkpoint, step, real, ranks, samples, valid_points, test_points, sigmas, valid_ll,
 * sigma, test_ll, test_se, seconds and timers (samples, validation, test). A value that is not
 * finite is null, and the object "not_finite" says what it was, as in metrics.jsonl: "inf",
 * "-inf" or "nan" for a number, and for an array one as long, with null for its finite entries.
 * A checkpoint path that is not UTF-8 has U+FFFD for each of its non-ASCII bytes. Returns 0, or
 * -1 with "PATH: cannot write: ..." in err. */
int mg_eval_write_record(const char *path, const mg_eval_record *r, mg_error *err);

/* The record's "classifier" object (mg_quality_record): classifier, classes, features, samples,
 * real_points, fid, score, score_sd, splits, histogram, coverage, accuracy (conditional), test_
 * accuracy, class (--class), seconds; not-finite values as mg_record_real writes them. */
json_t *mg_quality_json(const mg_quality_record *q);

#endif
