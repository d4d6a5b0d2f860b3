/* Winograd's minimal filtering for strided convolutions: the conv kernels' second algorithm,
 * which does the same convolutions with fewer multiplications than the GEMM over im2col columns.
 *
 * A conv of stride s whose kernel is r times its stride (DCGAN's 4x4 at stride 2: r = 2; a 2x2
 * or 3x3 one at stride 1) is, seen on the s x s phases of its padded input, a stride-1 conv with
 * an r x r kernel over C s^2 channels: tap (a s + ry, b s + rx) of channel c reads phase (ry, rx)
 * of c at offset (a, b). Winograd's F(m x m, r x r) computes an m x m tile of such a conv from an
 * alpha x alpha tile of its input, alpha = m + r - 1, with alpha^2 products per channel pair where
 * the direct sum takes m^2 r^2:
 *
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A     (. elementwise; g the r x r kernel, d the input tile)
 *
 * Over channels the alpha^2 elementwise products become alpha^2 GEMMs, (out channels x C s^2)
 * times (C s^2 x tiles): F(4x4, 2x2) runs 25 / 64 = 0.39 of the direct GEMMs' multiply-adds,
 * F(2x2, 2x2) 9 / 16. The tiles' input is an im2col of the image with an (alpha s) kernel at
 * stride (m s), whose rows hold every phase at once, and the output is a col2im with an m kernel at
 * stride m, so the layouts and border handling of conv.h's im2col and col2im carry over.
 *
 * The same bilinear form gives the other two passes exactly (they are its adjoints): the input
 * gradient runs it backwards, GEMMs with U^T, and the weight gradient is a GEMM of the output
 * gradient's transformed tiles by the input's. A transposed convolution (deconv) is the adjoint
 * of a conv, so its forward pass is the conv's input gradient and so on, as in conv.c.
 *
 * Numbers. Every transform of a tile (B, A) uses dyadic coefficients, exact in binary; the
 * others (1/6, 4/3, 8/3 in F(4x4, 2x2)) are in G, applied to the weights in double and rounded
 * once. Against the direct sum the result differs by rounding alone, more than the GEMM path's
 * because the transforms' intermediate sums are larger than the terms (mg_wino_growth). One tile
 * of one channel pair in float on random data, relative to the sum of the terms' magnitudes: at
 * most 3.5e-7 for F(2x2, 2x2), 5.3e-6 for F(4x4, 2x2), 2.7e-7 for F(2x2, 3x3), 5.0e-6 for
 * F(4x4, 3x3), against 6e-8 for one rounding (docs/winograd_tables.py). tests/test_conv.c
 * holds every layer's three passes to a bound built from the growth (the largest error seen: 5%
 * of it); in double the difference is near 1e-15 and the gradient checks
 * (tests/test_conv_gradcheck.c) pass through it. */
#ifndef MPIGAN_WINOGRAD_H
#define MPIGAN_WINOGRAD_H

#include <stddef.h>

#include "mpigan/blas.h"
#include "mpigan/real.h"

/* The transformed weights U of one layer, kept between calls: reused while the weights are
 * those it was made from (compared value by value with its copy of them, which costs a read of
 * the weights: U is alpha^2 / r^2 times their size, 6.25 times for F(4x4, 2x2), and a DCGAN step
 * uses each layer's weights 3 to 6 times between updates). The owner zeroes it (valid 0). */
typedef struct {
    int valid;
    mg_real *u;  /* (alpha^2, CB, Cp) */
    mg_real *wt; /* (CB, CA, KH, KW): the weights u was made from */
} mg_wino_cache;

/* The products by U in the passes: mg_wino_gemm's signature (below). */
typedef void (*mg_wino_gemm_fn)(int M, int N, int K, const mg_real *a, size_t ars, size_t acs,
                                const mg_real *b, size_t ldb, mg_real *c, size_t ldc,
                                mg_real *pack, int blocks);

/* An m x m tile of a conv from an "A" image (CA, HA, WA) to a "B" image (CB, HB, WB), weights
 * (CB, CA, KH, KW): a conv's input is its A, a deconv's output is its A. Set by mg_wino_plan. */
