/* Helpers the unit tests share, header-only so that the float tests and the double-precision
 * gradient checks (which link mpigan_core_f64) use the same ones. */
#ifndef MPIGAN_TEST_HELPERS_H
#define MPIGAN_TEST_HELPERS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/nn.h"
#include "mpigan/rng.h"

/* x (n) uniform in [lo, hi) from the library's own counter-based generator, keyed by (seed,
 * stream, row): fixed test data, independent of libc. */
static inline void mg_test_fill(mg_real *x, size_t n, double lo, double hi, uint64_t seed,
                                uint64_t stream, uint64_t row)
{
    const mg_rng_key key = {.seed = seed, .stream = stream, .step = 0};
    mg_rng_uniform(x, n, lo, hi, &key, row);
}

/* A layer spec as a configuration would give it: inverted dropout (input_scale 1 / keep). */
static inline mg_layer_spec mg_test_layer(const char *name, enum mg_act type, int units,
                                          int pieces, double irange, double keep, double leak)
{
    mg_layer_spec s = {.type = type, .units = units, .pieces = pieces, .irange = irange,
                       .keep = keep, .input_scale = 1 / keep, .leak = leak};
    snprintf(s.name, sizeof s.name, "%s", name ? name : "");
    return s;
}

/* A conv, maxout_conv or deconv layer spec with the configuration's defaults (tied biases, no
 * dropout, uniform weights in +-0.3); pieces and the pool are set by the caller for
 * maxout_conv. Square kernel, stride and padding. */
static inline mg_layer_spec mg_test_conv_layer(enum mg_op op, enum mg_act act, int channels,
                                               int kernel, int stride, int pad)
{
    mg_layer_spec s = {.op = op, .type = act, .units = channels, .pieces = 1,
                       .kernel = {kernel, kernel}, .stride = {stride, stride}, .pad = {pad, pad},
                       .tied_bias = 1, .bias = 1, .init = MG_INIT_UNIFORM, .irange = 0.3,
                       .std = 0.02, .keep = 1, .input_scale = 1, .leak = 0.2, .sync = 1,
                       .bn_momentum = 0.1, .bn_eps = 1e-5};
    return s;
}

/* A batch norm layer spec with the configuration's defaults, then `act`. */
static inline mg_layer_spec mg_test_bn_layer(enum mg_act act)
{
    mg_layer_spec s = {.op = MG_OP_BATCHNORM, .type = act, .pieces = 1, .init = MG_INIT_UNIFORM,
                       .std = 0.02, .keep = 1, .input_scale = 1, .leak = 0.2, .sync = 1,
                       .bn_momentum = 0.1, .bn_eps = 1e-5};
    return s;
}

/* mg_net_init_shape, or the test program ends with the reason. */
static inline void mg_test_net_shape(mg_net *net, const mg_net_spec *spec, int c, int h, int w,
                                     int max_rows, int max_groups)
{
    mg_error err = {{0}};
    if (mg_net_init_shape(net, spec, c, h, w, max_rows, max_groups, &err)) {
        fprintf(stderr, "mg_net_init_shape: %s\n", err.msg);
        exit(2);
    }
}

/* mg_net_init, or the test program ends with the reason: a test net that cannot be built is a
 * broken test. */
static inline void mg_test_net(mg_net *net, const mg_net_spec *spec, int in_dim, int max_rows)
{
    mg_error err = {{0}};
    if (mg_net_init(net, spec, in_dim, max_rows, &err)) {
        fprintf(stderr, "mg_net_init: %s\n", err.msg);
        exit(2);
    }
}

/* Every gradient and stats slot of net to 0. */
static inline void mg_test_zero_grads(mg_net *net)
{
    memset(net->grads, 0, (net->n_params + MG_STATS_SLOTS) * sizeof *net->grads);
}

static inline double mg_test_max_abs(const mg_real *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)x[i]));
    return m;
}

static inline double mg_test_max_diff(const mg_real *a, const mg_real *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* max |a - b| / max |a|: the difference relative to a's scale. */
static inline double mg_test_max_rel_diff(const mg_real *a, const mg_real *b, size_t n)
{
    return mg_test_max_diff(a, b, n) / mg_test_max_abs(a, n);
}

#endif
