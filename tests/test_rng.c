/* Tests of the counter-based RNG: the library is wired right (Random123's own known answers),
 * every value sits where the definition in src/rng.c says, values do not depend on how many are
 * asked for, and the distributions are right to within a few standard errors. */
#include "testlib.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Random123/philox.h>

#include "mpigan/error.h"
#include "mpigan/rng.h"

#ifdef MG_REAL_DOUBLE
#define REAL_EPS DBL_EPSILON
#else
#define REAL_EPS FLT_EPSILON
#endif

/* Statistical tests use fixed keys, so they are deterministic; the tolerances of 5 standard
 * errors are what a wrong generator (wrong range, wrong variance, reused words) fails and a
 * right one passes with probability 1 - 6e-7 for any key one might pick instead. */
#define N_SIGMA 5.0

static const mg_rng_key KEY = {12345, ((uint64_t)MG_STREAM_NOISE << 32) | 3, 7};

static philox4x64_ctr_t raw_block(const mg_rng_key *key, uint64_t row, uint64_t block)
{
    philox4x64_ctr_t ctr = {{block, row, key->step, key->stream}};
    philox4x64_key_t k = {{key->seed, 0x6d706761ULL}};
    return philox4x64(ctr, k);
}

/* Random123's kat_vectors for philox4x64_10: counter and key all zeros, all ones, and the
 * digits of pi. If these fail, the header or the compiler's 128-bit multiply is broken. */
static void test_rng_kat(void)
{
    static const struct {
        uint64_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0},
         {0x16554d9eca36314cULL, 0xdb20fe9d672d0fdcULL, 0xd7e772cee186176bULL,
          0x7e68b68aec7ba23bULL}},
        {{~0ULL, ~0ULL, ~0ULL, ~0ULL}, {~0ULL, ~0ULL},
         {0x87b092c3013fe90bULL, 0x438c3c67be8d0224ULL, 0x9cc7d7c69cd777b6ULL,
          0xa09caebf594f0ba0ULL}},
        {{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL,
          0x082efa98ec4e6c89ULL},
         {0x452821e638d01377ULL, 0xbe5466cf34e90c6cULL},
         {0xa528f45403e61d95ULL, 0x38c72dbd566e9788ULL, 0xa5a1610e72fd18b5ULL,
          0x57bd43b5e52b7fe6ULL}},
    };
    for (size_t t = 0; t < sizeof kat / sizeof kat[0]; t++) {
        philox4x64_ctr_t c = {{kat[t].ctr[0], kat[t].ctr[1], kat[t].ctr[2], kat[t].ctr[3]}};
        philox4x64_key_t k = {{kat[t].key[0], kat[t].key[1]}};
        philox4x64_ctr_t r = philox4x64(c, k);
        for (int i = 0; i < 4; i++) {
            if (r.v[i] != kat[t].out[i])
                fprintf(stderr, "\n  KAT %zu word %d: got %016llx, want %016llx\n", t, i,
                        (unsigned long long)r.v[i], (unsigned long long)kat[t].out[i]);
            CU_ASSERT_EQUAL(r.v[i], kat[t].out[i]);
        }
    }
}

