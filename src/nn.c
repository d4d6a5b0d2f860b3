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

/* x > 0 ? a : b, decided on the bits of x (0 < bits <= +Inf's: positive, not NaN), so that a loop
 * of it vectorises: a float compare selecting between float values is not if-converted under
 * -ftrapping-math, and GCC also sinks a product used in one arm only into a branch. */
static inline float select_pos(float x, float a, float b)
{
    const int32_t xb = (int32_t)bits_of(x);
    const uint32_t pos = (uint32_t)0 - (uint32_t)((xb > 0) & (xb <= 0x7f800000));
    return float_of((bits_of(a) & pos) | (bits_of(b) & ~pos));
}
#else
static inline double select_pos(double x, double a, double b)
{
    return x > 0 ? a : b;
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
        /* The product for every value, then select_pos: with the product under the condition
         * the loop ran scalar, a branch per value that the signs make unpredictable (about
         * 10 ns a value: D's first layer took 23 ms of a DCGAN step). */
        for (size_t i = 0; i < n; i++)
            out[i] = select_pos(pre[i], pre[i], (mg_real)(leak * pre[i]));
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
#ifdef MG_REAL_DOUBLE
        for (size_t i = 0; i < n; i++)
            out[i] = (mg_real)tanh(pre[i]);
#else
        /* libm's tanh in double took 10-14 ns a value, 4 ms of a DCGAN step for G's output on
         * 128 rows. Cephes's tanhf on |x|, then x's sign, branch-free: for |x| < 0.625 the
         * odd polynomial a + a z P(z), a = |x|, z = a^2; above, (1 - e) / (1 + e) with
         * e = e^-2a from exp_neg (no cancellation: e <= 0.29). Both are computed for every
         * value, on arguments clamped by their bits (to 0.625 and 55: no overflow, e^-110 is
         * 0), and selected by bits; NaN passed through. Within 2 ulps of the double tanh
         * rounded to float (test_nn: tanh_float). */
        for (size_t i = 0; i < n; i++) {
            const uint32_t xb = bits_of(pre[i]), ab = xb & 0x7fffffffu, sign = xb & ~ab;
            const uint32_t lo = 0x3f200000u, hi = 0x425c0000u; // 0.625f, 55.0f
            const float zs = float_of(ab < lo ? ab : lo), z2 = zs * zs; // on |x|
            float p = -5.70498872745e-3f;
            p = p * z2 + 2.06390887954e-2f;
            p = p * z2 - 5.37397155531e-2f;
            p = p * z2 + 1.33314422036e-1f;
            p = p * z2 - 3.33332819422e-1f;
            const float small = zs + zs * z2 * p;
            const float e = exp_neg(2.0f * float_of(ab < hi ? ab : hi));
            const float large = (1.0f - e) / (1.0f + e);
            const uint32_t use_small = ab < lo ? ~0u : 0u, nan = ab > 0x7f800000u ? ~0u : 0u;
            const uint32_t y = (bits_of(small) & use_small) | (bits_of(large) & ~use_small);
            out[i] = float_of(((y | sign) & ~nan) | (xb & nan)); // tanh(-0) = -0
        }
#endif
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
    case MG_ACT_LEAKY_RELU: // select_pos, as in mg_act_forward
        for (size_t i = 0; i < n; i++)
            d[i] = select_pos(pre[i], d[i], (mg_real)(leak * d[i]));
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
                o[j] = select_pos(v, v, (mg_real)(leak * v));
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

const char *const mg_op_names[] = {
    [MG_OP_DENSE] = "dense",   [MG_OP_CONV] = "conv",       [MG_OP_MAXOUT_CONV] = "maxout_conv",
    [MG_OP_DECONV] = "deconv", [MG_OP_RESHAPE] = "reshape", [MG_OP_BATCHNORM] = "batchnorm",
    [MG_OP_BATCHNORM + 1] = NULL,
};

const char *const mg_init_names[] = {
    [MG_INIT_UNIFORM] = "uniform", [MG_INIT_NORMAL] = "normal", [MG_INIT_NORMAL + 1] = NULL};

const char *mg_layer_type_name(const mg_layer_spec *spec)
{
    if (spec->op == MG_OP_DENSE)
        return mg_act_name(spec->type);
    if ((int)spec->op < 0 || spec->op > MG_OP_BATCHNORM)
        return "unknown";
    return mg_op_names[spec->op];
}

static int layer_drops(const mg_layer *L)
{
    return L->spec.keep < 1;
}

static int is_conv(const mg_layer *L)
{
    return L->spec.op == MG_OP_CONV || L->spec.op == MG_OP_DECONV ||
           L->spec.op == MG_OP_MAXOUT_CONV;
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
    size_t off = 0, max_in = 0, max_wide = 0, work = 0, max_c = 0;
    const size_t R = (size_t)net->max_rows, G = (size_t)net->max_groups;
    net->params = carve(base, &off, net->n_params * sizeof(mg_real));
    net->grads = carve(base, &off, (net->n_params + MG_STATS_SLOTS) * sizeof(mg_real));
    net->state = carve(base, &off, net->n_state * sizeof(mg_real));
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        const size_t in = (size_t)L->in, width = (size_t)L->width, units = (size_t)L->units;
        const enum mg_op op = L->spec.op;
        net->xdrop[l] = layer_drops(L) ? carve(base, &off, R * in * sizeof(mg_real)) : NULL;
        net->mask[l] = layer_drops(L) ? carve(base, &off, R * in * sizeof(mg_real)) : NULL;
        net->pre[l] = op == MG_OP_RESHAPE ? NULL : carve(base, &off, R * width * sizeof(mg_real));
        /* A linear conv, deconv or batch norm (DCGAN's convolutions before their batch norms)
         * outputs pre itself: no buffer, and no copy of it each pass (dense layers write both
         * in one fused pass, which needs them apart). */
        const int in_pre = (op == MG_OP_CONV || op == MG_OP_DECONV || op == MG_OP_BATCHNORM) &&
                           L->spec.type == MG_ACT_LINEAR;
        net->out[l] = op == MG_OP_RESHAPE ? NULL
                      : in_pre            ? net->pre[l]
                                          : carve(base, &off, R * units * sizeof(mg_real));
        net->mid[l] = op == MG_OP_MAXOUT_CONV
                          ? carve(base, &off, R * (size_t)L->mid * sizeof(mg_real))
                          : NULL;
        net->argmax[l] = L->spec.type == MG_ACT_MAXOUT
                             ? carve(base, &off,
                                     R * (op == MG_OP_MAXOUT_CONV ? (size_t)L->mid : units) *
                                         sizeof(int32_t))
                             : NULL;
        net->argpool[l] =
            op == MG_OP_MAXOUT_CONV ? carve(base, &off, R * units * sizeof(int32_t)) : NULL;
        const size_t C = op == MG_OP_BATCHNORM ? (size_t)L->out_c : 0;
        net->bn_stats[l] = C ? carve(base, &off, G * 2 * C * sizeof(double)) : NULL;
        net->bn_count[l] = C ? carve(base, &off, G * sizeof(double)) : NULL;
        net->x[l] = NULL;
        max_c = C > max_c ? C : max_c;
        if (is_conv(L)) {
            const size_t w = mg_conv_work_size(&L->conv, net->max_rows);
            work = w > work ? w : work;
            /* Winograd's transformed weights, kept while the weights stay the same. */
            if (L->conv.wino.m) {
                void *block = carve(base, &off, mg_wino_cache_bytes(&L->conv.wino));
                if (base)
                    mg_wino_cache_init(&net->layer[l].conv.wino, block);
            }
        }
        const size_t sizes[] = {in, width, units, (size_t)L->mid};
        for (int i = 0; i < 4; i++)
            max_wide = sizes[i] > max_wide ? sizes[i] : max_wide;
        max_in = in > max_in ? in : max_in;
    }
    net->dbuf[0] = carve(base, &off, R * max_wide * sizeof(mg_real));
    net->dbuf[1] = carve(base, &off, R * max_wide * sizeof(mg_real));
    net->work = work ? carve(base, &off, work * sizeof(mg_real)) : NULL;
    net->bn_sums = max_c ? carve(base, &off, G * (2 * max_c + 1) * sizeof(double)) : NULL;
    net->u24 = carve(base, &off, max_in * sizeof(uint32_t));
    net->colnorm = carve(base, &off, max_wide * sizeof(double));
    return off;
}

