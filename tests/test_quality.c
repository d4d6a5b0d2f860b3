/* The quality metrics: the Gaussian fit against plain loops and hand values; the Frechet distance
 * against closed forms (diagonal, commuting, 2 x 2), its symmetry and invariance, and its
 * convergence from samples of known Gaussians; the classifier score, histogram, coverage and
 * accuracy on hand-made predictions; every bad input's message. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/quality.h"
#include "mpigan/rng.h"
#include "testlib.h"

#define EPS DBL_EPSILON

static mg_gauss new_gauss(int d)
{
    mg_gauss g;
    mg_error err;
    CU_ASSERT_FATAL(mg_gauss_alloc(&g, d, &err) == 0);
    return g;
}

static void normals(double *out, int n, uint64_t seed, uint64_t row)
{
    mg_real *z = malloc((size_t)n * sizeof *z);
    CU_ASSERT_FATAL(z != NULL);
    const mg_rng_key key = {.seed = seed, .stream = 1};
    mg_rng_normal(z, (size_t)n, &key, row);
    for (int i = 0; i < n; i++)
        out[i] = z[i];
    free(z);
}

/* q (d, d): a random orthogonal matrix, the product of three Householder reflections. */
static void orthogonal(double *q, int d, uint64_t seed)
{
    double *v = malloc((size_t)d * sizeof *v), *qv = malloc((size_t)d * sizeof *qv);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            q[(size_t)i * d + j] = i == j;
    for (int r = 0; r < 3; r++) {
        normals(v, d, seed, (uint64_t)r);
        double vv = 0;
        for (int k = 0; k < d; k++)
            vv += v[k] * v[k];
        for (int i = 0; i < d; i++) { // q <- q (I - 2 v v^T / vv)
            qv[i] = 0;
            for (int k = 0; k < d; k++)
                qv[i] += q[(size_t)i * d + k] * v[k];
        }
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++)
                q[(size_t)i * d + j] -= 2 * qv[i] * v[j] / vv;
    }
    free(v);
    free(qv);
}

/* cov (d, d) = q diag(l) q^T, exactly symmetric. */
static void spectral(double *cov, const double *q, const double *l, int d)
{
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++)
                s += q[(size_t)i * d + k] * l[k] * q[(size_t)j * d + k];
            cov[(size_t)i * d + j] = cov[(size_t)j * d + i] = s;
        }
}

static double trace(const mg_gauss *g)
{
    double t = 0;
    for (int i = 0; i < g->d; i++)
        t += g->cov[(size_t)i * g->d + i];
    return t;
}

static double mean_dist2(const mg_gauss *a, const mg_gauss *b)
{
    double s = 0;
    for (int i = 0; i < a->d; i++)
        s += (a->mu[i] - b->mu[i]) * (a->mu[i] - b->mu[i]);
    return s;
}

/* The rounding error of mg_frechet on well-conditioned input. N = Bt S_b Bt^T comes from two
 * GEMMs of length d and dsyevd, each good to ~ d eps normwise, so its eigenvalues are off by
 * delta <= 4 d eps ||S_a|| ||S_b|| (norm_a, norm_b: bounds on the largest eigenvalues). Each
 * sqrt(lambda) is then off by delta / (2 sqrt(lambda)) <= delta / (2 sqrt(m_min)), m_min the
 * smallest eigenvalue of M, and FD holds 2 of d of them; summing its 3d other terms adds
 * ~ d eps times their size. */
static double fd_tol(int d, double norm_a, double norm_b, double m_min, double scale)
{
    const double delta = 4 * d * EPS * norm_a * norm_b;
    return d * delta / sqrt(m_min) + 4 * d * EPS * scale;
}

static double frechet(const mg_gauss *a, const mg_gauss *b)
{
    double fd = NAN;
    mg_error err;
    const int rc = mg_frechet(&fd, a, b, &err);
    if (rc != 0)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    return fd;
}

static void test_fit_hand(void)
{
    // numpy.cov([[1, 3, 5], [2, 4, 0]]): centred rows (-2, 0), (0, 2), (2, -2). Every
    // intermediate is a small integer or half of one: exact, so the tolerance is 0.
    const mg_real x[6] = {1, 2, 3, 4, 5, 0};
    const double cov[4] = {4, -2, -2, 4};
    mg_gauss g = new_gauss(2), r = new_gauss(2);
    mg_error err;
    CU_ASSERT_FATAL(mg_gauss_fit(&g, x, 3, 2, &err) == 0);
    mg_gauss_fit_ref(&r, x, 3, 2);
    CU_ASSERT_EQUAL(g.mu[0], 3);
    CU_ASSERT_EQUAL(g.mu[1], 2);
    for (int k = 0; k < 4; k++) {
        CU_ASSERT_EQUAL(g.cov[k], cov[k]);
        CU_ASSERT_EQUAL(r.cov[k], cov[k]);
    }
    // One feature, n - 1 = 3: mean 2.25, variance (1.75^2 + 0.75^2 + 0.25^2 + 2.25^2) / 3 =
    // 8.75 / 3, one rounding in the division and a few in the sums of exact squares.
    const mg_real y[4] = {0.5f, 1.5f, 2.5f, 4.5f};
    mg_gauss h = new_gauss(1);
    CU_ASSERT_FATAL(mg_gauss_fit(&h, y, 4, 1, &err) == 0);
    CU_ASSERT_EQUAL(h.mu[0], 2.25);
    MG_ASSERT_CLOSE(h.cov[0], 8.75 / 3, 2 * EPS * 3);
    mg_gauss_free(&g);
    mg_gauss_free(&r);
    mg_gauss_free(&h);
}

