/* The Parzen window estimate: the GEMM path against plain double loops, an analytic Gaussian
 * case it must converge to, the sigma grid, selection and the standard error. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/parzen.h"
#include "mpigan/rng.h"
#include "testlib.h"

static mg_real *alloc_reals(size_t n)
{
    mg_real *p = malloc(n * sizeof *p);
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

/* Image-like data, the hard case for ||x||^2 - 2 x.mu + ||mu||^2: n rows of dim pixels in [0, 1]
 * around 4 prototypes (norms ~ dim / 3), so that near rows are at a small distance. */
static mg_real *near_prototypes(int n, size_t dim, uint64_t stream)
{
    mg_real *proto = alloc_reals(4 * dim), *x = alloc_reals((size_t)n * dim), *noise = alloc_reals(dim);
    mg_rng_key key = {.seed = 7, .stream = 0};
    for (int p = 0; p < 4; p++)
        mg_rng_uniform(proto + (size_t)p * dim, dim, 0, 1, &key, (uint64_t)p);
    key.stream = stream;
    for (int i = 0; i < n; i++) {
        mg_rng_normal(noise, dim, &key, (uint64_t)i);
        for (size_t k = 0; k < dim; k++) {
            double v = proto[(size_t)(i % 4) * dim + k] + 0.08 * noise[k];
            x[(size_t)i * dim + k] = (mg_real)(v < 0 ? 0 : v > 1 ? 1 : v);
        }
    }
    free(proto);
    free(noise);
    return x;
}

static void test_gemm_matches_reference(void)
{
    const size_t dim = 784;
    const int n_mu = 600, n_x = 300; /* not multiples of the blocks */
    mg_real *mu = near_prototypes(n_mu, dim, 1), *x = near_prototypes(n_x, dim, 2);
    double sigmas[10];
    mg_parzen_grid(sigmas, 10, 0.1, 1.0);
    double *ll = malloc(sizeof(double) * n_x * 10), *ref = malloc(sizeof(double) * n_x * 10);
    mg_error err;
    CU_ASSERT_FATAL(mg_parzen_ll(ll, x, n_x, mu, n_mu, dim, sigmas, 10, &err) == 0);
    mg_parzen_ll_ref(ref, x, n_x, mu, n_mu, dim, sigmas, 10);
    double worst = 0, worst_mean = 0;
    for (int s = 0; s < 10; s++) {
        double mean = 0, mean_ref = 0;
        for (int i = 0; i < n_x; i++) {
            double d = fabs(ll[i * 10 + s] - ref[i * 10 + s]);
            worst = d > worst ? d : worst;
            mean += ll[i * 10 + s] / n_x;
            mean_ref += ref[i * 10 + s] / n_x;
        }
        worst_mean = fabs(mean - mean_ref) > worst_mean ? fabs(mean - mean_ref) : worst_mean;
    }
    printf("\n    largest difference from the double reference: %.3g nats per point, %.3g in "
           "the mean (ll at sigma 0.1 ~ %.0f)\n",
           worst, worst_mean, ref[0]);
    /* The bar is 1e-3 nats; with double sums the distances are good to ~1e-13 of their
     * ~500, times 1 / (2 sigma^2) = 50: 1e-6 leaves a wide margin and still catches float. */
    CU_ASSERT(worst < 1e-6);
    CU_ASSERT(worst_mean < 1e-6);
    free(ll);
    free(ref);
    free(mu);
    free(x);
}

/* Samples mu ~ N(0, s0^2 I) make the window's density tend to N(0, (s0^2 + sigma^2) I) as their
 * number grows: its exact log density on the same test points is the limit. */
static double analytic_error(int n_mu, const mg_real *x, int n_x, int dim, double s0, double sigma)
{
    mg_real *mu = alloc_reals((size_t)n_mu * dim);
    mg_rng_key key = {.seed = 11, .stream = 3};
    for (int j = 0; j < n_mu; j++) {
        mg_rng_normal(mu + (size_t)j * dim, (size_t)dim, &key, (uint64_t)j);
        for (int k = 0; k < dim; k++)
            mu[(size_t)j * dim + k] *= (mg_real)s0;
    }
    double *ll = malloc(sizeof(double) * n_x);
    mg_error err;
    CU_ASSERT_FATAL(mg_parzen_ll(ll, x, n_x, mu, n_mu, (size_t)dim, &sigma, 1, &err) == 0);
    const double v = s0 * s0 + sigma * sigma;
    double got = 0, want = 0;
    for (int i = 0; i < n_x; i++) {
        double r2 = 0;
        for (int k = 0; k < dim; k++)
            r2 += (double)x[(size_t)i * dim + k] * x[(size_t)i * dim + k];
        want += (-0.5 * dim * log(2 * M_PI * v) - r2 / (2 * v)) / n_x;
        got += ll[i] / n_x;
    }
    free(ll);
    free(mu);
    return fabs(got - want);
}

