/* Gaussian Parzen window log-likelihoods through GEMM.
 *
 * Why double: ||x||^2 - 2 x.mu + ||mu||^2 cancels (each term ~260 for image data, the distance
 * of a near sample ~10), and at sigma = 0.1 an error e in a distance moves its exponent by
 * e / (2 sigma^2) = 50 e. sgemm's float sums leave e ~ 1e-4 even over slices of 128 columns
 * summed in double: 5e-3 nats per point (measured against the double loops; the mean over points
 * stays near 1e-4). dgemm costs twice sgemm's time (59 against 120 GFLOP/s on one core here)
 * and leaves 1e-10, so the estimate is the reference's to its last printed digit. */
#include "mpigan/parzen.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

/* Terms more than this far below a row's largest exponent add less than e^-40 each to a sum
 * that holds at least 1: skipped without calling exp. */
#define SKIP_BELOW 40.0

/* Values of mu per block (rows = this / dim): 8 MB of doubles, whatever the image size. */
#define MU_BLOCK_VALUES ((size_t)1 << 20)

static double sumsq(const double *v, size_t n)
{
    double s = 0;
    for (size_t k = 0; k < n; k++)
        s += v[k] * v[k];
    return s;
}

static void widen(double *out, const mg_real *in, size_t n)
{
    for (size_t k = 0; k < n; k++)
        out[k] = in[k];
}

/* Adds the terms of one block of samples to each point's streaming log-sum-exp: top (nx,
 * n_sigma) the largest exponent so far, sum the sum of exp(exponent - top). d2 (nx, nm). */
static void accumulate(double *top, double *sum, const double *d2, int nx, int nm,
                       const double *sigmas, int n_sigma)
{
    for (int i = 0; i < nx; i++) {
        const double *row = d2 + (size_t)i * nm;
        double near = INFINITY;
        for (int j = 0; j < nm; j++)
            near = row[j] < near ? row[j] : near;
        for (int s = 0; s < n_sigma; s++) {
            const double inv = 1 / (2 * sigmas[s] * sigmas[s]);
            double *t = top + (size_t)i * n_sigma + s, *acc = sum + (size_t)i * n_sigma + s;
            if (-near * inv > *t) {
                *acc *= exp(*t + near * inv);
                *t = -near * inv;
            }
            const double shift = *t, cut = (SKIP_BELOW - shift) / inv; // d2 < cut counts
            double a = 0;
            for (int j = 0; j < nm; j++)
                if (row[j] < cut)
                    a += exp(-row[j] * inv - shift);
            *acc += a;
        }
    }
}

int mg_parzen_ll(double *ll, const mg_real *x, int n_x, const mg_real *mu, int n_mu, size_t dim,
                 const double *sigmas, int n_sigma, mg_error *err)
{
    if (n_x < 0 || n_mu < 1 || n_sigma < 1 || dim < 1 || dim > (size_t)1 << 30)
        return mg_fail(err, "parzen: nothing to estimate (%d points, %d samples, %d sigmas, "
                            "dimension %zu)",
                       n_x, n_mu, n_sigma, dim);
    for (int s = 0; s < n_sigma; s++)
        if (!(sigmas[s] > 0) || !isfinite(sigmas[s]))
            return mg_fail(err, "parzen: sigma %g is not a positive number", sigmas[s]);
    if (n_x == 0)
        return 0;

    const int bx = n_x < MG_PARZEN_ROWS ? n_x : MG_PARZEN_ROWS;
    const size_t rows = MU_BLOCK_VALUES / dim > 64 ? MU_BLOCK_VALUES / dim : 64;
    const int bm = (size_t)n_mu < rows ? n_mu : (int)rows;
    const size_t n_doubles = (size_t)bm * dim + bm + (size_t)bx * dim + bx + (size_t)bx * bm +
                             2 * (size_t)n_x * n_sigma;
    double *mub = malloc(n_doubles * sizeof(double));
    if (!mub)
        return mg_fail(err, "parzen: out of memory for blocks of %d x %d", bx, bm);
    double *mu_sq = mub + (size_t)bm * dim;  // (bm)
    double *xb = mu_sq + bm;                 // (bx, dim)
    double *x_sq = xb + (size_t)bx * dim;    // (bx)
    double *d2 = x_sq + bx;                  // (bx, bm)
    double *top = d2 + (size_t)bx * bm;      // (n_x, n_sigma)
    double *sum = top + (size_t)n_x * n_sigma; // (n_x, n_sigma)
    for (size_t t = 0; t < (size_t)n_x * n_sigma; t++) {
        top[t] = -INFINITY;
        sum[t] = 0;
    }

    // Samples outside, points inside: each block of mu is widened once. A point's result
    // depends only on its block of MG_PARZEN_ROWS, so splitting points in whole blocks over
    // ranks changes nothing.
    for (int j0 = 0; j0 < n_mu; j0 += bm) {
        const int nm = n_mu - j0 < bm ? n_mu - j0 : bm;
        widen(mub, mu + (size_t)j0 * dim, (size_t)nm * dim);
        for (int j = 0; j < nm; j++)
            mu_sq[j] = sumsq(mub + (size_t)j * dim, dim);
        for (int i0 = 0; i0 < n_x; i0 += bx) {
            const int nx = n_x - i0 < bx ? n_x - i0 : bx;
            widen(xb, x + (size_t)i0 * dim, (size_t)nx * dim);
            for (int i = 0; i < nx; i++)
                x_sq[i] = sumsq(xb + (size_t)i * dim, dim);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nx, nm, (int)dim, 1, xb,
                        (int)dim, mub, (int)dim, 0, d2, nm);
            for (int i = 0; i < nx; i++)
                for (int j = 0; j < nm; j++) {
                    const double v = x_sq[i] - 2 * d2[(size_t)i * nm + j] + mu_sq[j];
                    d2[(size_t)i * nm + j] = v > 0 ? v : 0; // rounding can take 0 below 0
                }
            accumulate(top + (size_t)i0 * n_sigma, sum + (size_t)i0 * n_sigma, d2, nx, nm,
                       sigmas, n_sigma);
        }
    }
    const double log_n = log((double)n_mu);
    for (int i = 0; i < n_x; i++)
        for (int s = 0; s < n_sigma; s++) {
            const size_t t = (size_t)i * n_sigma + s;
            ll[t] = top[t] + log(sum[t]) - log_n - (double)dim * log(sigmas[s] * sqrt(2 * M_PI));
        }
    free(mub);
    return 0;
}