static void test_fit_matches_reference(void)
{
    // Not a multiple of MG_QUALITY_ROWS, and features far from 0 (mean ~100, sd ~1) so that a
    // one-pass E[x x^T] - mu mu^T would lose ~8 digits and fail.
    const int n = 1000, d = 37;
    mg_real *x = malloc((size_t)n * d * sizeof *x);
    double *z = malloc((size_t)d * sizeof *z);
    for (int i = 0; i < n; i++) {
        normals(z, d, 5, (uint64_t)i);
        for (int k = 0; k < d; k++)
            x[(size_t)i * d + k] = (mg_real)(100 + k + z[k] + (k ? 0.5 * z[k - 1] : 0));
    }
    mg_gauss g = new_gauss(d), r = new_gauss(d);
    mg_error err;
    CU_ASSERT_FATAL(mg_gauss_fit(&g, x, n, d, &err) == 0);
    mg_gauss_fit_ref(&r, x, n, d);
    // Sums of n terms: each side is off by <= n eps times the sum of |terms|. For the means that
    // is n eps max|x| / n; for cov[j][k] it is n eps sum_i |xc_ij xc_ik| / (n - 1) <=
    // n eps sqrt(cov_jj cov_kk) (Cauchy-Schwarz). Twice that bounds the difference.
    double worst_mu = 0, worst_cov = 0;
    for (int j = 0; j < d; j++) {
        worst_mu = fmax(worst_mu, fabs(g.mu[j] - r.mu[j]) / (140 * EPS));
        for (int k = 0; k < d; k++) {
            const double s = sqrt(r.cov[j * d + j] * r.cov[k * d + k]);
            worst_cov = fmax(worst_cov, fabs(g.cov[j * d + k] - r.cov[j * d + k]) / (s * EPS));
            CU_ASSERT(g.cov[j * d + k] == g.cov[k * d + j]);
        }
    }
    printf("\n    means within %.3g eps of max|x|, covariances within %.3g eps of "
           "sqrt(cov_jj cov_kk) of the loops (bound 2n = %d)\n",
           worst_mu, worst_cov, 2 * n);
    CU_ASSERT(worst_mu <= 2 * n);
    CU_ASSERT(worst_cov <= 2 * n);
    // And the population: cov_kk = 1.25 (k > 0), cov_k,k-1 = 0.5, within ~ 3 sd of the
    // sample variance sqrt(2 / n) * 1.25 = 0.056.
    MG_ASSERT_CLOSE(g.cov[5 * d + 5], 1.25, 3 * 0.056);
    MG_ASSERT_CLOSE(g.cov[5 * d + 4], 0.5, 3 * 0.056);
    free(x);
    free(z);
    mg_gauss_free(&g);
    mg_gauss_free(&r);
}

static void test_frechet_self(void)
{
    // A well-conditioned covariance (eigenvalues in [1, 4]): M = S^2 has m_min = 1.
    const int d = 16;
    mg_gauss g = new_gauss(d);
    double *q = malloc((size_t)d * d * sizeof *q), l[16];
    orthogonal(q, d, 21);
    for (int i = 0; i < d; i++) {
        l[i] = 1 + 3.0 * i / (d - 1);
        g.mu[i] = i - 7.5;
    }
    spectral(g.cov, q, l, d);
    const double fd = frechet(&g, &g), tol = fd_tol(d, 4, 4, 1, 2 * trace(&g));
    printf("\n    FD(S, S) = %.3g (tolerance %.3g)", fd, tol);
    MG_ASSERT_CLOSE(fd, 0, tol);

    // Sets with themselves, through the fit: 500 rows (full rank) and 8 rows (rank 7 in 16
    // dimensions, a singular covariance). Without a bound on the smallest eigenvalue the
    // error of each sqrt is at worst sqrt(delta), delta = 4 d eps ||S||^2 <= 4 d eps tr(S)^2:
    // 2 d sqrt(4 d eps) tr(S) for FD.
    const int sizes[2] = {500, 8};
    for (int s = 0; s < 2; s++) {
        const int n = sizes[s];
        mg_real *x = malloc((size_t)n * d * sizeof *x);
        double z[16];
        for (int i = 0; i < n; i++) {
            normals(z, d, 22, (uint64_t)i);
            for (int k = 0; k < d; k++)
                x[(size_t)i * d + k] = (mg_real)(z[k] * (k + 1) + (k ? z[k - 1] : 0));
        }
        mg_gauss f = new_gauss(d);
        mg_error err;
        CU_ASSERT_FATAL(mg_gauss_fit(&f, x, n, d, &err) == 0);
        const double fs = frechet(&f, &f), t = trace(&f), tol_s = 2 * d * sqrt(4 * d * EPS) * t;
        printf("\n    FD(set, set), %d rows: %.3g = %.3g of tr S (tolerance %.3g)", n, fs, fs / t,
               tol_s);
        MG_ASSERT_CLOSE(fs, 0, tol_s);
        free(x);
        mg_gauss_free(&f);
    }
    printf("\n");
    free(q);
    mg_gauss_free(&g);
}

