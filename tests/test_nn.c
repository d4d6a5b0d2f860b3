/* Layer kernels, losses and the network in single precision: the BLAS path against its plain-C
 * twin, values at known points, dropout, partial backward passes, set-up errors.
 * (Gradients themselves are checked in double in test_gradcheck.c.) */
#include "mpigan/nn.h"

#include <fenv.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mpigan/optim.h"
#include "mpigan/fpe.h"

#include "helpers.h"
#include "testlib.h"

/* Test data: fixed values of the library's own generator. */
static void fill_nn(mg_real *x, size_t n, double lo, double hi, uint64_t row)
{
    mg_test_fill(x, n, lo, hi, 20140610, 777, row);
}

static mg_layer_spec layer(const char *name, enum mg_act type, int units, int pieces, double keep)
{
    return mg_test_layer(name, type, units, pieces, 0.5, keep, 0.2);
}

/* ---- GEMM ---- */

/* Both GEMMs on a 2x2 example worked by hand, in all four transpose combinations. */
static void test_gemm_small(void)
{
    const mg_real A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8};
    const mg_real want[4][4] = {
        {19, 22, 43, 50}, // A B
        {17, 23, 39, 53}, // A B^T
        {26, 30, 38, 44}, // A^T B
        {23, 31, 34, 46}, // A^T B^T
    };
    mg_gemm_fn fns[2] = {mg_gemm_blas, mg_gemm_ref};
    for (int f = 0; f < 2; f++)
        for (int t = 0; t < 4; t++) {
            mg_real C[4] = {NAN, NAN, NAN, NAN}; // beta = 0 must not read C
            fns[f](t >> 1, t & 1, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2);
            for (int i = 0; i < 4; i++)
                CU_ASSERT_EQUAL(C[i], want[t][i]);
            fns[f](t >> 1, t & 1, 2, 2, 2, 2, A, 2, B, 2, -1, C, 2); // 2 AB - AB
            for (int i = 0; i < 4; i++)
                CU_ASSERT_EQUAL(C[i], want[t][i]);
        }
}

/* The BLAS against the reference for each transpose combination, with leading dimensions wider
 * than the matrices, alpha and beta not 1. The reference accumulates in double and rounds once;
 * a float BLAS sums K products in float, so element (i, j) may differ by the standard bound
 * gamma_K * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|) with gamma_K ~ K * FLT_EPSILON (plus two
 * roundings for alpha and beta). */
static void test_gemm_blas_vs_ref(void)
{
    enum { M = 13, N = 17, K = 29, PAD = 3 };
    const mg_real alpha = 0.75f, beta = -0.5f;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const int lda = (ta ? M : K) + PAD, ldb = (tb ? K : N) + PAD, ldc = N + PAD;
            mg_real A[(K + PAD) * (M + PAD)], B[(K + PAD) * (N + PAD)];
            mg_real C0[M * ldc], Cb[M * ldc], Cr[M * ldc];
            fill_nn(A, sizeof A / sizeof *A, -1, 1, 1);
            fill_nn(B, sizeof B / sizeof *B, -1, 1, 2);
            fill_nn(C0, sizeof C0 / sizeof *C0, -1, 1, 3);
            for (int zero_beta = 0; zero_beta < 2; zero_beta++) {
                const mg_real be = zero_beta ? 0 : beta;
                memcpy(Cb, C0, sizeof Cb);
                memcpy(Cr, C0, sizeof Cr);
                if (zero_beta)
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++)
                            Cb[i * ldc + j] = Cr[i * ldc + j] = NAN;
                mg_gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, be, Cb, ldc);
                mg_gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, be, Cr, ldc);
                double worst = 0, worst_ratio = 0;
                for (int i = 0; i < M; i++) {
                    for (int j = 0; j < N; j++) {
                        double scale = zero_beta ? 0 : fabs(beta * C0[i * ldc + j]);
                        for (int k = 0; k < K; k++) {
                            double a = ta ? A[k * lda + i] : A[i * lda + k];
                            double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                            scale += fabs(alpha * a * b);
                        }
                        const double tol = (K + 2) * FLT_EPSILON * scale;
                        const double e = fabs((double)Cb[i * ldc + j] - Cr[i * ldc + j]);
                        MG_ASSERT_CLOSE(Cb[i * ldc + j], Cr[i * ldc + j], tol);
                        worst = fmax(worst, e);
                        worst_ratio = fmax(worst_ratio, e / tol);
                    }
                    for (int j = N; j < ldc; j++) { // padding is never written
                        CU_ASSERT_EQUAL(Cb[i * ldc + j], C0[i * ldc + j]);
                        CU_ASSERT_EQUAL(Cr[i * ldc + j], C0[i * ldc + j]);
                    }
                }
                printf("\n    trans (%d,%d) beta %g: max |blas - ref| %.3g, max error/tol %.3g "
                       "(tol = (K+2) eps sum|terms|, K = %d)",
                       ta, tb, be, worst, worst_ratio, K);
            }
        }
}

/* ---- kernels ---- */

static void test_dense_forward_by_hand(void)
{
    // inp (2, 3), W (3, 2), b (2)
    const mg_real inp[6] = {1, 2, 3, -1, 0, 2}, W[6] = {1, 0, 0, 1, 2, -1}, b[2] = {0.5f, -2};
    const mg_real want[4] = {7.5f, -3, 3.5f, -4};
    mg_real out[4];
    mg_dense_forward(out, inp, W, b, 2, 3, 2, mg_gemm_blas);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(out[i], want[i]);
    mg_dense_forward(out, inp, W, b, 2, 3, 2, mg_gemm_ref);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(out[i], want[i]);

    /* Backward: dW += inp^T dout, db += colsum, dinp = dout W^T; NULLs skip. */
    const mg_real dout[4] = {1, 2, -1, 1};
    mg_real dW[6] = {10, 10, 10, 10, 10, 10}, db[2] = {1, 1}, dinp[6];
    mg_dense_backward(dinp, dW, db, dout, inp, W, 2, 3, 2, 1, mg_gemm_blas);
    const mg_real want_dW[6] = {12, 11, 12, 14, 11, 18}, want_db[2] = {1, 4};
    const mg_real want_dinp[6] = {1, 2, 0, -1, 1, -3};
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(dW[i], want_dW[i]);
        CU_ASSERT_EQUAL(dinp[i], want_dinp[i]);
    }
    CU_ASSERT_EQUAL(db[0], want_db[0]);
    CU_ASSERT_EQUAL(db[1], want_db[1]);
    mg_dense_backward(NULL, NULL, NULL, dout, inp, W, 2, 3, 2, 1, mg_gemm_blas);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(dW[i], want_dW[i]);

    /* add 0: dW = inp^T dout, db = colsum(dout), over NaN that must not be read. */
    mg_gemm_fn fns[2] = {mg_gemm_blas, mg_gemm_ref};
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < 6; i++)
            dW[i] = NAN;
        db[0] = db[1] = NAN;
        mg_dense_backward(dinp, dW, db, dout, inp, W, 2, 3, 2, 0, fns[f]);
        for (int i = 0; i < 6; i++) {
            CU_ASSERT_EQUAL(dW[i], want_dW[i] - 10);
            CU_ASSERT_EQUAL(dinp[i], want_dinp[i]);
        }
        CU_ASSERT_EQUAL(db[0], want_db[0] - 1);
        CU_ASSERT_EQUAL(db[1], want_db[1] - 1);
    }
}

