/* Gradient checks by central differences, in double precision: this file links the library built
 * with MG_REAL_DOUBLE, so it checks the production kernels themselves.
 *
 * Each check evaluates a scalar objective f (a sum of losses, or sum_i c_i out_i with fixed random
 * c for a bare layer) and compares the analytic gradient with (f(x + h) - f(x - h)) / 2h, first
 * coordinate by coordinate, then (as kann does) along one random direction over all tensors.
 *
 * Tolerance. With h = 1e-6 the central difference has two errors:
 *   - Taylor remainder h^2 f'''/6: about 1e-12 F for these O(1) problems (F = the scale of f);
 *   - rounding: f is computed to about eps F, and the difference of two such values divided by 2h
 *     is off by about eps F / h = 2.2e-10 F.
 * The budget is tol = 100 (h^2 + eps / h) F ~ 2.2e-8 F; the factor 100 covers the length of the
 * computations (hundreds of operations per value). Measured errors are printed; they sit near
 * 1e-10 F. A wrong gradient (a missing mask, a transposed index, a lost factor) is off by the size
 * of the gradient itself, 1e-3 to 1.
 *
 * Kinks. ReLU at 0 and maxout ties make f non-differentiable; a difference across a kink is
 * wrong by O(1). A step of h moves any pre-activation by at most h times a small factor (<= 1e-5
 * here), so every problem is drawn again (next seed) until all ReLU inputs are at least MARGIN =
 * 1e-3 from 0 and all maxout winners lead by MARGIN: kinks are avoided by construction. */
#include "mpigan/classifier.h"
#include "mpigan/labels.h"
#include "mpigan/nn.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "helpers.h"
#include "testlib.h"

#ifndef MG_REAL_DOUBLE
#error "test_gradcheck links the double build (mpigan_f64): compile with -DMG_REAL_DOUBLE"
#endif

static const double MARGIN = 1e-3;

static void fill(mg_real *x, size_t n, double lo, double hi, uint64_t row)
{
    mg_test_fill(x, n, lo, hi, 1406, 2661, row);
}

/* ---- the tensors of a network ---- */

/* W and b of every layer of net (a batch norm's scale and shift), with their gradients in
 * net->grads. */
static void add_net(gc_tensors *L, const mg_net *net, const char *prefix)
{
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *ly = &net->layer[l];
        char name[32];
        snprintf(name, sizeof name, "%s.W%d", prefix, l);
        if (ly->w_n)
            gc_add(L, name, net->params + ly->w_off, net->grads + ly->w_off, ly->w_n);
        snprintf(name, sizeof name, "%s.b%d", prefix, l);
        if (ly->b_n)
            gc_add(L, name, net->params + ly->b_off, net->grads + ly->b_off, ly->b_n);
    }
}

/* The lead of each max pooling window's winner over the rest of its window (clipped at the
 * border), for a maxout_conv layer's last forward pass over `rows` rows. */
static double pool_margin(const mg_net *net, int l, int rows)
{
    const mg_layer *L = &net->layer[l];
    const mg_pool_shape *p = &L->pool;
    double m = INFINITY;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < p->C; c++) {
            const mg_real *plane = net->mid[l] + ((size_t)r * p->C + c) * p->H * p->W;
            const int32_t *win = net->argpool[l] + ((size_t)r * p->C + c) * p->OH * p->OW;
            for (int oh = 0; oh < p->OH; oh++)
                for (int ow = 0; ow < p->OW; ow++) {
                    const int a = win[oh * p->OW + ow];
                    for (int ih = oh * p->SH; ih < oh * p->SH + p->KH && ih < p->H; ih++)
                        for (int iw = ow * p->SW; iw < ow * p->SW + p->KW && iw < p->W; iw++)
                            if (ih * p->W + iw != a)
                                m = fmin(m, plane[a] - plane[ih * p->W + iw]);
                }
        }
    return m;
}

/* Distance to the nearest kink in the last forward pass over `rows` rows: |pre| for ReLU and
 * leaky ReLU (after any layer: dense, conv, deconv, batch norm), the lead of the winning piece
 * for maxout and of each pooling window's winner for maxout_conv. */
static double kink_margin(const mg_net *net, int rows)
{
    double m = INFINITY;
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        const size_t n = (size_t)rows * L->units;
        if (L->spec.op == MG_OP_MAXOUT_CONV) { // pieces are channels u P + k, planes of HW
            const int P = L->spec.pieces, HW = L->conv.OH * L->conv.OW;
            for (size_t i = 0; i < (size_t)rows * L->mid; i++) {
                const size_t r = i / L->mid, u = i % L->mid / HW, at = i % HW;
                const mg_real *pre = net->pre[l] + r * L->width + u * P * HW + at;
                const int32_t a = net->argmax[l][i];
                for (int k = 0; k < P; k++)
                    if (k != a)
                        m = fmin(m, pre[(size_t)a * HW] - pre[(size_t)k * HW]);
            }
            m = fmin(m, pool_margin(net, l, rows));
        } else if (L->spec.type == MG_ACT_RELU || L->spec.type == MG_ACT_LEAKY_RELU) {
            for (size_t i = 0; i < (size_t)rows * L->width; i++)
                m = fmin(m, fabs(net->pre[l][i]));
        } else if (L->spec.type == MG_ACT_MAXOUT) {
            const int P = L->spec.pieces;
            for (size_t i = 0; i < n; i++) {
                const mg_real *p = net->pre[l] + i * P;
                const int32_t a = net->argmax[l][i];
                for (int k = 0; k < P; k++)
                    if (k != a)
                        m = fmin(m, p[a] - p[k]);
            }
        }
    }
    return m;
}

static mg_layer_spec layer(enum mg_act type, int units, int pieces, double irange, double keep)
{
    return mg_test_layer(NULL, type, units, pieces, irange, keep, 0.3);
}