static void test_frechet_diagonal(void)
{
    // sum (sqrt(a_i) - sqrt(b_i))^2 + ||mu_a - mu_b||^2
    enum { d = 5 };
    const double av[d] = {1, 2, 3, 4, 0.5}, bv[d] = {4, 1, 0.25, 9, 2};
    const double ma[d] = {0, 1, 2, 3, 4}, mb[d] = {1, 1, -1, 3, 4.5};
    mg_gauss a = new_gauss(d), b = new_gauss(d);
    double want = 0, m_min = INFINITY;
    for (int i = 0; i < d; i++) {
        a.cov[i * d + i] = av[i];
        b.cov[i * d + i] = bv[i];
        a.mu[i] = ma[i];
        b.mu[i] = mb[i];
        want += (sqrt(av[i]) - sqrt(bv[i])) * (sqrt(av[i]) - sqrt(bv[i])) +
                (ma[i] - mb[i]) * (ma[i] - mb[i]);
        m_min = fmin(m_min, av[i] * bv[i]);
    }
    const double fd = frechet(&a, &b);
    const double tol = fd_tol(d, 4, 9, m_min, trace(&a) + trace(&b) + mean_dist2(&a, &b));
    printf("\n    FD %.17g, closed form %.17g, error %.3g (tolerance %.3g)\n", fd, want,
           fabs(fd - want), tol);
    MG_ASSERT_CLOSE(fd, want, tol);
    mg_gauss_free(&a);
    mg_gauss_free(&b);
}

/* S_a = Q diag(a) Q^T and S_b = Q diag(b) Q^T commute: (S_a S_b)^{1/2} = Q diag(sqrt(a b)) Q^T,
 * and FD is the diagonal closed form. Also FD(a, b) = FD(b, a). */
static void test_frechet_commuting(void)
{
    enum { d = 12 };
    double q[d * d], av[d], bv[d], want = 0, m_min = INFINITY, top_a = 0, top_b = 0;
    orthogonal(q, d, 31);
    mg_gauss a = new_gauss(d), b = new_gauss(d);
    normals(a.mu, d, 32, 0);
    normals(b.mu, d, 32, 1);
    for (int i = 0; i < d; i++) {
        av[i] = 0.5 + 0.25 * i;
        bv[i] = 3.0 - 0.2 * i;
        want += (sqrt(av[i]) - sqrt(bv[i])) * (sqrt(av[i]) - sqrt(bv[i]));
        m_min = fmin(m_min, av[i] * bv[i]);
        top_a = fmax(top_a, av[i]);
        top_b = fmax(top_b, bv[i]);
    }
    want += mean_dist2(&a, &b);
    spectral(a.cov, q, av, d);
    spectral(b.cov, q, bv, d);
    const double ab = frechet(&a, &b), ba = frechet(&b, &a);
    const double tol = fd_tol(d, top_a, top_b, m_min, trace(&a) + trace(&b) + mean_dist2(&a, &b));
    printf("\n    FD(a, b) %.17g, FD(b, a) %.17g, closed form %.17g: errors %.3g, %.3g, "
           "|FD(a, b) - FD(b, a)| %.3g (tolerance %.3g)\n",
           ab, ba, want, fabs(ab - want), fabs(ba - want), fabs(ab - ba), tol);
    MG_ASSERT_CLOSE(ab, want, tol);
    MG_ASSERT_CLOSE(ba, want, tol);
    MG_ASSERT_CLOSE(ab, ba, tol);
    mg_gauss_free(&a);
    mg_gauss_free(&b);
}