/* "layer 1 (h1)", or "layer 1" when unnamed: how messages name a layer. */
static void layer_label(char *at, size_t n, int l, const mg_layer_spec *s)
{
    if (s->name[0])
        snprintf(at, n, "layer %d (%.*s)", l, MG_NAME_MAX - 1, s->name);
    else
        snprintf(at, n, "layer %d", l);
}

/* The shape of layer L from its spec and its input (in_c, in_h, in_w), set in L; or -1 with one
 * line naming the layer (`at`) and the shapes. Checks every size the kernels index with int. */
static int layer_shape(mg_layer *L, const char *at, int max_rows, mg_error *err)
{
    const mg_layer_spec *s = &L->spec;
    const int64_t in = (int64_t)L->in_c * L->in_h * L->in_w;
    const int pieces = s->type == MG_ACT_MAXOUT ? s->pieces : 1;
    int64_t width = 0, units = 0;
    L->w_n = L->b_n = 0;
    switch (s->op) {
    case MG_OP_DENSE:
        width = (int64_t)s->units * pieces;
        units = s->units;
        L->out_c = s->units, L->out_h = 1, L->out_w = 1;
        L->w_n = (size_t)in * (size_t)width;
        L->b_n = (size_t)width;
        break;
    case MG_OP_CONV:
    case MG_OP_MAXOUT_CONV:
    case MG_OP_DECONV: {
        const int deconv = s->op == MG_OP_DECONV;
        mg_conv_shape *c = &L->conv;
        *c = (mg_conv_shape){.IC = L->in_c, .H = L->in_h, .W = L->in_w,
                             .OC = s->units * pieces, .KH = s->kernel[0], .KW = s->kernel[1],
                             .SH = s->stride[0], .SW = s->stride[1], .PH = s->pad[0],
                             .PW = s->pad[1], .OPH = deconv ? s->out_pad[0] : 0,
                             .OPW = deconv ? s->out_pad[1] : 0, .untied = !s->tied_bias,
                             .algorithm = (enum mg_conv_algorithm)s->algorithm};
        /* The kernels' messages name `where`: the layer and its input's shape. */
        char where[MG_NAME_MAX + 96];
        snprintf(where, sizeof where, "%s, input (%d, %d, %d)", at, L->in_c, L->in_h, L->in_w);
        mg_error why;
        if ((deconv ? mg_deconv_shape_init : mg_conv_shape_init)(c, where, &why))
            return mg_fail(err, "network: %s", why.msg);
        c->wino.keeps_u = c->wino.m > 0; // layout() gives it a cache of its own
        width = (int64_t)c->OC * c->OH * c->OW;
        L->out_c = s->units, L->out_h = c->OH, L->out_w = c->OW;
        L->w_n = mg_conv_weight_size(c);
        L->b_n = s->bias ? mg_conv_bias_size(c) : 0;
        if (s->op == MG_OP_MAXOUT_CONV) {
            L->mid = s->units * c->OH * c->OW;
            mg_pool_shape *p = &L->pool;
            *p = (mg_pool_shape){.C = s->units, .H = c->OH, .W = c->OW, .KH = s->pool[0],
                                 .KW = s->pool[1], .SH = s->pool_stride[0],
                                 .SW = s->pool_stride[1]};
            snprintf(where, sizeof where, "%s, maxout output (%d, %d, %d)", at, s->units, c->OH,
                     c->OW);
            if (mg_pool_shape_init(p, where, &why))
                return mg_fail(err, "network: %s", why.msg);
            L->out_h = p->OH, L->out_w = p->OW;
        }
        units = (int64_t)L->out_c * L->out_h * L->out_w;
        break;
    }
    case MG_OP_RESHAPE:
        if ((int64_t)s->shape[0] * s->shape[1] * s->shape[2] != in)
            return mg_fail(err,
                           "network: %s: reshape to (%d, %d, %d) = %lld values, but its input "
                           "(%d, %d, %d) has %lld",
                           at, s->shape[0], s->shape[1], s->shape[2],
                           (long long)s->shape[0] * s->shape[1] * s->shape[2], L->in_c, L->in_h,
                           L->in_w, (long long)in);
        L->out_c = s->shape[0], L->out_h = s->shape[1], L->out_w = s->shape[2];
        width = units = in;
        break;
    case MG_OP_BATCHNORM:
        L->out_c = L->in_c, L->out_h = L->in_h, L->out_w = L->in_w;
        width = units = in;
        L->w_n = L->b_n = (size_t)L->in_c;
        break;
    }
    /* Kernel sizes are ints: every matrix must index within INT_MAX. */
    if (s->op == MG_OP_DENSE &&
        (width > INT_MAX / max_rows || width * in > INT_MAX || in * max_rows > INT_MAX))
        return mg_fail(err, "network: %s: %lld x %lld weights for %d rows are too large", at,
                       (long long)in, (long long)width, max_rows);
    const int64_t wide = width > in ? width : in;
    if (wide > INT_MAX / max_rows || (int64_t)L->w_n > INT_MAX)
        return mg_fail(err, "network: %s: %lld values per row and %zu weights for %d rows are "
                            "too large",
                       at, (long long)wide, L->w_n, max_rows);
    L->in = (int)in;
    L->width = (int)width;
    L->units = (int)units;
    return 0;
}

