/* Quality metrics: Gaussian fits and their Frechet distance, the classifier score, class
 * histograms and accuracy (quality.h). */
#include "mpigan/quality.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A covariance may be asymmetric, or have negative eigenvalues, by this much relative to its
 * largest diagonal entry / eigenvalue before mg_frechet refuses it. Rounding leaves far less:
 * a double covariance of n rows of d features is off by ~ n eps per entry at worst and its
 * eigenvalues by ~ d eps more, under 1e-6 up to n d ~ 4e9; a wrong matrix misses by O(1). */
#define REL_TOL 1e-6

int mg_gauss_alloc(mg_gauss *g, int d, mg_error *err)
{
    g->d = 0;
    g->mu = g->cov = NULL;
    if (d < 1)
        return mg_fail(err, "gaussian fit: dimension %d is not positive", d);
    g->mu = calloc((size_t)d, sizeof(double));
    g->cov = calloc((size_t)d * d, sizeof(double));
    if (!g->mu || !g->cov) {
        mg_gauss_free(g);
        return mg_fail(err, "gaussian fit: out of memory for a Gaussian of dimension %d", d);
    }
    g->d = d;
    return 0;
}

void mg_gauss_free(mg_gauss *g)
{
    free(g->mu);
    free(g->cov);
    g->mu = g->cov = NULL;
    g->d = 0;
}

/* cov (d, d): the upper triangle divided by n - 1, mirrored into the lower one. */
static void finish_cov(double *cov, int d, int n)
{
    const double scale = 1.0 / (n - 1);
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            cov[(size_t)i * d + j] *= scale;
            cov[(size_t)j * d + i] = cov[(size_t)i * d + j];
        }
}

int mg_gauss_fit(mg_gauss *g, const mg_real *x, int n, int d, mg_error *err)
{
    if (d < 1)
        return mg_fail(err, "gaussian fit: dimension %d is not positive", d);
    if (!g->mu || !g->cov || g->d != d)
        return mg_fail(err, "gaussian fit: features of dimension %d into a Gaussian of dimension "
                            "%d", d, g->d);
    if (n < 2)
        return mg_fail(err, "gaussian fit: %d rows, a covariance needs at least 2", n);

    // Two passes, the mean then the centred rows: the one-pass E[x x^T] - mu mu^T cancels
    // catastrophically for features with a large mean.
    double *mu = g->mu;
    for (int k = 0; k < d; k++)
        mu[k] = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < d; k++) {
            const double v = x[(size_t)i * d + k];
            if (!isfinite(v))
                return mg_fail(err, "gaussian fit: row %d, column %d is %g", i, k, v);
            mu[k] += v;
        }
    for (int k = 0; k < d; k++)
        mu[k] /= n;

    const int rows = n < MG_QUALITY_ROWS ? n : MG_QUALITY_ROWS;
    double *xc = malloc((size_t)rows * d * sizeof *xc); // (rows, d), centred
    if (!xc)
        return mg_fail(err, "gaussian fit: out of memory for %d rows of dimension %d", rows, d);
    for (int i0 = 0; i0 < n; i0 += rows) {
        const int nb = n - i0 < rows ? n - i0 : rows;
        for (int i = 0; i < nb; i++)
            for (int k = 0; k < d; k++)
                xc[(size_t)i * d + k] = x[(size_t)(i0 + i) * d + k] - mu[k];
        // cov += xc^T xc, upper triangle only
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, nb, 1.0, xc, d, i0 ? 1.0 : 0.0,
                    g->cov, d);
    }
    free(xc);
    finish_cov(g->cov, d, n);
    return 0;
}

void mg_gauss_fit_ref(mg_gauss *g, const mg_real *x, int n, int d)
{
    for (int k = 0; k < d; k++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += x[(size_t)i * d + k];
        g->mu[k] = s / n;
    }
    for (int a = 0; a < d; a++)
        for (int b = a; b < d; b++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += (x[(size_t)i * d + a] - g->mu[a]) * (x[(size_t)i * d + b] - g->mu[b]);
            g->cov[(size_t)a * d + b] = s;
        }
    finish_cov(g->cov, d, n);
}