/* Two covariances that do not commute, in 2 dimensions: M's eigenvalues l1, l2 have
 * l1 + l2 = tr(S_a S_b) and l1 l2 = det(S_a) det(S_b), so
 * tr(M^{1/2}) = sqrt(l1) + sqrt(l2) = sqrt(tr(S_a S_b) + 2 sqrt(det(S_a) det(S_b))). */
static void test_frechet_2x2(void)
{
    mg_gauss a = new_gauss(2), b = new_gauss(2);
    const double sa[4] = {2, 0.5, 0.5, 1}, sb[4] = {1, -0.3, -0.3, 3};
    memcpy(a.cov, sa, sizeof sa);
    memcpy(b.cov, sb, sizeof sb);
    a.mu[0] = 1;
    b.mu[1] = -2;
    const double tr_ab = sa[0] * sb[0] + 2 * sa[1] * sb[1] + sa[3] * sb[3];
    const double det = (sa[0] * sa[3] - sa[1] * sa[1]) * (sb[0] * sb[3] - sb[1] * sb[1]);
    const double want = 1 + 4 + (sa[0] + sa[3]) + (sb[0] + sb[3]) - 2 * sqrt(tr_ab + 2 * sqrt(det));
    const double m_min = tr_ab / 2 - sqrt(tr_ab * tr_ab / 4 - det);
    const double ab = frechet(&a, &b), ba = frechet(&b, &a);
    const double tol = fd_tol(2, 3, 3.1, m_min, 5 + 3 + 4);
    printf("\n    FD %.17g, closed form %.17g, errors %.3g and %.3g swapped (tolerance %.3g)\n",
           ab, want, fabs(ab - want), fabs(ba - want), tol);
    MG_ASSERT_CLOSE(ab, want, tol);
    MG_ASSERT_CLOSE(ba, want, tol);
    mg_gauss_free(&a);
    mg_gauss_free(&b);
}

/* Random covariances I + G G^T / d (eigenvalues >= 1, so m_min >= 1, and <= tr): FD is symmetric
 * and unchanged when both Gaussians turn by one orthogonal Q. */
static void test_frechet_symmetry_invariance(void)
{
    enum { d = 10 };
    mg_gauss g[2] = {new_gauss(d), new_gauss(d)}, r[2] = {new_gauss(d), new_gauss(d)};
    double gm[d * d], q[d * d];
    orthogonal(q, d, 41);
    for (int s = 0; s < 2; s++) {
        normals(gm, d * d, 42 + s, 0);
        normals(g[s].mu, d, 44 + s, 0);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double v = i == j;
                for (int k = 0; k < d; k++)
                    v += gm[i * d + k] * gm[j * d + k] / d;
                g[s].cov[i * d + j] = v;
            }
        for (int i = 0; i < d; i++) { // r = Q g Q^T, Q mu
            r[s].mu[i] = 0;
            for (int k = 0; k < d; k++)
                r[s].mu[i] += q[i * d + k] * g[s].mu[k];
            for (int j = i; j < d; j++) {
                double v = 0;
                for (int k = 0; k < d; k++)
                    for (int m = 0; m < d; m++)
                        v += q[i * d + k] * g[s].cov[k * d + m] * q[j * d + m];
                r[s].cov[i * d + j] = r[s].cov[j * d + i] = v;
            }
        }
    }
    const double ab = frechet(&g[0], &g[1]), ba = frechet(&g[1], &g[0]);
    const double turned = frechet(&r[0], &r[1]);
    const double ta = trace(&g[0]), tb = trace(&g[1]);
    const double tol = fd_tol(d, ta, tb, 1, ta + tb + mean_dist2(&g[0], &g[1]));
    printf("\n    FD %.17g: swapped %.3g off, turned %.3g off (tolerance %.3g)\n", ab,
           fabs(ba - ab), fabs(turned - ab), tol);
    MG_ASSERT_CLOSE(ba, ab, tol);
    MG_ASSERT_CLOSE(turned, ab, tol);
    for (int s = 0; s < 2; s++) {
        mg_gauss_free(&g[s]);
        mg_gauss_free(&r[s]);
    }
}