int mg_net_init_shape(mg_net *net, const mg_net_spec *spec, int in_c, int in_h, int in_w,
                      int max_rows, int max_groups, mg_error *err)
{
    memset(net, 0, sizeof *net);
    if (spec->n_layers < 1 || spec->n_layers > MG_MAX_LAYERS)
        return mg_fail(err, "network: %d layers, need 1 to %d", spec->n_layers, MG_MAX_LAYERS);
    if (in_c < 1 || in_h < 1 || in_w < 1 || (int64_t)in_c * in_h * in_w > INT_MAX)
        return mg_fail(err, "network: input (%d, %d, %d), need at least one value", in_c, in_h,
                       in_w);
    if (max_rows < 1)
        return mg_fail(err, "network: max_rows %d, need at least 1", max_rows);
    if (max_groups < 1 || max_groups > max_rows)
        return mg_fail(err, "network: max_groups %d, need 1 to max_rows %d", max_groups,
                       max_rows);

    int c = in_c, h = in_h, w = in_w;
    size_t n_params = 0, n_state = 0;
    for (int l = 0; l < spec->n_layers; l++) {
        const mg_layer_spec *s = &spec->layers[l];
        char at[MG_NAME_MAX + 32];
        layer_label(at, sizeof at, l, s);
        if ((int)s->type < (int)MG_ACT_LINEAR || (int)s->type > (int)MG_ACT_MAXOUT)
            return mg_fail(err, "network: %s: unknown activation %d", at, (int)s->type);
        if ((int)s->op < (int)MG_OP_DENSE || (int)s->op > (int)MG_OP_BATCHNORM)
            return mg_fail(err, "network: %s: unknown operation %d", at, (int)s->op);
        const int maxout = s->type == MG_ACT_MAXOUT;
        if (maxout != (s->op == MG_OP_MAXOUT_CONV) && s->op != MG_OP_DENSE)
            return mg_fail(err, "network: %s: maxout goes with dense and maxout_conv only", at);
        if ((s->op == MG_OP_DENSE || is_conv(&(mg_layer){.spec = *s})) && s->units < 1)
            return mg_fail(err, "network: %s: units %d, need at least 1", at, s->units);
        if (maxout && s->pieces < 1)
            return mg_fail(err, "network: %s: maxout pieces %d, need at least 1", at, s->pieces);
        if (!(s->keep > 0 && s->keep <= 1))
            return mg_fail(err, "network: %s: keep %g, need 0 < keep <= 1", at, s->keep);
        if (s->keep < 1 && !(s->input_scale > 0 && isfinite(s->input_scale)))
            return mg_fail(err, "network: %s: input_scale %g, need > 0 with dropout", at,
                           s->input_scale);
        if (s->op == MG_OP_BATCHNORM && !(s->bn_eps > 0 && s->bn_momentum >= 0 &&
                                          s->bn_momentum <= 1))
            return mg_fail(err, "network: %s: batchnorm eps %g and momentum %g, need eps > 0 "
                                "and momentum in [0, 1]",
                           at, s->bn_eps, s->bn_momentum);
        mg_layer *L = &net->layer[l];
        L->spec = *s;
        L->spec.pieces = maxout ? s->pieces : 1;
        L->in_c = c, L->in_h = h, L->in_w = w;
        if (layer_shape(L, at, max_rows, err))
            return -1;
        L->w_off = n_params;
        n_params += L->w_n;
        L->b_off = n_params;
        n_params += L->b_n;
        L->s_off = n_state;
        n_state += s->op == MG_OP_BATCHNORM ? 2 * (size_t)L->out_c : 0;
        c = L->out_c, h = L->out_h, w = L->out_w;
    }
    net->n_layers = spec->n_layers;
    net->in_dim = in_c * in_h * in_w;
    net->out_dim = net->layer[spec->n_layers - 1].units;
    net->max_rows = max_rows;
    net->max_groups = max_groups;
    net->n_params = n_params;
    net->n_state = n_state;
    net->gemm = mg_gemm_blas;
    net->groups = 1;

    size_t bytes = layout(net, NULL);
    net->arena = mg_big_alloc(bytes);
    if (!net->arena)
        return mg_fail(err, "network: out of memory for %zu bytes of parameters and buffers",
                       bytes);
    net->arena_bytes = bytes;
    layout(net, net->arena);
    return 0;
}