/* Each value is where the definition puts it, computed here from raw Philox words. */
static void test_rng_definition(void)
{
    CU_ASSERT_EQUAL(mg_rng_stream(MG_STREAM_NOISE, 5), (3ULL << 32) | 5);
    CU_ASSERT_EQUAL(mg_rng_stream(MG_STREAM_INIT, 0xffffffffu), (1ULL << 32) | 0xffffffffULL);
    CU_ASSERT_NOT_EQUAL(mg_rng_stream(MG_STREAM_DROPOUT, 0), mg_rng_stream(MG_STREAM_NOISE, 0));

    enum { N = 37 };
    const uint64_t row = 42;
    double unit[N];
    uint32_t u24[N];
    mg_real uni[N], nrm[N];
    mg_rng_unit(unit, N, &KEY, row);
    mg_rng_u24(u24, N, &KEY, row);
    mg_rng_uniform(uni, N, -0.5, 2.0, &KEY, row);
    mg_rng_normal(nrm, N, &KEY, row);
    for (size_t i = 0; i < N; i++) {
        philox4x64_ctr_t w = raw_block(&KEY, row, i / 8);
        uint32_t x = (uint32_t)(i % 2 ? w.v[(i % 8) / 2] >> 32 : w.v[(i % 8) / 2]);
        double u = (double)(x >> 8) / 16777216.0;
        CU_ASSERT_EQUAL(unit[i], u);
        CU_ASSERT_EQUAL(u24[i], x >> 8);
        /* Rounding lo + (hi - lo) u to mg_real is half an ulp; allow one, at the scale of hi. */
        MG_ASSERT_CLOSE(uni[i], -0.5 + 2.5 * u, REAL_EPS * 2.0);

        w = raw_block(&KEY, row, i / 4);
        size_t a = i % 4 < 2 ? 0 : 2;
        double u1 = ((double)(w.v[a] >> 11) + 1.0) / 9007199254740992.0;
        double u2 = (double)(w.v[a + 1] >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        double z = i % 2 ? r * sin(2.0 * 3.14159265358979323846 * u2)
                         : r * cos(2.0 * 3.14159265358979323846 * u2);
        /* The same double formula rounded once to mg_real; the library's 2 pi may differ from
         * this one in the last bit, so allow a few double ulps of the angle times r. */
        MG_ASSERT_CLOSE(nrm[i], z, REAL_EPS * fabs(z) + 1e-14 * (1.0 + r));
    }

    /* Fisher-Yates from raw words: step t = n-1-i draws word t % 4 of block t / 4 of row 0. */
    enum { P = 23 };
    uint32_t perm[P], want[P];
    mg_rng_permutation(perm, P, &KEY);
    for (uint32_t i = 0; i < P; i++)
        want[i] = i;
    for (uint32_t i = P - 1; i >= 1; i--) {
        uint64_t t = P - 1 - i;
        uint64_t x = raw_block(&KEY, 0, t / 4).v[t % 4];
        uint32_t j = (uint32_t)(((unsigned __int128)x * (i + 1)) >> 64);
        uint32_t tmp = want[i];
        want[i] = want[j];
        want[j] = tmp;
    }
    CU_ASSERT_EQUAL(memcmp(perm, want, sizeof perm), 0);
}

static void test_rng_determinism(void)
{
    enum { N = 1000 };
    double u1[N], u2[N];
    mg_real a1[N], a2[N], z1[N], z2[N];
    uint32_t p1[N], p2[N];
    mg_rng_key key = KEY; /* a copy: only the values matter, not the object's address */
    mg_rng_unit(u1, N, &KEY, 3);
    mg_rng_unit(u2, N, &key, 3);
    mg_rng_uniform(a1, N, -1, 1, &KEY, 3);
    mg_rng_uniform(a2, N, -1, 1, &key, 3);
    mg_rng_normal(z1, N, &KEY, 3);
    mg_rng_normal(z2, N, &key, 3);
    mg_rng_permutation(p1, N, &KEY);
    mg_rng_permutation(p2, N, &key);
    CU_ASSERT_EQUAL(memcmp(u1, u2, sizeof u1), 0);
    CU_ASSERT_EQUAL(memcmp(a1, a2, sizeof a1), 0);
    CU_ASSERT_EQUAL(memcmp(z1, z2, sizeof z1), 0);
    CU_ASSERT_EQUAL(memcmp(p1, p2, sizeof p1), 0);
}

/* The first n values of a row do not depend on n: every block boundary case (1..17) and a few
 * more against the first 1000. */
static void test_rng_prefix(void)
{
    enum { N = 1000 };
    double u_all[N], u[N];
    mg_real a_all[N], a[N], z_all[N], z[N];
    mg_rng_unit(u_all, N, &KEY, 9);
    mg_rng_uniform(a_all, N, 0, 3, &KEY, 9);
    mg_rng_normal(z_all, N, &KEY, 9);
    static const size_t ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 511, 999};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        size_t n = ns[t];
        /* A sentinel after the n values catches writes past the end. */
        u[n] = -7;
        a[n] = -7;
        z[n] = -7;
        mg_rng_unit(u, n, &KEY, 9);
        mg_rng_uniform(a, n, 0, 3, &KEY, 9);
        mg_rng_normal(z, n, &KEY, 9);
        CU_ASSERT_EQUAL(memcmp(u, u_all, n * sizeof u[0]), 0);
        CU_ASSERT_EQUAL(memcmp(a, a_all, n * sizeof a[0]), 0);
        CU_ASSERT_EQUAL(memcmp(z, z_all, n * sizeof z[0]), 0);
        CU_ASSERT_EQUAL(u[n], -7);
        CU_ASSERT_EQUAL(a[n], -7);
        CU_ASSERT_EQUAL(z[n], -7);
    }
}

