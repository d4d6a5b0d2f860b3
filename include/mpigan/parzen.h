/* The Gaussian Parzen window estimate of the GAN paper's Table 1 (after Breuleux et al., 2011):
 * a mixture of isotropic Gaussians of width sigma centred on n samples mu_j,
 *
 *   log p(x) = logmeanexp_j( -||x - mu_j||^2 / (2 sigma^2) ) - d log(sigma sqrt(2 pi)),
 *
 * with sigma chosen on a validation set. Distances go through dgemm as
 * ||x||^2 - 2 x.mu + ||mu||^2 (parzen.c says why not sgemm). */
#ifndef MPIGAN_PARZEN_H
#define MPIGAN_PARZEN_H

#include <stddef.h>

#include "mpigan/error.h"
#include "mpigan/real.h"

/* Rows of x per block: a caller that splits points over ranks in whole blocks gets the same
 * GEMM shapes, hence the same results bit for bit, on any number of ranks. */
#define MG_PARZEN_ROWS 256

/* ll[i * n_sigma + s] = log p(x_i) under the window of width sigmas[s] centred on mu (n_mu, dim),
 * for x (n_x, dim). Allocates its work space (~20 MB, and 2 n_x n_sigma doubles) and frees it. */
int mg_parzen_ll(double *ll, const mg_real *x, int n_x, const mg_real *mu, int n_mu, size_t dim,
                 const double *sigmas, int n_sigma, mg_error *err);

/* The same with plain double loops over (x_k - mu_k)^2: the reference the GEMM path is tested
 * against. */
void mg_parzen_ll_ref(double *ll, const mg_real *x, int n_x, const mg_real *mu, int n_mu,
                      size_t dim, const double *sigmas, int n_sigma);

/* Data whose [0, 1] pixels span `span` instead (data.range [-1, 1]: 2): a window of width
 * span * sigma on them is the window of width sigma on [0, 1] pixels, each log-likelihood lower
 * by dim log(span). These two turn the grid into the data's units and the log-likelihoods of ll
 * (n values) back into [0, 1] pixel units; a span of 1 changes nothing. */
void mg_parzen_grid_to_data(double *sigmas, int n_sigma, double span);
void mg_parzen_ll_to_pixels(double *ll, size_t n, size_t dim, double span);

/* n values, log-spaced from lo to hi inclusive (numpy's logspace(log10 lo, log10 hi, n)). */
void mg_parzen_grid(double *sigmas, int n, double lo, double hi);

/* Mean and standard error (population standard deviation / sqrt(n), as the paper's code) of
 * column s of ll (n, n_sigma). */
void mg_parzen_mean_se(const double *ll, int n, int n_sigma, int s, double *mean, double *se);

/* The column of ll (n, n_sigma) with the highest mean: the sigma the validation set chooses; the
 * first of equal means. mean_out (n_sigma) receives every column's mean if not NULL. */
int mg_parzen_select(const double *ll, int n, int n_sigma, double *mean_out);

#endif