int mg_net_out_shape(const mg_net_spec *spec, int in_c, int in_h, int in_w, int *out_c,
                     int *out_h, int *out_w, mg_error *err)
{
    int c = in_c, h = in_h, w = in_w;
    for (int l = 0; l < spec->n_layers && l < MG_MAX_LAYERS; l++) {
        mg_layer L = {.spec = spec->layers[l], .in_c = c, .in_h = h, .in_w = w};
        L.spec.pieces = L.spec.type == MG_ACT_MAXOUT ? L.spec.pieces : 1;
        char at[MG_NAME_MAX + 32];
        layer_label(at, sizeof at, l, &L.spec);
        if (layer_shape(&L, at, 1, err))
            return -1;
        c = L.out_c, h = L.out_h, w = L.out_w;
    }
    *out_c = c, *out_h = h, *out_w = w;
    return 0;
}

int mg_net_init(mg_net *net, const mg_net_spec *spec, int in_dim, int max_rows, mg_error *err)
{
    if (in_dim < 1)
        return mg_fail(err, "network: input dimension %d, need at least 1", in_dim);
    return mg_net_init_shape(net, spec, in_dim, 1, 1, max_rows, 1, err);
}

void mg_net_constrain_part(mg_net *net, int part, int parts)
{
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        const double max = L->spec.max_col_norm;
        if (max <= 0 || L->spec.op != MG_OP_DENSE)
            continue;
        mg_real *W = net->params + L->w_off; // (in, width)
        const int in = L->in, width = L->width;
        const int j0 = (int)((int64_t)width * part / parts);
        const int j1 = (int)((int64_t)width * (part + 1) / parts);
        double *norm = net->colnorm;         // (width), columns [j0, j1) used
        for (int j = j0; j < j1; j++)
            norm[j] = 0;
        /* Row by row, so W is read in memory order. */
        for (int i = 0; i < in; i++)
            for (int j = j0; j < j1; j++)
                norm[j] += (double)W[(size_t)i * width + j] * W[(size_t)i * width + j];
        int any = 0;
        for (int j = j0; j < j1; j++) {
            double n = sqrt(norm[j]);
            norm[j] = n > max ? max / n : 1; /* now the factor for column j */
            any |= n > max;
        }
        if (!any)
            continue;
        for (int i = 0; i < in; i++)
            for (int j = j0; j < j1; j++)
                W[(size_t)i * width + j] = (mg_real)(W[(size_t)i * width + j] * norm[j]);
    }
}