/* NaN in every weight gradient, as a backward with MG_BACKWARD_SET_GRADS must overwrite them all
 * without reading them (the trainer's way; check_layer checks the adding way). */
static void poison_grads(mg_net *net)
{
    for (size_t i = 0; i < net->n_params; i++)
        net->grads[i] = NAN;
    memset(net->grads + net->n_params, 0, MG_STATS_SLOTS * sizeof *net->grads);
}

/* Draws params (and non-zero biases, batch norm scales away from 1) for attempt a. */
static void draw_params(mg_net *net, uint64_t seed, uint64_t a)
{
    mg_net_init_params(net, seed + a * 7919, 3);
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        fill(mg_net_bias(net, l), L->b_n, -0.3, 0.3, 10000 * a + 100 + l);
        if (L->spec.op == MG_OP_BATCHNORM)
            fill(mg_net_weights(net, l), L->w_n, 0.5, 1.5, 10000 * a + 200 + l);
    }
}

/* ---- one layer: f = sum_i c_i out_i ---- */

typedef struct {
    mg_net net;
    int rows;
    mg_real *x, *c, *dx; // (rows, in), (rows, out), (rows, in)
    const mg_dropout *drop;
} layer_problem;

static double layer_objective(void *ctx, double *F)
{
    layer_problem *p = ctx;
    const mg_real *y = mg_net_forward(&p->net, p->x, p->rows, p->drop);
    double f = 0, fa = 0;
    for (int i = 0; i < p->rows * p->net.out_dim; i++) {
        f += p->c[i] * y[i];
        fa += fabs(p->c[i] * y[i]);
    }
    *F = fa;
    return f;
}

static void check_layer(const char *what, mg_layer_spec spec_layer, const mg_dropout *drop)
{
    enum { ROWS = 3, IN = 5 };
    mg_net_spec spec = {.n_layers = 1};
    spec.layers[0] = spec_layer;
    layer_problem p = {.rows = ROWS, .drop = drop};
    mg_test_net(&p.net, &spec, IN, ROWS);
    const int out = p.net.out_dim;
    p.x = malloc(ROWS * IN * sizeof *p.x);
    p.dx = malloc(ROWS * IN * sizeof *p.dx);
    p.c = malloc((size_t)ROWS * out * sizeof *p.c);
    int a = 0;
    double F, margin = 0;
    for (; a < 100; a++) {
        draw_params(&p.net, 11, (uint64_t)a);
        fill(p.x, ROWS * IN, -1, 1, 1000 * a + 1);
        fill(p.c, (size_t)ROWS * out, -1, 1, 1000 * a + 2);
        layer_objective(&p, &F);
        if ((margin = kink_margin(&p.net, ROWS)) >= MARGIN)
            break;
    }
    CU_ASSERT(margin >= MARGIN);
    mg_test_zero_grads(&p.net);
    layer_objective(&p, &F);
    mg_net_backward(&p.net, p.dx, p.c, 0, ROWS, 0);
    gc_tensors L = {.n = 0};
    add_net(&L, &p.net, "net");
    gc_add(&L, "input", p.x, p.dx, ROWS * IN);
    printf("\n    %s: drawn %d time(s), kink margin %.3g", what, a + 1, margin);
    gc_check_coordinates(what, layer_objective, &p, &L);
    gc_check_direction(what, layer_objective, &p, &L);
    if (drop) { // some inputs were dropped, and their gradient is exactly zero
        size_t dropped = 0;
        for (int i = 0; i < ROWS * IN; i++)
            if (p.net.mask[0][i] == 0) {
                dropped++;
                CU_ASSERT_EQUAL(p.dx[i], 0);
            }
        CU_ASSERT(dropped > 0 && dropped < ROWS * IN);
    }
    free(p.x);
    free(p.dx);
    free(p.c);
    mg_net_free(&p.net);
}

static void test_linear(void)
{
    check_layer("linear", layer(MG_ACT_LINEAR, 4, 1, 1, 1), NULL);
}

static void test_relu(void)
{
    check_layer("relu", layer(MG_ACT_RELU, 4, 1, 1, 1), NULL);
}

static void test_leaky_relu(void)
{
    check_layer("leaky_relu", layer(MG_ACT_LEAKY_RELU, 4, 1, 1, 1), NULL);
}

static void test_sigmoid(void)
{
    check_layer("sigmoid", layer(MG_ACT_SIGMOID, 4, 1, 1, 1), NULL);
}

static void test_tanh(void)
{
    check_layer("tanh", layer(MG_ACT_TANH, 4, 1, 1, 1), NULL);
}

static void test_maxout(void)
{
    check_layer("maxout", layer(MG_ACT_MAXOUT, 4, 3, 1, 1), NULL);
}

/* A fixed key gives a fixed mask, so f is a smooth function of the weights and inputs. */
static void test_dropout(void)
{
    const uint64_t ids[3] = {5, 17, 3};
    const mg_dropout drop = {.key = {123, 456, 7}, .row_id = ids};
    check_layer("dropout tanh", layer(MG_ACT_TANH, 4, 1, 1, 0.6), &drop);
}

/* ---- losses w.r.t. the logits ---- */

typedef struct {
    int rows;
    mg_real *l;  // (2 rows): real logits, then fake
    double norm;
    int is_d;           // mg_loss_d, else mg_loss_g with loss g
    enum mg_gen_loss g;
} loss_problem;

static double loss_objective(void *ctx, double *F)
{
    loss_problem *p = ctx;
    double f = p->is_d
                   ? mg_loss_d(NULL, NULL, p->l, p->l + p->rows, p->rows, p->norm, NULL, NULL)
                   : mg_loss_g(NULL, p->l, p->rows, p->g, p->norm);
    f /= p->norm; // the losses return sums; their gradients are already divided by norm
    *F = fabs(f); // every term has the same sign
    return f;
}