/* Refuses a Gaussian with a non-finite value or an asymmetric covariance, and copies its
 * covariance symmetrised into sym (d, d): LAPACK reads one triangle only. */
static int check_gauss(double *sym, const mg_gauss *g, char name, mg_error *err)
{
    const int d = g->d;
    double top = 0;
    for (int i = 0; i < d; i++) {
        if (!isfinite(g->mu[i]))
            return mg_fail(err, "frechet distance: mu_%c[%d] is %g", name, i, g->mu[i]);
        for (int j = 0; j < d; j++) {
            const double v = g->cov[(size_t)i * d + j];
            if (!isfinite(v))
                return mg_fail(err, "frechet distance: cov_%c[%d, %d] is %g", name, i, j, v);
        }
        top = fmax(top, fabs(g->cov[(size_t)i * d + i]));
    }
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            const double u = g->cov[(size_t)i * d + j], l = g->cov[(size_t)j * d + i];
            if (fabs(u - l) > REL_TOL * top)
                return mg_fail(err, "frechet distance: cov_%c is not symmetric: [%d, %d] = %.9g, "
                                    "[%d, %d] = %.9g", name, i, j, u, j, i, l);
            sym[(size_t)i * d + j] = sym[(size_t)j * d + i] = 0.5 * (u + l);
        }
    return 0;
}

/* w (d): the eigenvalues of the symmetric a (d, d), ascending; with vectors, a's row j becomes
 * the unit eigenvector of w[j] (the column-major eigenvector matrix read row-major: a symmetric
 * matrix is the same either way, so LAPACKE needs no transposed copy). */
static int eigen(double *w, double *a, int d, int vectors, char name, mg_error *err)
{
    const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, vectors ? 'V' : 'N', 'U', d, a, d, w);
    if (info != 0)
        return mg_fail(err, "frechet distance: LAPACK dsyevd failed on %s (info %d)",
                       name == 'M' ? "S_a^1/2 S_b S_a^1/2" : name == 'a' ? "cov_a" : "cov_b",
                       (int)info);
    return 0;
}

static int check_psd(const double *w, int d, char name, mg_error *err)
{
    if (w[0] < -REL_TOL * fmax(w[d - 1], 0))
        return mg_fail(err, "frechet distance: cov_%c is not positive semi-definite: eigenvalue "
                            "%.9g, largest %.9g", name, w[0], w[d - 1]);
    return 0;
}

/* The square roots, by eigendecomposition only (no Newton or Denman-Beavers iteration, whose
 * convergence and accuracy depend on the conditioning):
 *
 *   S_a = V diag(w) V^T (dsyevd),  S_a^{1/2} = V W V^T with W = diag(sqrt(max(w, 0))).
 *
 * M = S_a^{1/2} S_b S_a^{1/2} = V (W V^T S_b V W) V^T is orthogonally similar to
 * N = Bt S_b Bt^T with Bt = W V^T (d, d), so the two have the same eigenvalues; N costs two
 * GEMMs where forming S_a^{1/2} and then M costs three. N is symmetric PSD
 * (x^T N x = (Bt^T x)^T S_b (Bt^T x) >= 0), so dsyevd gives its eigenvalues lambda, and
 * tr(M^{1/2}) = sum sqrt(lambda).
 *
 * Why this is the tr((S_a S_b)^{1/2}) of FID's formula: with X = S_a^{1/2} and Y = S_a^{1/2} S_b,
 * XY = S_a S_b and YX = M, and XY, YX have the same characteristic polynomial (Sylvester's
 * determinant identity). So S_a S_b, though not symmetric, has M's real non-negative
 * eigenvalues; for an invertible S_a it is similar to M (S_a S_b = S_a^{1/2} M S_a^{-1/2}), so
 * the trace of its principal square root is sum sqrt(lambda). M's form stays well defined when
 * S_a is singular (fewer rows than features), where S_a S_b may have no principal square root
 * and scipy.linalg.sqrtm returns complex parts that the FID reference code discards.
 *
 * Rounding: the eigenvalues of a PSD matrix come out of dsyevd with absolute errors of
 * ~ d eps times its largest one, so zero eigenvalues (a singular covariance) appear as tiny
 * negative numbers. Those of S_a are taken as 0 in W (after check_psd has refused any
 * negative one beyond REL_TOL, which a real covariance cannot have); those of N as well, since
 * N is PSD whenever S_a and S_b are. sqrt(max(lambda, 0)) is then off by at most sqrt of the
 * rounding, ~ sqrt(d eps) of the scale, and only for eigenvalues at rounding level. */