void mg_net_constrain(mg_net *net)
{
    mg_net_constrain_part(net, 0, 1);
}

int mg_net_has_constraint(const mg_net *net)
{
    for (int l = 0; l < net->n_layers; l++)
        if (net->layer[l].spec.max_col_norm > 0 && net->layer[l].spec.op == MG_OP_DENSE)
            return 1;
    return 0;
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
        const mg_layer_spec *s = &L->spec;
        const mg_rng_key key = {seed, mg_rng_stream(MG_STREAM_INIT, net_id), (uint64_t)l};
        mg_real *W = net->params + L->w_off, *b = net->params + L->b_off;
        if (s->op == MG_OP_BATCHNORM) { /* scale 1 (DCGAN: normal(1, std)), shift 0 */
            if (s->init == MG_INIT_NORMAL) {
                mg_rng_normal(W, L->w_n, &key, 0);
                for (size_t i = 0; i < L->w_n; i++)
                    W[i] = (mg_real)(1 + s->std * W[i]);
            } else {
                for (size_t i = 0; i < L->w_n; i++)
                    W[i] = 1;
            }
            mg_real *run = net->state + L->s_off; // mean (C), var (C)
            for (int c = 0; c < L->out_c; c++) {
                run[c] = 0;
                run[L->out_c + c] = 1;
            }
        } else if (s->init == MG_INIT_NORMAL) {
            mg_rng_normal(W, L->w_n, &key, 0);
            for (size_t i = 0; i < L->w_n; i++)
                W[i] = (mg_real)(s->std * W[i]);
        } else if (L->w_n) {
            mg_rng_uniform(W, L->w_n, -s->irange, s->irange, &key, 0);
        }
        if (L->b_n)
            memset(b, 0, L->b_n * sizeof(mg_real));
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

int mg_layer_tensors(const mg_net *net, int l, mg_tensor_info *t)
{
    const mg_layer *L = &net->layer[l];
    const mg_layer_spec *s = &L->spec;
    const size_t P = (size_t)L->spec.pieces, U = (size_t)s->units;
    int n = 0;
#define TENSOR(nm, st, o, cnt, ...)                                                             \
    do {                                                                                       \
        const size_t d_[] = {__VA_ARGS__};                                                     \
        t[n] = (mg_tensor_info){.name = (nm), .rank = (int)(sizeof d_ / sizeof *d_),           \
                                .in_state = (st), .off = (o), .n = (cnt)};                     \
        memcpy(t[n].dims, d_, sizeof d_);                                                      \
        n++;                                                                                   \
    } while (0)
    switch (s->op) {
    case MG_OP_DENSE: /* maxout: column u * pieces + p of (in, width) is (in, units, pieces) */
        if (s->type == MG_ACT_MAXOUT) {
            TENSOR("W", 0, L->w_off, L->w_n, (size_t)L->in, U, P);
            TENSOR("b", 0, L->b_off, L->b_n, U, P);
        } else {
            TENSOR("W", 0, L->w_off, L->w_n, (size_t)L->in, U);
            TENSOR("b", 0, L->b_off, L->b_n, U);
        }
        break;
    case MG_OP_CONV:
    case MG_OP_MAXOUT_CONV: { /* maxout_conv: channel u * pieces + p is (units, pieces) */
        const mg_conv_shape *c = &L->conv;
        const size_t IC = (size_t)c->IC, KH = (size_t)c->KH, KW = (size_t)c->KW;
        const size_t OH = (size_t)c->OH, OW = (size_t)c->OW;
        if (s->op == MG_OP_MAXOUT_CONV) {
            TENSOR("W", 0, L->w_off, L->w_n, U, P, IC, KH, KW);
            if (L->b_n && !s->tied_bias)
                TENSOR("b", 0, L->b_off, L->b_n, U, P, OH, OW);
            else if (L->b_n)
                TENSOR("b", 0, L->b_off, L->b_n, U, P);
        } else {
            TENSOR("W", 0, L->w_off, L->w_n, U, IC, KH, KW);
            if (L->b_n && !s->tied_bias)
                TENSOR("b", 0, L->b_off, L->b_n, U, OH, OW);
            else if (L->b_n)
                TENSOR("b", 0, L->b_off, L->b_n, U);
        }
        break;
    }
    case MG_OP_DECONV: {
        const mg_conv_shape *c = &L->conv;
        TENSOR("W", 0, L->w_off, L->w_n, (size_t)c->IC, U, (size_t)c->KH, (size_t)c->KW);
        if (L->b_n && !s->tied_bias)
            TENSOR("b", 0, L->b_off, L->b_n, U, (size_t)c->OH, (size_t)c->OW);
        else if (L->b_n)
            TENSOR("b", 0, L->b_off, L->b_n, U);
        break;
    }
    case MG_OP_RESHAPE:
        break;
    case MG_OP_BATCHNORM: {
        const size_t C = (size_t)L->out_c;
        TENSOR("gamma", 0, L->w_off, C, C);
        TENSOR("beta", 0, L->b_off, C, C);
        TENSOR("running_mean", 1, L->s_off, C, C);
        TENSOR("running_var", 1, L->s_off + C, C, C);
        break;
    }
    }
#undef TENSOR
    return n;
}

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

/* x[l] for layer l: the input itself, or a copy with row r's units dropped by the mask drawn
 * from (key with stream + l, row_id[r]), so a row's mask never depends on where the row sits. */
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
    /* A conditional network's label, the last keep_in values of its input, is the condition, not
     * a feature: it passes as it is (mask 1), and the other values keep the masks they had. */
    const int kept = l == 0 ? net->keep_in : 0;
    for (int r = 0; r < rows; r++) {
        mg_real *m = net->mask[l] + (size_t)r * in, *xd = net->xdrop[l] + (size_t)r * in;
        const mg_real *xr = x + (size_t)r * in;
        mg_rng_u24(net->u24, (size_t)in, &k, drop->row_id[r]);
        mask_row(m, xd, xr, net->u24, below, scale, in);
        for (int j = in - kept; j < in; j++) {
            m[j] = 1;
            xd[j] = xr[j];
        }
    }
    return net->xdrop[l];
}