static void check_loss(const char *what, int is_d, enum mg_gen_loss g)
{
    enum { ROWS = 6 };
    mg_real l[2 * ROWS], dl[2 * ROWS];
    fill(l, 2 * ROWS, -4, 4, 77);
    l[0] = 25; // far into saturation on both sides
    l[ROWS] = -25;
    loss_problem p = {.rows = ROWS, .l = l, .norm = 5, .is_d = is_d, .g = g};
    double F;
    loss_objective(&p, &F);
    gc_tensors L = {.n = 0};
    if (is_d) {
        mg_loss_d(dl, dl + ROWS, l, l + ROWS, ROWS, p.norm, NULL, NULL);
        gc_add(&L, "l_real", l, dl, ROWS);
        gc_add(&L, "l_fake", l + ROWS, dl + ROWS, ROWS);
    } else {
        mg_loss_g(dl, l, ROWS, g, p.norm);
        gc_add(&L, "l_fake", l, dl, ROWS);
    }
    gc_check_coordinates(what, loss_objective, &p, &L);
    gc_check_direction(what, loss_objective, &p, &L);
}

static void test_loss_d(void)
{
    check_loss("mg_loss_d", 1, 0);
}

static void test_loss_g_nonsaturating(void)
{
    check_loss("mg_loss_g nonsaturating", 0, MG_GEN_LOSS_NONSATURATING);
}

static void test_loss_g_minimax(void)
{
    check_loss("mg_loss_g minimax", 0, MG_GEN_LOSS_MINIMAX);
}

/* ---- the classifier's softmax cross-entropy, and a classifier through it ---- */

enum { SM_ROWS = 5, SM_K = 4, SM_IN = 8 };

typedef struct {
    mg_real *l;              // (SM_ROWS, SM_K) logits
    int32_t labels[SM_ROWS];
    double norm;
    mg_net *net;             // a whole classifier: l are its logits for x
    mg_real *x;
    mg_dropout drop;
} softmax_problem;

static double softmax_objective(void *ctx, double *F)
{
    softmax_problem *p = ctx;
    const mg_real *l = p->l;
    if (p->net) {
        mg_net_forward(p->net, p->x, SM_ROWS, &p->drop);
        l = mg_net_logits(p->net);
    }
    const double f = mg_loss_softmax(NULL, l, p->labels, SM_ROWS, SM_K, p->norm, NULL) / p->norm;
    *F = f; // every term is >= 0
    return f;
}

static void test_loss_softmax(void)
{
    mg_real l[SM_ROWS * SM_K], dl[SM_ROWS * SM_K];
    fill(l, SM_ROWS * SM_K, -3, 3, 78);
    l[0] = 40; // one confident row, right and wrong: the shifted log-sum-exp stays exact
    l[SM_K + 2] = -40;
    softmax_problem p = {.l = l, .labels = {0, 2, 1, 3, 3}, .norm = 7};
    double F;
    softmax_objective(&p, &F);
    int correct;
    mg_loss_softmax(dl, l, p.labels, SM_ROWS, SM_K, p.norm, &correct);
    int want = 0; /* the rows whose largest logit is at the label */
    for (int i = 0; i < SM_ROWS; i++) {
        int best = 0;
        for (int k = 1; k < SM_K; k++)
            best = l[i * SM_K + k] > l[i * SM_K + best] ? k : best;
        want += best == p.labels[i];
    }
    CU_ASSERT_EQUAL(correct, want);
    CU_ASSERT(want >= 1); /* row 0 at least: the count can be told from 0 */
    gc_tensors L = {.n = 0};
    gc_add(&L, "logits", l, dl, SM_ROWS * SM_K);
    gc_check_coordinates("mg_loss_softmax", softmax_objective, &p, &L);
    gc_check_direction("mg_loss_softmax", softmax_objective, &p, &L);
    /* Each row's gradient sums to 0 (softmax minus one-hot), and a confident right row's is ~0. */
    for (int i = 0; i < SM_ROWS; i++) {
        double sum = 0;
        for (int k = 0; k < SM_K; k++)
            sum += dl[i * SM_K + k];
        CU_ASSERT(fabs(sum) <= 1e-15);
    }
    CU_ASSERT(fabs(dl[0]) <= 1e-15);

    /* A classifier: maxout 5x3 (dropout on its input) -> linear 4 logits, backward from them. */
    mg_net_spec spec = {.n_layers = 2};
    spec.layers[0] = layer(MG_ACT_MAXOUT, 5, 3, 0.8, 0.8);
    spec.layers[1] = layer(MG_ACT_LINEAR, SM_K, 1, 0.8, 1);
    mg_net net;
    mg_test_net(&net, &spec, SM_IN, SM_ROWS);
    mg_real x[SM_ROWS * SM_IN];
    uint64_t ids[SM_ROWS] = {4, 8, 15, 16, 23};
    softmax_problem q = {.labels = {3, 1, 0, 2, 1}, .norm = SM_ROWS, .net = &net, .x = x,
                         .drop = {.key = {42, 5 * MG_MAX_LAYERS, 2}, .row_id = ids}};
    int a = 0;
    double margin = 0;
    for (; a < 100; a++) {
        draw_params(&net, 111, (uint64_t)a);
        fill(x, SM_ROWS * SM_IN, 0, 1, 11000 + a);
        softmax_objective(&q, &F);
        if ((margin = kink_margin(&net, SM_ROWS)) >= MARGIN)
            break;
    }
    CU_ASSERT(margin >= MARGIN);
    poison_grads(&net);
    softmax_objective(&q, &F);
    mg_loss_softmax(dl, mg_net_logits(&net), q.labels, SM_ROWS, SM_K, q.norm, NULL);
    mg_net_backward(&net, NULL, dl, 0, SM_ROWS, MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_SET_GRADS);
    L.n = 0;
    add_net(&L, &net, "C");
    printf("\n    classifier: drawn %d time(s), kink margin %.3g", a + 1, margin);
    gc_check_coordinates("classifier", softmax_objective, &q, &L);
    gc_check_direction("classifier", softmax_objective, &q, &L);
    mg_net_free(&net);
}

