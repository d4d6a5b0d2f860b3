/* Convolutional layer kernels: im2col/col2im, convolution, transposed convolution, channel maxout,
 * max pooling and batch normalisation, over NCHW tensors (row-major: an (N, C, H, W) tensor is N
 * images of C planes of H rows of W values).
 *
 * The conventions of nn.h: outputs first, then inputs, then sizes; backward kernels *add* into
 * weight and bias gradients, or with add 0 *write* them without reading them; input gradients are
 * *written*; a NULL gradient pointer skips that gradient. Every GEMM goes through an mg_gemm_fn
 * (mg_gemm_blas or its plain-C twin mg_gemm_ref). Kernels never allocate: the caller passes a
 * work buffer of mg_conv_work_size() values, sized once for the largest batch. No output may
 * alias an input (the loops are restrict-qualified so that they vectorise).
 *
 * Sizes are checked once, where a layer is built: mg_conv_shape_init, mg_deconv_shape_init and
 * mg_pool_shape_init refuse every shape that does not fit (with one line naming the layer) and
 * derive the output sizes, so a kernel, given a shape they accepted, cannot see a size error.
 *
 * Dropout on a spatial input needs no kernel of its own: an (N, C, H, W) tensor is N rows of
 * C * H * W values, and the network's per-value dropout mask (one draw per value of a row, from
 * the row's global example id) applies to it unchanged, as pylearn2 drops conv inputs. */
#ifndef MPIGAN_CONV_H
#define MPIGAN_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/error.h"
#include "mpigan/blas.h" /* mg_gemm_fn */
#include "mpigan/real.h"
#include "mpigan/winograd.h"

/* ---- output sizes of one spatial dimension: -1 when the shape does not fit ----
 * -1 for: a size, kernel, pool or stride below 1, a padding below 0, a kernel larger than the
 * padded input, a pool window larger than the input, an output padding not below the stride, and
 * any result (or padded size) beyond INT_MAX. */

/* (in + 2 pad - kernel) / stride + 1 (floor): the positions of a kernel in the padded input. */
int mg_conv_out_size(int in, int kernel, int stride, int pad);
/* (in - 1) stride - 2 pad + kernel + out_pad, with 0 <= out_pad < stride (PyTorch's
 * ConvTranspose2d): the size whose convolution with the same kernel, stride and padding is `in`;
 * out_pad picks one of the `stride` sizes that have that property. -1 also when it is below 1. */
int mg_deconv_out_size(int in, int kernel, int stride, int pad, int out_pad);
/* ceil((in - pool) / stride) + 1 windows (cuda-convnet, pylearn2's MaxoutConvC01B, PyTorch's
 * MaxPool2d with ceil_mode and no padding): the last window may be clipped at the border. As in
 * PyTorch, a window that would start past the input (possible only when stride > pool) is
 * dropped. */
int mg_pool_out_size(int in, int pool, int stride);

/* ---- im2col / col2im ----
 * The columns of an image (C, H, W) for a kernel (KH, KW) at stride (SH, SW) with zero padding
 * (PH, PW): a matrix col (C * KH * KW, OH * OW) whose row (c * KH + kh) * KW + kw holds, at
 * column oh * OW + ow, the value under kernel tap (c, kh, kw) at output position (oh, ow):
 * img[c][oh * SH - PH + kh][ow * SW - PW + kw], or 0 in the padding. A convolution is then one
 * GEMM, w (OC, C * KH * KW) times col. The matrix takes KH * KW / (SH * SW) times the image's
 * memory (16 times for a 4x4 kernel at stride 1, 4 times at stride 2), which is why the kernels
 * below build it for a group of images at a time, never for a whole batch unless asked to. */
typedef struct {
    int C, H, W;                /* the image (C, H, W) */
    int KH, KW, SH, SW, PH, PW; /* kernel, stride, zero padding */
    int OH, OW;                 /* kernel positions: mg_conv_out_size of H and of W */
} mg_patches;

/* col (C * KH * KW, ldcol): columns [0, OH * OW) of each row written from img (C, H, W); the
 * rest of each row (up to ldcol, where several images share one matrix) is not touched. */
void mg_im2col(mg_real *col, int ldcol, const mg_real *img, const mg_patches *p);
/* The adjoint: img (C, H, W) = the sum, over every tap, of the column values that im2col would
 * copy from each pixel (written; padding taps dropped). Each pixel's terms are added in a fixed
 * order, (kh, kw) ascending. */