static void test_activations(void)
{
    const mg_real x[5] = {-2, -0.5f, 0, 0.5f, 2};
    mg_real y[5], d[5], ones[5] = {1, 1, 1, 1, 1};
    const double leak = 0.1;
    /* Values: float of the double result, so to within half an ulp of 1. */
    const double tol = FLT_EPSILON;

    mg_act_forward(y, x, 5, MG_ACT_LINEAR, leak);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(y[i], x[i]);
    mg_act_backward(d, ones, x, y, 5, MG_ACT_LINEAR, leak);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(d[i], 1);

    mg_act_forward(y, x, 5, MG_ACT_RELU, leak);
    const mg_real relu[5] = {0, 0, 0, 0.5f, 2}, drelu[5] = {0, 0, 0, 1, 1}; // relu'(0) = 0
    mg_act_backward(d, ones, x, y, 5, MG_ACT_RELU, leak);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(y[i], relu[i]);
        CU_ASSERT_EQUAL(d[i], drelu[i]);
    }

    mg_act_forward(y, x, 5, MG_ACT_LEAKY_RELU, leak);
    mg_act_backward(d, ones, x, y, 5, MG_ACT_LEAKY_RELU, leak);
    const double lrelu[5] = {-0.2, -0.05, 0, 0.5, 2}, dlrelu[5] = {0.1, 0.1, 0.1, 1, 1};
    for (int i = 0; i < 5; i++) {
        MG_ASSERT_CLOSE(y[i], lrelu[i], tol);
        MG_ASSERT_CLOSE(d[i], dlrelu[i], tol);
    }

    /* sigmoid(0) = 1/2, sigmoid(log 3) = 3/4, sigmoid(-log 3) = 1/4; sigmoid' = s (1 - s). */
    const mg_real sx[3] = {0, (mg_real)log(3.0), (mg_real)-log(3.0)};
    const double s[3] = {0.5, 0.75, 0.25};
    mg_act_forward(y, sx, 3, MG_ACT_SIGMOID, leak);
    mg_act_backward(d, ones, sx, y, 3, MG_ACT_SIGMOID, leak);
    for (int i = 0; i < 3; i++) {
        MG_ASSERT_CLOSE(y[i], s[i], tol);
        MG_ASSERT_CLOSE(d[i], s[i] * (1 - s[i]), tol);
    }

    /* tanh(0) = 0, tanh(atanh(1/2)) = 1/2; tanh' = 1 - t^2. */
    const mg_real tx[2] = {0, (mg_real)atanh(0.5)};
    const double t[2] = {0, 0.5};
    mg_act_forward(y, tx, 2, MG_ACT_TANH, leak);
    mg_act_backward(d, ones, tx, y, 2, MG_ACT_TANH, leak);
    for (int i = 0; i < 2; i++) {
        MG_ASSERT_CLOSE(y[i], t[i], tol);
        MG_ASSERT_CLOSE(d[i], 1 - t[i] * t[i], tol);
    }

    /* In place (out == pre, dpre == dout) gives the same. */
    mg_real z[5];
    memcpy(z, x, sizeof z);
    mg_act_forward(z, z, 5, MG_ACT_LEAKY_RELU, leak);
    mg_act_forward(y, x, 5, MG_ACT_LEAKY_RELU, leak);
    CU_ASSERT_EQUAL(memcmp(z, y, sizeof z), 0);
    memcpy(z, ones, sizeof z);
    mg_act_backward(z, z, x, y, 5, MG_ACT_LEAKY_RELU, leak);
    mg_act_backward(d, ones, x, y, 5, MG_ACT_LEAKY_RELU, leak);
    CU_ASSERT_EQUAL(memcmp(z, d, sizeof z), 0);
}

static void test_sigmoid_extremes(void)
{
    const mg_real x[2] = {-1000, 1000};
    mg_real y[2], d[2], ones[2] = {1, 1};
    mg_act_forward(y, x, 2, MG_ACT_SIGMOID, 0);
    mg_act_backward(d, ones, x, y, 2, MG_ACT_SIGMOID, 0);
    CU_ASSERT_EQUAL(y[0], 0);
    CU_ASSERT_EQUAL(y[1], 1);
    CU_ASSERT(isfinite(d[0]) && isfinite(d[1]));
    mg_act_forward(y, x, 2, MG_ACT_TANH, 0);
    CU_ASSERT_EQUAL(y[0], -1);
    CU_ASSERT_EQUAL(y[1], 1);
}

/* The float sigmoid (a polynomial e^x, vectorised) against the double one rounded to float, over
 * 2^20 points of [-120, 120] (down into the subnormals and out to 0 and 1) and the specials. The
 * bound, in ulps of the rounded reference (2^-149 for a subnormal or 0): e^x within 1, 1 + e and
 * the quotient half each, the reference's own rounding half: 2.5. NaN stays NaN. */
static void test_sigmoid_float(void)
{
    enum { N = 1 << 20 };
    mg_real *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++)
        x[i] = (mg_real)(-120 + 240.0 * i / N);
    mg_act_forward(y, x, N, MG_ACT_SIGMOID, 0);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        const double ref = 1 / (1 + exp(-(double)x[i]));
        const float r = (float)ref;
        const double ulp = r == 0 ? 0x1p-149 : nextafterf(r, INFINITY) - r;
        worst = fmax(worst, fabs(y[i] - (double)r) / ulp);
    }
    printf("\n    max error %.3g ulps (limit 2.5)", worst);
    CU_ASSERT(worst <= 2.5);
    const mg_real sx[6] = {-0.0f, 0, INFINITY, -INFINITY, NAN, -NAN};
    mg_real sy[6];
    mg_act_forward(sy, sx, 6, MG_ACT_SIGMOID, 0);
    CU_ASSERT_EQUAL(sy[0], 0.5f);
    CU_ASSERT_EQUAL(sy[1], 0.5f);
    CU_ASSERT_EQUAL(sy[2], 1);
    CU_ASSERT_EQUAL(sy[3], 0);
    CU_ASSERT(isnan(sy[4]) && isnan(sy[5]));
    free(x);
    free(y);
}

/* The float tanh (Cephes's tanhf, vectorised) against the double one rounded to float: 2^20
 * points of [-12, 12] (tanh rounds to +-1 from 9.01 on) and 2^16 of |x| from 1e-40 to 1,
 * log-spaced (the polynomial, down into the subnormals), both signs, and the specials. The
 * bound, in ulps of the rounded reference: below 0.625 the polynomial's 1.5 (Cephes: 1.4e-7
 * relative at most), above e^-2|x| within 1 ulp, moving the quotient by at most 0.4 (e <= 0.29
 * over 1 - e >= 0.71), 1 - e, 1 + e and the quotient half each; the reference's own rounding
 * half: 2.5. tanh(-0) = -0, +-Inf give +-1, NaN stays NaN, and no floating-point exception. */