/* A batch norm's training forward: each of `groups` blocks of rows normalised with the
 * statistics of that block over every rank (sync) or over this rank's rows. */
static void batchnorm_train(mg_net *net, int l, const mg_real *x, int rows, int groups)
{
    const mg_layer *L = &net->layer[l];
    const int C = L->out_c, HW = L->out_h * L->out_w, per = rows / groups;
    const size_t stride = 2 * (size_t)C + 1, row_n = (size_t)L->in;
    double *sums = net->bn_sums; // (groups, 2 C + 1): sums of x and x^2, then the count
    for (int g = 0; g < groups; g++) {
        mg_batchnorm_sums(sums + g * stride, x + (size_t)g * per * row_n, per, C, HW);
        sums[g * stride + 2 * C] = (double)per * HW;
    }
    if (L->spec.sync && net->sum)
        net->sum(net->sum_arg, sums, (int)(groups * stride));
    const mg_real *gamma = net->params + L->w_off, *beta = net->params + L->b_off;
    mg_real *run = net->state + L->s_off;
    for (int g = 0; g < groups; g++) {
        const double *s = sums + g * stride;
        double *stats = net->bn_stats[l] + (size_t)g * 2 * C;
        net->bn_count[l][g] = s[2 * C];
        mg_batchnorm_moments(stats, s, s[2 * C], L->spec.bn_eps, C);
        mg_batchnorm_running(run, run + C, s, s[2 * C], L->spec.bn_momentum, C);
        mg_batchnorm_forward(net->pre[l] + (size_t)g * per * row_n, x + (size_t)g * per * row_n,
                             stats, gamma, beta, per, C, HW);
    }
}

/* Layer l's operation on x (rows, in) into pre (and, for maxout_conv, out). */
static void layer_forward(mg_net *net, int l, const mg_real *x, int rows, const mg_dropout *drop)
{
    const mg_layer *L = &net->layer[l];
    const mg_real *W = mg_net_weights(net, l), *b = L->b_n ? mg_net_bias(net, l) : NULL;
    switch (L->spec.op) {
    case MG_OP_DENSE:
        /* pre = x W with beta 0, the bias added in the activation's pass (mg_dense_forward and
         * the activation kernels, in two passes, are its reference). */
        net->gemm(0, 0, rows, L->width, L->in, 1, x, L->in, W, L->width, 0, net->pre[l],
                  L->width);
        if (L->spec.type == MG_ACT_MAXOUT)
            mg_bias_maxout_forward(net->out[l], net->argmax[l], net->pre[l], b, rows, L->units,
                                   L->spec.pieces);
        else
            mg_bias_act_forward(net->out[l], net->pre[l], b, rows, L->width, L->spec.type,
                                L->spec.leak);
        return;
    case MG_OP_CONV:
        mg_conv_forward(net->pre[l], x, W, b, rows, &L->conv, net->work, net->gemm);
        break;
    case MG_OP_DECONV:
        mg_deconv_forward(net->pre[l], x, W, b, rows, &L->conv, net->work, net->gemm);
        break;
    case MG_OP_MAXOUT_CONV:
        mg_conv_forward(net->pre[l], x, W, b, rows, &L->conv, net->work, net->gemm);
        mg_channel_maxout_forward(net->mid[l], net->argmax[l], net->pre[l], rows, L->spec.units,
                                  L->spec.pieces, L->conv.OH * L->conv.OW);
        mg_maxpool_forward(net->out[l], net->argpool[l], net->mid[l], rows, &L->pool);
        return;
    case MG_OP_RESHAPE:
        net->out[l] = (mg_real *)x;
        return;
    case MG_OP_BATCHNORM:
        if (drop) {
            batchnorm_train(net, l, x, rows, drop->groups > 1 ? drop->groups : 1);
        } else {
            double *stats = net->bn_stats[l]; // group 0's slot serves evaluation
            const mg_real *run = net->state + L->s_off;
            mg_batchnorm_eval_stats(stats, run, run + L->out_c, L->spec.bn_eps, L->out_c);
            mg_batchnorm_forward(net->pre[l], x, stats, W, b, rows, L->out_c,
                                 L->out_h * L->out_w);
        }
        break;
    }
    mg_act_forward(net->out[l], net->pre[l], (size_t)rows * L->width, L->spec.type,
                   L->spec.leak);
}