void mg_col2im(mg_real *img, const mg_real *col, int ldcol, const mg_patches *p);
/* The same for count images side by side: image g (at img + g img_stride) has the columns
 * [g OH OW, (g + 1) OH OW) of col, the layout of a group's GEMM; the same values as count calls
 * of the one-image functions, faster (src/conv.c). */
void mg_im2col_images(mg_real *col, int ldcol, const mg_real *img, size_t img_stride, int count,
                      const mg_patches *p);
void mg_col2im_images(mg_real *img, size_t img_stride, const mg_real *col, int ldcol, int count,
                      const mg_patches *p);

/* ---- convolution and transposed convolution ---- */

/* How a conv or deconv layer runs: `auto` takes Winograd's F(m x m, r x r) (winograd.h) where it
 * applies (a kernel 2 or 3 times its stride, DCGAN's 4x4 at stride 2; the conv's output sides
 * multiples of 2), else the GEMM over im2col columns. Both compute the same convolution; they
 * differ in rounding (winograd.h gives the bound). */
enum mg_conv_algorithm { MG_CONV_AUTO, MG_CONV_GEMM, MG_CONV_WINOGRAD };
extern const char *const mg_conv_algorithm_names[]; /* "auto", "gemm", "winograd", NULL */

/* A conv or deconv layer. The caller sets the first block (designated initializers read well:
 * {.IC = 3, .H = 32, .W = 32, .OC = 64, .KH = 8, .KW = 8, .SH = 1, .SW = 1, .PH = 4, .PW = 4}),
 * then mg_conv_shape_init or mg_deconv_shape_init checks it and fills the second block. */
typedef struct {
    int IC, H, W;     /* input (N, IC, H, W) */
    int OC;           /* output channels */
    int KH, KW;       /* kernel */
    int SH, SW;       /* stride */
    int PH, PW;       /* zero padding */
    int OPH, OPW;     /* deconv only: output padding, 0 <= OPH < SH, 0 <= OPW < SW */
    int untied;       /* bias per output value b (OC, OH, OW) (pylearn2 tied_b 0); else per
                         output channel b (OC) (tied_b 1) */
    int group;        /* images per GEMM; 0 picks one (see mg_conv_shape_init) */
    enum mg_conv_algorithm algorithm; /* MG_CONV_AUTO (0) unless asked */

    /* set by the init functions */
    int OH, OW;       /* output (N, OC, OH, OW) */
    int transposed;   /* 1: a deconv shape */
    mg_patches im;    /* the im2col of the layer: conv, of its input with grid (OH, OW); deconv,
                         of its output (OC, OH, OW) with grid (H, W) */
    mg_wino wino;     /* wino.m > 0: the layer runs Winograd's algorithm with this plan (A: the
                         conv's input, the deconv's output, as im) */
} mg_conv_shape;

/* Checks a conv shape and fills OH, OW (mg_conv_out_size), im, group and wino. Returns 0, or -1
 * with "<name>: <problem>" in err (also for MG_CONV_WINOGRAD on a shape it does not fit). group 0
 * becomes the smallest number of images whose columns number at least MG_CONV_GROUP_COLUMNS, so
 * that every GEMM is wide; the GEMM dimensions (OC, IC * KH * KW, group * OH * OW) and the sizes
 * of one image and of w must fit in an int. */
int mg_conv_shape_init(mg_conv_shape *s, const char *name, mg_error *err);
/* The same for a deconv: OH, OW from mg_deconv_out_size with output padding (OPH, OPW). */
int mg_deconv_shape_init(mg_conv_shape *s, const char *name, mg_error *err);

/* Measured on this project's EPYC, OpenBLAS sgemm on one core: per-image GEMMs of a 4x4 map
 * (16 columns) run at 57 GFLOP/s, groups of 256 columns or more at 88-93, and going from 256 to
 * 1024 columns gains at most 3% in the GEMM while the column matrix, 4 times larger, falls out
 * of cache (im2col 7.5 -> 11.4 ms for 64 images of 256 x 8 x 8). See src/conv.c. */
#define MG_CONV_GROUP_COLUMNS 256

/* Values of w: OC * IC * KH * KW; of b: OC, or OC * OH * OW untied. */
size_t mg_conv_weight_size(const mg_conv_shape *s);
size_t mg_conv_bias_size(const mg_conv_shape *s);
/* Values of the work buffer that the conv or deconv kernels of s need for a batch of N (enough
 * for forward and backward). 0 for a conv whose kernel covers its unpadded input (to 1x1) and a
 * deconv of a 1x1 input to its kernel's size: their im2col is the image itself, and they run as
 * one dense GEMM over the batch. */