static void test_tanh_float(void)
{
    enum { N = 1 << 20, M = 1 << 16 };
    mg_real *x = malloc((N + 2 * M) * sizeof *x), *y = malloc((N + 2 * M) * sizeof *y);
    for (int i = 0; i < N; i++)
        x[i] = (mg_real)(-12 + 24.0 * i / N);
    for (int i = 0; i < M; i++) {
        x[N + 2 * i] = (mg_real)pow(10, -40 + 40.0 * i / M);
        x[N + 2 * i + 1] = -x[N + 2 * i];
    }
    feclearexcept(FE_ALL_EXCEPT);
    mg_act_forward(y, x, N + 2 * M, MG_ACT_TANH, 0);
    double worst = 0;
    for (int i = 0; i < N + 2 * M; i++) {
        const float r = (float)tanh((double)x[i]);
        const float a = fabsf(r);
        const double ulp = a < FLT_MIN ? 0x1p-149 : nextafterf(a, INFINITY) - a;
        worst = fmax(worst, fabs(y[i] - (double)r) / ulp);
    }
    printf("\n    max error %.3g ulps (limit 2.5)", worst);
    CU_ASSERT(worst <= 2.5);
    const mg_real sx[7] = {-0.0f, 0, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, NAN};
    mg_real sy[7];
    mg_act_forward(sy, sx, 7, MG_ACT_TANH, 0);
    CU_ASSERT(sy[0] == 0 && signbit(sy[0]));
    CU_ASSERT(sy[1] == 0 && !signbit(sy[1]));
    CU_ASSERT(sy[2] == 1 && sy[3] == -1 && sy[4] == 1 && sy[5] == -1);
    CU_ASSERT(isnan(sy[6]));
    CU_ASSERT_EQUAL(fetestexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW), 0);
    free(x);
    free(y);
}

/* softplus(0) = log 2; softplus(x) = x + softplus(-x); at +-1000 no overflow. Losses at logit 0
 * (D = 1/2): each term is log 2 and each gradient +-1/2 over norm. */
static void test_losses(void)
{
    const double dtol = 4 * DBL_EPSILON; // double results of a few operations
    const double ftol = FLT_EPSILON;     // values rounded to float
    MG_ASSERT_CLOSE(mg_softplus(0), log(2.0), dtol);
    MG_ASSERT_CLOSE(mg_softplus(1000), 1000, 0);
    MG_ASSERT_CLOSE(mg_softplus(-1000), 0, 0);
    MG_ASSERT_CLOSE(mg_softplus(3) - mg_softplus(-3), 3, 4 * dtol);
    MG_ASSERT_CLOSE(mg_softplus(-40), exp(-40.0), 1e-30); // no 1 + tiny cancellation

    const double norm = 8;
    const mg_real zero[3] = {0, 0, 0};
    mg_real dr[3], df[3];
    double sr = 1, sf = 2; // added into, not overwritten
    double loss = mg_loss_d(dr, df, zero, zero, 3, norm, &sr, &sf);
    MG_ASSERT_CLOSE(loss, 6 * log(2.0), 6 * dtol);
    MG_ASSERT_CLOSE(sr, 1 + 1.5, dtol);
    MG_ASSERT_CLOSE(sf, 2 + 1.5, dtol);
    for (int i = 0; i < 3; i++) {
        MG_ASSERT_CLOSE(dr[i], -0.5 / norm, ftol);
        MG_ASSERT_CLOSE(df[i], 0.5 / norm, ftol);
    }
    loss = mg_loss_g(df, zero, 3, MG_GEN_LOSS_NONSATURATING, norm);
    MG_ASSERT_CLOSE(loss, 3 * log(2.0), 3 * dtol);
    for (int i = 0; i < 3; i++)
        MG_ASSERT_CLOSE(df[i], -0.5 / norm, ftol);
    loss = mg_loss_g(df, zero, 3, MG_GEN_LOSS_MINIMAX, norm);
    MG_ASSERT_CLOSE(loss, -3 * log(2.0), 3 * dtol);
    for (int i = 0; i < 3; i++)
        MG_ASSERT_CLOSE(df[i], -0.5 / norm, ftol);

    /* Logits of +-1000: finite, with the limits as values. */
    const mg_real big[2] = {1000, -1000};
    const mg_real rev[2] = {-1000, 1000};
    sr = sf = 0;
    loss = mg_loss_d(dr, df, big, rev, 2, 1, &sr, &sf);
    MG_ASSERT_CLOSE(loss, 2000, 0); // the two confidently wrong rows cost 1000 each
    MG_ASSERT_CLOSE(sr, 1, 0);
    MG_ASSERT_CLOSE(sf, 1, 0);
    const mg_real want_dr[2] = {0, -1}, want_df[2] = {0, 1};
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(dr[i], want_dr[i]);
        CU_ASSERT_EQUAL(df[i], want_df[i]);
    }
    loss = mg_loss_g(df, big, 2, MG_GEN_LOSS_NONSATURATING, 1);
    MG_ASSERT_CLOSE(loss, 1000, 0);
    CU_ASSERT_EQUAL(df[0], 0);
    CU_ASSERT_EQUAL(df[1], -1);
    loss = mg_loss_g(df, big, 2, MG_GEN_LOSS_MINIMAX, 1);
    MG_ASSERT_CLOSE(loss, -1000, 0);
    CU_ASSERT_EQUAL(df[0], -1);
    CU_ASSERT_EQUAL(df[1], 0);
    CU_ASSERT(isfinite(mg_loss_d(NULL, NULL, big, rev, 2, 1, NULL, NULL)));
}

/* The fused bias and activation against its reference, the bias added in its own pass and then
 * mg_act_forward (or mg_maxout_forward): the same operations, so the same bits, for pre and out. */
static void test_bias_act_vs_separate(void)
{
    enum { ROWS = 5, WIDTH = 21, U = 7, P = 3 };
    const enum mg_act acts[6] = {MG_ACT_LINEAR, MG_ACT_RELU, MG_ACT_LEAKY_RELU,
                                 MG_ACT_SIGMOID, MG_ACT_TANH, MG_ACT_MAXOUT};
    mg_real x[ROWS * WIDTH], b[WIDTH], pre[ROWS * WIDTH], ref[ROWS * WIDTH];
    mg_real out[ROWS * WIDTH], out_ref[ROWS * WIDTH];
    int32_t arg[ROWS * U], arg_ref[ROWS * U];
    fill_nn(x, ROWS * WIDTH, -3, 3, 60);
    fill_nn(b, WIDTH, -1, 1, 61);
    x[3] = -b[3]; // a sum of exactly 0: relu'(0) and the maxout ties stay the reference's
    for (int a = 0; a < 6; a++) {
        memcpy(pre, x, sizeof x);
        for (int r = 0; r < ROWS; r++)
            for (int j = 0; j < WIDTH; j++)
                ref[r * WIDTH + j] = x[r * WIDTH + j] + b[j];
        if (acts[a] == MG_ACT_MAXOUT) {
            mg_bias_maxout_forward(out, arg, pre, b, ROWS, U, P);
            mg_maxout_forward(out_ref, arg_ref, ref, ROWS, U, P);
            CU_ASSERT_EQUAL(memcmp(out, out_ref, ROWS * U * sizeof *out), 0);
            CU_ASSERT_EQUAL(memcmp(arg, arg_ref, sizeof arg), 0);
        } else {
            mg_bias_act_forward(out, pre, b, ROWS, WIDTH, acts[a], 0.2);
            mg_act_forward(out_ref, ref, ROWS * WIDTH, acts[a], 0.2);
            CU_ASSERT_EQUAL(memcmp(out, out_ref, sizeof out), 0);
        }
        CU_ASSERT_EQUAL(memcmp(pre, ref, sizeof pre), 0);
    }
}

