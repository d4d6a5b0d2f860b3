/* Multilayer perceptrons: layer kernels, losses, and a network over one contiguous parameter
 * buffer. See include/mpigan/nn.h for the contract. */
#include "mpigan/nn.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "simd.h"

const char *const mg_act_names[] = {
    [MG_ACT_LINEAR] = "linear",   [MG_ACT_RELU] = "relu", [MG_ACT_LEAKY_RELU] = "leaky_relu",
    [MG_ACT_SIGMOID] = "sigmoid", [MG_ACT_TANH] = "tanh", [MG_ACT_MAXOUT] = "maxout",
    [MG_ACT_MAXOUT + 1] = NULL,
};

const char *mg_act_name(enum mg_act act)
{
    if ((int)act < 0 || act > MG_ACT_MAXOUT)
        return "unknown";
    return mg_act_names[act];
}

/* ---- kernels ---- */

/* The bias is added after the GEMM (beta 0), not copied into out before it (beta 1): rounded
 * the same way as the fused bias and activation of mg_net_forward, which this plain pair of
 * passes is the reference for. */
void mg_dense_forward(mg_real *out, const mg_real *inp, const mg_real *W, const mg_real *b,
                      int rows, int n_in, int n_out, mg_gemm_fn gemm)
{
    // out (rows, n_out), inp (rows, n_in), W (n_in, n_out), b (n_out)
    gemm(0, 0, rows, n_out, n_in, 1, inp, n_in, W, n_out, 0, out, n_out);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n_out; j++)
            out[(size_t)r * n_out + j] += b[j];
}

/* db(n) += column sums of dout(rows, n) (add 0: db = the sums, db not read), accumulated in double
 * a block of columns at a time so the reads stay row-major. */
MG_HOT static void colsum(mg_real *db, const mg_real *dout, int rows, int n, int add)
{
    enum { BLOCK = 64 };
    double acc[BLOCK];
    for (int j0 = 0; j0 < n; j0 += BLOCK) {
        const int nj = n - j0 < BLOCK ? n - j0 : BLOCK;
        for (int j = 0; j < nj; j++)
            acc[j] = 0;
        for (int r = 0; r < rows; r++) {
            const mg_real *d = dout + (size_t)r * n + j0;
            for (int j = 0; j < nj; j++)
                acc[j] += d[j];
        }
        for (int j = 0; j < nj; j++)
            db[j0 + j] = (mg_real)(add ? db[j0 + j] + acc[j] : acc[j]);
    }
}

void mg_dense_backward(mg_real *dinp, mg_real *dW, mg_real *db, const mg_real *dout,
                       const mg_real *inp, const mg_real *W, int rows, int n_in, int n_out,
                       int add, mg_gemm_fn gemm)
{
    // dinp (rows, n_in), dW (n_in, n_out), db (n_out), dout (rows, n_out), inp (rows, n_in)
    if (dW)
        gemm(1, 0, n_in, n_out, rows, 1, inp, n_in, dout, n_out, add ? 1 : 0, dW, n_out);
    if (db)
        colsum(db, dout, rows, n_out, add);
    if (dinp)
        gemm(0, 1, rows, n_in, n_out, 1, dout, n_out, W, n_out, 0, dinp, n_in);
}