const mg_real *mg_net_forward(mg_net *net, const mg_real *inp, int rows, const mg_dropout *drop)
{
    assert(rows >= 0 && rows <= net->max_rows);
    const int groups = drop && drop->groups > 1 ? drop->groups : 1;
    assert(groups <= net->max_groups && rows % groups == 0);
    const mg_real *x = inp; // (rows, in)
    for (int l = 0; l < net->n_layers; l++) {
        net->x[l] = dropout_input(net, l, x, rows, drop);
        if (net->params_needed)
            net->params_needed(net->params_needed_arg, net->layer[l].b_off + net->layer[l].b_n);
        layer_forward(net, l, net->x[l], rows, drop);
        x = net->out[l];
        if (net->progress)
            net->progress(net->progress_arg);
    }
    net->dropped = drop != NULL;
    net->groups = groups;
    net->fwd_rows = rows;
    return x;
}

const mg_real *mg_net_logits(const mg_net *net)
{
    return net->pre[net->n_layers - 1];
}

/* The gradient of layer l's pre-activation from that of its output: dpre (rows, width) from
 * dout (rows, units), over rows [row0, row0 + rows). Elementwise activations work in place (dpre
 * == dout); maxout needs a separate dpre. maxout_conv: dout -> pooling -> maxout, through
 * `spare` (rows, mid). */
static void layer_act_backward(const mg_net *net, int l, mg_real *dpre, const mg_real *dout,
                               mg_real *spare, int row0, int rows)
{
    const mg_layer *L = &net->layer[l];
    if (L->spec.op == MG_OP_MAXOUT_CONV) {
        mg_maxpool_backward(spare, dout, net->argpool[l] + (size_t)row0 * L->units, rows,
                            &L->pool);
        mg_channel_maxout_backward(dpre, spare, net->argmax[l] + (size_t)row0 * L->mid, rows,
                                   L->spec.units, L->spec.pieces, L->conv.OH * L->conv.OW);
    } else if (L->spec.type == MG_ACT_MAXOUT) {
        mg_maxout_backward(dpre, dout, net->argmax[l] + (size_t)row0 * L->units, rows, L->units,
                           L->spec.pieces);
    } else {
        const size_t off = (size_t)row0 * L->width;
        mg_act_backward(dpre, dout, net->pre[l] + off, net->out[l] + off,
                        (size_t)rows * L->width, L->spec.type, L->spec.leak);
    }
}

/* A batch norm's backward over rows [row0, row0 + rows), whole groups of the forward pass: dx
 * from d (the gradient of its output before the activation), the scale's and shift's gradients
 * into dW and db (NULL: none; add as mg_dense_backward's). */
static void batchnorm_backward(mg_net *net, int l, mg_real *dx, const mg_real *d, mg_real *dW,
                               mg_real *db, int row0, int rows, int add)
{
    const mg_layer *L = &net->layer[l];
    const int C = L->out_c, HW = L->out_h * L->out_w;
    const size_t row_n = (size_t)L->in;
    const mg_real *x = net->x[l] + (size_t)row0 * row_n, *gamma = net->params + L->w_off;
    /* The forward pass had net->groups equal blocks of its rows: these rows are whole ones. */
    const int per = net->dropped ? net->fwd_rows / net->groups : rows;
    assert(per > 0 && row0 % per == 0 && rows % per == 0);
    const int g0 = net->dropped ? row0 / per : 0, ng = rows / per;
    double *sums = net->bn_sums; // (ng, 2 C)
    for (int g = 0; g < ng; g++) {
        const size_t at = (size_t)g * per * row_n;
        mg_batchnorm_backward_sums(sums + (size_t)g * 2 * C, dW, db, d + at, x + at,
                                   net->bn_stats[l] + (size_t)(g0 + g) * 2 * C, per, C, HW,
                                   add || g > 0);
    }
    if (L->spec.sync && net->sum && net->dropped)
        net->sum(net->sum_arg, sums, 2 * C * ng);
    for (int g = 0; dx && g < ng; g++) {
        const size_t at = (size_t)g * per * row_n;
        const double count = net->dropped ? net->bn_count[l][g0 + g] : (double)per * HW;
        mg_batchnorm_backward(dx + at, d + at, x + at,
                              net->bn_stats[l] + (size_t)(g0 + g) * 2 * C, gamma,
                              sums + (size_t)g * 2 * C, count, per, C, HW);
    }
}