/* Two rows, two units of three pieces; the ties pick the lowest piece. */
static void test_maxout_routing(void)
{
    const mg_real pre[12] = {
        1, 5, 2, /* */ -3, -1, -2, // row 0: unit 0 -> piece 1, unit 1 -> piece 1
        7, 7, 7, /* */ 0, 4, 4,    // row 1: ties -> piece 0, then piece 1
    };
    mg_real out[4];
    int32_t arg[4];
    mg_maxout_forward(out, arg, pre, 2, 2, 3);
    const mg_real want[4] = {5, -1, 7, 4};
    const int32_t want_arg[4] = {1, 1, 0, 1};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(out[i], want[i]);
        CU_ASSERT_EQUAL(arg[i], want_arg[i]);
    }
    const mg_real dout[4] = {10, 20, 30, 40};
    mg_real dpre[12];
    for (int i = 0; i < 12; i++)
        dpre[i] = NAN; // written everywhere, not added into
    mg_maxout_backward(dpre, dout, arg, 2, 2, 3);
    const mg_real want_d[12] = {0, 10, 0, 0, 20, 0, 30, 0, 0, 0, 40, 0};
    for (int i = 0; i < 12; i++)
        CU_ASSERT_EQUAL(dpre[i], want_d[i]);
}

/* ---- network ---- */

/* Every layer type, dropout on three inputs: 11 -> maxout 7x3 -> relu 9 -> leaky 8 -> tanh 6 ->
 * linear 5 -> sigmoid 4. */
static mg_net_spec every_layer_spec(void)
{
    mg_net_spec s = {.n_layers = 6};
    s.layers[0] = layer("h0", MG_ACT_MAXOUT, 7, 3, 0.8);
    s.layers[1] = layer("h1", MG_ACT_RELU, 9, 1, 0.5);
    s.layers[2] = layer("h2", MG_ACT_LEAKY_RELU, 8, 1, 1);
    s.layers[3] = layer("h3", MG_ACT_TANH, 6, 1, 0.9);
    s.layers[4] = layer("h4", MG_ACT_LINEAR, 5, 1, 1);
    s.layers[5] = layer("y", MG_ACT_SIGMOID, 4, 1, 1);
    return s;
}

static void test_net_layout(void)
{
    mg_net_spec spec = every_layer_spec();
    mg_net net;
    mg_test_net(&net, &spec, 11, 10);
    const int in[6] = {11, 7, 9, 8, 6, 5}, width[6] = {21, 9, 8, 6, 5, 4};
    size_t off = 0;
    for (int l = 0; l < 6; l++) {
        CU_ASSERT_EQUAL(net.layer[l].in, in[l]);
        CU_ASSERT_EQUAL(net.layer[l].width, width[l]);
        CU_ASSERT_EQUAL(net.layer[l].w_off, off);
        off += (size_t)in[l] * width[l];
        CU_ASSERT_EQUAL(net.layer[l].b_off, off);
        off += (size_t)width[l];
        CU_ASSERT(mg_net_weights(&net, l) == net.params + net.layer[l].w_off);
        CU_ASSERT(mg_net_bias(&net, l) == net.params + net.layer[l].b_off);
        CU_ASSERT_EQUAL(net.mask[l] != NULL, spec.layers[l].keep < 1);
        CU_ASSERT_EQUAL(net.xdrop[l] != NULL, spec.layers[l].keep < 1);
        CU_ASSERT_EQUAL(net.argmax[l] != NULL, l == 0);
    }
    CU_ASSERT_EQUAL(net.n_params, off);
    CU_ASSERT_EQUAL(net.in_dim, 11);
    CU_ASSERT_EQUAL(net.out_dim, 4);
    CU_ASSERT(net.gemm == mg_gemm_blas);
    CU_ASSERT_EQUAL(mg_test_max_abs(net.grads, net.n_params + MG_STATS_SLOTS), 0);
    mg_net_free(&net);
    CU_ASSERT(net.arena == NULL);
}

/* A two-layer net worked by hand: 2 -> relu 2 -> sigmoid 1. */
static void test_net_forward_by_hand(void)
{
    mg_net_spec spec = {.n_layers = 2};
    spec.layers[0] = layer("h", MG_ACT_RELU, 2, 1, 1);
    spec.layers[1] = layer("y", MG_ACT_SIGMOID, 1, 1, 1);
    mg_net net;
    mg_test_net(&net, &spec, 2, 2);
    const mg_real W0[4] = {1, -1, 2, 1}, b0[2] = {0, 0.5f}, W1[2] = {1, -2}, b1[1] = {0.25f};
    memcpy(mg_net_weights(&net, 0), W0, sizeof W0);
    memcpy(mg_net_bias(&net, 0), b0, sizeof b0);
    memcpy(mg_net_weights(&net, 1), W1, sizeof W1);
    memcpy(mg_net_bias(&net, 1), b1, sizeof b1);
    const mg_real x[4] = {1, 1, 2, -1};
    // row 0: pre0 = (3, 0.5), h = (3, 0.5), logit = 3 - 1 + 0.25 = 2.25
    // row 1: pre0 = (0, -2.5), h = (0, 0), logit = 0.25
    const mg_real *y = mg_net_forward(&net, x, 2, NULL);
    CU_ASSERT(y == net.out[1]);
    CU_ASSERT(mg_net_logits(&net) == net.pre[1]);
    CU_ASSERT_EQUAL(net.pre[1][0], 2.25f);
    CU_ASSERT_EQUAL(net.pre[1][1], 0.25f);
    MG_ASSERT_CLOSE(y[0], 1 / (1 + exp(-2.25)), FLT_EPSILON);
    MG_ASSERT_CLOSE(y[1], 1 / (1 + exp(-0.25)), FLT_EPSILON);
    mg_net_free(&net);
}

/* The same network and the same dropout through mg_gemm_blas and mg_gemm_ref. The results may
 * differ by rounding: each value comes from a chain of dot products, forward over every layer's
 * fan-in and backward over every width (and over the rows for weight gradients). With depth = the
 * sum of those lengths, each value is within about depth * eps of its magnitude scale, taken as
 * the largest magnitude in its tensor. (A maxout tie or ReLU at 0 within rounding would route
 * differently; the data is fixed, so this either always passes or always fails.) */