/* Without overflow: exp only ever sees -|x|. */
static double sigmoid(double x)
{
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

#ifndef MG_REAL_DOUBLE
static inline uint32_t bits_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float float_of(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* e^-a for a >= 0 (or NaN) in float arithmetic, branch-free so that a loop of it vectorises
 * (libm's expf does not without -ffast-math). Cephes's expf: -a = n ln2 + r, |r| <= ln2 / 2, with
 * ln2 split in two (Cody-Waite) so r is exact, and a degree-7 polynomial for e^r. 2^n is applied
 * as two exact powers of two, 2^(n - n/2) 2^(n/2), each a normal float for n >= -160, so a
 * subnormal result is rounded once. a is clamped to 110 (e^-110 rounds to 0, as in libm) by an
 * integer compare of its bits, which also sends NaN there: a float compare would not if-convert
 * under -ftrapping-math. */
static inline float exp_neg(float a)
{
    const uint32_t ab = bits_of(a), lim = 0x42dc0000u; // 110.0f
    const float x = -float_of(ab < lim ? ab : lim);
    const float magic = 0x1.8p23f; // adding it rounds to an integer: |x log2 e| < 2^22
    const float t = (x * 1.44269504088896341f + magic) - magic;
    const int32_t n = (int32_t)t;
    const float r = (x - t * 0.693359375f) - t * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const int32_t n1 = n >> 1, n2 = n - n1; // both >= -80
    return p * float_of((uint32_t)(n1 + 127) << 23) * float_of((uint32_t)(n2 + 127) << 23);
}
#endif

MG_HOT void mg_act_forward(mg_real *out, const mg_real *pre, size_t n, enum mg_act act, double leak)
{
    switch (act) {
    case MG_ACT_LINEAR:
        if (out != pre)
            memmove(out, pre, n * sizeof *out);
        break;
    case MG_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            out[i] = pre[i] > 0 ? pre[i] : 0;
        break;
    case MG_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            out[i] = pre[i] > 0 ? pre[i] : (mg_real)(leak * pre[i]);
        break;
    case MG_ACT_SIGMOID:
#ifdef MG_REAL_DOUBLE
        for (size_t i = 0; i < n; i++) // the gradient checks' build: libm's exp in double
            out[i] = (mg_real)sigmoid(pre[i]);
#else
        /* With e = e^-|x| in float: 1 / (1 + e) when the sign bit of x is clear, e / (1 + e)
         * when set (-0 gives 1/2 either way), NaN passed through: within 2 ulps of the double
         * sigmoid rounded to float over [-120, 120] (1 at 0.75), and vectorised. The selects
         * are on bits, as in exp_neg. */
        for (size_t i = 0; i < n; i++) {
            const uint32_t xb = bits_of(pre[i]), ab = xb & 0x7fffffffu;
            const uint32_t neg = (uint32_t)((int32_t)xb >> 31); // all ones when negative
            const float e = exp_neg(float_of(ab));
            const float y = float_of((bits_of(1.0f) & ~neg) | (bits_of(e) & neg)) / (1.0f + e);
            const uint32_t nan = ab > 0x7f800000u ? ~0u : 0u;
            out[i] = float_of((bits_of(y) & ~nan) | (xb & nan));
        }
#endif
        break;
    case MG_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            out[i] = (mg_real)tanh(pre[i]);
        break;
    case MG_ACT_MAXOUT:
        assert(!"maxout goes through mg_maxout_forward");
        break;
    }
}

/* mg_act_backward in place (d = dpre = dout), as mg_net_backward calls it. A loop over dpre and
 * dout that may be equal vectorises only behind an overlap check, which equal pointers fail: the
 * ReLU layers of G ran scalar, with a branch per value. One pointer, restrict, vectorises. */
MG_HOT static void act_backward_inplace(mg_real *restrict d, const mg_real *restrict pre,
                                        const mg_real *restrict out, size_t n, enum mg_act act,
                                        double leak)
{
    switch (act) {
    case MG_ACT_LINEAR:
        break;
    case MG_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            d[i] = pre[i] > 0 ? d[i] : 0;
        break;
    case MG_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            d[i] = pre[i] > 0 ? d[i] : (mg_real)(leak * d[i]);
        break;
    case MG_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            d[i] = d[i] * out[i] * (1 - out[i]);
        break;
    case MG_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            d[i] = d[i] * (1 - out[i] * out[i]);
        break;
    case MG_ACT_MAXOUT:
        assert(!"maxout goes through mg_maxout_backward");
        break;
    }
}

/* Out of place (only the top layer's, once per backward pass) as a copy, then in place. */
void mg_act_backward(mg_real *dpre, const mg_real *dout, const mg_real *pre, const mg_real *out,
                     size_t n, enum mg_act act, double leak)
{
    if (dpre != dout)
        memmove(dpre, dout, n * sizeof *dpre);
    act_backward_inplace(dpre, pre, out, n, act, leak);
}

/* One pass per row: pre += b, then the activation of the sum, so pre (which backward and
 * mg_net_logits read) is written once while it is in cache. restrict: out and pre are separate
 * buffers here, and the loops vectorise without an overlap check. */
MG_HOT void mg_bias_act_forward(mg_real *restrict out, mg_real *restrict pre,
                                const mg_real *restrict b, int rows, int width, enum mg_act act,
                                double leak)
{
    // out (rows, width), pre (rows, width), b (width)
    for (int r = 0; r < rows; r++) {
        mg_real *p = pre + (size_t)r * width, *o = out + (size_t)r * width;
        switch (act) {
        case MG_ACT_LINEAR:
            for (int j = 0; j < width; j++)
                o[j] = p[j] = p[j] + b[j];
            break;
        case MG_ACT_RELU:
            for (int j = 0; j < width; j++) {
                const mg_real v = p[j] + b[j];
                p[j] = v;
                o[j] = v > 0 ? v : 0;
            }
            break;
        case MG_ACT_LEAKY_RELU:
            for (int j = 0; j < width; j++) {
                const mg_real v = p[j] + b[j];
                p[j] = v;
                o[j] = v > 0 ? v : (mg_real)(leak * v);
            }
            break;
        default: // sigmoid, tanh: the bias pass, then mg_act_forward's loop on the row in cache
            for (int j = 0; j < width; j++)
                p[j] += b[j];
            mg_act_forward(o, p, (size_t)width, act, leak);
            break;
        }
    }
}

MG_HOT void mg_bias_maxout_forward(mg_real *restrict out, int32_t *restrict argmax,
                                   mg_real *restrict pre, const mg_real *restrict b, int rows,
                                   int U, int P)
{
    // out (rows, U), argmax (rows, U), pre (rows, U * P), b (U * P)
    const size_t width = (size_t)U * P;
    for (int r = 0; r < rows; r++) {
        mg_real *p = pre + (size_t)r * width;
        for (size_t j = 0; j < width; j++)
            p[j] += b[j];
        mg_maxout_forward(out + (size_t)r * U, argmax + (size_t)r * U, p, 1, U, P);
    }
}

MG_HOT void mg_maxout_forward(mg_real *out, int32_t *argmax, const mg_real *pre, int rows, int U,
                              int P)
{
    // out (rows, U), argmax (rows, U), pre (rows, U * P)
    const size_t n = (size_t)rows * U;
    for (size_t i = 0; i < n; i++) {
        const mg_real *p = pre + i * P;
        int32_t best = 0;
        for (int32_t k = 1; k < P; k++) // strict: ties keep the lowest piece
            if (p[k] > p[best])
                best = k;
        out[i] = p[best];
        argmax[i] = best;
    }
}

MG_HOT void mg_maxout_backward(mg_real *dpre, const mg_real *dout, const int32_t *argmax, int rows,
                        int U, int P)
{
    // dpre (rows, U * P), dout (rows, U), argmax (rows, U)
    const size_t n = (size_t)rows * U;
    memset(dpre, 0, n * P * sizeof *dpre);
    for (size_t i = 0; i < n; i++)
        dpre[i * P + argmax[i]] = dout[i];
}

/* ---- losses ---- */

const char *const mg_gen_loss_names[] = {
    [MG_GEN_LOSS_NONSATURATING] = "nonsaturating",
    [MG_GEN_LOSS_MINIMAX] = "minimax",
    [MG_GEN_LOSS_MINIMAX + 1] = NULL,
};

double mg_softplus(double x)
{
    return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
}

/* sigmoid(l) - 1 is written -sigmoid(-l): the same number without cancellation for l << 0. */
double mg_loss_d(mg_real *dl_real, mg_real *dl_fake, const mg_real *l_real, const mg_real *l_fake,
                 int rows, double norm, double *sum_d_real, double *sum_d_fake)
{
    double loss = 0, s_real = 0, s_fake = 0;
    for (int i = 0; i < rows; i++) {
        const double lr = l_real[i], lf = l_fake[i];
        loss += mg_softplus(-lr) + mg_softplus(lf);
        const double d_real = sigmoid(lr), d_fake = sigmoid(lf);
        s_real += d_real;
        s_fake += d_fake;
        if (dl_real)
            dl_real[i] = (mg_real)(-sigmoid(-lr) / norm);
        if (dl_fake)
            dl_fake[i] = (mg_real)(d_fake / norm);
    }
    if (sum_d_real)
        *sum_d_real += s_real;
    if (sum_d_fake)
        *sum_d_fake += s_fake;
    return loss;
}

double mg_loss_g(mg_real *dl_fake, const mg_real *l_fake, int rows, enum mg_gen_loss loss,
                 double norm)
{
    double sum = 0;
    for (int i = 0; i < rows; i++) {
        const double l = l_fake[i];
        double dl;
        if (loss == MG_GEN_LOSS_MINIMAX) { // log(1 - D) = -softplus(l)
            sum -= mg_softplus(l);
            dl = -sigmoid(l);
        } else { // -log D = softplus(-l)
            sum += mg_softplus(-l);
            dl = -sigmoid(-l);
        }
        if (dl_fake)
            dl_fake[i] = (mg_real)(dl / norm);
    }
    return sum;
}

/* ---- network ---- */

static int layer_drops(const mg_layer *L)
{
    return L->spec.keep < 1;
}

/* Carves n bytes, 64-byte aligned, from the arena at *off; with base NULL it only measures. */
static void *carve(char *base, size_t *off, size_t n)
{
    *off = (*off + 63) & ~(size_t)63;
    void *p = base ? base + *off : NULL;
    *off += n;
    return p;
}

/* Lays every buffer out in the arena (base NULL: only the total size). */
static size_t layout(mg_net *net, char *base)
{
    size_t off = 0, max_in = 0, max_wide = 0;
    const size_t R = (size_t)net->max_rows;
    net->params = carve(base, &off, net->n_params * sizeof(mg_real));
    net->grads = carve(base, &off, (net->n_params + MG_STATS_SLOTS) * sizeof(mg_real));
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        const size_t in = (size_t)L->in, width = (size_t)L->width, units = (size_t)L->units;
        net->xdrop[l] = layer_drops(L) ? carve(base, &off, R * in * sizeof(mg_real)) : NULL;
        net->mask[l] = layer_drops(L) ? carve(base, &off, R * in * sizeof(mg_real)) : NULL;
        net->pre[l] = carve(base, &off, R * width * sizeof(mg_real));
        net->out[l] = carve(base, &off, R * units * sizeof(mg_real));
        net->argmax[l] = L->spec.type == MG_ACT_MAXOUT
                             ? carve(base, &off, R * units * sizeof(int32_t))
                             : NULL;
        net->x[l] = NULL;
        if (in > max_in)
            max_in = in;
        if (in > max_wide)
            max_wide = in;
        if (width > max_wide)
            max_wide = width;
    }
    net->dbuf[0] = carve(base, &off, R * max_wide * sizeof(mg_real));
    net->dbuf[1] = carve(base, &off, R * max_wide * sizeof(mg_real));
    net->u24 = carve(base, &off, max_in * sizeof(uint32_t));
    net->colnorm = carve(base, &off, max_wide * sizeof(double));
    return off;
}

int mg_net_init(mg_net *net, const mg_net_spec *spec, int in_dim, int max_rows, mg_error *err)
{
    memset(net, 0, sizeof *net);
    if (spec->n_layers < 1 || spec->n_layers > MG_MAX_LAYERS)
        return mg_fail(err, "network: %d layers, need 1 to %d", spec->n_layers, MG_MAX_LAYERS);
    if (in_dim < 1)
        return mg_fail(err, "network: input dimension %d, need at least 1", in_dim);
    if (max_rows < 1)
        return mg_fail(err, "network: max_rows %d, need at least 1", max_rows);

    int in = in_dim;
    size_t n_params = 0;
    for (int l = 0; l < spec->n_layers; l++) {
        const mg_layer_spec *s = &spec->layers[l];
        const int maxout = s->type == MG_ACT_MAXOUT;
        char at[MG_NAME_MAX + 32]; // "layer 1 (h1)", or "layer 1" when unnamed
        if (s->name[0])
            snprintf(at, sizeof at, "layer %d (%.*s)", l, MG_NAME_MAX - 1, s->name);
        else
            snprintf(at, sizeof at, "layer %d", l);
        if ((int)s->type < (int)MG_ACT_LINEAR || (int)s->type > (int)MG_ACT_MAXOUT)
            return mg_fail(err, "network: %s: unknown activation %d", at, (int)s->type);
        if (s->units < 1)
            return mg_fail(err, "network: %s: units %d, need at least 1", at, s->units);
        if (maxout && s->pieces < 1)
            return mg_fail(err, "network: %s: maxout pieces %d, need at least 1", at, s->pieces);
        if (!(s->keep > 0 && s->keep <= 1))
            return mg_fail(err, "network: %s: keep %g, need 0 < keep <= 1", at, s->keep);
        if (s->keep < 1 && !(s->input_scale > 0 && isfinite(s->input_scale)))
            return mg_fail(err, "network: %s: input_scale %g, need > 0 with dropout", at,
                           s->input_scale);
        const int pieces = maxout ? s->pieces : 1;
        /* GEMM sizes are ints: every matrix must index within INT_MAX. */
        const int64_t width = (int64_t)s->units * pieces;
        if (width > INT_MAX / max_rows || width * in > INT_MAX || (int64_t)in * max_rows > INT_MAX)
            return mg_fail(err, "network: %s: %d x %lld weights for %d rows are too large", at,
                           in, (long long)width, max_rows);
        mg_layer *L = &net->layer[l];
        L->spec = *s;
        L->spec.pieces = pieces;
        L->in = in;
        L->units = s->units;
        L->width = (int)width;
        L->w_off = n_params;
        n_params += (size_t)in * L->width;
        L->b_off = n_params;
        n_params += (size_t)L->width;
        in = s->units;
    }
    net->n_layers = spec->n_layers;
    net->in_dim = in_dim;
    net->out_dim = in;
    net->max_rows = max_rows;
    net->n_params = n_params;
    net->gemm = mg_gemm_blas;

    size_t bytes = layout(net, NULL);
    net->arena = mg_big_alloc(bytes);
    if (!net->arena)
        return mg_fail(err, "network: out of memory for %zu bytes of parameters and buffers",
                       bytes);
    net->arena_bytes = bytes;
    layout(net, net->arena);
    return 0;
}

void mg_net_constrain(mg_net *net)
{
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        const double max = L->spec.max_col_norm;
        if (max <= 0)
            continue;
        mg_real *W = net->params + L->w_off; // (in, width)
        const int in = L->in, width = L->width;
        double *norm = net->colnorm;         // (width)
        for (int j = 0; j < width; j++)
            norm[j] = 0;
        /* Row by row, so W is read in memory order. */
        for (int i = 0; i < in; i++)
            for (int j = 0; j < width; j++)
                norm[j] += (double)W[(size_t)i * width + j] * W[(size_t)i * width + j];
        int any = 0;
        for (int j = 0; j < width; j++) {
            double n = sqrt(norm[j]);
            norm[j] = n > max ? max / n : 1; /* now the factor for column j */
            any |= n > max;
        }
        if (!any)
            continue;
        for (int i = 0; i < in; i++)
            for (int j = 0; j < width; j++)
                W[(size_t)i * width + j] = (mg_real)(W[(size_t)i * width + j] * norm[j]);
    }
}

void mg_net_free(mg_net *net)
{
    mg_big_free(net->arena, net->arena_bytes);
    memset(net, 0, sizeof *net);
}

void mg_net_init_params(mg_net *net, uint64_t seed, uint32_t net_id)
{
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        const mg_rng_key key = {seed, mg_rng_stream(MG_STREAM_INIT, net_id), (uint64_t)l};
        mg_rng_uniform(net->params + L->w_off, (size_t)L->in * L->width, -L->spec.irange,
                       L->spec.irange, &key, 0);
        memset(net->params + L->b_off, 0, (size_t)L->width * sizeof(mg_real));
    }
}