/* n samples of each of two known Gaussians in 6 dimensions (commuting covariances: the
 * population FD is the closed form), fitted and compared; two checks.
 *
 * Always true: sqrt(FD) is the 2-Wasserstein distance W between the Gaussians, a metric, so
 * |W(fit_a, fit_b) - W(a, b)| <= W(fit_a, a) + W(fit_b, b), and each side is bounded through
 * the Bures form of FD's covariance term and the square-root perturbation bound
 * ||A^{1/2} - B^{1/2}||_F <= ||A - B||_F / sqrt(lambda_min(B)):
 *   W(fit, pop)^2 <= ||mu_fit - mu||^2 + ||S_fit - S||_F^2 / lambda_min(S).
 *
 * Statistical: to first order (delta method) FD_fit - FD = 2 D.(e_a - e_b) + <I - T_a, E_a> +
 * <I - T_b, E_b>, with D = mu_a - mu_b, e the errors of the means (covariance S / n), E those
 * of the covariances, T_a = S_a^{-1/2} M^{1/2} S_a^{-1/2} the transport map (diag(sqrt(b / a))
 * in the common eigenbasis), and Var <G, E> = 2 tr(G S G S) / (n - 1) for Gaussian data. So
 *   Var FD_fit = 4 D^T (S_a + S_b) D / n + 2 sum_i ((a_i - sqrt(a_i b_i))^2
 *                + (b_i - sqrt(a_i b_i))^2) / (n - 1),
 * the four parts independent. The tolerance is 4 sd (two-sided 6e-5 for a normal) plus the
 * estimator's bias, O(1/n): (tr S_a + tr S_b) / n exactly from the means, about as much again
 * from the concavity of tr M^{1/2}; allowed as 4 (tr S_a + tr S_b) / n. Over 400 seeds at
 * n = 100, 1000 and 10000 these populations gave a bias of 2.4 (tr S_a + tr S_b) / n and a spread
 * within 2.5% of the formula's sd. */
static void test_frechet_samples(void)
{
    enum { d = 6 };
    double q[d * d], la[d] = {1, 2, 0.5, 1.5, 1, 3}, lb[d] = {2, 0.5, 0.5, 1, 4, 1}, z[d];
    const double mua[d] = {0, 0, 0, 0, 0, 0}, mub[d] = {0.5, -0.5, 1, 0, 0.25, 0};
    orthogonal(q, d, 51);
    mg_gauss pop[2] = {new_gauss(d), new_gauss(d)};
    spectral(pop[0].cov, q, la, d);
    spectral(pop[1].cov, q, lb, d);
    memcpy(pop[0].mu, mua, sizeof mua);
    memcpy(pop[1].mu, mub, sizeof mub);
    double want = mean_dist2(&pop[0], &pop[1]), cov_var = 0, mean_var = 0;
    for (int i = 0; i < d; i++) {
        const double ab = sqrt(la[i] * lb[i]);
        want += (sqrt(la[i]) - sqrt(lb[i])) * (sqrt(la[i]) - sqrt(lb[i]));
        cov_var += 2 * ((la[i] - ab) * (la[i] - ab) + (lb[i] - ab) * (lb[i] - ab));
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            mean_var += 4 * (mua[i] - mub[i]) * (pop[0].cov[i * d + j] + pop[1].cov[i * d + j]) *
                        (mua[j] - mub[j]);
    const double traces = trace(&pop[0]) + trace(&pop[1]);
    const double *lam[2] = {la, lb};
    const int sizes[3] = {1000, 10000, 100000};
    printf("\n    population FD %.6f", want);
    for (int c = 0; c < 3; c++) {
        const int n = sizes[c];
        mg_gauss fit[2] = {new_gauss(d), new_gauss(d)};
        double e[2];
        mg_real *x = malloc((size_t)n * d * sizeof *x);
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < n; i++) { // x = mu + Q diag(sqrt(l)) z
                normals(z, d, 52 + s, (uint64_t)i);
                for (int j = 0; j < d; j++) {
                    double v = pop[s].mu[j];
                    for (int k = 0; k < d; k++)
                        v += q[j * d + k] * sqrt(lam[s][k]) * z[k];
                    x[(size_t)i * d + j] = (mg_real)v;
                }
            }
            mg_error err;
            CU_ASSERT_FATAL(mg_gauss_fit(&fit[s], x, n, d, &err) == 0);
            double lmin = INFINITY, dcov2 = 0;
            for (int k = 0; k < d; k++)
                lmin = fmin(lmin, lam[s][k]);
            for (int j = 0; j < d * d; j++)
                dcov2 += (fit[s].cov[j] - pop[s].cov[j]) * (fit[s].cov[j] - pop[s].cov[j]);
            e[s] = sqrt(mean_dist2(&fit[s], &pop[s]) + dcov2 / lmin);
        }
        const double fd = frechet(&fit[0], &fit[1]);
        const double w_err = fabs(sqrt(fmax(fd, 0)) - sqrt(want));
        const double sd = sqrt(mean_var / n + cov_var / (n - 1));
        const double tol = 4 * sd + 4 * traces / n;
        printf("\n    n = %6d: FD %.6f, error %.5f = %.2f sd (tolerance %.5f); |W - W_pop| "
               "%.5f <= %.5f", n, fd, fabs(fd - want), fabs(fd - want) / sd, tol, w_err,
               e[0] + e[1]);
        CU_ASSERT(w_err <= e[0] + e[1] + 1e-9); // 1e-9: rounding, ~1e-13 here
        MG_ASSERT_CLOSE(fd, want, tol);
        free(x);
        mg_gauss_free(&fit[0]);
        mg_gauss_free(&fit[1]);
    }
    printf("\n");
    mg_gauss_free(&pop[0]);
    mg_gauss_free(&pop[1]);
}