static void test_net_blas_vs_ref(void)
{
    enum { ROWS = 10, IN = 11 };
    mg_net_spec spec = every_layer_spec();
    mg_net a, b;
    mg_test_net(&a, &spec, IN, ROWS);
    mg_test_net(&b, &spec, IN, ROWS);
    mg_net_init_params(&a, 5, 1);
    mg_net_init_params(&b, 5, 1);
    for (int l = 0; l < a.n_layers; l++) { // non-zero biases
        fill_nn(mg_net_bias(&a, l), (size_t)a.layer[l].width, -0.2, 0.2, 100 + l);
        fill_nn(mg_net_bias(&b, l), (size_t)b.layer[l].width, -0.2, 0.2, 100 + l);
    }
    b.gemm = mg_gemm_ref;
    mg_real x[ROWS * IN], dout[ROWS * 4], dxa[ROWS * IN], dxb[ROWS * IN];
    fill_nn(x, ROWS * IN, -1, 1, 7);
    fill_nn(dout, ROWS * 4, -1, 1, 8);
    uint64_t ids[ROWS];
    for (int i = 0; i < ROWS; i++)
        ids[i] = 1000 + 3 * i;
    const mg_dropout drop = {.key = {1, 2, 3}, .row_id = ids};
    const mg_real *ya = mg_net_forward(&a, x, ROWS, &drop);
    const mg_real *yb = mg_net_forward(&b, x, ROWS, &drop);
    mg_net_backward(&a, dxa, dout, 0, ROWS, 0);
    mg_net_backward(&b, dxb, dout, 0, ROWS, 0);

    int depth = ROWS;
    for (int l = 0; l < a.n_layers; l++)
        depth += a.layer[l].in + a.layer[l].width;
    const double rel = depth * FLT_EPSILON;
    double e, worst = 0;
    e = mg_test_max_diff(ya, yb, ROWS * 4);
    CU_ASSERT(e <= rel * mg_test_max_abs(yb, ROWS * 4));
    printf("\n    depth %d, tol %.3g x scale; output: |diff| %.3g", depth, rel, e);
    e = mg_test_max_diff(dxa, dxb, ROWS * IN);
    CU_ASSERT(e <= rel * mg_test_max_abs(dxb, ROWS * IN));
    printf(", dinp: %.3g (scale %.3g)", e, mg_test_max_abs(dxb, ROWS * IN));
    for (int l = 0; l < a.n_layers; l++) {
        const mg_layer *L = &a.layer[l];
        const size_t nw = (size_t)L->in * L->width;
        double ew = mg_test_max_diff(a.grads + L->w_off, b.grads + L->w_off, nw);
        double eb = mg_test_max_diff(a.grads + L->b_off, b.grads + L->b_off, (size_t)L->width);
        CU_ASSERT(ew <= rel * mg_test_max_abs(b.grads + L->w_off, nw));
        CU_ASSERT(eb <= rel * mg_test_max_abs(b.grads + L->b_off, (size_t)L->width));
        CU_ASSERT(mg_test_max_abs(b.grads + L->w_off, nw) > 0); // every layer got a gradient
        worst = fmax(worst, fmax(ew / mg_test_max_abs(b.grads + L->w_off, nw),
                                 eb / mg_test_max_abs(b.grads + L->b_off, (size_t)L->width)));
    }
    printf(", grads: max |diff|/scale %.3g", worst);
    mg_net_free(&a);
    mg_net_free(&b);
}

/* Kept fraction, scaling by input_scale (not 1/keep here), the per-layer streams, and nothing
 * dropped when drop is NULL. */