mg_real *mg_net_weights(const mg_net *net, int l)
{
    return net->params + net->layer[l].w_off;
}

mg_real *mg_net_bias(const mg_net *net, int l)
{
    return net->params + net->layer[l].b_off;
}

/* x[l] for layer l: the input itself, or a copy with row r's units dropped by the mask drawn
 * from (key with stream + l, row_id[r]), so a row's mask never depends on where the row sits. */
/* One row of dropout: m = scale where u < below, else 0; xd = x m. */
MG_HOT static void mask_row(mg_real *restrict m, mg_real *restrict xd, const mg_real *restrict x,
                            const uint32_t *restrict u, uint32_t below, mg_real scale, int n)
{
    for (int i = 0; i < n; i++) {
        m[i] = u[i] < below ? scale : 0;
        xd[i] = x[i] * m[i];
    }
}

/* d *= m, the mask's gradient. */
MG_HOT static void mask_grad(mg_real *restrict d, const mg_real *restrict m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] *= m[i];
}

static const mg_real *dropout_input(mg_net *net, int l, const mg_real *x, int rows,
                                    const mg_dropout *drop)
{
    const mg_layer *L = &net->layer[l];
    if (!drop || !layer_drops(L))
        return x;
    const int in = L->in;
    /* A unit u = k 2^-24 is kept when u < keep, that is when the integer k < keep 2^24, that is
     * when k < ceil(keep 2^24) (keep 2^24 is exact): the same masks as comparing doubles. */
    const uint32_t below = (uint32_t)ceil(L->spec.keep * 0x1p24);
    const mg_real scale = (mg_real)L->spec.input_scale;
    mg_rng_key k = drop->key;
    k.stream = drop->key.stream + (uint64_t)l;
    for (int r = 0; r < rows; r++) {
        mg_rng_u24(net->u24, (size_t)in, &k, drop->row_id[r]);
        mask_row(net->mask[l] + (size_t)r * in, net->xdrop[l] + (size_t)r * in,
                 x + (size_t)r * in, net->u24, below, scale, in);
    }
    return net->xdrop[l];
}