size_t mg_conv_work_size(const mg_conv_shape *s, int N);

/* out (N, OC, OH, OW) = conv(inp (N, IC, H, W), w (OC, IC, KH, KW)) + b, i.e.
 * out[n][o][y][x] = b + sum over c, kh, kw of w[o][c][kh][kw] inp[n][c][y SH - PH + kh][x SW -
 * PW + kw] (cross-correlation, as every framework computes it); b (OC) or (OC, OH, OW) untied,
 * or NULL for none. work: mg_conv_work_size(s, N) values. */
void mg_conv_forward(mg_real *out, const mg_real *inp, const mg_real *w, const mg_real *b, int N,
                     const mg_conv_shape *s, mg_real *work, mg_gemm_fn gemm);
/* dw (OC, IC, KH, KW) += the gradient for w; db += the gradient for b (its shape); dinp (N, IC,
 * H, W) = the gradient for inp. add 0 writes dw and db instead (zero when N is 0). */
void mg_conv_backward(mg_real *dinp, mg_real *dw, mg_real *db, const mg_real *dout,
                      const mg_real *inp, const mg_real *w, int N, const mg_conv_shape *s,
                      int add, mg_real *work, mg_gemm_fn gemm);

/* out (N, OC, OH, OW) = deconv(inp (N, IC, H, W), w (IC, OC, KH, KW)) + b: PyTorch's
 * ConvTranspose2d, out[n][o][y SH - PH + kh][x SW - PW + kw] += w[c][o][kh][kw] inp[n][c][y][x]
 * (taps outside out dropped), b (OC) or (OC, OH, OW) untied, or NULL. It is the adjoint of the
 * conv with the same w, kernel, stride and padding from (N, OC, OH, OW) to (N, IC, H, W):
 * <conv(y), x> = <y, deconv(x)> with no bias. */
void mg_deconv_forward(mg_real *out, const mg_real *inp, const mg_real *w, const mg_real *b, int N,
                       const mg_conv_shape *s, mg_real *work, mg_gemm_fn gemm);
/* dw (IC, OC, KH, KW) += ..., db += ..., dinp (N, IC, H, W) = ...; add 0 writes dw, db. */
void mg_deconv_backward(mg_real *dinp, mg_real *dw, mg_real *db, const mg_real *dout,
                        const mg_real *inp, const mg_real *w, int N, const mg_conv_shape *s,
                        int add, mg_real *work, mg_gemm_fn gemm);

/* ---- maxout over channels, max pooling (pylearn2's MaxoutConvC01B: conv, then these) ---- */

/* out (N, U, HW) = max over p of pre (N, U * P, HW) at channel u * P + p (pieces of a unit are
 * consecutive channels); argmax (N, U, HW) keeps p, ties keep the lowest piece (mg_maxout_forward
 * over channels). HW = H * W. */
void mg_channel_maxout_forward(mg_real *out, int32_t *argmax, const mg_real *pre, int N, int U,
                               int P, int HW);
/* dpre (N, U * P, HW) = dout routed to the winning piece, 0 elsewhere. */
void mg_channel_maxout_backward(mg_real *dpre, const mg_real *dout, const int32_t *argmax, int N,
                                int U, int P, int HW);

typedef struct {
    int C, H, W;      /* input (N, C, H, W) */
    int KH, KW;       /* window ("pool shape") */
    int SH, SW;       /* stride; below the window, windows overlap */
    int OH, OW;       /* set by mg_pool_shape_init: mg_pool_out_size */
} mg_pool_shape;

/* Checks a pool shape and fills OH, OW. Returns 0, or -1 with "<name>: <problem>" in err. */
int mg_pool_shape_init(mg_pool_shape *s, const char *name, mg_error *err);

/* out (N, C, OH, OW) = max of inp (N, C, H, W) over the window at (oh SH, ow SW), clipped at the
 * border; argmax (N, C, OH, OW) = the winner's index ih * W + iw in its plane, ties keeping the
 * first in row-major order. */
void mg_maxpool_forward(mg_real *out, int32_t *argmax, const mg_real *inp, int N,
                        const mg_pool_shape *s);
/* dinp (N, C, H, W) = each dout routed to its argmax, summed where windows overlap. */
void mg_maxpool_backward(mg_real *dinp, const mg_real *dout, const int32_t *argmax, int N,
                         const mg_pool_shape *s);