/* Counts positions where two sequences agree; for independent 24-bit values the chance of any
 * agreement among 64 is 64 / 2^24 = 4e-6, for normals from 53-bit inputs nil. */
static int n_equal_unit(const double *a, const double *b, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += a[i] == b[i];
    return k;
}

static void test_rng_key_sensitivity(void)
{
    enum { N = 64 };
    double base[N], other[N];
    mg_real zb[N], zo[N];
    mg_rng_unit(base, N, &KEY, 5);
    mg_rng_normal(zb, N, &KEY, 5);

    mg_rng_key keys[4] = {KEY, KEY, KEY, KEY};
    keys[0].seed++;
    keys[1].stream = mg_rng_stream(MG_STREAM_NOISE, 4);
    keys[2].step++;
    keys[3].stream = mg_rng_stream(MG_STREAM_DROPOUT, 3); /* same sub, other kind */
    for (int k = 0; k < 4; k++) {
        mg_rng_unit(other, N, &keys[k], 5);
        CU_ASSERT_EQUAL(n_equal_unit(base, other, N), 0);
        mg_rng_normal(zo, N, &keys[k], 5);
        CU_ASSERT_NOT_EQUAL(memcmp(zb, zo, sizeof zb), 0);
    }
    /* Another row, and row 5 of step 0 vs row 0 of step 5: no aliasing between the counter
     * words. */
    mg_rng_unit(other, N, &KEY, 6);
    CU_ASSERT_EQUAL(n_equal_unit(base, other, N), 0);
    mg_rng_key k0 = KEY, k5 = KEY;
    k0.step = 0;
    k5.step = 5;
    mg_rng_unit(base, N, &k0, 5);
    mg_rng_unit(other, N, &k5, 0);
    CU_ASSERT_EQUAL(n_equal_unit(base, other, N), 0);

    uint32_t p[1000], q[1000];
    mg_rng_permutation(p, 1000, &KEY);
    mg_rng_permutation(q, 1000, &keys[0]);
    CU_ASSERT_NOT_EQUAL(memcmp(p, q, sizeof p), 0);
}

/* Every value in [lo, hi), and both ends approached: the chance that none of n values falls in
 * the bottom (or top) 20/n of the range is (1 - 20/n)^n = e^-20. */
