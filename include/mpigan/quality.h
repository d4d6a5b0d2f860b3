/* Quality metrics of a generator, measured through a classifier trained on the data set itself
 * (the offline stand-in for the Inception network of FID and the Inception score):
 *
 *   - the Frechet distance between Gaussians fitted to the classifier's features of real and
 *     generated examples (FID's formula, Heusel et al. 2017);
 *   - the classifier score exp(E_x KL(p(y|x) || p(y))) (the Inception score's formula, Salimans
 *     et al. 2016);
 *   - the histogram of predicted classes and the number of classes it covers (mode collapse);
 *   - the accuracy of a conditional generator's samples against the classes asked for.
 *
 * Everything is computed in double. Matrices are row-major; shapes are given as (rows, columns).
 * Every fallible call returns 0, or -1 with one line in err that starts with the metric's name. */
#ifndef MPIGAN_QUALITY_H
#define MPIGAN_QUALITY_H

#include "mpigan/error.h"
#include "mpigan/real.h"

/* Rows of features widened to double and centred at a time by mg_gauss_fit: its work space is
 * MG_QUALITY_ROWS x d doubles, whatever the number of rows. */
#define MG_QUALITY_ROWS 256

/* How far from 1 a row of class probabilities may sum. A float softmax over C classes sums to 1
 * within ~(C + 1) 2^-24 (C - 1 roundings in the normaliser's sum, one in exp, one in the
 * division): under 1e-4 up to ~1600 classes. Inputs that are not probabilities (logits,
 * unnormalised scores, a wrong number of columns) miss by O(1). A row off by delta moves log of
 * the score by at most ~delta (1 + log C), far below the spread between splits. */
#define MG_PROB_SUM_TOL 1e-4

/* A Gaussian in d dimensions: what FID keeps of a set of features. */
typedef struct {
    int d;
    double *mu;  // (d)
    double *cov; // (d, d), symmetric
} mg_gauss;

/* Allocates g's mean and covariance for d dimensions, zeroed. */
int mg_gauss_alloc(mg_gauss *g, int d, mg_error *err);
void mg_gauss_free(mg_gauss *g);

/* Fits g (allocated for d dimensions) to the rows of x (n, d): their mean, and their covariance
 * with the n - 1 denominator (numpy.cov, the FID reference code). Two passes: the mean, then
 * the centred rows, MG_QUALITY_ROWS at a time widened to double, summed into the covariance by
 * cblas_dsyrk. Needs n >= 2 and finite features. */
int mg_gauss_fit(mg_gauss *g, const mg_real *x, int n, int d, mg_error *err);

/* The same with plain double loops: the reference mg_gauss_fit is tested against. No checks. */
void mg_gauss_fit_ref(mg_gauss *g, const mg_real *x, int n, int d);

/* *fd = ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^{1/2} S_b S_a^{1/2})^{1/2}), the
 * squared 2-Wasserstein distance between the two Gaussians, with every square root from LAPACK's
 * symmetric eigensolver (dsyevd); quality.c says how. Symmetric in a and b up to rounding, and
 * can come out below 0 by rounding (~ d eps tr S) when a and b are equal. Refuses Gaussians of
 * different dimensions, non-finite values, a covariance that is not symmetric or not positive
 * semi-definite beyond rounding (relative 1e-6), and any LAPACK failure. Allocates ~4 d^2
 * doubles (and dsyevd ~2 d^2 more) and frees them; d = 2048 took ~7 s on one core here. */
int mg_frechet(double *fd, const mg_gauss *a, const mg_gauss *b, mg_error *err);

/* The classifier score of p (n, c), row i the classifier's p(y | x_i): rows must be finite, not
 * negative, and sum to 1 within MG_PROB_SUM_TOL. As the Inception score's reference code
 * (openai/improved-gan): part s of `splits` holds rows floor(s n / splits) up to
 * floor((s + 1) n / splits), every row in one part and the parts' sizes within one of each
 * other; a part scores exp(mean_i KL(p(y|x_i) || p(y))) with p(y) the part's mean row and
 * 0 log 0 = 0; *mean is the parts' mean, *sd their population standard deviation (numpy.std).
 * splits = 1 scores all rows, with *sd = 0; the convention is 10 splits. The score is 1 for
 * predictions that do not depend on x and c for confident predictions spread evenly over c
 * classes. */
int mg_classifier_score(double *mean, double *sd, const mg_real *p, int n, int c, int splits,
                        mg_error *err);

/* pred (n): the class of the largest of each row of scores (n, c) (probabilities or logits),
 * the lowest of equal ones. Refuses a non-finite score. */
int mg_argmax_rows(int *pred, const mg_real *scores, int n, int c, mg_error *err);

/* counts (c): how many of pred (n) fall in each class. Refuses a prediction outside 0..c-1. */
int mg_class_histogram(int *counts, const int *pred, int n, int c, mg_error *err);

/* The number of classes of counts (c) that hold at least half their fair share of the n =
 * sum(counts) predictions: count >= n / (2 c). c for a generator that covers every class
 * evenly, 1 for one collapsed to a single class, 0 when there are no predictions. */
int mg_mode_coverage(const int *counts, int c);

/* *acc = the fraction of rows with pred[i] == labels[i] (n each), both classes in 0..c-1: the
 * classifier's accuracy on G(z, y) with respect to the y asked for. Needs n >= 1. */
int mg_accuracy(double *acc, const int *pred, const int *labels, int n, int c, mg_error *err);

#endif