int mg_frechet(double *fd, const mg_gauss *a, const mg_gauss *b, mg_error *err)
{
    if (a->d != b->d)
        return mg_fail(err, "frechet distance: dimensions differ (%d and %d)", a->d, b->d);
    const int d = a->d;
    if (d < 1 || !a->mu || !a->cov || !b->mu || !b->cov)
        return mg_fail(err, "frechet distance: dimension %d, or a Gaussian not allocated", d);
    const size_t dd = (size_t)d * d;
    double *v = malloc((4 * dd + 2 * (size_t)d) * sizeof *v); // (d, d) S_a, then V^T, then Bt
    if (!v)
        return mg_fail(err, "frechet distance: out of memory for dimension %d", d);
    double *sb = v + dd;      // (d, d) S_b, symmetrised
    double *t = sb + dd;      // (d, d) a copy of S_b for its eigenvalues, then Bt S_b
    double *n = t + dd;       // (d, d) Bt S_b Bt^T
    double *w = n + dd;       // (d) eigenvalues of S_a, then of N
    double *wb = w + d;       // (d) eigenvalues of S_b
    int rc = -1;
    double dist = 0, trace = 0, root = 0;
    if (check_gauss(v, a, 'a', err) || check_gauss(sb, b, 'b', err))
        goto out;
    for (int i = 0; i < d; i++) {
        dist += (a->mu[i] - b->mu[i]) * (a->mu[i] - b->mu[i]);
        trace += v[(size_t)i * d + i] + sb[(size_t)i * d + i];
    }
    memcpy(t, sb, dd * sizeof *t);
    if (eigen(wb, t, d, 0, 'b', err) || check_psd(wb, d, 'b', err) ||
        eigen(w, v, d, 1, 'a', err) || check_psd(w, d, 'a', err))
        goto out;
    for (int j = 0; j < d; j++) { // v's rows: Bt = W V^T
        const double s = sqrt(fmax(w[j], 0));
        for (int k = 0; k < d; k++)
            v[(size_t)j * d + k] *= s;
    }
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, d, d, 1.0, sb, d, v, d, 0.0, t, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, t, d, v, d, 0.0, n, d);
    if (eigen(w, n, d, 0, 'M', err))
        goto out;
    for (int j = 0; j < d; j++)
        root += sqrt(fmax(w[j], 0));
    *fd = dist + trace - 2 * root;
    rc = 0;
out:
    free(v);
    return rc;
}

/* p (n, c): finite, non-negative rows summing to 1 within MG_PROB_SUM_TOL. */
static int check_probs(const mg_real *p, int n, int c, mg_error *err)
{
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < c; j++) {
            const double v = p[(size_t)i * c + j];
            if (!isfinite(v))
                return mg_fail(err, "classifier score: p[%d, %d] is %g", i, j, v);
            if (v < 0)
                return mg_fail(err, "classifier score: p[%d, %d] = %g is negative", i, j, v);
            s += v;
        }
        if (!(fabs(s - 1) <= MG_PROB_SUM_TOL))
            return mg_fail(err, "classifier score: row %d sums to %.9g, not 1 (tolerance %g)", i,
                           s, MG_PROB_SUM_TOL);
    }
    return 0;
}

