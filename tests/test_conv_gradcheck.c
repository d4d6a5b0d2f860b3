/* Gradient checks of the convolutional kernels by central differences, in double precision: this
 * file links the library built with MG_REAL_DOUBLE, so it checks the production kernels.
 *
 * The method is test_gradcheck.c's. Each check evaluates f = sum_i c_i out_i with fixed random
 * c (so dout = c) and compares the analytic gradient of every input tensor with
 * (f(x + h) - f(x - h)) / 2h, coordinate by coordinate, then along one random direction over all
 * tensors at once. h = 1e-6; the tolerance 100 (h^2 + eps / h) F, F = sum |c_i out_i|, covers the
 * Taylor remainder (h^2 f''' / 6) and the rounding of f (eps F / h), with a factor 100 for the
 * length of the computations; a wrong gradient is off by the size of a term, 1e-3 to 1.
 *
 * Kinks. The max operations (channel maxout, max pooling) are checked on inputs whose values are
 * all distinct multiples of DELTA = 1e-2 (a random permutation of a lattice): every winner leads
 * every other candidate by at least DELTA >= MARGIN, and a step of h = 1e-6 cannot change a
 * winner. Kinks are avoided by construction; the margin is measured and asserted as well. */
#include "mpigan/conv.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/rng.h"

#include "gradcheck.h"
#include "testlib.h"

#ifndef MG_REAL_DOUBLE
#error "test_conv_gradcheck links the double build (mpigan_f64): compile with -DMG_REAL_DOUBLE"
#endif

static const double MARGIN = 1e-3;
static const double DELTA = 1e-2;

static void fill(mg_real *x, size_t n, double lo, double hi, uint64_t row)
{
    const mg_rng_key key = {.seed = 1406, .stream = 2662, .step = 0};
    mg_rng_uniform(x, n, lo, hi, &key, row);
}

static mg_real *alloc(size_t n)
{
    mg_real *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    return p;
}

/* f = sum c_i y_i and F = sum |c_i y_i|. */
static double dot(const mg_real *c, const mg_real *y, size_t n, double *F)
{
    double f = 0, fa = 0;
    for (size_t i = 0; i < n; i++) {
        f += c[i] * y[i];
        fa += fabs(c[i] * y[i]);
    }
    *F = fa;
    return f;
}

/* ---- conv and deconv: f = sum c out, gradients for x, w and b ---- */

typedef struct {
    mg_conv_shape s;
    int N;
    mg_real *x, *w, *b, *c, *y, *work; // b NULL: no bias
} conv_problem;

static double conv_objective(void *ctx, double *F)
{
    conv_problem *p = ctx;
    const mg_conv_shape *s = &p->s;
    if (s->transposed)
        mg_deconv_forward(p->y, p->x, p->w, p->b, p->N, s, p->work, mg_gemm_blas);
    else
        mg_conv_forward(p->y, p->x, p->w, p->b, p->N, s, p->work, mg_gemm_blas);
    return dot(p->c, p->y, (size_t)p->N * s->OC * s->OH * s->OW, F);
}