/* Layer l's operation backward: dx (rows, in) from d (rows, width), the gradient of its
 * pre-activation; weight gradients into dW and db (NULL: none). */
static void layer_backward(mg_net *net, int l, mg_real *dx, const mg_real *d, mg_real *dW,
                           mg_real *db, int row0, int rows, int add)
{
    const mg_layer *L = &net->layer[l];
    const mg_real *x = net->x[l] + (size_t)row0 * L->in, *W = mg_net_weights(net, l);
    switch (L->spec.op) {
    case MG_OP_DENSE:
        mg_dense_backward(dx, dW, db, d, x, W, rows, L->in, L->width, add, net->gemm);
        break;
    case MG_OP_CONV:
    case MG_OP_MAXOUT_CONV:
        mg_conv_backward(dx, dW, db, d, x, W, rows, &L->conv, add, net->work, net->gemm);
        break;
    case MG_OP_DECONV:
        mg_deconv_backward(dx, dW, db, d, x, W, rows, &L->conv, add, net->work, net->gemm);
        break;
    case MG_OP_RESHAPE:
        if (dx)
            memcpy(dx, d, (size_t)rows * L->in * sizeof *dx);
        break;
    case MG_OP_BATCHNORM:
        batchnorm_backward(net, l, dx, d, dW, db, row0, rows, add);
        break;
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
        layer_act_backward(net, top, net->dbuf[0], dout, net->dbuf[1], row0, rows);
        d = net->dbuf[0];
        held = 0;
    }
    for (int l = top; l >= 0; l--) {
        const mg_layer *L = &net->layer[l];
        const int xb = held == 0 ? 1 : 0;
        mg_real *dx = l > 0 ? net->dbuf[xb] : dinp; // (rows, in)
        layer_backward(net, l, dx, d, weights && L->w_n ? net->grads + L->w_off : NULL,
                       weights && L->b_n ? net->grads + L->b_off : NULL, row0, rows, add);
        if (weights && net->grads_done && (L->w_n || L->b_n))
            net->grads_done(net->grads_done_arg, L->w_n ? L->w_off : L->b_off);
        if (!dx) // l == 0 without dinp
            break;
        if (net->dropped && layer_drops(L)) {
            mask_grad(dx, net->mask[l] + (size_t)row0 * L->in, (size_t)rows * L->in);
        }
        if (l == 0)
            break;
        const mg_layer *P = &net->layer[l - 1];
        if (P->spec.op == MG_OP_DENSE && P->spec.type == MG_ACT_MAXOUT) {
            mg_real *dpre = net->dbuf[1 - xb];
            layer_act_backward(net, l - 1, dpre, dx, NULL, row0, rows);
            d = dpre;
            held = 1 - xb;
        } else {
            /* In place (maxout_conv through the other buffer, free now). */
            layer_act_backward(net, l - 1, dx, dx, net->dbuf[1 - xb], row0, rows);
            d = dx;
            held = xb;
        }
    }
}

/* The pre-activation at which `act` gives p, for mg_net_bias_from_mean. */
static double act_inverse(enum mg_act act, double p)
{
    const double e = 1e-7;
    switch (act) {
    case MG_ACT_SIGMOID:
        p = p < e ? e : p > 1 - e ? 1 - e : p;
        return log(p / (1 - p));
    case MG_ACT_TANH:
        p = p < -1 + e ? -1 + e : p > 1 - e ? 1 - e : p;
        return atanh(p);
    default:
        return p;
    }
}

void mg_net_bias_from_mean(mg_net *net, const double *mean)
{
    const int l = net->n_layers - 1;
    const mg_layer *L = &net->layer[l];
    const enum mg_act act = L->spec.type;
    if (!(act == MG_ACT_SIGMOID || act == MG_ACT_TANH || act == MG_ACT_LINEAR))
        return;
    mg_real *b = mg_net_bias(net, l);
    if (L->spec.op == MG_OP_DENSE) { // (width); a maxout unit gives its mean to every piece
        for (int j = 0; j < L->width; j++)
            b[j] = (mg_real)act_inverse(act, mean[j / L->spec.pieces]);
        return;
    }
    if (L->b_n != (size_t)net->out_dim) // a bias per output value only (untied)
        return;
    for (size_t j = 0; j < L->b_n; j++)
        b[j] = (mg_real)act_inverse(act, mean[j]);
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