/* The score's own rounding: a mean of n logs, each good to a few eps relative to its size
 * (at most log c), then exp: relative error ~ 4 eps (1 + log c), times the score. */
static double score_tol(double score, int c)
{
    return 4 * EPS * (1 + log(c)) * score;
}

static void test_score_uniform_and_one_hot(void)
{
    enum { n = 20 };
    const int cs[2] = {3, 10};
    mg_error err;
    double mean, sd;
    for (int t = 0; t < 2; t++) {
        const int c = cs[t];
        mg_real p[n * 10];
        for (int i = 0; i < n * c; i++)
            p[i] = (mg_real)(1.0 / c);
        CU_ASSERT_FATAL(mg_classifier_score(&mean, &sd, p, n, c, 1, &err) == 0);
        MG_ASSERT_CLOSE(mean, 1, score_tol(1, c));
        CU_ASSERT_EQUAL(sd, 0);
        CU_ASSERT_FATAL(mg_classifier_score(&mean, &sd, p, n, c, 4, &err) == 0);
        MG_ASSERT_CLOSE(mean, 1, score_tol(1, c));
        MG_ASSERT_CLOSE(sd, 0, score_tol(1, c));
    }
    // One-hot over 5 balanced classes, each split of 5 rows balanced too: c everywhere.
    mg_real p[n * 5] = {0};
    for (int i = 0; i < n; i++)
        p[i * 5 + i % 5] = 1;
    CU_ASSERT_FATAL(mg_classifier_score(&mean, &sd, p, n, 5, 1, &err) == 0);
    printf("\n    one-hot over 5 classes: %.17g (error %.3g)\n", mean, fabs(mean - 5));
    MG_ASSERT_CLOSE(mean, 5, score_tol(5, 5));
    CU_ASSERT_FATAL(mg_classifier_score(&mean, &sd, p, n, 5, 4, &err) == 0);
    MG_ASSERT_CLOSE(mean, 5, score_tol(5, 5));
    MG_ASSERT_CLOSE(sd, 0, score_tol(5, 5));
}

static void test_score_hand(void)
{
    mg_error err;
    double mean, sd;
    // p(y) = (1/2, 1/2), KL of either row = 0.75 log 1.5 + 0.25 log 0.5:
    // exp(KL) = 1.5^0.75 0.5^0.25.
    const mg_real two[4] = {0.75f, 0.25f, 0.25f, 0.75f};
    CU_ASSERT_FATAL(mg_classifier_score(&mean, &sd, two, 2, 2, 1, &err) == 0);
    const double e_two = fabs(mean - pow(1.5, 0.75) * pow(0.5, 0.25));
    MG_ASSERT_CLOSE(mean, pow(1.5, 0.75) * pow(0.5, 0.25), score_tol(1.2, 2));
    // A class nobody predicts (0 log 0 = 0): p(y) = (3/4, 1/4, 0), KLs 0.5 log(4/3) and
    // log(4/3): exp of their mean = (4/3)^0.75.
    const mg_real gap[6] = {0.5f, 0.5f, 0, 1, 0, 0};
    CU_ASSERT_FATAL(mg_classifier_score(&mean, &sd, gap, 2, 3, 1, &err) == 0);
    const double e_gap = fabs(mean - pow(4.0 / 3, 0.75));
    MG_ASSERT_CLOSE(mean, pow(4.0 / 3, 0.75), score_tol(1.3, 3));
    // 5 rows in 2 splits: rows 0-1 and 2-4, as the reference code slices them. Rows 0-1 one-hot
    // on different classes score 2; rows 2-4, (1, 0) twice and (0, 1), have p(y) = (2/3, 1/3)
    // and KLs log 1.5, log 1.5, log 3: (1.5^2 3)^(1/3) = 6.75^(1/3). Cutting 2 + 2 rows and
    // leaving row 4 out would give 2 and 1 instead.
    const mg_real five[10] = {1, 0, 0, 1, 1, 0, 1, 0, 0, 1};
    const double second = cbrt(6.75);
    CU_ASSERT_FATAL(mg_classifier_score(&mean, &sd, five, 5, 2, 2, &err) == 0);
    MG_ASSERT_CLOSE(mean, (2 + second) / 2, score_tol(2, 2));
    MG_ASSERT_CLOSE(sd, (2 - second) / 2, score_tol(2, 2));
    printf("\n    errors %.3g, %.3g, %.3g (mean), %.3g (sd) against tolerances ~%.2g\n", e_two,
           e_gap, fabs(mean - (2 + second) / 2), fabs(sd - (2 - second) / 2), score_tol(2, 2));
    // Rows that sum to 1 within MG_PROB_SUM_TOL (a float softmax's rounding) are accepted.
    const mg_real near[2] = {0.5f, 0.50003f};
    CU_ASSERT(mg_classifier_score(&mean, &sd, near, 1, 2, 1, &err) == 0);
}