/* s: an unchecked shape (transposed: a deconv). */
static void check_conv(const char *what, mg_conv_shape s, int transposed, int N, int bias)
{
    mg_error err = {""};
    const int rc = transposed ? mg_deconv_shape_init(&s, what, &err)
                              : mg_conv_shape_init(&s, what, &err);
    if (rc) {
        fprintf(stderr, "\n  %s\n", err.msg);
        CU_FAIL_FATAL("shape refused");
    }
    const size_t nx = (size_t)N * s.IC * s.H * s.W, ny = (size_t)N * s.OC * s.OH * s.OW;
    const size_t nw = mg_conv_weight_size(&s), nb = mg_conv_bias_size(&s);
    conv_problem p = {.s = s, .N = N, .x = alloc(nx), .w = alloc(nw),
                      .b = bias ? alloc(nb) : NULL, .c = alloc(ny), .y = alloc(ny),
                      .work = alloc(mg_conv_work_size(&s, N))};
    mg_real *dx = alloc(nx), *dw = alloc(nw), *db = alloc(nb);
    fill(p.x, nx, -1, 1, 1);
    fill(p.w, nw, -1, 1, 2);
    if (p.b)
        fill(p.b, nb, -1, 1, 3);
    fill(p.c, ny, -1, 1, 4);
    double F;
    conv_objective(&p, &F);
    if (transposed)
        mg_deconv_backward(dx, dw, p.b ? db : NULL, p.c, p.x, p.w, N, &s, 0, p.work, mg_gemm_blas);
    else
        mg_conv_backward(dx, dw, p.b ? db : NULL, p.c, p.x, p.w, N, &s, 0, p.work, mg_gemm_blas);
    gc_tensors L = {.n = 0};
    gc_add(&L, "x", p.x, dx, nx);
    gc_add(&L, "w", p.w, dw, nw);
    if (p.b)
        gc_add(&L, s.untied ? "b (untied)" : "b (tied)", p.b, db, nb);
    char name[160];
    snprintf(name, sizeof name, "%s %dx%dx%d -> %dx%dx%d, kernel %dx%d stride %dx%d pad %dx%d%s, "
             "%d image(s) per GEMM", what, s.IC, s.H, s.W, s.OC, s.OH, s.OW, s.KH, s.KW, s.SH,
             s.SW, s.PH, s.PW, s.OPH || s.OPW ? " out_pad" : "", s.group < N ? s.group : N);
    gc_check_coordinates(name, conv_objective, &p, &L);
    gc_check_direction(name, conv_objective, &p, &L);
    free(p.x), free(p.w), free(p.b), free(p.c), free(p.y), free(p.work);
    free(dx), free(dw), free(db);
}

/* Stride 1 and 2, padding (p, 4 - p) for p = 0..4, a 3x2 kernel on 2 x 5 x 6 inputs; tied and
 * untied bias in turn; groups of 1 image and automatic (all 3 in one GEMM). */
static void test_conv(void)
{
    for (int stride = 1; stride <= 2; stride++)
        for (int p = 0; p <= 4; p++) {
            const mg_conv_shape s = {.IC = 2, .H = 5, .W = 6, .OC = 3, .KH = 3, .KW = 2,
                                     .SH = stride, .SW = stride, .PH = p, .PW = 4 - p,
                                     .untied = p % 2, .group = stride == 1 ? 1 : 0};
            check_conv("conv", s, 0, 3, 1);
        }
    /* Unequal strides, no bias. */
    const mg_conv_shape s = {.IC = 2, .H = 6, .W = 5, .OC = 2, .KH = 2, .KW = 3, .SH = 2, .SW = 1,
                             .PH = 1, .PW = 2};
    check_conv("conv", s, 0, 2, 0);
}

/* Strides 2 and 3 (and mixed), with and without output padding, tied and untied bias. */
static void test_deconv(void)
{
    const int strides[3][2] = {{2, 2}, {3, 3}, {2, 3}};
    for (int st = 0; st < 3; st++)
        for (int op = 0; op < 2; op++) {
            const int SH = strides[st][0], SW = strides[st][1];
            const mg_conv_shape s = {.IC = 2, .H = 3, .W = 4, .OC = 2, .KH = 4, .KW = 3, .SH = SH,
                                     .SW = SW, .PH = 1, .PW = op, .OPH = op ? SH - 1 : 0,
                                     .OPW = op, .untied = op, .group = st == 1 ? 1 : 0};
            check_conv("deconv", s, 1, 3, 1);
        }
}

/* Winograd's algorithm (winograd.h), in double: F(4x4, 2x2) on DCGAN's 4x4 stride-2 conv and its
 * deconv (with and without output padding), F(2x2, 2x2) on a 2x2 stride-1 kernel and the deconv
 * of a 2x4 input, F(2x2, 3x3) on 3x3 stride 1, F(4x4, 3x3) on 3x3 stride 1 and on 6x6 stride 2;
 * tied and untied bias. */