static void test_dropout_masks(void)
{
    enum { ROWS = 1000, IN = 64 };
    mg_net_spec spec = {.n_layers = 2};
    spec.layers[0] = layer("h", MG_ACT_LINEAR, 5, 1, 0.7);
    spec.layers[0].input_scale = 2;
    spec.layers[1] = layer("y", MG_ACT_LINEAR, 3, 1, 0.4);
    mg_net net;
    mg_test_net(&net, &spec, IN, ROWS);
    mg_net_init_params(&net, 1, 0);
    mg_real *x = malloc(ROWS * IN * sizeof *x);
    fill_nn(x, ROWS * IN, 0.5, 1, 9); // non-zero inputs: a zero in xdrop means dropped
    uint64_t *ids = malloc(ROWS * sizeof *ids);
    for (int i = 0; i < ROWS; i++)
        ids[i] = (uint64_t)i * 7919;
    const mg_dropout drop = {.key = {42, 1000, 9}, .row_id = ids};
    mg_net_forward(&net, x, ROWS, &drop);
    CU_ASSERT(net.dropped);
    CU_ASSERT(net.x[0] == net.xdrop[0]);
    CU_ASSERT(net.x[1] == net.xdrop[1]);

    size_t kept = 0, bad = 0;
    for (size_t i = 0; i < (size_t)ROWS * IN; i++) {
        if (net.mask[0][i] == 2 && net.x[0][i] == x[i] * 2)
            kept++;
        else if (!(net.mask[0][i] == 0 && net.x[0][i] == 0))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    const double n = (double)ROWS * IN, keep = 0.7, frac = kept / n;
    const double se = sqrt(keep * (1 - keep) / n);
    printf("\n    kept %.4f of %.0f, keep %.2f, |diff| = %.2f standard errors (limit 5)", frac,
           n, keep, fabs(frac - keep) / se);
    CU_ASSERT(fabs(frac - keep) < 5 * se);

    /* Layer l draws (key with stream + l, row_id): check layer 1's mask against the rng. */
    double u[5];
    mg_rng_key k1 = drop.key;
    k1.stream += 1;
    size_t mismatch = 0;
    for (int r = 0; r < ROWS; r++) {
        mg_rng_unit(u, 5, &k1, ids[r]);
        for (int i = 0; i < 5; i++) {
            mg_real want = u[i] < 0.4 ? (mg_real)(1 / 0.4) : 0;
            mismatch += net.mask[1][r * 5 + i] != want;
            mismatch += net.x[1][r * 5 + i] != net.out[0][r * 5 + i] * want;
        }
    }
    CU_ASSERT_EQUAL(mismatch, 0);

    /* No dropout without drop: the input itself, same output as a net with keep = 1. */
    mg_net_spec plain = spec;
    plain.layers[0].keep = plain.layers[1].keep = 1;
    mg_net ref;
    mg_test_net(&ref, &plain, IN, ROWS);
    mg_net_init_params(&ref, 1, 0);
    const mg_real *y = mg_net_forward(&net, x, ROWS, NULL);
    const mg_real *yr = mg_net_forward(&ref, x, ROWS, &drop); // keep 1: drop has no effect
    CU_ASSERT(!net.dropped);
    CU_ASSERT(net.x[0] == x);
    CU_ASSERT(net.x[1] == net.out[0]);
    CU_ASSERT(ref.x[0] == x);
    CU_ASSERT_EQUAL(memcmp(y, yr, ROWS * 3 * sizeof *y), 0);
    mg_net_free(&ref);
    mg_net_free(&net);
    free(x);
    free(ids);
}

/* A row's mask and output depend only on its row_id and input, not on its position or the batch
 * size: the row with id 42 sits at position 0 of a 6-row batch and position 5 of an 8-row one.
 * (Through mg_gemm_ref, which computes each row alike, so the outputs must agree bit for bit.) */
static void test_dropout_row_id(void)
{
    mg_net_spec spec = every_layer_spec();
    mg_net a, b;
    mg_test_net(&a, &spec, 11, 8);
    mg_test_net(&b, &spec, 11, 8);
    a.gemm = b.gemm = mg_gemm_ref;
    mg_net_init_params(&a, 3, 1);
    mg_net_init_params(&b, 3, 1);
    mg_real xa[6 * 11], xb[8 * 11];
    fill_nn(xa, 6 * 11, -1, 1, 20);
    fill_nn(xb, 8 * 11, -1, 1, 21);
    memcpy(xb + 5 * 11, xa, 11 * sizeof *xa);
    const uint64_t ida[6] = {42, 1, 2, 3, 4, 5}, idb[8] = {9, 8, 7, 6, 5, 42, 3, 2};
    const mg_rng_key key = {77, 88, 99};
    const mg_dropout da = {.key = key, .row_id = ida}, db = {.key = key, .row_id = idb};
    const mg_real *ya = mg_net_forward(&a, xa, 6, &da);
    const mg_real *yb = mg_net_forward(&b, xb, 8, &db);
    for (int l = 0; l < a.n_layers; l++) {
        if (!a.mask[l])
            continue;
        const int in = a.layer[l].in;
        CU_ASSERT_EQUAL(memcmp(a.mask[l], b.mask[l] + 5 * in, in * sizeof(mg_real)), 0);
        CU_ASSERT(mg_test_max_abs(a.mask[l], (size_t)in) > 0);
    }
    CU_ASSERT_EQUAL(memcmp(ya, yb + 5 * 4, 4 * sizeof *ya), 0);
    /* A different id draws a different mask. */
    CU_ASSERT(memcmp(a.mask[0], a.mask[0] + 11, 11 * sizeof(mg_real)) != 0);
    mg_net_free(&a);
    mg_net_free(&b);
}

/* NO_WEIGHTS leaves every gradient (and the stats slots) bit for bit alone and gives the same
 * input gradient as a full backward. */
static void test_backward_no_weights(void)
{
    enum { ROWS = 6, IN = 11 };
    mg_net_spec spec = every_layer_spec();
    mg_net net;
    mg_test_net(&net, &spec, IN, ROWS);
    mg_net_init_params(&net, 8, 1);
    mg_real x[ROWS * IN], dout[ROWS * 4], dx_full[ROWS * IN], dx[ROWS * IN];
    fill_nn(x, ROWS * IN, -1, 1, 30);
    fill_nn(dout, ROWS * 4, -1, 1, 31);
    const uint64_t ids[ROWS] = {0, 1, 2, 3, 4, 5};
    const mg_dropout drop = {.key = {1, 2, 3}, .row_id = ids};
    const size_t ng = net.n_params + MG_STATS_SLOTS;
    mg_real *saved = malloc(ng * sizeof *saved);
    for (int flags = 0; flags <= MG_BACKWARD_FROM_LOGITS; flags += MG_BACKWARD_FROM_LOGITS) {
        mg_net_forward(&net, x, ROWS, &drop);
        mg_net_backward(&net, dx_full, dout, 0, ROWS, flags);
        fill_nn(net.grads, ng, -1, 1, 32);
        memcpy(saved, net.grads, ng * sizeof *saved);
        mg_net_backward(&net, dx, dout, 0, ROWS, flags | MG_BACKWARD_NO_WEIGHTS);
        CU_ASSERT_EQUAL(memcmp(saved, net.grads, ng * sizeof *saved), 0);
        CU_ASSERT_EQUAL(memcmp(dx, dx_full, sizeof dx), 0);
        mg_net_backward(&net, NULL, dout, 0, ROWS, flags | MG_BACKWARD_NO_WEIGHTS); // a no-op
        CU_ASSERT_EQUAL(memcmp(saved, net.grads, ng * sizeof *saved), 0);
    }
    free(saved);
    mg_net_free(&net);
}

/* MG_BACKWARD_SET_GRADS writes over every weight gradient (NaN before: none may be read) exactly
 * what an adding backward puts into zeroed gradients, and an adding backward on top doubles them,
 * exactly (x + x is exact, and both passes round the same sums); the stats slots stay untouched.
 * With no rows it writes zeros. */
static void test_backward_set_grads(void)
{
    enum { ROWS = 6, IN = 11 };
    mg_net_spec spec = every_layer_spec();
    mg_net net;
    mg_test_net(&net, &spec, IN, ROWS);
    mg_net_init_params(&net, 8, 1);
    mg_real x[ROWS * IN], dout[ROWS * 4], dx[ROWS * IN];
    fill_nn(x, ROWS * IN, -1, 1, 33);
    fill_nn(dout, ROWS * 4, -1, 1, 34);
    const uint64_t ids[ROWS] = {0, 1, 2, 3, 4, 5};
    const mg_dropout drop = {.key = {1, 2, 3}, .row_id = ids};
    const size_t np = net.n_params;
    const mg_real stats[MG_STATS_SLOTS] = {1, 2, 3, 4};
    mg_real *added = malloc(np * sizeof *added);
    for (int use_ref = 0; use_ref < 2; use_ref++) {
        net.gemm = use_ref ? mg_gemm_ref : mg_gemm_blas;
        for (int flags = 0; flags <= MG_BACKWARD_FROM_LOGITS; flags += MG_BACKWARD_FROM_LOGITS) {
            mg_net_forward(&net, x, ROWS, &drop);
            mg_test_zero_grads(&net);
            mg_net_backward(&net, dx, dout, 0, ROWS, flags);
            memcpy(added, net.grads, np * sizeof *added);
            for (size_t i = 0; i < np; i++)
                net.grads[i] = NAN;
            memcpy(net.grads + np, stats, sizeof stats);
            mg_net_backward(&net, dx, dout, 0, ROWS, flags | MG_BACKWARD_SET_GRADS);
            CU_ASSERT_EQUAL(memcmp(added, net.grads, np * sizeof *added), 0);
            CU_ASSERT_EQUAL(memcmp(stats, net.grads + np, sizeof stats), 0);
            CU_ASSERT(mg_test_max_abs(added, np) > 0);
            mg_net_backward(&net, dx, dout, 0, ROWS, flags);
            size_t wrong = 0;
            for (size_t i = 0; i < np; i++)
                wrong += net.grads[i] != 2 * added[i];
            CU_ASSERT_EQUAL(wrong, 0);
            mg_net_backward(&net, NULL, dout, 0, 0, flags | MG_BACKWARD_SET_GRADS);
            CU_ASSERT_EQUAL(mg_test_max_abs(net.grads, np), 0);
            CU_ASSERT_EQUAL(memcmp(stats, net.grads + np, sizeof stats), 0);
        }
    }
    free(added);
    mg_net_free(&net);
}

/* Backward over rows [3, 7) of a 10-row forward pass: the input gradient is those rows of a full
 * backward, and the weight gradients are those of a full backward whose dout is zero outside the
 * rows. Through mg_gemm_ref the zero rows add exact zeros, so the match is bit for bit; through
 * the BLAS, summation order may change with the row count: tolerance rows * eps * scale. */
static void test_backward_row_range(void)
{
    enum { ROWS = 10, IN = 11, R0 = 3, NR = 4, OUT = 4 };
    mg_net_spec spec = every_layer_spec();
    mg_net net;
    mg_test_net(&net, &spec, IN, ROWS);
    mg_net_init_params(&net, 9, 1);
    mg_real x[ROWS * IN], dout[ROWS * OUT], dzero[ROWS * OUT];
    mg_real dx_full[ROWS * IN], dx_sub[NR * IN];
    fill_nn(x, ROWS * IN, -1, 1, 40);
    fill_nn(dout, ROWS * OUT, -1, 1, 41);
    memset(dzero, 0, sizeof dzero);
    memcpy(dzero + R0 * OUT, dout + R0 * OUT, NR * OUT * sizeof *dout);
    uint64_t ids[ROWS];
    for (int i = 0; i < ROWS; i++)
        ids[i] = 50 + i;
    const mg_dropout drop = {.key = {4, 5, 6}, .row_id = ids};
    const size_t np = net.n_params;
    mg_real *g_sub = malloc(np * sizeof *g_sub);

    for (int use_ref = 0; use_ref < 2; use_ref++) {
        net.gemm = use_ref ? mg_gemm_ref : mg_gemm_blas;
        for (int flags = 0; flags <= MG_BACKWARD_FROM_LOGITS; flags += MG_BACKWARD_FROM_LOGITS) {
            mg_net_forward(&net, x, ROWS, &drop);
            mg_test_zero_grads(&net);
            mg_net_backward(&net, dx_sub, dout + R0 * OUT, R0, NR, flags);
            memcpy(g_sub, net.grads, np * sizeof *g_sub);
            mg_test_zero_grads(&net);
            mg_net_backward(&net, dx_full, dzero, 0, ROWS, flags);
            const double ex = mg_test_max_diff(dx_sub, dx_full + R0 * IN, NR * IN);
            const double eg = mg_test_max_diff(g_sub, net.grads, np);
            const double tx = use_ref ? 0 : ROWS * FLT_EPSILON * mg_test_max_abs(dx_sub, NR * IN);
            const double tg = use_ref ? 0 : ROWS * FLT_EPSILON * mg_test_max_abs(g_sub, np);
            CU_ASSERT(ex <= tx);
            CU_ASSERT(eg <= tg);
            CU_ASSERT(mg_test_max_abs(g_sub, np) > 0);
            printf("\n    %s, flags %d: dinp |diff| %.3g (tol %.3g), grads |diff| %.3g (tol %.3g)",
                   use_ref ? "ref" : "blas", flags, ex, tx, eg, tg);
            /* The other rows of dinp are the full backward's, zero-dout rows: zero. */
            CU_ASSERT_EQUAL(mg_test_max_abs(dx_full, R0 * IN), 0);
            CU_ASSERT_EQUAL(mg_test_max_abs(dx_full + (R0 + NR) * IN, (ROWS - R0 - NR) * IN), 0);
        }
    }
    free(g_sub);
    mg_net_free(&net);
}

static void expect_init_error(const mg_net_spec *spec, int in_dim, int max_rows,
                              const char *want)
{
    mg_net net;
    mg_error err = {{0}};
    CU_ASSERT_EQUAL(mg_net_init(&net, spec, in_dim, max_rows, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    if (strcmp(err.msg, want) != 0)
        fprintf(stderr, "\n  got  \"%s\"\n  want \"%s\"\n", err.msg, want);
    CU_ASSERT(net.arena == NULL);
    mg_net_free(&net); // safe after a failed init
}

static void test_net_init_errors(void)
{
    const mg_net_spec good = every_layer_spec();
    mg_net_spec s = good;
    s.n_layers = 0;
    expect_init_error(&s, 11, 4, "network: 0 layers, need 1 to 16");
    s.n_layers = MG_MAX_LAYERS + 1;
    expect_init_error(&s, 11, 4, "network: 17 layers, need 1 to 16");
    expect_init_error(&good, 0, 4, "network: input dimension 0, need at least 1");
    expect_init_error(&good, 11, 0, "network: max_rows 0, need at least 1");
    s = good;
    s.layers[2].units = 0;
    expect_init_error(&s, 11, 4, "network: layer 2 (h2): units 0, need at least 1");
    s = good;
    s.layers[0].pieces = 0;
    expect_init_error(&s, 11, 4, "network: layer 0 (h0): maxout pieces 0, need at least 1");
    s = good;
    s.layers[3].keep = 0;
    expect_init_error(&s, 11, 4, "network: layer 3 (h3): keep 0, need 0 < keep <= 1");
    s.layers[3].keep = 1.5;
    expect_init_error(&s, 11, 4, "network: layer 3 (h3): keep 1.5, need 0 < keep <= 1");
    s = good;
    s.layers[1].input_scale = 0;
    expect_init_error(&s, 11, 4,
                      "network: layer 1 (h1): input_scale 0, need > 0 with dropout");
    s = good;
    s.layers[4].type = (enum mg_act)99;
    s.layers[4].name[0] = '\0';
    expect_init_error(&s, 11, 4, "network: layer 4: unknown activation 99");
    s = good;
    s.layers[0].units = 1 << 20;
    expect_init_error(&s, 11, 1 << 12,
                      "network: layer 0 (h0): 11 x 3145728 weights for 4096 rows are too large");

    /* pieces is ignored (taken as 1) for non-maxout layers; input_scale without dropout too. */
    s = good;
    s.layers[1].pieces = 0;
    s.layers[2].pieces = 7;
    s.layers[2].input_scale = 0;
    mg_net net;
    mg_error err = {{0}};
    CU_ASSERT_EQUAL(mg_net_init(&net, &s, 11, 4, &err), 0);
    CU_ASSERT_EQUAL(net.layer[2].width, 8);
    mg_net_free(&net);
}

static void test_init_params(void)
{
    mg_net_spec spec = every_layer_spec();
    spec.layers[1].irange = 0.05;
    spec.layers[3].irange = 2;
    mg_net a, b, c;
    mg_test_net(&a, &spec, 11, 2);
    mg_test_net(&b, &spec, 11, 2);
    mg_test_net(&c, &spec, 11, 2);
    for (size_t i = 0; i < a.n_params; i++)
        b.params[i] = 123; // overwritten, biases too
    mg_net_init_params(&a, 99, 1);
    mg_net_init_params(&b, 99, 1);
    mg_net_init_params(&c, 99, 2);
    CU_ASSERT_EQUAL(memcmp(a.params, b.params, a.n_params * sizeof *a.params), 0);
    CU_ASSERT(memcmp(a.params, c.params, a.n_params * sizeof *a.params) != 0);
    for (int l = 0; l < a.n_layers; l++) {
        const mg_layer *L = &a.layer[l];
        const size_t n = (size_t)L->in * L->width;
        const mg_real *W = mg_net_weights(&a, l);
        const double r = L->spec.irange;
        CU_ASSERT(mg_test_max_abs(W, n) <= r);
        CU_ASSERT(mg_test_max_abs(W, n) > 0.5 * r); // spread over the range, not squeezed
        CU_ASSERT_EQUAL(mg_test_max_abs(mg_net_bias(&a, l), (size_t)L->width), 0);
        /* The documented draw: key (seed, stream(INIT, net_id), step l), row 0. */
        mg_real *want = malloc(n * sizeof *want);
        const mg_rng_key key = {99, mg_rng_stream(MG_STREAM_INIT, 1), (uint64_t)l};
        mg_rng_uniform(want, n, -r, r, &key, 0);
        CU_ASSERT_EQUAL(memcmp(want, W, n * sizeof *W), 0);
        free(want);
    }
    mg_net_free(&a);
    mg_net_free(&b);
    mg_net_free(&c);
}

/* pylearn2's max_col_norm: columns above the limit end exactly at it, in the same direction;
 * columns below it and layers without a limit are untouched. */
static void test_max_col_norm(void)
{
    mg_net_spec spec = {.n_layers = 2};
    spec.layers[0] = layer("h", MG_ACT_MAXOUT, 2, 2, 1); /* W (3, 4): four columns */
    spec.layers[0].max_col_norm = 1.0;
    spec.layers[1] = layer("y", MG_ACT_SIGMOID, 1, 1, 1); /* no limit */
    mg_net net;
    mg_test_net(&net, &spec, 3, 1);
    mg_real *W = mg_net_weights(&net, 0), *V = mg_net_weights(&net, 1);
    /* Columns: (2, 0, 0) norm 2; (0.3, 0.4, 0) norm 0.5; (1, 2, 2) norm 3; (0, 0, 1) norm 1. */
    const mg_real w[12] = {2, 0.3f, 1, 0, 0, 0.4f, 2, 0, 0, 0, 2, 1};
    memcpy(W, w, sizeof w);
    for (int j = 0; j < 2; j++)
        V[j] = 5;
    mg_net_constrain(&net);
    const double want[12] = {1, 0.3, 1 / 3.0, 0, 0, 0.4, 2 / 3.0, 0, 0, 0, 2 / 3.0, 1};
    for (int i = 0; i < 12; i++)
        MG_ASSERT_CLOSE(W[i], want[i], 2 * FLT_EPSILON);
    CU_ASSERT(V[0] == 5 && V[1] == 5);
    mg_net_free(&net);
}

static void test_bias_from_mean(void)
{
    mg_net_spec spec = {.n_layers = 2};
    spec.layers[0] = layer("h", MG_ACT_RELU, 3, 1, 1);
    spec.layers[1] = layer("y", MG_ACT_SIGMOID, 5, 1, 1);
    mg_net net;
    mg_test_net(&net, &spec, 2, 1);
    const double mean[5] = {0, 0.25, 0.5, 1, 0.9};
    mg_net_bias_from_mean(&net, mean);
    const mg_real *b = mg_net_bias(&net, 1);
    const double lo = log(1e-7 / (1 - 1e-7));
    const double want[5] = {lo, -log(3.0), 0, -lo, log(9.0)};
    for (int j = 0; j < 5; j++)
        MG_ASSERT_CLOSE(b[j], want[j], FLT_EPSILON * fmax(1, fabs(want[j])));
    CU_ASSERT_EQUAL(mg_test_max_abs(mg_net_bias(&net, 0), 3), 0); // only the last layer
    /* With zero weights the output is the data mean (clamped). */
    const mg_real x[2] = {1, 2};
    const mg_real *y = mg_net_forward(&net, x, 1, NULL);
    for (int j = 0; j < 5; j++)
        MG_ASSERT_CLOSE(y[j], fmin(fmax(mean[j], 1e-7), 1 - 1e-7), FLT_EPSILON);
    mg_net_free(&net);

    /* tanh (data.range [-1, 1]): atanh, and linear: the mean itself; with zero weights the output
     * is the mean again. An activation with no inverse (relu) is left alone. */
    const double signed_mean[5] = {-1, -0.5, 0, 0.75, 1};
    const enum mg_act acts[3] = {MG_ACT_TANH, MG_ACT_LINEAR, MG_ACT_RELU};
    for (int a = 0; a < 3; a++) {
        spec.layers[1] = layer("y", acts[a], 5, 1, 1);
        mg_test_net(&net, &spec, 2, 1);
        mg_net_bias_from_mean(&net, signed_mean);
        y = mg_net_forward(&net, x, 1, NULL);
        for (int j = 0; j < 5; j++) {
            const double m = signed_mean[j];
            const double want_y = acts[a] == MG_ACT_TANH   ? fmin(fmax(m, -1 + 1e-7), 1 - 1e-7)
                                  : acts[a] == MG_ACT_LINEAR ? m
                                                             : 0;
            MG_ASSERT_CLOSE(y[j], want_y, 4 * FLT_EPSILON);
        }
        mg_net_free(&net);
    }
}

/* What MPIGAN_TRAP_FPE traps (invalid, division by zero, overflow) must never be raised by the
 * step's own handling of extreme values: logits far beyond where exp overflows, activations of
 * them, and a learning rate decayed for a very long run. Only flags are read here, so the check
 * holds in every build, with or without traps. */
static void test_fpe_quiet_extremes(void)
{
    const mg_real l[6] = {-FLT_MAX, -1e30f, -1000, 1000, 1e30f, FLT_MAX};
    mg_real dr[6], df[6], y[6], d[6], ones[6] = {1, 1, 1, 1, 1, 1};
    double sr = 0, sf = 0;
    feclearexcept(FE_ALL_EXCEPT);
    double loss = mg_loss_d(dr, df, l, l, 6, 100, &sr, &sf);
    loss += mg_loss_g(df, l, 6, MG_GEN_LOSS_NONSATURATING, 100);
    loss += mg_loss_g(df, l, 6, MG_GEN_LOSS_MINIMAX, 100);
    mg_act_forward(y, l, 6, MG_ACT_SIGMOID, 0);
    mg_act_backward(d, ones, l, y, 6, MG_ACT_SIGMOID, 0);
    mg_act_forward(y, l, 6, MG_ACT_TANH, 0);
    mg_act_backward(d, ones, l, y, 6, MG_ACT_TANH, 0);
    const mg_optim_spec sgd = {.type = MG_OPTIM_SGD, .lr = 0.1, .lr_decay = 1.1, .min_lr = 1e-6};
    double lr = mg_optim_lr(&sgd, INT64_MAX / 2);
    int raised = fetestexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW);
    if (raised)
        fprintf(stderr, "\n  raised:%s%s%s\n", raised & FE_INVALID ? " invalid" : "",
                raised & FE_DIVBYZERO ? " divbyzero" : "", raised & FE_OVERFLOW ? " overflow" : "");
    CU_ASSERT_EQUAL(raised, 0);
    CU_ASSERT(isfinite(loss)); /* softplus(FLT_MAX) is FLT_MAX: finite in double */
    CU_ASSERT_EQUAL(lr, 1e-6);
    for (int i = 0; i < 6; i++)
        CU_ASSERT(isfinite(dr[i]) && isfinite(df[i]) && isfinite(d[i]));
}

/* MPIGAN_TRAP_FPE=1: a Debug build traps 0/0 (the child dies of SIGFPE) and stops trapping when
 * told; any other build refuses the variable with one line rather than silently not trapping. */
static void test_fpe_traps(void)
{
    mg_error err = {""};
    unsetenv("MPIGAN_TRAP_FPE");
    CU_ASSERT_EQUAL(mg_fpe_traps_wanted(&err), 0);
    setenv("MPIGAN_TRAP_FPE", "0", 1);
    CU_ASSERT_EQUAL(mg_fpe_traps_wanted(&err), 0);
    setenv("MPIGAN_TRAP_FPE", "1", 1);
#ifdef MG_FPE_TRAPS
    CU_ASSERT_EQUAL(mg_fpe_traps_wanted(&err), 1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        mg_fpe_traps(1);
        signal(SIGFPE, SIG_DFL); /* the end of the process is the test, not the handler's lines */
        volatile double zero = 0, nan = zero / zero;
        (void)nan;
        _exit(0);
    }
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGFPE);
    mg_fpe_traps(1);
    mg_fpe_traps(0);
    volatile double zero = 0, nan = zero / zero;
    CU_ASSERT(isnan(nan));
#else
    MG_ASSERT_FAILS(mg_fpe_traps_wanted(&err), err, "MPIGAN_TRAP_FPE=1",
                    "floating-point traps need a Debug build (cmake -DCMAKE_BUILD_TYPE=Debug)");
#endif
    unsetenv("MPIGAN_TRAP_FPE");
}

static const mg_test tests[] = {
    {"gemm_small", test_gemm_small},
    {"gemm_blas_vs_ref", test_gemm_blas_vs_ref},
    {"dense_by_hand", test_dense_forward_by_hand},
    {"activations", test_activations},
    {"sigmoid_extremes", test_sigmoid_extremes},
    {"losses", test_losses},
    {"sigmoid_float", test_sigmoid_float},
    {"tanh_float", test_tanh_float},
    {"bias_act_vs_separate", test_bias_act_vs_separate},
    {"maxout_routing", test_maxout_routing},
    {"net_layout", test_net_layout},
    {"net_forward_by_hand", test_net_forward_by_hand},
    {"net_blas_vs_ref", test_net_blas_vs_ref},
    {"dropout_masks", test_dropout_masks},
    {"dropout_row_id", test_dropout_row_id},
    {"backward_no_weights", test_backward_no_weights},
    {"backward_set_grads", test_backward_set_grads},
    {"backward_row_range", test_backward_row_range},
    {"net_init_errors", test_net_init_errors},
    {"init_params", test_init_params},
    {"bias_from_mean", test_bias_from_mean},
    {"max_col_norm", test_max_col_norm},
    {"fpe_quiet_extremes", test_fpe_quiet_extremes},
    {"fpe_traps", test_fpe_traps},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("nn", tests, argc, argv);
}