void mg_parzen_ll_ref(double *ll, const mg_real *x, int n_x, const mg_real *mu, int n_mu,
                      size_t dim, const double *sigmas, int n_sigma)
{
    double *e = malloc((size_t)n_mu * sizeof *e);
    if (!e)
        abort();
    for (int i = 0; i < n_x; i++)
        for (int s = 0; s < n_sigma; s++) {
            double m = -INFINITY;
            for (int j = 0; j < n_mu; j++) {
                double d2 = 0;
                for (size_t k = 0; k < dim; k++) {
                    const double d = (double)x[(size_t)i * dim + k] - mu[(size_t)j * dim + k];
                    d2 += d * d;
                }
                e[j] = -d2 / (2 * sigmas[s] * sigmas[s]);
                m = e[j] > m ? e[j] : m;
            }
            double acc = 0;
            for (int j = 0; j < n_mu; j++)
                acc += exp(e[j] - m);
            ll[(size_t)i * n_sigma + s] =
                m + log(acc / n_mu) - (double)dim * log(sigmas[s] * sqrt(2 * M_PI));
        }
    free(e);
}

void mg_parzen_grid_to_data(double *sigmas, int n_sigma, double span)
{
    if (span == 1.0)
        return;
    for (int s = 0; s < n_sigma; s++)
        sigmas[s] *= span;
}

void mg_parzen_ll_to_pixels(double *ll, size_t n, size_t dim, double span)
{
    if (span == 1.0)
        return;
    const double shift = (double)dim * log(span);
    for (size_t i = 0; i < n; i++)
        ll[i] += shift;
}

void mg_parzen_grid(double *sigmas, int n, double lo, double hi)
{
    const double a = log10(lo), b = log10(hi);
    for (int i = 0; i < n; i++)
        sigmas[i] = n == 1 ? lo : pow(10, a + (b - a) * i / (n - 1));
}

void mg_parzen_mean_se(const double *ll, int n, int n_sigma, int s, double *mean, double *se)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += ll[(size_t)i * n_sigma + s];
    const double m = n > 0 ? sum / n : NAN;
    double ss = 0;
    for (int i = 0; i < n; i++) {
        const double d = ll[(size_t)i * n_sigma + s] - m;
        ss += d * d;
    }
    *mean = m;
    *se = n > 0 ? sqrt(ss / n) / sqrt((double)n) : NAN;
}

int mg_parzen_select(const double *ll, int n, int n_sigma, double *mean_out)
{
    int best = -1;
    double best_mean = -INFINITY;
    for (int s = 0; s < n_sigma; s++) {
        double mean, se;
        mg_parzen_mean_se(ll, n, n_sigma, s, &mean, &se);
        if (mean_out)
            mean_out[s] = mean;
        if (!isnan(mean) && (best < 0 || mean > best_mean)) {
            best = s;
            best_mean = mean;
        }
    }
    return best;
}