static void test_histogram_coverage(void)
{
    // Ties go to the lowest class; logits work as well as probabilities.
    const mg_real s[6 * 4] = {0.25f, 0.25f, 0.25f, 0.25f, 0,    0.5f, 0.5f, 0,
                              -3,    -1,    -1,    -2,    0,    0,    0,    1,
                              0.1f,  0.9f,  0,     0,     0.5f, 0.1f, 0.2f, 0.2f};
    const int want_pred[6] = {0, 1, 1, 3, 1, 0}, want_counts[4] = {2, 3, 0, 1};
    int pred[6], counts[4];
    mg_error err;
    CU_ASSERT_FATAL(mg_argmax_rows(pred, s, 6, 4, &err) == 0);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(pred[i], want_pred[i]);
    CU_ASSERT_FATAL(mg_class_histogram(counts, pred, 6, 4, &err) == 0);
    for (int j = 0; j < 4; j++)
        CU_ASSERT_EQUAL(counts[j], want_counts[j]);
    // Half the fair share of 6 rows in 4 classes is 0.75: classes 0, 1 and 3.
    CU_ASSERT_EQUAL(mg_mode_coverage(counts, 4), 3);
    // A collapsed generator: every row in class 2.
    const int collapsed[6] = {2, 2, 2, 2, 2, 2};
    CU_ASSERT_FATAL(mg_class_histogram(counts, collapsed, 6, 4, &err) == 0);
    CU_ASSERT_EQUAL(counts[2], 6);
    CU_ASSERT_EQUAL(mg_mode_coverage(counts, 4), 1);
    // Exactly half the fair share (8 rows, 4 classes: 1) counts; below it does not.
    const int edge[4] = {1, 7, 0, 0}, even[4] = {2, 2, 2, 2}, none[4] = {0, 0, 0, 0};
    CU_ASSERT_EQUAL(mg_mode_coverage(edge, 4), 2);
    CU_ASSERT_EQUAL(mg_mode_coverage(even, 4), 4);
    CU_ASSERT_EQUAL(mg_mode_coverage(none, 4), 0);
    const int below[3] = {1, 4, 2}; // 7 rows, 3 classes: 7/6 > 1
    CU_ASSERT_EQUAL(mg_mode_coverage(below, 3), 2);
}

static void test_accuracy(void)
{
    const int pred[5] = {0, 1, 2, 2, 1}, labels[5] = {0, 1, 1, 2, 0};
    double acc = -1;
    mg_error err;
    CU_ASSERT_FATAL(mg_accuracy(&acc, pred, labels, 5, 3, &err) == 0);
    CU_ASSERT_EQUAL(acc, 3.0 / 5); // one division, as the code: exact agreement
    CU_ASSERT_FATAL(mg_accuracy(&acc, pred, pred, 5, 3, &err) == 0);
    CU_ASSERT_EQUAL(acc, 1);
}