/* ---- the discriminator: the paper's shape, small ---- */

/* maxout 6x3 -> maxout 5x3 -> sigmoid 1, dropout keep 0.8 / 0.5 / 0.5 on the layer inputs. */
static mg_net_spec small_d_spec(void)
{
    mg_net_spec s = {.n_layers = 3};
    s.layers[0] = layer(MG_ACT_MAXOUT, 6, 3, 0.8, 0.8);
    s.layers[1] = layer(MG_ACT_MAXOUT, 5, 3, 0.8, 0.5);
    s.layers[2] = layer(MG_ACT_SIGMOID, 1, 1, 0.8, 0.5);
    return s;
}

enum { D_IN = 8, D_ROWS = 4 }; // D_ROWS real rows and D_ROWS fake rows

typedef struct {
    mg_net d;
    mg_real *x;        // (2 D_ROWS, D_IN): real rows, then fake rows
    mg_dropout drop;
    uint64_t ids[2 * D_ROWS];
    double norm;
} d_problem;

static double d_objective(void *ctx, double *F)
{
    d_problem *p = ctx;
    mg_net_forward(&p->d, p->x, 2 * D_ROWS, &p->drop);
    const mg_real *l = mg_net_logits(&p->d); // (2 D_ROWS, 1)
    double f = mg_loss_d(NULL, NULL, l, l + D_ROWS, D_ROWS, p->norm, NULL, NULL) / p->norm;
    *F = f;
    return f;
}

/* mg_loss_d on a real + fake batch through D, backward from the logits: D's step of training. */
static void check_discriminator(mg_gemm_fn gemm, const char *what)
{
    d_problem p = {.norm = D_ROWS};
    mg_net_spec spec = small_d_spec();
    mg_test_net(&p.d, &spec, D_IN, 2 * D_ROWS);
    p.d.gemm = gemm;
    for (int i = 0; i < 2 * D_ROWS; i++)
        p.ids[i] = 100 + (uint64_t)i;
    p.drop = (mg_dropout){.key = {2014, 4 * MG_MAX_LAYERS, 3}, .row_id = p.ids};
    mg_real x[2 * D_ROWS * D_IN], dx[2 * D_ROWS * D_IN], dl[2 * D_ROWS];
    p.x = x;
    int a = 0;
    double F, margin = 0;
    for (; a < 100; a++) {
        draw_params(&p.d, 21, (uint64_t)a);
        fill(x, 2 * D_ROWS * D_IN, 0, 1, 2000 + a); // pixels
        d_objective(&p, &F);
        if ((margin = kink_margin(&p.d, 2 * D_ROWS)) >= MARGIN)
            break;
    }
    CU_ASSERT(margin >= MARGIN);
    poison_grads(&p.d);
    d_objective(&p, &F);
    const mg_real *l = mg_net_logits(&p.d);
    mg_loss_d(dl, dl + D_ROWS, l, l + D_ROWS, D_ROWS, p.norm, NULL, NULL);
    mg_net_backward(&p.d, dx, dl, 0, 2 * D_ROWS, MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_SET_GRADS);
    gc_tensors L = {.n = 0};
    add_net(&L, &p.d, "D");
    gc_add(&L, "x", x, dx, 2 * D_ROWS * D_IN);
    printf("\n    %s: drawn %d time(s), kink margin %.3g", what, a + 1, margin);
    gc_check_coordinates(what, d_objective, &p, &L);
    gc_check_direction(what, d_objective, &p, &L);
    mg_net_free(&p.d);
}

static void test_discriminator(void)
{
    check_discriminator(mg_gemm_blas, "D (blas)");
    check_discriminator(mg_gemm_ref, "D (ref)");
}

/* ---- the generator through a fixed discriminator: G's step of training ---- */

enum { Z_DIM = 3 };

typedef struct {
    mg_net g, d;
    mg_real *z;          // (D_ROWS, Z_DIM)
    mg_real *xd;         // (2 D_ROWS, D_IN) D's input: real rows, then G's
    int stacked;         // D sees [real; fake] and G's rows start at row0 = D_ROWS
    enum mg_gen_loss loss;
    mg_dropout gdrop, ddrop;
    uint64_t ids[2 * D_ROWS];
    double norm;
} g_problem;

/* Leaves D's activations for G's rows at row0 of its last forward pass. */
static double g_objective_at(g_problem *p, int *row0)
{
    const mg_real *fake = mg_net_forward(&p->g, p->z, D_ROWS, &p->gdrop); // (D_ROWS, D_IN)
    const mg_real *dinp = fake;
    int rows = D_ROWS;
    *row0 = 0;
    if (p->stacked) {
        memcpy(p->xd + D_ROWS * D_IN, fake, D_ROWS * D_IN * sizeof *fake);
        dinp = p->xd;
        rows = 2 * D_ROWS;
        *row0 = D_ROWS;
    }
    mg_net_forward(&p->d, dinp, rows, &p->ddrop);
    const mg_real *l = mg_net_logits(&p->d) + *row0;
    return mg_loss_g(NULL, l, D_ROWS, p->loss, p->norm) / p->norm;
}

static double g_objective(void *ctx, double *F)
{
    int row0;
    double f = g_objective_at(ctx, &row0);
    *F = fabs(f);
    return f;
}