static void test_winograd(void)
{
    typedef struct {
        int transposed, IC, H, W, OC, K, S, P, OP, m;
    } wshape;
    static const wshape shapes[] = {
        {0, 2, 8, 8, 3, 4, 2, 1, 0, 4}, {1, 3, 2, 4, 2, 4, 2, 1, 0, 2},
        {1, 2, 4, 4, 2, 4, 2, 1, 1, 4}, {0, 2, 5, 7, 2, 2, 1, 0, 0, 2},
        {0, 2, 6, 6, 2, 3, 1, 1, 0, 2}, {0, 2, 8, 8, 2, 6, 2, 2, 0, 4},
        {0, 2, 4, 8, 2, 3, 1, 1, 0, 4},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const wshape *h = &shapes[k];
        mg_conv_shape s = {.IC = h->IC, .H = h->H, .W = h->W, .OC = h->OC, .KH = h->K,
                           .KW = h->K, .SH = h->S, .SW = h->S, .PH = h->P, .PW = h->P,
                           .OPH = h->OP, .OPW = h->OP, .untied = (int)(k % 2),
                           .algorithm = MG_CONV_WINOGRAD};
        mg_conv_shape t = s;
        mg_error err = {""};
        CU_ASSERT_EQUAL_FATAL(
            (h->transposed ? mg_deconv_shape_init : mg_conv_shape_init)(&t, "winograd", &err), 0);
        CU_ASSERT_EQUAL(t.wino.m, h->m);
        check_conv(h->transposed ? "deconv (winograd)" : "conv (winograd)", s, h->transposed, 3,
                   1);
    }
    /* 17 images: the turn to (C, H, W, N) in blocks of 8 x 8 doubles, and the rest. */
    const mg_conv_shape s = {.IC = 2, .H = 8, .W = 8, .OC = 2, .KH = 4, .KW = 4, .SH = 2, .SW = 2,
                             .PH = 1, .PW = 1, .algorithm = MG_CONV_WINOGRAD};
    check_conv("conv (winograd)", s, 0, 17, 1);
}

/* ---- channel maxout, then overlapping max pooling ---- */

typedef struct {
    int N, U, P;
    mg_pool_shape pool; // C = U
    mg_real *x;         // (N, U P, H, W)
    mg_real *m;         // (N, U, H, W) maxout output
    int32_t *am;        // (N, U, H, W)
    mg_real *y;         // (N, U, OH, OW)
    int32_t *ap;        // (N, U, OH, OW)
    mg_real *c;         // (N, U, OH, OW)
} max_problem;

static double max_objective(void *ctx, double *F)
{
    max_problem *p = ctx;
    const int HW = p->pool.H * p->pool.W;
    mg_channel_maxout_forward(p->m, p->am, p->x, p->N, p->U, p->P, HW);
    mg_maxpool_forward(p->y, p->ap, p->m, p->N, &p->pool);
    return dot(p->c, p->y, (size_t)p->N * p->U * p->pool.OH * p->pool.OW, F);
}

/* The smallest lead of a winner over another candidate, in the last forward pass. */
static double max_margin(const max_problem *p)
{
    const int H = p->pool.H, W = p->pool.W, HW = H * W;
    double m = INFINITY;
    for (int nu = 0; nu < p->N * p->U; nu++)
        for (int i = 0; i < HW; i++) {
            const int a = p->am[nu * HW + i];
            for (int k = 0; k < p->P; k++)
                if (k != a)
                    m = fmin(m, p->m[nu * HW + i] - p->x[((size_t)nu * p->P + k) * HW + i]);
        }
    const mg_pool_shape *s = &p->pool;
    for (int nu = 0; nu < p->N * p->U; nu++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++) {
                const int o = (nu * s->OH + oh) * s->OW + ow, a = p->ap[o];
                for (int h = oh * s->SH; h < oh * s->SH + s->KH && h < H; h++)
                    for (int w = ow * s->SW; w < ow * s->SW + s->KW && w < W; w++)
                        if (h * W + w != a)
                            m = fmin(m, p->y[o] - p->m[nu * HW + h * W + w]);
            }
    return m;
}