static void test_errors(void)
{
    mg_error err;
    double fd, mean, sd, acc;
    mg_gauss g2 = new_gauss(2), h2 = new_gauss(2), g3 = new_gauss(3);
    const mg_real x[6] = {1, 2, NAN, 4, 5, 6};

    // Gaussian fit
    MG_ASSERT_FAILS(mg_gauss_fit(&g2, x, 1, 2, &err), err, "gaussian fit",
                    "1 rows, a covariance needs at least 2");
    MG_ASSERT_FAILS(mg_gauss_fit(&g2, x, 3, 2, &err), err, "gaussian fit",
                    "row 1, column 0 is nan");
    MG_ASSERT_FAILS(mg_gauss_fit(&g2, x, 2, 3, &err), err, "gaussian fit",
                    "features of dimension 3 into a Gaussian of dimension 2");
    MG_ASSERT_FAILS(mg_gauss_fit(&g2, x, 3, 0, &err), err, "gaussian fit",
                    "dimension 0 is not positive");
    mg_gauss none;
    MG_ASSERT_FAILS(mg_gauss_alloc(&none, -1, &err), err, "gaussian fit",
                    "dimension -1 is not positive");

    // Frechet distance
    g2.cov[0] = g2.cov[3] = h2.cov[0] = h2.cov[3] = 1;
    MG_ASSERT_FAILS(mg_frechet(&fd, &g2, &g3, &err), err, "frechet distance",
                    "dimensions differ (2 and 3)");
    h2.mu[1] = NAN;
    MG_ASSERT_FAILS(mg_frechet(&fd, &g2, &h2, &err), err, "frechet distance", "mu_b[1] is nan");
    h2.mu[1] = 0;
    g2.cov[1] = INFINITY;
    MG_ASSERT_FAILS(mg_frechet(&fd, &g2, &h2, &err), err, "frechet distance",
                    "cov_a[0, 1] is inf");
    g2.cov[1] = 0.5;
    MG_ASSERT_FAILS(mg_frechet(&fd, &g2, &h2, &err), err, "frechet distance",
                    "cov_a is not symmetric: [0, 1] = 0.5, [1, 0] = 0");
    g2.cov[1] = 0;
    h2.cov[3] = -1;
    MG_ASSERT_FAILS(mg_frechet(&fd, &g2, &h2, &err), err, "frechet distance",
                    "cov_b is not positive semi-definite: eigenvalue -1, largest 1");
    h2.cov[3] = 1;
    CU_ASSERT(mg_frechet(&fd, &g2, &h2, &err) == 0);

    // Classifier score
    const mg_real short_row[4] = {0.5f, 0.25f, 0.5f, 0.5f};
    MG_ASSERT_FAILS(mg_classifier_score(&mean, &sd, short_row, 2, 2, 1, &err), err,
                    "classifier score", "row 0 sums to 0.75, not 1 (tolerance 0.0001)");
    const mg_real nan_p[4] = {0.5f, 0.5f, NAN, 1};
    MG_ASSERT_FAILS(mg_classifier_score(&mean, &sd, nan_p, 2, 2, 1, &err), err,
                    "classifier score", "p[1, 0] is nan");
    const mg_real neg[4] = {1.5f, -0.5f, 0.5f, 0.5f};
    MG_ASSERT_FAILS(mg_classifier_score(&mean, &sd, neg, 2, 2, 1, &err), err,
                    "classifier score", "p[0, 1] = -0.5 is negative");
    const mg_real ok[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    MG_ASSERT_FAILS(mg_classifier_score(&mean, &sd, ok, 2, 2, 3, &err), err, "classifier score",
                    "2 rows cannot make 3 splits");
    MG_ASSERT_FAILS(mg_classifier_score(&mean, &sd, ok, 2, 2, 0, &err), err, "classifier score",
                    "2 rows cannot make 0 splits");
    MG_ASSERT_FAILS(mg_classifier_score(&mean, &sd, ok, 2, 0, 1, &err), err, "classifier score",
                    "0 classes, need at least 1");

    // Argmax, histogram, accuracy
    int pred[2], counts[3];
    MG_ASSERT_FAILS(mg_argmax_rows(pred, nan_p, 2, 2, &err), err, "argmax",
                    "row 1, column 0 is nan");
    MG_ASSERT_FAILS(mg_argmax_rows(pred, ok, 2, 0, &err), err, "argmax",
                    "0 classes, need at least 1");
    const int bad_pred[2] = {0, 3}, neg_pred[2] = {-1, 0}, good[2] = {0, 2}, bad_label[2] = {3, 0};
    MG_ASSERT_FAILS(mg_class_histogram(counts, bad_pred, 2, 3, &err), err, "class histogram",
                    "row 1 predicts class 3, not one of 0..2");
    MG_ASSERT_FAILS(mg_class_histogram(counts, neg_pred, 2, 3, &err), err, "class histogram",
                    "row 0 predicts class -1, not one of 0..2");
    MG_ASSERT_FAILS(mg_accuracy(&acc, bad_pred, good, 2, 3, &err), err, "accuracy",
                    "row 1 predicts class 3, not one of 0..2");
    MG_ASSERT_FAILS(mg_accuracy(&acc, good, bad_label, 2, 3, &err), err, "accuracy",
                    "row 0 is labelled 3, not one of 0..2");
    MG_ASSERT_FAILS(mg_accuracy(&acc, good, good, 0, 3, &err), err, "accuracy",
                    "0 rows, need at least 1");
    mg_gauss_free(&g2);
    mg_gauss_free(&h2);
    mg_gauss_free(&g3);
}

int main(int argc, char **argv)
{
    static const mg_test tests[] = {
        {"fit_hand", test_fit_hand},
        {"fit_matches_reference", test_fit_matches_reference},
        {"frechet_self", test_frechet_self},
        {"frechet_diagonal", test_frechet_diagonal},
        {"frechet_commuting", test_frechet_commuting},
        {"frechet_2x2", test_frechet_2x2},
        {"frechet_symmetry_invariance", test_frechet_symmetry_invariance},
        {"frechet_samples", test_frechet_samples},
        {"score_uniform_and_one_hot", test_score_uniform_and_one_hot},
        {"score_hand", test_score_hand},
        {"histogram_coverage", test_histogram_coverage},
        {"accuracy", test_accuracy},
        {"errors", test_errors},
        {NULL, NULL},
    };
    return mg_test_main("quality", tests, argc, argv);
}