const mg_real *mg_net_forward(mg_net *net, const mg_real *inp, int rows, const mg_dropout *drop)
{
    assert(rows >= 0 && rows <= net->max_rows);
    const mg_real *x = inp; // (rows, in)
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        net->x[l] = dropout_input(net, l, x, rows, drop);
        /* pre = x W with beta 0, the bias added in the activation's pass (mg_dense_forward and
         * the activation kernels, in two passes, are its reference). */
        net->gemm(0, 0, rows, L->width, L->in, 1, net->x[l], L->in, mg_net_weights(net, l),
                  L->width, 0, net->pre[l], L->width);
        if (L->spec.type == MG_ACT_MAXOUT)
            mg_bias_maxout_forward(net->out[l], net->argmax[l], net->pre[l], mg_net_bias(net, l),
                                   rows, L->units, L->spec.pieces);
        else
            mg_bias_act_forward(net->out[l], net->pre[l], mg_net_bias(net, l), rows, L->width,
                                L->spec.type, L->spec.leak);
        x = net->out[l];
        if (net->progress)
            net->progress(net->progress_arg);
    }
    net->dropped = drop != NULL;
    return x;
}

const mg_real *mg_net_logits(const mg_net *net)
{
    return net->pre[net->n_layers - 1];
}

/* dpre(rows, width) of layer l from dout(rows, units), over rows [row0, row0 + rows). Elementwise
 * activations work in place (dpre == dout); maxout needs a separate dpre. */