typedef struct {
    int m, r, alpha;  /* F(m x m, r x r), alpha = m + r - 1; m 0: no plan */
    int CA, HA, WA;   /* the A image */
    int CB, HB, WB;   /* the B image */
    int KH, KW, SH, SW, PH, PW; /* the conv from A to B: kernel, stride, zero padding of A */
    int TH, TW;       /* tiles of B: HB / m by WB / m */
    int Cp;           /* CA SH SW: the channels of the phases */
    int group;        /* images per pass: tiles (columns of the GEMMs) group TH TW >= 256 */
    int table;        /* which F(m, r) */
    int keeps_u;      /* 1: the owner attaches a cache (mg_wino_cache_init) before any pass, and
                         the work space holds no U of its own (only the r^2 / alpha^2 of it that
                         the weight gradient needs as scratch) */
    mg_wino_cache *cache; /* NULL, or where the layer keeps U */
    mg_wino_gemm_fn products; /* NULL: mg_wino_gemm with AVX-512, else the BLAS; a tool that
                                 times them apart (bench/gemm_bound) puts its wrapper here */
} mg_wino;

/* Fills w for the conv (or, through the same A and B, the deconv) of those sizes with tile m (2 or
 * 4; 0 tries 4, then 2): returns 0, or -1 when no F(m, r) applies: the kernel is not r = 2 or 3
 * times the stride in both directions, B's sides are not multiples of m, or a size would
 * overflow an int. group 0 picks one (see above). */
int mg_wino_plan(mg_wino *w, int CA, int HA, int WA, int CB, int HB, int WB, int KH, int KW,
                 int SH, int SW, int PH, int PW, int m, int group);

/* The growth of the transforms: the largest sum, over the alpha^2 products that make one output,
 * of |A^T| |G| |B^T| weights (each row sum of |G| and |B^T| taken whole) over r^2, the count of
 * the direct sum's terms per channel: how far the magnitudes the GEMMs add can exceed the direct
 * sum's, hence the factor on its rounding bound (tests/test_conv.c). */
double mg_wino_growth(const mg_wino *w);

/* Bytes of a cache of w's U (its struct, U and a copy of the weights, 64-byte aligned), and its
 * setup in such a block of zeroed memory: w->cache then points to it. */
size_t mg_wino_cache_bytes(const mg_wino *w);
void mg_wino_cache_init(mg_wino *w, void *block);

/* Values of work space the passes below need for a batch of N. */
size_t mg_wino_work_size(const mg_wino *w, int N);

/* Up to three results of one pass over the batch, each group's tiles transformed once:
 *   b_out (N, CB, HB, WB) = the conv of a_in (N, CA, HA, WA) with wt (CB, CA, KH, KW), no bias;
 *   a_out (N, CA, HA, WA) = its adjoint applied to b_in (N, CB, HB, WB);
 *   dwt (CB, CA, KH, KW) += the weight gradient for input a_in and output gradient b_in (add 0:
 *                           written; zero when N is 0).
 * A NULL output is skipped (and the input only it needs may be NULL). The layers' passes:
 *   conv forward     b_out = out,  a_in = inp
 *   conv backward    a_out = dinp, dwt = dw,  a_in = inp,  b_in = dout
 *   deconv forward   a_out = out,  b_in = inp
 *   deconv backward  b_out = dinp, dwt = dw,  a_in = dout, b_in = inp
 * work: mg_wino_work_size(w, N) values. */
void mg_wino_run(mg_real *a_out, mg_real *b_out, mg_real *dwt, const mg_real *a_in,
                 const mg_real *b_in, const mg_real *wt, int N, const mg_wino *w, int add,
                 mg_real *work, mg_gemm_fn gemm);

/* C (M, N) = A (M, K) B (K, N), row-major with C's and B's rows ldc and ldb apart, A's element
 * (i, k) at a[i ars + k acs] (ars = lda, acs = 1 for A; 1 and lda for the transpose): the GEMM
 * of the transformed weights by the tiles in the passes above where the CPU has AVX-512 (else
 * they call the BLAS; see winograd.c). Sums over k in order, with fused multiply-adds in its
 * vector blocks where the build and CPU have FMA. pack: 12 K values of scratch. blocks: 0 picks
 * them (12 rows by 2 vectors with AVX-512, else 6 by 1); 1 and 2 force 6 by 1 and 12 by 2, so
 * that a test runs both on any CPU. */
/* 1 where the passes take mg_wino_gemm for the products by U (code for AVX-512 runs: a build for
 * it, or MG_HOT's x86-64-v4 clone on a CPU with its features), 0 where they call the BLAS. */
int mg_wino_products_fast(void);

void mg_wino_gemm(int M, int N, int K, const mg_real *a, size_t ars, size_t acs,
                  const mg_real *b, size_t ldb, mg_real *c, size_t ldc, mg_real *pack,
                  int blocks);

#endif