static void test_analytic_gaussian(void)
{
    const int dim = 3, n_x = 2000;
    const double s0 = 1.0, sigma = 0.3;
    mg_real *x = alloc_reals((size_t)n_x * dim);
    mg_rng_key key = {.seed = 11, .stream = 4};
    for (int i = 0; i < n_x; i++)
        mg_rng_normal(x + (size_t)i * dim, dim, &key, (uint64_t)i);
    const int counts[] = {30, 300, 3000, 30000};
    double e[4];
    for (int c = 0; c < 4; c++)
        e[c] = analytic_error(counts[c], x, n_x, dim, s0, sigma);
    printf("\n    |estimate - limit| with 30, 300, 3000, 30000 samples: %.4f %.4f %.4f %.4f nats\n",
           e[0], e[1], e[2], e[3]);
    /* Each tenfold more samples cuts the error (the window's variance ~ 1/n dominates). */
    CU_ASSERT(e[1] < e[0] && e[2] < e[1] && e[3] < e[2]);
    /* At 30,000 samples in 3 dimensions the finite-sample error is below 0.01 nats. */
    CU_ASSERT(e[3] < 0.01);
    free(x);
}

static void test_grid(void)
{
    double s[10];
    mg_parzen_grid(s, 10, 0.1, 1.0);
    /* numpy.logspace(-1, 0, 10) */
    const double want[10] = {0.1,        0.12915497, 0.16681005, 0.21544347, 0.27825594,
                             0.35938137, 0.46415888, 0.59948425, 0.77426368, 1.0};
    for (int i = 0; i < 10; i++)
        MG_ASSERT_CLOSE(s[i], want[i], 1e-8);
    double one;
    mg_parzen_grid(&one, 1, 0.2, 0.2);
    CU_ASSERT_EQUAL(one, 0.2);
}

static void test_select(void)
{
    /* 3 points x 4 sigmas; column means -2, 5, 4.9, NaN: column 1. */
    const double ll[12] = {-1, 4, 5, NAN, -3, 6, 4.7, 1, -2, 5, 5, 2};
    double mean[4];
    CU_ASSERT_EQUAL(mg_parzen_select(ll, 3, 4, mean), 1);
    MG_ASSERT_CLOSE(mean[0], -2, 1e-12);
    MG_ASSERT_CLOSE(mean[1], 5, 1e-12);
    MG_ASSERT_CLOSE(mean[2], 4.9, 1e-12);
    CU_ASSERT(isnan(mean[3]));
    /* Equal means: the first. */
    const double tie[4] = {1, 1, 3, 3};
    CU_ASSERT_EQUAL(mg_parzen_select(tie, 2, 2, NULL), 0);
    /* Nothing finite: -1. */
    const double none[2] = {NAN, NAN};
    CU_ASSERT_EQUAL(mg_parzen_select(none, 1, 2, NULL), -1);
}

static void test_mean_se(void)
{
    /* Column 1 holds 1, 2, 3, 6: mean 3, population sd sqrt(3.5), se sqrt(3.5) / 2. */
    const double ll[8] = {0, 1, 0, 2, 0, 3, 0, 6};
    double mean, se;
    mg_parzen_mean_se(ll, 4, 2, 1, &mean, &se);
    MG_ASSERT_CLOSE(mean, 3, 1e-12);
    MG_ASSERT_CLOSE(se, sqrt(3.5) / 2, 1e-12);
}

/* A sample on the test point itself: log p = log(1/n) - d log(sigma sqrt(2 pi)) plus the other
 * samples' terms, which here underflow: checks the constant terms. */
static void test_exact_value(void)
{
    const mg_real x[2] = {0.5f, 0.25f}, mu[4] = {0.5f, 0.25f, 100, 100};
    const double sigma = 0.1;
    double ll;
    mg_error err;
    CU_ASSERT_FATAL(mg_parzen_ll(&ll, x, 1, mu, 2, 2, &sigma, 1, &err) == 0);
    MG_ASSERT_CLOSE(ll, log(0.5) - 2 * log(sigma * sqrt(2 * M_PI)), 1e-12);
}

static void test_errors(void)
{
    const mg_real x[2] = {0, 0};
    double ll, bad = 0, ok = 0.5;
    mg_error err;
    CU_ASSERT(mg_parzen_ll(&ll, x, 1, x, 1, 2, &bad, 1, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "parzen: sigma 0 is not a positive number");
    CU_ASSERT(mg_parzen_ll(&ll, x, 1, x, 0, 2, &ok, 1, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg,
                           "parzen: nothing to estimate (1 points, 0 samples, 1 sigmas, dimension 2)");
    /* No points: nothing to do, not an error. */
    CU_ASSERT(mg_parzen_ll(&ll, x, 0, x, 1, 2, &ok, 1, &err) == 0);
}

int main(int argc, char **argv)
{
    static const mg_test tests[] = {
        {"gemm_matches_reference", test_gemm_matches_reference},
        {"analytic_gaussian", test_analytic_gaussian},
        {"grid", test_grid},
        {"select", test_select},
        {"mean_se", test_mean_se},
        {"exact_value", test_exact_value},
        {"errors", test_errors},
        {NULL, NULL},
    };
    return mg_test_main("parzen", tests, argc, argv);
}