int mg_classifier_score(double *mean, double *sd, const mg_real *p, int n, int c, int splits,
                        mg_error *err)
{
    if (c < 1)
        return mg_fail(err, "classifier score: %d classes, need at least 1", c);
    if (splits < 1 || n < splits)
        return mg_fail(err, "classifier score: %d rows cannot make %d splits", n, splits);
    if (check_probs(p, n, c, err))
        return -1;
    double *py = malloc(((size_t)c + splits) * sizeof *py); // (c) p(y), then (splits) scores
    if (!py)
        return mg_fail(err, "classifier score: out of memory for %d classes", c);
    double *score = py + c;
    for (int s = 0; s < splits; s++) {
        // rows [s n / splits, (s + 1) n / splits), as the reference code slices them
        const int64_t lo = (int64_t)s * n / splits, hi = (int64_t)(s + 1) * n / splits;
        const int m = (int)(hi - lo);
        const mg_real *part = p + (size_t)lo * c; // (m, c)
        for (int j = 0; j < c; j++)
            py[j] = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < c; j++)
                py[j] += part[(size_t)i * c + j];
        for (int j = 0; j < c; j++)
            py[j] /= m;
        double kl = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < c; j++) {
                const double q = part[(size_t)i * c + j];
                if (q > 0) // 0 log 0 = 0; q > 0 implies py[j] > 0
                    kl += q * log(q / py[j]);
            }
        score[s] = exp(kl / m);
    }
    double mu = 0, var = 0;
    for (int s = 0; s < splits; s++)
        mu += score[s] / splits;
    for (int s = 0; s < splits; s++)
        var += (score[s] - mu) * (score[s] - mu) / splits;
    *mean = mu;
    *sd = sqrt(var);
    free(py);
    return 0;
}

int mg_argmax_rows(int *pred, const mg_real *scores, int n, int c, mg_error *err)
{
    if (c < 1)
        return mg_fail(err, "argmax: %d classes, need at least 1", c);
    for (int i = 0; i < n; i++) {
        const mg_real *row = scores + (size_t)i * c;
        int best = 0;
        for (int j = 0; j < c; j++) {
            if (!isfinite(row[j]))
                return mg_fail(err, "argmax: row %d, column %d is %g", i, j, (double)row[j]);
            if (row[j] > row[best]) // strictly: the lowest of equal scores wins
                best = j;
        }
        pred[i] = best;
    }
    return 0;
}

int mg_class_histogram(int *counts, const int *pred, int n, int c, mg_error *err)
{
    if (c < 1)
        return mg_fail(err, "class histogram: %d classes, need at least 1", c);
    for (int j = 0; j < c; j++)
        counts[j] = 0;
    for (int i = 0; i < n; i++) {
        if (pred[i] < 0 || pred[i] >= c)
            return mg_fail(err, "class histogram: row %d predicts class %d, not one of 0..%d", i,
                           pred[i], c - 1);
        counts[pred[i]]++;
    }
    return 0;
}

int mg_mode_coverage(const int *counts, int c)
{
    int64_t total = 0;
    for (int j = 0; j < c; j++)
        total += counts[j];
    if (total <= 0)
        return 0;
    int covered = 0;
    for (int j = 0; j < c; j++)
        covered += 2 * (int64_t)c * counts[j] >= total; // count >= n / (2c), in integers
    return covered;
}

int mg_accuracy(double *acc, const int *pred, const int *labels, int n, int c, mg_error *err)
{
    if (c < 1)
        return mg_fail(err, "accuracy: %d classes, need at least 1", c);
    if (n < 1)
        return mg_fail(err, "accuracy: %d rows, need at least 1", n);
    int right = 0;
    for (int i = 0; i < n; i++) {
        if (pred[i] < 0 || pred[i] >= c)
            return mg_fail(err, "accuracy: row %d predicts class %d, not one of 0..%d", i, pred[i],
                           c - 1);
        if (labels[i] < 0 || labels[i] >= c)
            return mg_fail(err, "accuracy: row %d is labelled %d, not one of 0..%d", i, labels[i],
                           c - 1);
        right += pred[i] == labels[i];
    }
    *acc = (double)right / n;
    return 0;
}