static void check_generator(int stacked, enum mg_gen_loss loss, const char *what)
{
    g_problem p = {.stacked = stacked, .loss = loss, .norm = D_ROWS};
    mg_net_spec dspec = small_d_spec();
    mg_net_spec gspec = {.n_layers = 3};
    gspec.layers[0] = layer(MG_ACT_RELU, 6, 1, 1, 1);
    gspec.layers[1] = layer(MG_ACT_RELU, 7, 1, 1, 0.9);
    gspec.layers[2] = layer(MG_ACT_SIGMOID, D_IN, 1, 1, 1);
    mg_test_net(&p.g, &gspec, Z_DIM, D_ROWS);
    mg_test_net(&p.d, &dspec, D_IN, 2 * D_ROWS);
    for (int i = 0; i < 2 * D_ROWS; i++)
        p.ids[i] = 300 + (uint64_t)i;
    p.gdrop = (mg_dropout){.key = {7, 2 * MG_MAX_LAYERS, 1}, .row_id = p.ids + D_ROWS};
    p.ddrop = (mg_dropout){.key = {7, 3 * MG_MAX_LAYERS, 1},
                           .row_id = stacked ? p.ids : p.ids + D_ROWS};
    mg_real z[D_ROWS * Z_DIM], xd[2 * D_ROWS * D_IN], dx[D_ROWS * D_IN], dl[D_ROWS];
    p.z = z;
    p.xd = xd;
    int a = 0, row0;
    double margin = 0;
    for (; a < 100; a++) {
        draw_params(&p.g, 31, (uint64_t)a);
        draw_params(&p.d, 41, (uint64_t)a);
        fill(z, D_ROWS * Z_DIM, -1, 1, 3000 + a);
        fill(xd, D_ROWS * D_IN, 0, 1, 4000 + a); // real rows
        g_objective_at(&p, &row0);
        margin = fmin(kink_margin(&p.g, D_ROWS), kink_margin(&p.d, stacked ? 2 * D_ROWS : D_ROWS));
        if (margin >= MARGIN)
            break;
    }
    CU_ASSERT(margin >= MARGIN);

    /* The trainer's G step: D backward from the logits without weight gradients gives d(fake),
     * then G backward from its output. */
    poison_grads(&p.g);
    mg_test_zero_grads(&p.d);
    g_objective_at(&p, &row0);
    mg_loss_g(dl, mg_net_logits(&p.d) + row0, D_ROWS, loss, p.norm);
    mg_net_backward(&p.d, dx, dl, row0, D_ROWS,
                    MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_NO_WEIGHTS);
    mg_net_backward(&p.g, NULL, dx, 0, D_ROWS, MG_BACKWARD_SET_GRADS);
    for (size_t i = 0; i < p.d.n_params + MG_STATS_SLOTS; i++)
        CU_ASSERT_EQUAL(p.d.grads[i], 0);

    gc_tensors L = {.n = 0};
    add_net(&L, &p.g, "G");
    printf("\n    %s: drawn %d time(s), kink margin %.3g", what, a + 1, margin);
    gc_check_coordinates(what, g_objective, &p, &L);
    gc_check_direction(what, g_objective, &p, &L);
    mg_net_free(&p.g);
    mg_net_free(&p.d);
}

static void test_generator(void)
{
    check_generator(0, MG_GEN_LOSS_NONSATURATING, "G through D, nonsaturating");
    check_generator(0, MG_GEN_LOSS_MINIMAX, "G through D, minimax");
    check_generator(1, MG_GEN_LOSS_NONSATURATING, "G through D on [real; fake], nonsaturating");
    check_generator(1, MG_GEN_LOSS_MINIMAX, "G through D on [real; fake], minimax");
}

/* ---- convolutional networks: DCGAN's kinds of layer and the paper's CIFAR-10 D, small ---- */

enum { C_ROWS = 4, C_IMG = 2 * 6 * 6 }; // images (2, 6, 6); C_ROWS real and C_ROWS fake rows

/* D as DCGAN builds it: conv 4x4 stride 2 + leaky ReLU, conv (no bias) + batch norm + leaky ReLU,
 * conv to 1 x 1 + sigmoid. (2, 6, 6) -> (4, 3, 3) -> (5, 3, 3) -> (1, 1, 1). */
static mg_net_spec dcgan_d_spec(void)
{
    mg_net_spec s = {.n_layers = 4};
    s.layers[0] = mg_test_conv_layer(MG_OP_CONV, MG_ACT_LEAKY_RELU, 4, 4, 2, 1);
    s.layers[1] = mg_test_conv_layer(MG_OP_CONV, MG_ACT_LINEAR, 5, 3, 1, 1);
    s.layers[1].bias = 0;
    s.layers[2] = mg_test_bn_layer(MG_ACT_LEAKY_RELU);
    s.layers[3] = mg_test_conv_layer(MG_OP_CONV, MG_ACT_SIGMOID, 1, 3, 1, 0);
    return s;
}

/* G as DCGAN builds it: deconv from (3, 1, 1) to (6, 3, 3) without bias, batch norm + ReLU,
 * deconv stride 2 to (2, 6, 6) + tanh, its bias one per output value (tied_bias false). */
static mg_net_spec dcgan_g_spec(void)
{
    mg_net_spec s = {.n_layers = 3};
    s.layers[0] = mg_test_conv_layer(MG_OP_DECONV, MG_ACT_LINEAR, 6, 3, 1, 0);
    s.layers[0].bias = 0;
    s.layers[1] = mg_test_bn_layer(MG_ACT_RELU);
    s.layers[2] = mg_test_conv_layer(MG_OP_DECONV, MG_ACT_TANH, 2, 4, 2, 1);
    s.layers[2].tied_bias = 0;
    return s;
}

/* The paper's CIFAR-10 D in small: maxout_conv (3 channels x 2 pieces, kernel 3, pad 2, pools of
 * 3 every 2, overlapping; untied biases), dense maxout, sigmoid; dropout on every input.
 * (2, 6, 6) -> conv (6, 8, 8) -> maxout (3, 8, 8) -> pool (3, 4, 4) -> 5 -> 1. */