static void check_range(double lo, double hi)
{
    enum { ROWS = 100, N = 10000 };
    mg_real *x = mg_xmalloc(N * sizeof *x);
    double mn = INFINITY, mx = -INFINITY;
    size_t outside = 0;
    for (uint64_t row = 0; row < ROWS; row++) {
        mg_rng_uniform(x, N, lo, hi, &KEY, row);
        for (size_t i = 0; i < N; i++) {
            double v = x[i];
            outside += !(v >= lo && v < hi);
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
    }
    double slack = 20.0 / ((double)ROWS * N) * (hi - lo);
    printf("\n    uniform [%g, %g): min %.9g, max %.9g, %zu outside ", lo, hi, mn, mx, outside);
    CU_ASSERT_EQUAL(outside, 0);
    CU_ASSERT(mn <= lo + slack);
    CU_ASSERT(mx >= hi - slack - REAL_EPS * fabs(hi));
    free(x);
}

static void test_rng_uniform_range(void)
{
    check_range(0, 1);
    check_range(-1, 1);
    check_range(-0.05, 0.05);
    /* Far from zero, where float rounding of lo + (hi - lo) u would reach hi without care. */
    check_range(100, 101);

    enum { N = 1000000 };
    double *u = mg_xmalloc(N * sizeof *u);
    mg_rng_unit(u, N, &KEY, 0);
    size_t outside = 0;
    for (size_t i = 0; i < N; i++)
        outside += !(u[i] >= 0 && u[i] < 1 && u[i] * 16777216.0 == floor(u[i] * 16777216.0));
    CU_ASSERT_EQUAL(outside, 0); /* in [0, 1) and on the 2^-24 grid */
    free(u);
}

/* Sample moments of 1000 rows of 1000 values. The standard error of the mean is sqrt(var / n);
 * that of the sample variance sqrt((mu4 - var^2) / n), mu4 the fourth central moment; that of
 * the sample kurtosis of a normal sqrt(24 / n). */
typedef struct {
    double mean, var, kurt, lag1, row_corr;
} moments;

static moments sample_moments(int normal)
{
    enum { ROWS = 1000, N = 1000 };
    static mg_real z[2][N];
    static double u[2][N];
    double s1 = 0, s2 = 0, s4 = 0, lag = 0, cross = 0, mean_guess = normal ? 0.0 : 0.5;
    for (uint64_t row = 0; row < ROWS; row++) {
        int c = row % 2;
        double *x = u[c];
        if (normal) {
            mg_rng_normal(z[c], N, &KEY, row);
            for (size_t i = 0; i < N; i++)
                x[i] = z[c][i];
        } else {
            mg_rng_unit(x, N, &KEY, row);
        }
        for (size_t i = 0; i < N; i++) {
            double d = x[i] - mean_guess;
            s1 += d;
            s2 += d * d;
            s4 += d * d * d * d;
            if (i > 0)
                lag += d * (x[i - 1] - mean_guess);
            if (row > 0)
                cross += d * (u[1 - c][i] - mean_guess);
        }
    }
    double n = (double)ROWS * N;
    moments m;
    m.mean = mean_guess + s1 / n;
    m.var = s2 / n - (s1 / n) * (s1 / n);
    m.kurt = (s4 / n) / (m.var * m.var);
    m.lag1 = lag / ((double)ROWS * (N - 1)) / m.var;
    m.row_corr = cross / ((double)(ROWS - 1) * N) / m.var;
    return m;
}

static void test_rng_moments(void)
{
    const double n = 1e6;
    /* Unit values are k 2^-24 for k uniform on 0..2^24-1: mean (1 - 2^-24) / 2, variance
     * (1 - 2^-48) / 12, fourth central moment ~ 1/80. */
    moments m = sample_moments(0);
    double var = (1.0 - 0x1p-48) / 12.0;
    double se_mean = sqrt(var / n), se_var = sqrt((1.0 / 80 - var * var) / n);
    double se_corr = 1.0 / sqrt(n);
    printf("\n    unit: mean %.6f (se %.1e), var %.6f (se %.1e), lag-1 corr %.2e, row corr %.2e "
           "(se %.1e) ",
           m.mean, se_mean, m.var, se_var, m.lag1, m.row_corr, se_corr);
    MG_ASSERT_CLOSE(m.mean, (1.0 - 0x1p-24) / 2, N_SIGMA * se_mean);
    MG_ASSERT_CLOSE(m.var, var, N_SIGMA * se_var);
    MG_ASSERT_CLOSE(m.lag1, 0.0, N_SIGMA * se_corr);
    MG_ASSERT_CLOSE(m.row_corr, 0.0, N_SIGMA * se_corr);

    /* Standard normal: mean 0, variance 1 (mu4 = 3, so se sqrt(2 / n)), kurtosis 3. */
    m = sample_moments(1);
    printf("\n    normal: mean %.5f, var %.5f, kurtosis %.4f, lag-1 corr %.2e, row corr %.2e "
           "(se %.1e, %.1e, %.1e, %.1e) ",
           m.mean, m.var, m.kurt, m.lag1, m.row_corr, 1 / sqrt(n), sqrt(2 / n), sqrt(24 / n),
           se_corr);
    MG_ASSERT_CLOSE(m.mean, 0.0, N_SIGMA / sqrt(n));
    MG_ASSERT_CLOSE(m.var, 1.0, N_SIGMA * sqrt(2 / n));
    MG_ASSERT_CLOSE(m.kurt, 3.0, N_SIGMA * sqrt(24 / n));
    MG_ASSERT_CLOSE(m.lag1, 0.0, N_SIGMA * se_corr);
    MG_ASSERT_CLOSE(m.row_corr, 0.0, N_SIGMA * se_corr);
}

/* Upper critical value of chi-square with k degrees of freedom at the normal quantile z
 * (Wilson-Hilferty; accurate to a fraction of a percent for k >= 10). */
static double chi2_critical(double k, double z)
{
    double a = 2.0 / (9.0 * k);
    double c = 1.0 - a + z * sqrt(a);
    return k * c * c * c;
}

static int is_bijection(const uint32_t *perm, uint32_t n)
{
    unsigned char *seen = mg_xcalloc(n ? n : 1, 1);
    int ok = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (perm[i] >= n || seen[perm[i]]) {
            ok = 0;
            break;
        }
        seen[perm[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_rng_permutation(void)
{
    static const uint32_t ns[] = {0, 1, 2, 3, 5, 1000, 60000};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        uint32_t n = ns[t];
        uint32_t *p = mg_xmalloc((n + 1) * sizeof *p), *q = mg_xmalloc((n + 1) * sizeof *q);
        p[n] = q[n] = 0xdeadbeef; /* sentinel */
        mg_rng_permutation(p, n, &KEY);
        CU_ASSERT(is_bijection(p, n));
        CU_ASSERT_EQUAL(p[n], 0xdeadbeef);
        mg_rng_permutation(q, n, &KEY);
        CU_ASSERT_EQUAL(memcmp(p, q, n * sizeof *p), 0);
        /* The next epoch (step) shuffles differently; n = 2 has a 1/2 chance to agree. */
        mg_rng_key next = KEY;
        next.step++;
        mg_rng_permutation(q, n, &next);
        CU_ASSERT(is_bijection(q, n));
        if (n >= 5)
            CU_ASSERT_NOT_EQUAL(memcmp(p, q, n * sizeof *p), 0);
        free(p);
        free(q);
    }
}

/* Over many epochs (steps), all 5! permutations of 5 are equally likely: a chi-square test on
 * 120 cells with 1000 expected in each, and the position of each element in 8 (64 cells, 49
 * degrees of freedom after the row and column sums). Critical values at z = 4.75, p ~ 1e-6. */
static void test_rng_permutation_chi2(void)
{
    enum { N5 = 120000, N8 = 80000 };
    static unsigned count5[3125];
    memset(count5, 0, sizeof count5);
    mg_rng_key key = {99, mg_rng_stream(MG_STREAM_PERMUTATION, 0), 0};
    uint32_t p[8];
    for (int s = 0; s < N5; s++) {
        key.step = (uint64_t)s;
        mg_rng_permutation(p, 5, &key);
        unsigned code = 0;
        for (int i = 0; i < 5; i++)
            code = code * 5 + p[i];
        count5[code]++;
    }
    double chi2 = 0;
    int cells = 0;
    const double e5 = N5 / 120.0;
    for (unsigned c = 0; c < 3125; c++) {
        /* Only codes of permutations (distinct digits) may be hit. */
        unsigned digits = 0, x = c;
        for (int i = 0; i < 5; i++, x /= 5)
            digits |= 1u << (x % 5);
        if (digits != 31u) {
            CU_ASSERT_EQUAL(count5[c], 0);
            continue;
        }
        cells++;
        chi2 += (count5[c] - e5) * (count5[c] - e5) / e5;
    }
    CU_ASSERT_EQUAL(cells, 120);
    double crit = chi2_critical(119, 4.75);
    printf("\n    permutations of 5: chi2 %.1f on 119 df (critical %.1f) ", chi2, crit);
    CU_ASSERT(chi2 < crit);

    static unsigned pos[8][8];
    memset(pos, 0, sizeof pos);
    for (int s = 0; s < N8; s++) {
        key.step = (uint64_t)s;
        mg_rng_permutation(p, 8, &key);
        for (int i = 0; i < 8; i++)
            pos[i][p[i]]++;
    }
    chi2 = 0;
    const double e8 = N8 / 8.0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++)
            chi2 += (pos[i][j] - e8) * (pos[i][j] - e8) / e8;
    crit = chi2_critical(49, 4.75);
    printf("\n    positions in 8: chi2 %.1f on 49 df (critical %.1f) ", chi2, crit);
    CU_ASSERT(chi2 < crit);
}

static const mg_test tests[] = {
    {"rng_kat", test_rng_kat},
    {"rng_definition", test_rng_definition},
    {"rng_determinism", test_rng_determinism},
    {"rng_prefix", test_rng_prefix},
    {"rng_key_sensitivity", test_rng_key_sensitivity},
    {"rng_uniform_range", test_rng_uniform_range},
    {"rng_moments", test_rng_moments},
    {"rng_permutation", test_rng_permutation},
    {"rng_permutation_chi2", test_rng_permutation_chi2},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("rng", tests, argc, argv);
}