/* ---- batch normalisation over (N, C, HW): per channel, over N * HW values ----
 * Flat inputs (N, C) are HW = 1. Training normalises with the statistics of the *global* batch,
 * spread over MPI ranks, so each pass is split in phases around a sum over ranks that the caller
 * does (the kernels never see MPI):
 *
 *   forward:  mg_batchnorm_sums(sums, x, ...)           this rank's sums, double (2, C)
 *             caller: sums summed over ranks             MPI_Allreduce(MPI_IN_PLACE, sums, 2 C,
 *                                                        MPI_DOUBLE, MPI_SUM), count = M =
 *                                                        global N * HW
 *             mg_batchnorm_moments(stats, sums, M, eps)  mean, 1 / sqrt(var + eps), double (2, C)
 *             mg_batchnorm_running(...)                  running averages (optional)
 *             mg_batchnorm_forward(out, x, stats, ...)   out = gamma xhat + beta
 *   evaluation: mg_batchnorm_eval_stats(stats, run_mean, run_var, eps), mg_batchnorm_forward
 *   backward: mg_batchnorm_backward_sums(sums, dgamma, dbeta, dout, x, stats, ...)
 *                                                        this rank's sums of dout and dout xhat;
 *                                                        dgamma, dbeta from this rank's rows
 *             caller: sums summed over ranks (2 C doubles)
 *             mg_batchnorm_backward(dinp, dout, x, stats, gamma, sums, M, ...)
 *
 * dgamma and dbeta are this rank's share, like every other weight gradient, and are summed over
 * ranks with them; the phase sums are global, because dinp needs the whole batch's. Backward
 * needs x and stats of the forward pass (2 C doubles): xhat = (x - mean) invstd is recomputed,
 * not kept, which saves a tensor the size of the layer's output.
 *
 * Why sums of x and x^2 are sound here: each x^2 of a float is exact in double, so the only
 * errors are the double additions, about n eps_d (mean^2 + var) in n var with n the length of the
 * longest chain of additions (a plane's HW / 8 + 8 in eight interleaved partial sums, then N,
 * then ranks: blocked, never N * HW). The float input
 * itself is only known to eps_f |x|, which already moves var by about 2 eps_f |mean| sd; the
 * double error is the smaller one while n (|mean| / sd) < 2 eps_f / eps_d ~ 1e9, far beyond any
 * batch (a channel whose mean is 1e4 sd cannot be normalised in float anyway). var is clamped at
 * 0 against the last rounding. */

/* sums (2, C): sum of x, then sum of x^2, per channel over x (N, C, HW) (written). */
void mg_batchnorm_sums(double *sums, const mg_real *x, int N, int C, int HW);
/* stats (2, C): mean = sums / count, then invstd = 1 / sqrt(var + eps), var the biased variance
 * sums[C + c] / count - mean^2 (>= 0). count = the global N * HW, > 0. */
void mg_batchnorm_moments(double *stats, const double *sums, double count, double eps, int C);
/* PyTorch's running averages: run = (1 - momentum) run + momentum batch, with the unbiased
 * variance var count / (count - 1) for run_var (count > 1). run_mean, run_var (C). */
void mg_batchnorm_running(mg_real *run_mean, mg_real *run_var, const double *sums, double count,
                          double momentum, int C);
/* Evaluation (PyTorch's eval mode): stats (2, C) = run_mean, 1 / sqrt(run_var + eps), for
 * mg_batchnorm_forward, which is then the inference forward. */
void mg_batchnorm_eval_stats(double *stats, const mg_real *run_mean, const mg_real *run_var,
                             double eps, int C);
/* out (N, C, HW) = gamma (x - mean) invstd + beta, gamma and beta (C), stats from
 * mg_batchnorm_moments; evaluated in double and rounded once. */
void mg_batchnorm_forward(mg_real *out, const mg_real *x, const double *stats,
                          const mg_real *gamma, const mg_real *beta, int N, int C, int HW);
/* sums (2, C): sum of dout, then sum of dout xhat, over this rank's (N, C, HW) (written).
 * dbeta (C) += the first, dgamma (C) += the second (add 0: written; NULL: skipped). */
void mg_batchnorm_backward_sums(double *sums, mg_real *dgamma, mg_real *dbeta,
                                const mg_real *dout, const mg_real *x, const double *stats, int N,
                                int C, int HW, int add);
/* dinp (N, C, HW) = gamma invstd (dout - S1 / count - xhat S2 / count) with S1, S2 the global
 * sums of mg_batchnorm_backward_sums (the gradient through the batch mean and variance). */
void mg_batchnorm_backward(mg_real *dinp, const mg_real *dout, const mg_real *x,
                           const double *stats, const mg_real *gamma, const double *sums,
                           double count, int N, int C, int HW);

#endif