static mg_net_spec paper_conv_d_spec(void)
{
    mg_net_spec s = {.n_layers = 3};
    s.layers[0] = mg_test_conv_layer(MG_OP_MAXOUT_CONV, MG_ACT_MAXOUT, 3, 3, 1, 2);
    s.layers[0].pieces = 2;
    s.layers[0].pool[0] = s.layers[0].pool[1] = 3;
    s.layers[0].pool_stride[0] = s.layers[0].pool_stride[1] = 2;
    s.layers[0].tied_bias = 0;
    s.layers[0].keep = 0.8;
    s.layers[0].input_scale = 1.25;
    s.layers[1] = layer(MG_ACT_MAXOUT, 5, 3, 0.3, 0.5);
    s.layers[2] = layer(MG_ACT_SIGMOID, 1, 1, 0.3, 0.5);
    return s;
}

typedef struct {
    mg_net g, d;
    mg_real z[C_ROWS * Z_DIM];
    mg_real x[2 * C_ROWS * C_IMG]; // D's input: real rows, then fake rows
    mg_dropout gdrop, ddrop;
    uint64_t ids[2 * C_ROWS];
    double norm;
} conv_problem;

/* D's step: mg_loss_d on real and fake rows, its batch norms per group (real, fake). */
static double conv_d_objective(void *ctx, double *F)
{
    conv_problem *p = ctx;
    mg_net_forward(&p->d, p->x, 2 * C_ROWS, &p->ddrop);
    const mg_real *l = mg_net_logits(&p->d);
    const double f = mg_loss_d(NULL, NULL, l, l + C_ROWS, C_ROWS, p->norm, NULL, NULL) / p->norm;
    *F = f;
    return f;
}

static void check_conv_discriminator(mg_net_spec spec, mg_gemm_fn gemm, const char *what)
{
    conv_problem p = {.norm = C_ROWS};
    mg_test_net_shape(&p.d, &spec, 2, 6, 6, 2 * C_ROWS, 2);
    p.d.gemm = gemm;
    for (int i = 0; i < 2 * C_ROWS; i++)
        p.ids[i] = 500 + (uint64_t)i;
    p.ddrop = (mg_dropout){.key = {2014, 4 * MG_MAX_LAYERS, 5}, .row_id = p.ids, .groups = 2};
    mg_real dx[2 * C_ROWS * C_IMG], dl[2 * C_ROWS];
    int a = 0;
    double F, margin = 0;
    for (; a < 200; a++) {
        draw_params(&p.d, 51, (uint64_t)a);
        fill(p.x, 2 * C_ROWS * C_IMG, -1, 1, 5000 + a);
        conv_d_objective(&p, &F);
        if ((margin = kink_margin(&p.d, 2 * C_ROWS)) >= MARGIN)
            break;
    }
    CU_ASSERT(margin >= MARGIN);
    poison_grads(&p.d);
    conv_d_objective(&p, &F);
    const mg_real *l = mg_net_logits(&p.d);
    mg_loss_d(dl, dl + C_ROWS, l, l + C_ROWS, C_ROWS, p.norm, NULL, NULL);
    mg_net_backward(&p.d, dx, dl, 0, 2 * C_ROWS, MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_SET_GRADS);
    gc_tensors L = {.n = 0};
    add_net(&L, &p.d, "D");
    gc_add(&L, "x", p.x, dx, 2 * C_ROWS * C_IMG);
    printf("\n    %s: drawn %d time(s), kink margin %.3g", what, a + 1, margin);
    gc_check_coordinates(what, conv_d_objective, &p, &L);
    gc_check_direction(what, conv_d_objective, &p, &L);
    mg_net_free(&p.d);
}

static void test_conv_discriminator(void)
{
    check_conv_discriminator(dcgan_d_spec(), mg_gemm_blas, "DCGAN D (blas)");
    check_conv_discriminator(dcgan_d_spec(), mg_gemm_ref, "DCGAN D (ref)");
    check_conv_discriminator(paper_conv_d_spec(), mg_gemm_blas, "paper's conv D (blas)");
    check_conv_discriminator(paper_conv_d_spec(), mg_gemm_ref, "paper's conv D (ref)");
}

/* G's step: G's fake rows through D (D's batch norm on the fake rows alone, as PyTorch's netD(fake)
 * runs it), the generator loss; G's batch norms on its rows as one group. */
static double conv_g_objective_at(conv_problem *p, enum mg_gen_loss loss)
{
    const mg_real *fake = mg_net_forward(&p->g, p->z, C_ROWS, &p->gdrop); // (C_ROWS, C_IMG)
    mg_net_forward(&p->d, fake, C_ROWS, &p->ddrop);
    return mg_loss_g(NULL, mg_net_logits(&p->d), C_ROWS, loss, p->norm) / p->norm;
}

static enum mg_gen_loss conv_g_loss;

static double conv_g_objective(void *ctx, double *F)
{
    const double f = conv_g_objective_at(ctx, conv_g_loss);
    *F = fabs(f);
    return f;
}