/* x (2, 2 x 3, 7, 8) -> channel maxout of 2 units x 3 pieces -> pool 4x3 at stride 2x2: windows
 * overlap in both directions, rows [0, 4), [2, 6), [4, 7) (clipped) and columns [0, 3), [2, 5),
 * [4, 7), [6, 8) (clipped). */
static void test_maxout_pool(void)
{
    max_problem p = {.N = 2, .U = 2, .P = 3,
                     .pool = {.C = 2, .H = 7, .W = 8, .KH = 4, .KW = 3, .SH = 2, .SW = 2}};
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_pool_shape_init(&p.pool, "pool", &err), 0);
    CU_ASSERT_EQUAL(p.pool.OH, 3);
    CU_ASSERT_EQUAL(p.pool.OW, 4);
    const int HW = 7 * 8;
    const size_t nx = (size_t)p.N * p.U * p.P * HW, nm = (size_t)p.N * p.U * HW;
    const size_t ny = (size_t)p.N * p.U * p.pool.OH * p.pool.OW;
    p.x = alloc(nx), p.m = alloc(nm), p.y = alloc(ny), p.c = alloc(ny);
    p.am = malloc(nm * sizeof *p.am), p.ap = malloc(ny * sizeof *p.ap);
    mg_real *dm = alloc(nm), *dx = alloc(nx);
    /* Distinct lattice values in a random order: x_i = (perm_i - nx / 2) DELTA. */
    uint32_t *perm = malloc(nx * sizeof *perm);
    const mg_rng_key key = {.seed = 1406, .stream = 2663, .step = 0};
    mg_rng_permutation(perm, (uint32_t)nx, &key);
    for (size_t i = 0; i < nx; i++)
        p.x[i] = ((double)perm[i] - (double)nx / 2) * DELTA;
    free(perm);
    fill(p.c, ny, -1, 1, 5);
    double F;
    max_objective(&p, &F);
    const double margin = max_margin(&p);
    CU_ASSERT(margin >= MARGIN);
    mg_maxpool_backward(dm, p.c, p.ap, p.N, &p.pool);
    mg_channel_maxout_backward(dx, dm, p.am, p.N, p.U, p.P, HW);
    /* Some maxout output wins two windows: the overlap's sum is exercised. */
    const size_t plane = (size_t)p.pool.OH * p.pool.OW;
    int shared = 0;
    for (size_t i = 0; i < ny; i++)
        for (size_t j = i + 1; j < ny; j++)
            shared |= p.ap[i] == p.ap[j] && i / plane == j / plane;
    CU_ASSERT(shared);
    gc_tensors L = {.n = 0};
    gc_add(&L, "x", p.x, dx, nx);
    printf("\n    maxout + pool: kink margin %.3g, a winner shared by overlapping windows: %s",
           margin, shared ? "yes" : "no");
    gc_check_coordinates("channel maxout 2x3 + pool 4x3 stride 2x2", max_objective, &p, &L);
    gc_check_direction("channel maxout 2x3 + pool 4x3 stride 2x2", max_objective, &p, &L);
    free(p.x), free(p.m), free(p.y), free(p.c), free(p.am), free(p.ap), free(dm), free(dx);
}

/* ---- batch normalisation, training mode: gradients for x, gamma and beta ---- */

typedef struct {
    int N, C, HW, split; // split: rows of the first "rank" (0: one rank)
    mg_real *x, *gamma, *beta, *c, *y;
    double *sums, *stats; // (2, C) each
} bn_problem;