static void layer_act_backward(const mg_net *net, int l, mg_real *dpre, const mg_real *dout,
                               int row0, int rows)
{
    const mg_layer *L = &net->layer[l];
    if (L->spec.type == MG_ACT_MAXOUT) {
        mg_maxout_backward(dpre, dout, net->argmax[l] + (size_t)row0 * L->units, rows, L->units,
                           L->spec.pieces);
    } else {
        const size_t off = (size_t)row0 * L->width;
        mg_act_backward(dpre, dout, net->pre[l] + off, net->out[l] + off,
                        (size_t)rows * L->width, L->spec.type, L->spec.leak);
    }
}

void mg_net_backward(mg_net *net, mg_real *dinp, const mg_real *dout, int row0, int rows,
                     int flags)
{
    assert(row0 >= 0 && rows >= 0 && row0 + rows <= net->max_rows);
    const int weights = !(flags & MG_BACKWARD_NO_WEIGHTS);
    const int add = !(flags & MG_BACKWARD_SET_GRADS);
    const int top = net->n_layers - 1;
    if (rows == 0 && weights && !add) // the gradient of no rows
        memset(net->grads, 0, net->n_params * sizeof *net->grads);
    if (rows == 0 || (!weights && !dinp))
        return;

    /* d: gradient of the current layer's pre-activation (rows, width); held in dbuf[held], or the
     * caller's dout (held = -1). dx, the input gradient, goes to the other buffer. */
    const mg_real *d = dout;
    int held = -1;
    if (!(flags & MG_BACKWARD_FROM_LOGITS)) {
        layer_act_backward(net, top, net->dbuf[0], dout, row0, rows);
        d = net->dbuf[0];
        held = 0;
    }
    for (int l = top; l >= 0; l--) {
        const mg_layer *L = &net->layer[l];
        const int xb = held == 0 ? 1 : 0;
        mg_real *dx = l > 0 ? net->dbuf[xb] : dinp; // (rows, in)
        mg_dense_backward(dx, weights ? net->grads + L->w_off : NULL,
                          weights ? net->grads + L->b_off : NULL, d,
                          net->x[l] + (size_t)row0 * L->in, mg_net_weights(net, l), rows, L->in,
                          L->width, add, net->gemm);
        if (!dx) // l == 0 without dinp
            break;
        if (net->dropped && layer_drops(L)) {
            mask_grad(dx, net->mask[l] + (size_t)row0 * L->in, (size_t)rows * L->in);
        }
        if (l == 0)
            break;
        if (net->layer[l - 1].spec.type == MG_ACT_MAXOUT) {
            mg_real *dpre = net->dbuf[1 - xb];
            layer_act_backward(net, l - 1, dpre, dx, row0, rows);
            d = dpre;
            held = 1 - xb;
        } else {
            layer_act_backward(net, l - 1, dx, dx, row0, rows);
            d = dx;
            held = xb;
        }
    }
}

void mg_net_bias_from_mean(mg_net *net, const double *mean)
{
    const int l = net->n_layers - 1;
    const mg_layer *L = &net->layer[l];
    mg_real *b = mg_net_bias(net, l); // (width); a maxout unit gives its mean to every piece
    for (int j = 0; j < L->width; j++) {
        double p = mean[j / L->spec.pieces];
        p = p < 1e-7 ? 1e-7 : p > 1 - 1e-7 ? 1 - 1e-7 : p;
        b[j] = (mg_real)log(p / (1 - p));
    }
}

uint32_t mg_net_checksum(const mg_net *net)
{
    const unsigned char *p = (const unsigned char *)net->params;
    size_t left = net->n_params * sizeof(mg_real);
    uLong crc = crc32(0L, Z_NULL, 0);
    while (left > 0) { /* crc32 takes a uInt length */
        uInt len = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, p, len);
        p += len;
        left -= len;
    }
    return (uint32_t)crc;
}