static void check_conv_generator(enum mg_gen_loss loss, const char *what)
{
    conv_problem p = {.norm = C_ROWS};
    mg_net_spec gspec = dcgan_g_spec(), dspec = dcgan_d_spec();
    mg_test_net_shape(&p.g, &gspec, Z_DIM, 1, 1, C_ROWS, 1);
    mg_test_net_shape(&p.d, &dspec, 2, 6, 6, 2 * C_ROWS, 2);
    CU_ASSERT_EQUAL_FATAL(p.g.out_dim, C_IMG);
    for (int i = 0; i < 2 * C_ROWS; i++)
        p.ids[i] = 700 + (uint64_t)i;
    p.gdrop = (mg_dropout){.key = {7, 2 * MG_MAX_LAYERS, 1}, .row_id = p.ids, .groups = 1};
    p.ddrop = (mg_dropout){.key = {7, 3 * MG_MAX_LAYERS, 1}, .row_id = p.ids, .groups = 1};
    conv_g_loss = loss;
    mg_real dx[C_ROWS * C_IMG], dl[C_ROWS];
    int a = 0;
    double margin = 0;
    for (; a < 200; a++) {
        draw_params(&p.g, 61, (uint64_t)a);
        draw_params(&p.d, 71, (uint64_t)a);
        fill(p.z, C_ROWS * Z_DIM, -1, 1, 6000 + a);
        conv_g_objective_at(&p, loss);
        margin = fmin(kink_margin(&p.g, C_ROWS), kink_margin(&p.d, C_ROWS));
        if (margin >= MARGIN)
            break;
    }
    CU_ASSERT(margin >= MARGIN);
    poison_grads(&p.g);
    mg_test_zero_grads(&p.d);
    conv_g_objective_at(&p, loss);
    mg_loss_g(dl, mg_net_logits(&p.d), C_ROWS, loss, p.norm);
    mg_net_backward(&p.d, dx, dl, 0, C_ROWS, MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_NO_WEIGHTS);
    mg_net_backward(&p.g, NULL, dx, 0, C_ROWS, MG_BACKWARD_SET_GRADS);
    for (size_t i = 0; i < p.d.n_params + MG_STATS_SLOTS; i++)
        CU_ASSERT_EQUAL(p.d.grads[i], 0);
    gc_tensors L = {.n = 0};
    add_net(&L, &p.g, "G");
    printf("\n    %s: drawn %d time(s), kink margin %.3g", what, a + 1, margin);
    gc_check_coordinates(what, conv_g_objective, &p, &L);
    gc_check_direction(what, conv_g_objective, &p, &L);
    mg_net_free(&p.g);
    mg_net_free(&p.d);
}

static void test_conv_generator(void)
{
    check_conv_generator(MG_GEN_LOSS_NONSATURATING, "DCGAN G through D, nonsaturating");
    check_conv_generator(MG_GEN_LOSS_MINIMAX, "DCGAN G through D, minimax");
}

/* ---- conditional G and D (labels.h): the one-hot label joined to their inputs ----
 *
 * The trainer's conditional step in small: G takes [z, one-hot(y)], D takes [x, label part] (flat
 * for a dense D, K constant maps after the image's channels for a conv D), the label part never
 * dropped out; D's step differentiates with respect to its parameters and the image part of its
 * input (the packed head of each joined row's gradient), G's step through D's image part. */

enum { K_CLASSES = 3, CD_ROWS = 4 };

typedef struct {
    mg_net g, d;
    size_t dim, plane, d_in;     // image values, values per label map, D's input per row
    mg_real z[CD_ROWS * Z_DIM];
    mg_real zin[CD_ROWS * (Z_DIM + K_CLASSES)];
    mg_real *x;                  // (2 CD_ROWS, dim) real images, then fake ones (D's step)
    mg_real *xd;                 // (2 CD_ROWS, d_in) D's joined input
    int32_t labels[2 * CD_ROWS]; // real rows', then fake rows'
    mg_dropout gdrop, ddrop;
    uint64_t ids[2 * CD_ROWS];
    double norm;
} cond_problem;

static double cond_d_objective(void *ctx, double *F)
{
    cond_problem *p = ctx;
    mg_label_join(p->xd, p->x, 2 * CD_ROWS, p->dim, p->labels, K_CLASSES, p->plane);
    mg_net_forward(&p->d, p->xd, 2 * CD_ROWS, &p->ddrop);
    const mg_real *l = mg_net_logits(&p->d);
    const double f = mg_loss_d(NULL, NULL, l, l + CD_ROWS, CD_ROWS, p->norm, NULL, NULL) / p->norm;
    *F = f;
    return f;
}

static double cond_g_objective_at(cond_problem *p)
{
    const int32_t *fake_labels = p->labels + CD_ROWS;
    mg_label_join(p->zin, p->z, CD_ROWS, Z_DIM, fake_labels, K_CLASSES, 1);
    const mg_real *fake = mg_net_forward(&p->g, p->zin, CD_ROWS, &p->gdrop); // (CD_ROWS, dim)
    mg_label_join(p->xd, fake, CD_ROWS, p->dim, fake_labels, K_CLASSES, p->plane);
    mg_net_forward(&p->d, p->xd, CD_ROWS, &p->ddrop);
    return mg_loss_g(NULL, mg_net_logits(&p->d), CD_ROWS, MG_GEN_LOSS_NONSATURATING, p->norm) /
           p->norm;
}

static double cond_g_objective(void *ctx, double *F)
{
    const double f = cond_g_objective_at(ctx);
    *F = fabs(f);
    return f;
}

/* D (and G through it) for images of shape (c, h, w); conv: dcgan's networks with dropout on
 * D's input, else small_d_spec's maxouts and a dense G. */