static double bn_objective(void *ctx, double *F)
{
    bn_problem *p = ctx;
    mg_batchnorm_sums(p->sums, p->x, p->N, p->C, p->HW);
    mg_batchnorm_moments(p->stats, p->sums, (double)p->N * p->HW, 1e-5, p->C);
    mg_batchnorm_forward(p->y, p->x, p->stats, p->gamma, p->beta, p->N, p->C, p->HW);
    return dot(p->c, p->y, (size_t)p->N * p->C * p->HW, F);
}

/* The analytic gradient through the phases, on one rank or split over two (rows [0, split) and
 * [split, N)) with the sums added between the phases, as the allreduce would. */
static void check_batchnorm(const char *what, int N, int C, int HW, int split)
{
    bn_problem p = {.N = N, .C = C, .HW = HW, .split = split};
    const size_t n = (size_t)N * C * HW, n1 = (size_t)split * C * HW;
    p.x = alloc(n), p.c = alloc(n), p.y = alloc(n), p.gamma = alloc((size_t)C);
    p.beta = alloc((size_t)C);
    p.sums = malloc(2 * (size_t)C * sizeof *p.sums);
    p.stats = malloc(2 * (size_t)C * sizeof *p.stats);
    mg_real *dx = alloc(n), *dgamma = alloc((size_t)C), *dbeta = alloc((size_t)C);
    double *b = malloc(2 * (size_t)C * sizeof *b), *b2 = malloc(2 * (size_t)C * sizeof *b2);
    fill(p.x, n, -1, 3, 6);
    fill(p.c, n, -1, 1, 7);
    fill(p.gamma, (size_t)C, 0.5, 2, 8);
    fill(p.beta, (size_t)C, -1, 1, 9);
    double F;
    bn_objective(&p, &F);
    const double M = (double)N * HW;
    if (!split) {
        mg_batchnorm_backward_sums(b, dgamma, dbeta, p.c, p.x, p.stats, N, C, HW, 0);
        mg_batchnorm_backward(dx, p.c, p.x, p.stats, p.gamma, b, M, N, C, HW);
    } else {
        mg_batchnorm_backward_sums(b, dgamma, dbeta, p.c, p.x, p.stats, split, C, HW, 0);
        mg_batchnorm_backward_sums(b2, dgamma, dbeta, p.c + n1, p.x + n1, p.stats, N - split, C,
                                   HW, 1);
        for (int i = 0; i < 2 * C; i++)
            b[i] += b2[i];
        mg_batchnorm_backward(dx, p.c, p.x, p.stats, p.gamma, b, M, split, C, HW);
        mg_batchnorm_backward(dx + n1, p.c + n1, p.x + n1, p.stats, p.gamma, b, M, N - split, C,
                              HW);
    }
    gc_tensors L = {.n = 0};
    gc_add(&L, "x", p.x, dx, n);
    gc_add(&L, "gamma", p.gamma, dgamma, (size_t)C);
    gc_add(&L, "beta", p.beta, dbeta, (size_t)C);
    gc_check_coordinates(what, bn_objective, &p, &L);
    gc_check_direction(what, bn_objective, &p, &L);
    free(p.x), free(p.c), free(p.y), free(p.gamma), free(p.beta), free(p.sums), free(p.stats);
    free(dx), free(dgamma), free(dbeta), free(b), free(b2);
}

static void test_batchnorm(void)
{
    check_batchnorm("batchnorm flat (6, 4)", 6, 4, 1, 0);
    check_batchnorm("batchnorm flat (6, 4), 2 ranks 2 + 4", 6, 4, 1, 2);
    check_batchnorm("batchnorm spatial (3, 2, 11)", 3, 2, 11, 0);
    check_batchnorm("batchnorm spatial (3, 2, 11), 2 ranks 1 + 2", 3, 2, 11, 1);
}

static const mg_test tests[] = {
    {"conv", test_conv},
    {"deconv", test_deconv},
    {"winograd", test_winograd},
    {"maxout_pool", test_maxout_pool},
    {"batchnorm", test_batchnorm},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("conv_gradcheck", tests, argc, argv);
}
