/* Counter-based random numbers (Random123 Philox-4x64-10).
 *
 * Nothing here has state: every number is a pure function of (seed, stream, step, row, position).
 * `row` is the *global* example index within a minibatch, so the noise and dropout masks of an
 * example do not depend on which rank computes it, and a run on 1, 2 or 4 ranks with the same
 * global batch draws the same numbers. Resuming a run needs no RNG state beyond the step. */
#ifndef MPIGAN_RNG_H
#define MPIGAN_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/real.h"

/* What a stream of numbers is for; combined with a sub-index by mg_rng_stream. */
enum mg_stream_kind {
    MG_STREAM_INIT = 1,     /* parameter initialisation; sub = network id */
    MG_STREAM_PERMUTATION,  /* data order; step = epoch */
    MG_STREAM_NOISE,        /* generator input; sub = phase within the step */
    MG_STREAM_DROPOUT,      /* dropout masks; sub = phase * MG_MAX_LAYERS + layer */
    MG_STREAM_LABELS,       /* a conditional generator's fake labels; sub = phase */
};

typedef struct {
    uint64_t seed;
    uint64_t stream;
    uint64_t step;
} mg_rng_key;

uint64_t mg_rng_stream(enum mg_stream_kind kind, uint32_t sub);

/* out[i] for i < n, the i-th number of (key, row): uniform in [lo, hi). Each value comes from
 * 24 random bits, exact in float. */
void mg_rng_uniform(mg_real *out, size_t n, double lo, double hi, const mg_rng_key *key,
                    uint64_t row);

/* Standard normal (Box-Muller on 53-bit uniforms). */
void mg_rng_normal(mg_real *out, size_t n, const mg_rng_key *key, uint64_t row);

/* Uniform in [0, 1) at 24-bit resolution, as double. */
void mg_rng_unit(double *out, size_t n, const mg_rng_key *key, uint64_t row);

/* The same numbers as integers: out[i] = 2^24 times mg_rng_unit's out[i], in [0, 2^24). Dropout
 * compares them with a threshold, the same test as unit < keep without a double per value. */
void mg_rng_u24(uint32_t *out, size_t n, const mg_rng_key *key, uint64_t row);

/* The distributions of G's noise. */
enum mg_prior {
    MG_PRIOR_UNIFORM,       /* uniform(-1, 1) */
    MG_PRIOR_UNIFORM_SQRT3, /* uniform(-sqrt 3, sqrt 3): unit variance */
    MG_PRIOR_NORMAL,        /* standard normal */
};
/* Their names, indexed by enum mg_prior and ended by NULL. */
extern const char *const mg_prior_names[];

/* out[i] for i < n from `prior`, the numbers of (key, row). */
void mg_rng_prior(mg_real *out, size_t n, enum mg_prior prior, const mg_rng_key *key,
                  uint64_t row);

/* A uniformly random permutation of 0..n-1 (Fisher-Yates). */
void mg_rng_permutation(uint32_t *perm, uint32_t n, const mg_rng_key *key);

#endif