static void check_conditional(int conv, const char *what)
{
    const int c = conv ? 2 : 1, h = conv ? 6 : 1, w = conv ? 6 : D_IN;
    cond_problem p = {.norm = CD_ROWS};
    p.dim = (size_t)c * h * w;
    p.plane = conv ? (size_t)h * w : 1;
    p.d_in = p.dim + K_CLASSES * p.plane;
    mg_net_spec dspec = conv ? dcgan_d_spec() : small_d_spec(), gspec;
    if (conv) {
        dspec.layers[0].keep = 0.8;
        dspec.layers[0].input_scale = 1.25;
        gspec = dcgan_g_spec();
        mg_test_net_shape(&p.d, &dspec, c + K_CLASSES, h, w, 2 * CD_ROWS, 2);
    } else {
        gspec = (mg_net_spec){.n_layers = 2};
        gspec.layers[0] = layer(MG_ACT_RELU, 6, 1, 1, 0.9);
        gspec.layers[1] = layer(MG_ACT_SIGMOID, D_IN, 1, 1, 1);
        mg_test_net_shape(&p.d, &dspec, (int)p.d_in, 1, 1, 2 * CD_ROWS, 2);
    }
    mg_test_net_shape(&p.g, &gspec, Z_DIM + K_CLASSES, 1, 1, CD_ROWS, 1);
    CU_ASSERT_EQUAL_FATAL((size_t)p.g.out_dim, p.dim);
    CU_ASSERT_EQUAL_FATAL((size_t)p.d.in_dim, p.d_in);
    p.g.keep_in = K_CLASSES;
    p.d.keep_in = (int)(K_CLASSES * p.plane);
    p.x = malloc(2 * CD_ROWS * p.dim * sizeof *p.x);
    p.xd = malloc(2 * CD_ROWS * p.d_in * sizeof *p.xd);
    mg_real *dxd = malloc(2 * CD_ROWS * p.d_in * sizeof *dxd), dl[2 * CD_ROWS];
    CU_ASSERT_FATAL(p.x && p.xd && dxd);
    for (int i = 0; i < 2 * CD_ROWS; i++) {
        p.ids[i] = 900 + (uint64_t)i;
        p.labels[i] = (int32_t)((i * 2 + 1) % K_CLASSES);
    }

    /* D's step. */
    p.ddrop = (mg_dropout){.key = {2014, 4 * MG_MAX_LAYERS, 9}, .row_id = p.ids, .groups = 2};
    int a = 0;
    double F, margin = 0;
    for (; a < 200; a++) {
        draw_params(&p.d, 81, (uint64_t)a);
        fill(p.x, 2 * CD_ROWS * p.dim, conv ? -1 : 0, 1, 8000 + a);
        cond_d_objective(&p, &F);
        if ((margin = kink_margin(&p.d, 2 * CD_ROWS)) >= MARGIN)
            break;
    }
    CU_ASSERT(margin >= MARGIN);
    poison_grads(&p.d);
    cond_d_objective(&p, &F);
    const mg_real *l = mg_net_logits(&p.d);
    mg_loss_d(dl, dl + CD_ROWS, l, l + CD_ROWS, CD_ROWS, p.norm, NULL, NULL);
    mg_net_backward(&p.d, dxd, dl, 0, 2 * CD_ROWS,
                    MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_SET_GRADS);
    /* The label part of D's input was never dropped: its masks are 1. */
    int dropped_label = 0, dropped_image = 0;
    for (int i = 0; i < 2 * CD_ROWS; i++)
        for (size_t j = 0; j < p.d_in; j++) {
            const mg_real m = p.d.mask[0][i * p.d_in + j];
            dropped_label += j >= p.dim && m != 1;
            dropped_image += j < p.dim && m == 0;
        }
    CU_ASSERT_EQUAL(dropped_label, 0);
    CU_ASSERT(dropped_image > 0);
    mg_rows_head(dxd, dxd, 2 * CD_ROWS, p.dim, p.d_in);
    gc_tensors L = {.n = 0};
    add_net(&L, &p.d, "D");
    gc_add(&L, "x", p.x, dxd, 2 * CD_ROWS * p.dim);
    char name[96];
    snprintf(name, sizeof name, "%s D", what);
    printf("\n    %s: drawn %d time(s), kink margin %.3g", name, a + 1, margin);
    gc_check_coordinates(name, cond_d_objective, &p, &L);
    gc_check_direction(name, cond_d_objective, &p, &L);

    /* G's step through D, on the fake rows alone. */
    p.gdrop = (mg_dropout){.key = {7, 2 * MG_MAX_LAYERS, 1}, .row_id = p.ids + CD_ROWS,
                           .groups = 1};
    p.ddrop = (mg_dropout){.key = {7, 3 * MG_MAX_LAYERS, 1}, .row_id = p.ids + CD_ROWS,
                           .groups = 1};
    for (a = 0; a < 200; a++) {
        draw_params(&p.g, 91, (uint64_t)a);
        draw_params(&p.d, 101, (uint64_t)a);
        fill(p.z, CD_ROWS * Z_DIM, -1, 1, 9000 + a);
        cond_g_objective_at(&p);
        margin = fmin(kink_margin(&p.g, CD_ROWS), kink_margin(&p.d, CD_ROWS));
        if (margin >= MARGIN)
            break;
    }
    CU_ASSERT(margin >= MARGIN);
    poison_grads(&p.g);
    mg_test_zero_grads(&p.d);
    cond_g_objective_at(&p);
    mg_loss_g(dl, mg_net_logits(&p.d), CD_ROWS, MG_GEN_LOSS_NONSATURATING, p.norm);
    mg_net_backward(&p.d, dxd, dl, 0, CD_ROWS, MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_NO_WEIGHTS);
    mg_rows_head(dxd, dxd, CD_ROWS, p.dim, p.d_in);
    mg_net_backward(&p.g, NULL, dxd, 0, CD_ROWS, MG_BACKWARD_SET_GRADS);
    L.n = 0;
    add_net(&L, &p.g, "G");
    snprintf(name, sizeof name, "%s G through D", what);
    printf("\n    %s: drawn %d time(s), kink margin %.3g", name, a + 1, margin);
    gc_check_coordinates(name, cond_g_objective, &p, &L);
    gc_check_direction(name, cond_g_objective, &p, &L);
    free(p.x);
    free(p.xd);
    free(dxd);
    mg_net_free(&p.g);
    mg_net_free(&p.d);
}

static void test_conditional(void)
{
    check_conditional(0, "conditional MLP, one-hot label");
    check_conditional(1, "conditional DCGAN, label maps");
}

static const mg_test tests[] = {
    {"linear", test_linear},
    {"relu", test_relu},
    {"leaky_relu", test_leaky_relu},
    {"sigmoid", test_sigmoid},
    {"tanh", test_tanh},
    {"maxout", test_maxout},
    {"dropout", test_dropout},
    {"loss_d", test_loss_d},
    {"loss_g_nonsaturating", test_loss_g_nonsaturating},
    {"loss_g_minimax", test_loss_g_minimax},
    {"loss_softmax", test_loss_softmax},
    {"discriminator", test_discriminator},
    {"generator", test_generator},
    {"conv_discriminator", test_conv_discriminator},
    {"conv_generator", test_conv_generator},
    {"conditional", test_conditional},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("gradcheck", tests, argc, argv);
}
