/* Counter-based random numbers: Random123's Philox-4x64-10, used as a pure function.
 *
 * One call philox4x64(counter, key) gives one block of four 64-bit words. Here
 *   key     = {seed, MG_RNG_KEY_TAG}
 *   counter = {block, row, step, stream}
 * so every number is addressed by (seed, stream, step, row, block, position in block) and nothing
 * is carried from call to call. The i-th value of a (key, row) never depends on how many values
 * are asked for: a rank that generates the first 5 numbers of a row sees the same 5 as a rank
 * that generates 1000. */
#include "mpigan/rng.h"

#include <math.h>

#include <Random123/philox.h>

/* Second key word: "mpga" in ASCII, so that our streams differ from those of any other program
 * that keys Philox with the same seed and zero. */
#define MG_RNG_KEY_TAG 0x6d706761ULL

#define MG_TWO_PI 6.283185307179586476925286766559

/* One block of four words at (key, row, block). */
static philox4x64_ctr_t rng_block(const mg_rng_key *key, uint64_t row, uint64_t block)
{
    philox4x64_ctr_t ctr = {{block, row, key->step, key->stream}};
    philox4x64_key_t k = {{key->seed, MG_RNG_KEY_TAG}};
    return philox4x64(ctr, k);
}

uint64_t mg_rng_stream(enum mg_stream_kind kind, uint32_t sub)
{
    return ((uint64_t)kind << 32) | sub;
}

/* The 8 unit values of block b of (key, row): value k is the 32-bit half k % 2 (low half first)
 * of word k / 2, and u = its top 24 bits * 2^-24, which float holds exactly. */
static void unit_block(double u[8], const mg_rng_key *key, uint64_t row, uint64_t b)
{
    philox4x64_ctr_t w = rng_block(key, row, b);
    for (int k = 0; k < 8; k++) {
        uint32_t x = (uint32_t)(w.v[k / 2] >> (32 * (k % 2)));
        u[k] = (double)(x >> 8) * 0x1p-24;
    }
}

/* The largest mg_real below r. */
static mg_real real_below(mg_real r)
{
#ifdef MG_REAL_DOUBLE
    return nextafter(r, -INFINITY);
#else
    return nextafterf(r, -INFINITY);
#endif
}

void mg_rng_unit(double *out, size_t n, const mg_rng_key *key, uint64_t row)
{
    double u[8];
    for (size_t b = 0; b * 8 < n; b++) {
        unit_block(u, key, row, b);
        for (size_t k = 0; k < 8 && b * 8 + k < n; k++)
            out[b * 8 + k] = u[k];
    }
}

void mg_rng_u24(uint32_t *out, size_t n, const mg_rng_key *key, uint64_t row)
{
    for (size_t b = 0; b * 8 < n; b++) {
        philox4x64_ctr_t w = rng_block(key, row, b);
        for (size_t k = 0; k < 8 && b * 8 + k < n; k++)
            out[b * 8 + k] = (uint32_t)(w.v[k / 2] >> (32 * (k % 2))) >> 8;
    }
}

void mg_rng_uniform(mg_real *out, size_t n, double lo, double hi, const mg_rng_key *key,
                    uint64_t row)
{
    double u[8];
    for (size_t b = 0; b * 8 < n; b++) {
        unit_block(u, key, row, b);
        for (size_t k = 0; k < 8 && b * 8 + k < n; k++) {
            mg_real r = (mg_real)(lo + (hi - lo) * u[k]);
            /* lo + (hi - lo) u < hi in double, but rounding to float can reach hi when |hi| is
             * large against hi - lo (lo = 100, hi = 101: 101 - 2^-24 rounds to 101). Such a
             * value steps down one ulp to keep [lo, hi); with lo = 0 or lo = -hi it never
             * happens. */
            if ((double)r >= hi && hi > lo)
                r = real_below(r);
            out[b * 8 + k] = r;
        }
    }
}

void mg_rng_normal(mg_real *out, size_t n, const mg_rng_key *key, uint64_t row)
{
    /* Block i / 4 gives values 4b..4b+3: words (w0, w1) make the pair 0, 1 and (w2, w3) the
     * pair 2, 3, each by Box-Muller. u1 is in (0, 1] so that log(u1) is finite. */
    for (size_t b = 0; b * 4 < n; b++) {
        philox4x64_ctr_t w = rng_block(key, row, b);
        size_t m = n - b * 4 < 4 ? n - b * 4 : 4;
        for (size_t k = 0; k < m; k += 2) {
            double u1 = (double)((w.v[k] >> 11) + 1) * 0x1p-53;
            double u2 = (double)(w.v[k + 1] >> 11) * 0x1p-53;
            double r = sqrt(-2.0 * log(u1));
            double t = MG_TWO_PI * u2;
            out[b * 4 + k] = (mg_real)(r * cos(t));
            if (k + 1 < m)
                out[b * 4 + k + 1] = (mg_real)(r * sin(t));
        }
    }
}

void mg_rng_permutation(uint32_t *perm, uint32_t n, const mg_rng_key *key)
{
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    if (n < 2)
        return;
    /* Step t = n-1-i uses word t % 4 of block t / 4 of row 0. j = floor(x (i+1) / 2^64) is
     * uniform on 0..i up to a bias of (i+1) / 2^64, far below anything a test can see. */
    philox4x64_ctr_t w = {{0, 0, 0, 0}};
    for (uint32_t i = n - 1; i >= 1; i--) {
        uint64_t t = (uint64_t)(n - 1 - i);
        if (t % 4 == 0)
            w = rng_block(key, 0, t / 4);
        uint64_t x = w.v[t % 4];
        uint64_t hi;
        mulhilo64(x, (uint64_t)i + 1, &hi); /* Random123's portable 64x64 -> 128 multiply */
        uint32_t j = (uint32_t)hi;
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

const char *const mg_prior_names[] = {
    [MG_PRIOR_UNIFORM] = "uniform",
    [MG_PRIOR_UNIFORM_SQRT3] = "uniform_sqrt3",
    [MG_PRIOR_NORMAL] = "normal",
    [MG_PRIOR_NORMAL + 1] = NULL,
};

void mg_rng_prior(mg_real *out, size_t n, enum mg_prior prior, const mg_rng_key *key,
                  uint64_t row)
{
    switch (prior) {
    case MG_PRIOR_UNIFORM:
        mg_rng_uniform(out, n, -1.0, 1.0, key, row);
        break;
    case MG_PRIOR_UNIFORM_SQRT3:
        mg_rng_uniform(out, n, -sqrt(3.0), sqrt(3.0), key, row);
        break;
    case MG_PRIOR_NORMAL:
        mg_rng_normal(out, n, key, row);
        break;
    }
}
