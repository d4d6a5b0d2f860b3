/* Convolutional layer kernels. See include/mpigan/conv.h for the contract.
 *
 * The GEMM scheme. A conv is w (OC, K) times the columns (K, P) of one image, K = IC KH KW,
 * P = OH OW. One GEMM per image is narrow where maps are small (a 4x4 map: 16 columns, and the
 * weight-gradient GEMM then sums over only 16 values per call); one GEMM over the whole batch is
 * as wide as can be, but its column matrix holds K N P values (64 MiB for the 64 -> 128, 4x4
 * stride-2 conv of a DCGAN on 64 images of 32x32), written by im2col and read back from memory.
 * So the kernels take G images at a time, G the smallest count with G P >= MG_CONV_GROUP_COLUMNS
 * (or the caller's choice): the group's columns (K, G P), image g at columns [g P, (g + 1) P),
 * feed GEMMs at least that wide, and stay in cache between im2col and the GEMM. The GEMM's output
 * (OC, G P) is in (channel, image) order where NCHW wants (image, channel): one copy of runs of
 * P contiguous values puts it in place, adding the bias on the way. Where G is 1 (maps of
 * MG_CONV_GROUP_COLUMNS positions or more) the GEMM writes the image's output in place.
 * Backward recomputes im2col rather than keep the forward pass's columns: keeping them would cost
 * K N P values per layer, about KH KW / (SH SW) times its input (4 times for 4x4 at stride 2).
 *
 * Measured on one core of the project's EPYC (OpenBLAS 'Zen' sgemm, 64 images, best of 8 runs of
 * 9, on a shared machine), forward / backward in ms, against mg_dense_forward / _backward running
 * GEMMs of the same sizes (rows N P, K inputs, OC outputs):
 *   conv 64 -> 128 on 32x32, G 1:    58.2 / 120.4 (GEMMs 48.4, 47.4 + 52.3; im2col 9.5, col2im
 *                                     8.3) against dense 54.0 / 106.2
 *   conv 256 -> 512 on 8x8, G 16:    56.6 / 110.8 against dense 45.6 / 92.9; with G 1, GEMMs of
 *                                     16 columns: 82.3 / 168.2
 *   deconv 256 -> 128 on 8x8, G 4:   57.1 / 102.2 against dense 49.8 / 100.8
 *   conv 3 -> 192, 8x8 pad 4, 32x32 (the paper's CIFAR-10 D, 100 images): 102.2 / 205.5 against
 *                                     dense 105.3 / 211.1
 * (im2col and col2im as they were then, before their phase path below.)
 *
 * A whole DCGAN 32x32 step (batch 64, k 1: 26.9 GFLOP in 887 GEMMs) took 366 ms against 314 ms
 * of its GEMMs alone, in the quietest of five runs on this shared machine; before the phase path,
 * the dense shapes, and nn.c's vectorised leaky ReLU and tanh: 506 ms against the same 314. On an
 * AVX-512 EPYC (OpenBLAS 'Cooperlake' sgemm, 98 GFLOP/s) with the grouped phase path: 317.6 ms
 * against 277.4 ms (bench/run.py --model dcgan, medians).
 *
 * Where a layer's shape allows it (a kernel 2 or 3 times its stride, the conv's output of even
 * sides) and its `algorithm` is not `gemm`, all four kernels below hand the layer to Winograd's
 * F(m x m, r x r) (winograd.c), whose GEMMs do 25/64 of these multiply-adds for DCGAN's 4x4
 * stride-2 layers: its whole step 0.71 of this path's in interleaved runs on one core (README,
 * "Benchmark"). */
#include "mpigan/conv.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "simd.h"

/* ---- sizes ---- */

int mg_conv_out_size(int in, int kernel, int stride, int pad)
{
    if (in < 1 || kernel < 1 || stride < 1 || pad < 0)
        return -1;
    const long long padded = (long long)in + 2LL * pad;
    if (padded > INT_MAX || padded < kernel)
        return -1;
    return (int)((padded - kernel) / stride + 1);
}

int mg_deconv_out_size(int in, int kernel, int stride, int pad, int out_pad)
{
    if (in < 1 || kernel < 1 || stride < 1 || pad < 0 || out_pad < 0 || out_pad >= stride)
        return -1;
    const long long padded = (long long)(in - 1) * stride + kernel + out_pad; // out + 2 pad
    const long long out = padded - 2LL * pad;
    if (padded > INT_MAX || out < 1)
        return -1;
    return (int)out;
}

int mg_pool_out_size(int in, int pool, int stride)
{
    if (in < 1 || pool < 1 || stride < 1 || pool > in)
        return -1;
    int out = (int)(((long long)in - pool + stride - 1) / stride) + 1;
    if ((long long)(out - 1) * stride >= in) // a last window starting past the input
        out--;
    return out;
}

static int is_dense(const mg_conv_shape *s);
static int plan_algorithm(mg_conv_shape *s, const char *name, mg_error *err);

/* a b, or INT_MAX + 1 when that is more than INT_MAX (a, b in [0, INT_MAX + 1]). */
static long long mul_capped(long long a, long long b)
{
    const long long p = a * b;
    return p > INT_MAX ? (long long)INT_MAX + 1 : p;
}

/* The checks and derived sizes shared by conv and deconv shapes, once OH, OW and im are set. */
static int finish_shape(mg_conv_shape *s, const char *name, mg_error *err)
{
    const mg_patches *p = &s->im;
    const long long K = mul_capped(mul_capped(p->C, p->KH), p->KW);
    const long long P = mul_capped(p->OH, p->OW);
    const long long sizes[] = {
        K, P,
        mul_capped(mul_capped(s->IC, s->H), s->W),   // one input image
        mul_capped(mul_capped(s->OC, s->OH), s->OW), // one output image, an untied bias
        mul_capped(K, s->transposed ? s->IC : s->OC),
    };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (sizes[i] > INT_MAX)
            return mg_fail(err, "%s: sizes overflow an int (%d x %d x %d -> %d x %d x %d, kernel "
                           "%dx%d)", name, s->IC, s->H, s->W, s->OC, s->OH, s->OW, s->KH, s->KW);
    if (s->group < 0)
        return mg_fail(err, "%s: group %d must be 0 (automatic) or positive", name, s->group);
    /* Automatic: group P < MG_CONV_GROUP_COLUMNS + P, which fits (group > 1 only for small P). */
    if (s->group == 0)
        s->group = (int)((MG_CONV_GROUP_COLUMNS + P - 1) / P);
    else if (mul_capped(s->group, P) > INT_MAX)
        return mg_fail(err, "%s: group %d of %lld-column images overflows an int", name, s->group,
                       P);
    return plan_algorithm(s, name, err);
}

const char *const mg_conv_algorithm_names[] = {"auto", "gemm", "winograd", NULL};

/* Plans Winograd's algorithm where asked or (auto) where it fits: A the conv's input or the
 * deconv's output, B the other. Not for the dense shapes, which need no columns at all. */
static int plan_algorithm(mg_conv_shape *s, const char *name, mg_error *err)
{
    s->wino = (mg_wino){0};
    if (s->algorithm == MG_CONV_GEMM || is_dense(s))
        return s->algorithm == MG_CONV_WINOGRAD
                   ? mg_fail(err, "%s: algorithm winograd: a kernel that covers its input is one "
                             "dense GEMM already", name)
                   : 0;
    const mg_patches *p = &s->im;
    const int CB = s->transposed ? s->IC : s->OC;
    if (mg_wino_plan(&s->wino, p->C, p->H, p->W, CB, p->OH, p->OW, s->KH, s->KW, s->SH, s->SW,
                     s->PH, s->PW, 0, 0) == 0 ||
        s->algorithm == MG_CONV_AUTO)
        return 0;
    return mg_fail(err, "%s: algorithm winograd needs a kernel 2 or 3 times its stride in both "
                   "directions (kernel %dx%d, stride %dx%d) and %s sides that are even (%dx%d)",
                   name, s->KH, s->KW, s->SH, s->SW, s->transposed ? "input" : "output", p->OH,
                   p->OW);
}

static int check_common(const mg_conv_shape *s, const char *name, mg_error *err)
{
    if (s->IC < 1 || s->H < 1 || s->W < 1 || s->OC < 1)
        return mg_fail(err, "%s: input %d x %d x %d and output channels %d must be positive", name,
                       s->IC, s->H, s->W, s->OC);
    if (s->KH < 1 || s->KW < 1 || s->SH < 1 || s->SW < 1 || s->PH < 0 || s->PW < 0)
        return mg_fail(err, "%s: kernel %dx%d and stride %dx%d must be positive, padding %dx%d "
                       "not negative", name, s->KH, s->KW, s->SH, s->SW, s->PH, s->PW);
    return 0;
}

int mg_conv_shape_init(mg_conv_shape *s, const char *name, mg_error *err)
{
    if (check_common(s, name, err))
        return -1;
    if (s->OPH != 0 || s->OPW != 0)
        return mg_fail(err, "%s: output padding %dx%d is for deconv layers only", name, s->OPH,
                       s->OPW);
    const long long ph = (long long)s->H + 2LL * s->PH, pw = (long long)s->W + 2LL * s->PW;
    if (ph < s->KH || pw < s->KW)
        return mg_fail(err, "%s: kernel %dx%d larger than the padded input %lldx%lld", name, s->KH,
                       s->KW, ph, pw);
    s->OH = mg_conv_out_size(s->H, s->KH, s->SH, s->PH);
    s->OW = mg_conv_out_size(s->W, s->KW, s->SW, s->PW);
    if (s->OH < 0 || s->OW < 0)
        return mg_fail(err, "%s: padded input %lldx%lld overflows an int", name, ph, pw);
    s->transposed = 0;
    s->im = (mg_patches){.C = s->IC, .H = s->H, .W = s->W, .KH = s->KH, .KW = s->KW, .SH = s->SH,
                         .SW = s->SW, .PH = s->PH, .PW = s->PW, .OH = s->OH, .OW = s->OW};
    return finish_shape(s, name, err);
}

int mg_deconv_shape_init(mg_conv_shape *s, const char *name, mg_error *err)
{
    if (check_common(s, name, err))
        return -1;
    if (s->OPH < 0 || s->OPW < 0 || s->OPH >= s->SH || s->OPW >= s->SW)
        return mg_fail(err, "%s: output padding %dx%d must be at least 0 and below the stride "
                       "%dx%d", name, s->OPH, s->OPW, s->SH, s->SW);
    const long long oh = (long long)(s->H - 1) * s->SH - 2LL * s->PH + s->KH + s->OPH;
    const long long ow = (long long)(s->W - 1) * s->SW - 2LL * s->PW + s->KW + s->OPW;
    if (oh < 1 || ow < 1)
        return mg_fail(err, "%s: padding %dx%d leaves no output (%lld x %lld)", name, s->PH, s->PW,
                       oh, ow);
    s->OH = mg_deconv_out_size(s->H, s->KH, s->SH, s->PH, s->OPH);
    s->OW = mg_deconv_out_size(s->W, s->KW, s->SW, s->PW, s->OPW);
    if (s->OH < 0 || s->OW < 0)
        return mg_fail(err, "%s: output %lld x %lld overflows an int", name, oh, ow);
    s->transposed = 1;
    s->im = (mg_patches){.C = s->OC, .H = s->OH, .W = s->OW, .KH = s->KH, .KW = s->KW, .SH = s->SH,
                         .SW = s->SW, .PH = s->PH, .PW = s->PW, .OH = s->H, .OW = s->W};
    return finish_shape(s, name, err);
}

size_t mg_conv_weight_size(const mg_conv_shape *s)
{
    return (size_t)s->OC * s->IC * s->KH * s->KW;
}

size_t mg_conv_bias_size(const mg_conv_shape *s)
{
    return s->untied ? (size_t)s->OC * s->OH * s->OW : (size_t)s->OC;
}

/* Images per GEMM for a batch of N. A shape that skipped its init function has group 0, and the
 * kernels' loops over groups would never end. */
static int group_of(const mg_conv_shape *s, int N)
{
    assert(s->group > 0);
    return N < s->group ? N : s->group;
}

/* The column matrix of a group of G, rounded up to 64 bytes so the staging area after it is
 * aligned too. */
static size_t col_values(const mg_conv_shape *s, int G)
{
    const size_t n = (size_t)s->im.C * s->KH * s->KW * G * s->im.OH * s->im.OW;
    const size_t line = 64 / sizeof(mg_real);
    return (n + line - 1) / line * line;
}

/* A layer whose one kernel position covers the whole unpadded image: a conv of an (IC, H, W)
 * input by an H x W kernel to 1x1 (DCGAN's last D layer), a deconv of a 1x1 input to the
 * kernel's size (its first G layer). Its im2col is the image itself, in the same order, so it is
 * a dense layer: one GEMM over the batch on the tensors as they lie, no column matrix, no work
 * space. (Through the column path, D's last layer spent 21 ms of a DCGAN step on an im2col that
 * wrote each image's 4096 values 128 columns apart, for a GEMM of 0.8 ms.) */
static int is_dense(const mg_conv_shape *s)
{
    const mg_patches *p = &s->im;
    return p->OH == 1 && p->OW == 1 && p->PH == 0 && p->PW == 0 && p->KH == p->H &&
           p->KW == p->W;
}

/* col (K, G P), then, for G > 1, a staging matrix (channels, G P): of the output (conv
 * forward), of dout (conv backward), of the input and then its gradient (deconv). */
size_t mg_conv_work_size(const mg_conv_shape *s, int N)
{
    const int G = group_of(s, N);
    if (G <= 0 || is_dense(s))
        return 0;
    if (s->wino.m)
        return mg_wino_work_size(&s->wino, N);
    const size_t stage = G > 1 ? (size_t)(s->transposed ? s->IC : s->OC) * G * s->im.OH * s->im.OW
                               : 0;
    return col_values(s, G) + stage;
}

/* ---- im2col / col2im ---- */

/* Two paths. The run path (any size) walks each tap's rows of output positions: a run of up to OW
 * values per output row and per tap, with its bounds and branches. On small maps the runs are
 * short (4 values for an 8x8 input at stride 2) and their overhead was the cost: 1.8 ns a value
 * for im2col and col2im there, against 0.3-0.7 for the phase path below, which serves planes of
 * up to PLANE_MAX values (every DCGAN and paper layer up to 64x64; stack buffers, so the kernels
 * still allocate nothing). Both give the same bits.
 *
 * The phase path sees the zero-padded plane (H + 2 PH, W + 2 PW) as its SH SW phases: phase
 * (ry, rx) holds the pixels (y, x) with y % SH = ry, x % SW = rx at (y / SH, x / SW) of a
 * (hq, wq) plane. Tap (kh, kw) at position (oh, ow) sees y = oh SH + kh, x = ow SW + kw: in
 * phase (kh % SH, kw % SW) at (oh + kh / SH, ow + kw / SW), so a tap's row of the column matrix
 * is a block of its phase, OW contiguous values per output row: copied by im2col, added by
 * col2im, in loops that vectorise (the padded plane itself would hold them SW apart). A table
 * of where each image pixel sits in the phases moves the image in (im2col) or out (col2im). */
enum { PLANE_MAX = 4096 };

/* Fills hq, wq; 1 when the phases (and the table of the image's pixels) fit in PLANE_MAX. */
static int phases_fit(const mg_patches *p, int *hq, int *wq)
{
    const long long h = ((long long)p->H + 2LL * p->PH + p->SH - 1) / p->SH;
    const long long w = ((long long)p->W + 2LL * p->PW + p->SW - 1) / p->SW;
    if (h * p->SH > PLANE_MAX || w * p->SW > PLANE_MAX || h * w * p->SH * p->SW > PLANE_MAX ||
        (long long)p->H * p->W > PLANE_MAX)
        return 0;
    *hq = (int)h;
    *wq = (int)w;
    return 1;
}

/* The run path. The output columns [*lo, *hi) whose input column ow SW - PW + kw lies in
 * [0, W). */
static void valid_columns(int *lo, int *hi, int kw, const mg_patches *p)
{
    const int off = kw - p->PW; // iw = ow SW + off
    int l = off < 0 ? (-off + p->SW - 1) / p->SW : 0;
    int h = p->W - 1 - off >= 0 ? (p->W - 1 - off) / p->SW + 1 : 0;
    l = l < p->OW ? l : p->OW;
    h = h < p->OW ? h : p->OW;
    *lo = l;
    *hi = h > l ? h : l;
}

static void im2col_runs(mg_real *restrict col, int ldcol, const mg_real *restrict img,
                        const mg_patches *p)
{
    // col (C KH KW, ldcol), img (C, H, W)
    const int H = p->H, W = p->W, OH = p->OH, OW = p->OW, SW = p->SW;
    for (int c = 0; c < p->C; c++)
        for (int kh = 0; kh < p->KH; kh++)
            for (int kw = 0; kw < p->KW; kw++) {
                mg_real *row = col + (size_t)((c * p->KH + kh) * p->KW + kw) * ldcol;
                int lo, hi;
                valid_columns(&lo, &hi, kw, p);
                const int iw0 = lo * SW + kw - p->PW; // >= 0 when lo < hi
                for (int oh = 0; oh < OH; oh++) {
                    mg_real *restrict d = row + (size_t)oh * OW; // (OW)
                    const int ih = oh * p->SH - p->PH + kh;
                    if (ih < 0 || ih >= H || lo == hi) {
                        memset(d, 0, (size_t)OW * sizeof *d);
                        continue;
                    }
                    const mg_real *restrict src = img + ((size_t)c * H + ih) * W + iw0;
                    for (int ow = 0; ow < lo; ow++)
                        d[ow] = 0;
                    if (SW == 1)
                        memcpy(d + lo, src, (size_t)(hi - lo) * sizeof *d);
                    else if (SW == 2)
                        for (int j = 0; j < hi - lo; j++)
                            d[lo + j] = src[2 * (size_t)j];
                    else
                        for (int j = 0; j < hi - lo; j++)
                            d[lo + j] = src[(size_t)j * SW];
                    for (int ow = hi; ow < OW; ow++)
                        d[ow] = 0;
                }
            }
}

static void col2im_runs(mg_real *restrict img, const mg_real *restrict col, int ldcol,
                        const mg_patches *p)
{
    // img (C, H, W), col (C KH KW, ldcol)
    const int H = p->H, W = p->W, OH = p->OH, OW = p->OW, SW = p->SW;
    memset(img, 0, (size_t)p->C * H * W * sizeof *img);
    for (int c = 0; c < p->C; c++)
        for (int kh = 0; kh < p->KH; kh++)
            for (int kw = 0; kw < p->KW; kw++) {
                const mg_real *row = col + (size_t)((c * p->KH + kh) * p->KW + kw) * ldcol;
                int lo, hi;
                valid_columns(&lo, &hi, kw, p);
                if (lo == hi)
                    continue;
                const int iw0 = lo * SW + kw - p->PW;
                for (int oh = 0; oh < OH; oh++) {
                    const int ih = oh * p->SH - p->PH + kh;
                    if (ih < 0 || ih >= H)
                        continue;
                    const mg_real *restrict s = row + (size_t)oh * OW + lo;  // (hi - lo)
                    mg_real *restrict dst = img + ((size_t)c * H + ih) * W + iw0;
                    if (SW == 1)
                        for (int j = 0; j < hi - lo; j++)
                            dst[j] += s[j];
                    else if (SW == 2)
                        for (int j = 0; j < hi - lo; j++)
                            dst[2 * (size_t)j] += s[j];
                    else
                        for (int j = 0; j < hi - lo; j++)
                            dst[(size_t)j * SW] += s[j];
                }
            }
}

/* at (H W): where each pixel of the image is in the phases (SH, SW, hq, wq). */
static void phase_table(int32_t *at, const mg_patches *p, int hq, int wq)
{
    for (int iy = 0; iy < p->H; iy++)
        for (int ix = 0; ix < p->W; ix++) {
            const int y = iy + p->PH, x = ix + p->PW;
            at[iy * p->W + ix] =
                ((y % p->SH) * p->SW + x % p->SW) * hq * wq + (y / p->SH) * wq + x / p->SW;
        }
}

/* d (rows, n) = the first n columns of s (rows, ld); n of 4 and 8 as constants, as block_add. */
static inline void block_copy(mg_real *restrict d, const mg_real *restrict s, int ld, int rows,
                              int n)
{
    if (n == 4) {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < 4; j++)
                d[r * 4 + j] = s[r * ld + j];
    } else if (n == 8) {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < 8; j++)
                d[r * 8 + j] = s[r * ld + j];
    } else {
        for (int r = 0; r < rows; r++)
            memcpy(d + (size_t)r * n, s + (size_t)r * ld, (size_t)n * sizeof *d);
    }
}

/* dst (rows, ld) += s (rows, n) over the first n columns; n of 4 and 8 (the 4x4 and 8x8 maps of
 * a DCGAN) as constants, whose loops unroll into one vector per row. */
static inline void block_add(mg_real *restrict dst, int ld, const mg_real *restrict s, int rows,
                             int n)
{
    if (n == 4) {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < 4; j++)
                dst[r * ld + j] += s[r * 4 + j];
    } else if (n == 8) {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < 8; j++)
                dst[r * ld + j] += s[r * 8 + j];
    } else {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
                dst[r * ld + j] += s[r * n + j];
    }
}

/* The phase path takes the images of a group together, a channel at a time: each image's phases
 * of that channel in its own slot of q, then each tap's row of the column matrix, which holds
 * the images' runs side by side (image g at columns [g P, (g + 1) P)), copied or added image by
 * image, so the matrix is written or read in order, a row at a time. One image at a time read
 * and wrote it in runs of P values a row (ldcol) apart, and col2im's adds of one tap into its
 * phase overlapped the adds of the tap before by a value, which stalled the loads on the stores
 * still in flight; between two taps of one image now lie the other images' adds. Per image of a
 * group, 4x4 kernel at stride 2 (DCGAN's shapes), on an AVX-512 EPYC, before -> after, two runs:
 * 128 x 8 x 8 (G 16) im2col 16.2-16.7 -> 10.2-13.4 us, col2im 21.5-23.9 -> 10.9-13.7 us;
 * 64 x 16 x 16 (G 4) col2im 20.6-22.6 -> 14.2-17.7 us; a whole DCGAN step 3.5% faster (198.9
 * against 192.2 samples/s, medians of 3 interleaved runs of 40 steps). */

/* Image slots of q for a phase plane of q_n values: as many as fit, at most count. */
static int slots_of(size_t q_n, int count)
{
    const size_t fit = PLANE_MAX / q_n;
    return fit < (size_t)count ? (int)fit : count;
}

/* Per pixel, the terms are added in (kh, kw) order from 0, as col2im_runs adds them (a pixel is
 * under one position per tap at most): the same bits. */
MG_HOT void mg_col2im_images(mg_real *restrict img, size_t img_stride, const mg_real *restrict col,
                             int ldcol, int count, const mg_patches *p)
{
    // img (count, img_stride) of (C, H, W) each, col (C KH KW, ldcol) of (count, OH OW) each
    int hq, wq;
    const int OH = p->OH, OW = p->OW, P = OH * OW;
    if (!phases_fit(p, &hq, &wq)) {
        for (int g = 0; g < count; g++)
            col2im_runs(img + g * img_stride, col + (size_t)g * P, ldcol, p);
        return;
    }
    _Alignas(64) mg_real q[PLANE_MAX]; // slots of (SH, SW, hq, wq): the phases of padded planes
    _Alignas(64) int32_t at[PLANE_MAX]; // (H W): where each image pixel is in a slot
    const int SH = p->SH, SW = p->SW, phase = hq * wq;
    const size_t plane = (size_t)p->H * p->W, q_n = (size_t)SH * SW * phase;
    const int slots = slots_of(q_n, count);
    phase_table(at, p, hq, wq);
    for (int g0 = 0; g0 < count; g0 += slots) {
        const int n = count - g0 < slots ? count - g0 : slots;
        for (int c = 0; c < p->C; c++) {
            memset(q, 0, n * q_n * sizeof *q);
            for (int kh = 0; kh < p->KH; kh++)
                for (int kw = 0; kw < p->KW; kw++) {
                    const mg_real *restrict s =
                        col + (size_t)((c * p->KH + kh) * p->KW + kw) * ldcol + (size_t)g0 * P;
                    mg_real *restrict dst =
                        q + ((kh % SH) * SW + kw % SW) * phase + (kh / SH) * wq + kw / SW;
                    for (int g = 0; g < n; g++)
                        block_add(dst + g * q_n, wq, s + (size_t)g * P, OH, OW);
                }
            for (int g = 0; g < n; g++) {
                mg_real *restrict out = img + (g0 + g) * img_stride + c * plane;
                const mg_real *restrict qg = q + g * q_n;
                for (size_t i = 0; i < plane; i++)
                    out[i] = qg[at[i]];
            }
        }
    }
}

MG_HOT void mg_im2col_images(mg_real *restrict col, int ldcol, const mg_real *restrict img,
                             size_t img_stride, int count, const mg_patches *p)
{
    // col (C KH KW, ldcol) of (count, OH OW) each, img (count, img_stride) of (C, H, W) each
    int hq, wq;
    const int OH = p->OH, OW = p->OW, P = OH * OW;
    if (!phases_fit(p, &hq, &wq)) {
        for (int g = 0; g < count; g++)
            im2col_runs(col + (size_t)g * P, ldcol, img + g * img_stride, p);
        return;
    }
    _Alignas(64) mg_real q[PLANE_MAX]; // slots of (SH, SW, hq, wq): the phases of padded planes
    _Alignas(64) int32_t at[PLANE_MAX]; // (H W): where each image pixel is in a slot
    const int SH = p->SH, SW = p->SW, phase = hq * wq;
    const size_t plane = (size_t)p->H * p->W, q_n = (size_t)SH * SW * phase;
    const int slots = slots_of(q_n, count);
    phase_table(at, p, hq, wq);
    memset(q, 0, slots * q_n * sizeof *q); // the padding: never written below
    for (int g0 = 0; g0 < count; g0 += slots) {
        const int n = count - g0 < slots ? count - g0 : slots;
        for (int c = 0; c < p->C; c++) {
            for (int g = 0; g < n; g++) {
                const mg_real *restrict x = img + (g0 + g) * img_stride + c * plane;
                mg_real *restrict qg = q + g * q_n;
                for (size_t i = 0; i < plane; i++)
                    qg[at[i]] = x[i];
            }
            for (int kh = 0; kh < p->KH; kh++)
                for (int kw = 0; kw < p->KW; kw++) {
                    mg_real *restrict d =
                        col + (size_t)((c * p->KH + kh) * p->KW + kw) * ldcol + (size_t)g0 * P;
                    const mg_real *restrict src =
                        q + ((kh % SH) * SW + kw % SW) * phase + (kh / SH) * wq + kw / SW;
                    for (int g = 0; g < n; g++)
                        block_copy(d + (size_t)g * P, src + g * q_n, wq, OH, OW);
                }
        }
    }
}

void mg_col2im(mg_real *img, const mg_real *col, int ldcol, const mg_patches *p)
{
    mg_col2im_images(img, 0, col, ldcol, 1, p);
}

void mg_im2col(mg_real *col, int ldcol, const mg_real *img, const mg_patches *p)
{
    mg_im2col_images(col, ldcol, img, 0, 1, p);
}

/* ---- bias, staging ---- */

/* x (C, P) += b: b (C) tied, (C, P) untied, NULL none. */
MG_HOT static void add_bias(mg_real *restrict x, const mg_real *restrict b, int C, int P,
                            int untied)
{
    if (!b)
        return;
    for (int c = 0; c < C; c++) {
        mg_real *restrict xc = x + (size_t)c * P;
        if (untied) {
            const mg_real *restrict bc = b + (size_t)c * P;
            for (int i = 0; i < P; i++)
                xc[i] += bc[i];
        } else {
            const mg_real bc = b[c];
            for (int i = 0; i < P; i++)
                xc[i] += bc;
        }
    }
}

/* dst (G, C, P) = src (C, ld = G P) with image g at columns [g P, (g + 1) P), plus b as in
 * add_bias (b NULL: a plain copy). */
MG_HOT static void unstage(mg_real *restrict dst, const mg_real *restrict src, const mg_real *b,
                           int G, int C, int P, int untied)
{
    const size_t ld = (size_t)G * P;
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) {
            mg_real *restrict d = dst + ((size_t)g * C + c) * P;
            const mg_real *restrict s = src + c * ld + (size_t)g * P;
            if (!b) {
                memcpy(d, s, (size_t)P * sizeof *d);
            } else if (untied) {
                const mg_real *restrict bc = b + (size_t)c * P;
                for (int i = 0; i < P; i++)
                    d[i] = s[i] + bc[i];
            } else {
                const mg_real bc = b[c];
                for (int i = 0; i < P; i++)
                    d[i] = s[i] + bc;
            }
        }
}

/* dst (C, ld = G P) = src (G, C, P), the inverse of unstage. */
static void stage(mg_real *restrict dst, const mg_real *restrict src, int G, int C, int P)
{
    const size_t ld = (size_t)G * P;
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++)
            memcpy(dst + c * ld + (size_t)g * P, src + ((size_t)g * C + c) * P,
                   (size_t)P * sizeof *dst);
}

/* The sum of x (n) in double, in eight interleaved partial sums added in a fixed order: the same
 * bits whatever the vector width (the clones of simd.h), and a chain of n / 8 additions. */
static inline double sum8(const mg_real *restrict x, size_t n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += x[i + j];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* sum of (x - m) k d over n values in double, eight partial sums as in sum8: with d = x, m = 0,
 * k = 1 the sum of squares, with m, k a channel's mean and invstd the sum of dout xhat. A pass
 * of its own, not folded into sum8's: GCC vectorises each loop alone, not the two together. */
static inline double sum8_prod(const mg_real *restrict d, const mg_real *restrict x, double m,
                               double k, size_t n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += (double)d[i + j] * (((double)x[i + j] - m) * k);
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += (double)d[i] * (((double)x[i] - m) * k);
    return s;
}

/* db += the bias gradient of dout (N, C, P): per channel (C) tied, per value (C, P) untied;
 * add 0 writes it. Accumulated in double and rounded once. */
MG_HOT static void bias_grad(mg_real *restrict db, const mg_real *restrict dout, int N, int C,
                             int P, int untied, int add)
{
    if (!untied) {
        for (int c = 0; c < C; c++) {
            double acc = 0;
            for (int n = 0; n < N; n++)
                acc += sum8(dout + ((size_t)n * C + c) * P, (size_t)P);
            db[c] = (mg_real)(add ? db[c] + acc : acc);
        }
        return;
    }
    /* Column sums of (N, C P), a block of columns at a time so the reads stay row-major. */
    enum { BLOCK = 64 };
    double acc[BLOCK];
    const size_t width = (size_t)C * P;
    for (size_t j0 = 0; j0 < width; j0 += BLOCK) {
        const int nj = width - j0 < BLOCK ? (int)(width - j0) : BLOCK;
        for (int j = 0; j < nj; j++)
            acc[j] = 0;
        for (int n = 0; n < N; n++) {
            const mg_real *restrict d = dout + n * width + j0;
            for (int j = 0; j < nj; j++)
                acc[j] += d[j];
        }
        for (int j = 0; j < nj; j++)
            db[j0 + j] = (mg_real)(add ? db[j0 + j] + acc[j] : acc[j]);
    }
}

/* ---- convolution ---- */

void mg_conv_forward(mg_real *out, const mg_real *inp, const mg_real *w, const mg_real *b, int N,
                     const mg_conv_shape *s, mg_real *work, mg_gemm_fn gemm)
{
    // out (N, OC, OH, OW), inp (N, IC, H, W), w (OC, IC KH KW), b (OC) or (OC, OH OW),
    // work: col (K, G P), then stage (OC, G P)
    assert(!s->transposed);
    const int OC = s->OC, K = s->IC * s->KH * s->KW, P = s->OH * s->OW, Gmax = group_of(s, N);
    const size_t in_size = (size_t)s->IC * s->H * s->W, out_size = (size_t)OC * P;
    if (N <= 0)
        return; // work may be NULL: mg_conv_work_size is 0
    if (is_dense(s)) { // out (N, OC) = inp (N, K) w^T, K = in_size
        gemm(0, 1, N, OC, K, 1, inp, K, w, K, 0, out, OC);
        for (int n = 0; n < N && b; n++)
            add_bias(out + (size_t)n * OC, b, OC, 1, s->untied);
        return;
    }
    if (s->wino.m) {
        mg_wino_run(NULL, out, NULL, inp, NULL, w, N, &s->wino, 0, work, gemm);
        for (int n = 0; n < N && b; n++)
            add_bias(out + n * out_size, b, OC, P, s->untied);
        return;
    }
    mg_real *col = work, *st = work + col_values(s, Gmax);
    for (int n0 = 0; n0 < N; n0 += Gmax) {
        const int G = N - n0 < Gmax ? N - n0 : Gmax, ld = G * P;
        mg_im2col_images(col, ld, inp + (size_t)n0 * in_size, in_size, G, &s->im);
        mg_real *o = out + (size_t)n0 * out_size; // (G, OC, P)
        if (G == 1) {
            gemm(0, 0, OC, P, K, 1, w, K, col, P, 0, o, P);
            add_bias(o, b, OC, P, s->untied);
        } else {
            gemm(0, 0, OC, ld, K, 1, w, K, col, ld, 0, st, ld);
            unstage(o, st, b, G, OC, P, s->untied);
        }
    }
}

void mg_conv_backward(mg_real *dinp, mg_real *dw, mg_real *db, const mg_real *dout,
                      const mg_real *inp, const mg_real *w, int N, const mg_conv_shape *s,
                      int add, mg_real *work, mg_gemm_fn gemm)
{
    // dinp (N, IC, H, W), dw (OC, IC KH KW), db (OC) or (OC, OH OW), dout (N, OC, OH, OW),
    // inp (N, IC, H, W), w (OC, IC KH KW); work: col (K, G P), then stage (OC, G P)
    assert(!s->transposed);
    const int OC = s->OC, K = s->IC * s->KH * s->KW, P = s->OH * s->OW, Gmax = group_of(s, N);
    const size_t in_size = (size_t)s->IC * s->H * s->W, out_size = (size_t)OC * P;
    if (db)
        bias_grad(db, dout, N, OC, P, s->untied, add);
    if (dw && !add && N == 0)
        memset(dw, 0, mg_conv_weight_size(s) * sizeof *dw);
    if ((!dw && !dinp) || N <= 0)
        return;
    if (is_dense(s)) { // dout (N, OC), inp and dinp (N, K)
        if (dw)
            gemm(1, 0, OC, K, N, 1, dout, OC, inp, K, add ? 1 : 0, dw, K);
        if (dinp)
            gemm(0, 0, N, K, OC, 1, dout, OC, w, K, 0, dinp, K);
        return;
    }
    if (s->wino.m) {
        mg_wino_run(dinp, NULL, dw, inp, dout, w, N, &s->wino, add, work, gemm);
        return;
    }
    mg_real *col = work, *st = work + col_values(s, Gmax);
    for (int n0 = 0; n0 < N; n0 += Gmax) {
        const int G = N - n0 < Gmax ? N - n0 : Gmax, ld = G * P;
        const mg_real *d = dout + (size_t)n0 * out_size; // (OC, ld) once staged
        if (G > 1) {
            stage(st, d, G, OC, P);
            d = st;
        }
        if (dw) {
            mg_im2col_images(col, ld, inp + (size_t)n0 * in_size, in_size, G, &s->im);
            gemm(0, 1, OC, K, ld, 1, d, ld, col, ld, add || n0 > 0 ? 1 : 0, dw, K);
        }
        if (dinp) {
            gemm(1, 0, K, ld, OC, 1, w, K, d, ld, 0, col, ld);
            mg_col2im_images(dinp + (size_t)n0 * in_size, in_size, col, ld, G, &s->im);
        }
    }
}

/* The deconv runs the conv's passes the other way round: its forward is the conv's input
 * gradient (a GEMM, then col2im), its input gradient the conv's forward (im2col, then a GEMM),
 * over the same groups of images. */
void mg_deconv_forward(mg_real *out, const mg_real *inp, const mg_real *w, const mg_real *b, int N,
                       const mg_conv_shape *s, mg_real *work, mg_gemm_fn gemm)
{
    // out (N, OC, OH, OW), inp (N, IC, H, W), w (IC, OC KH KW), b (OC) or (OC, OH OW),
    // work: col (K = OC KH KW, G P), P = H W, then stage (IC, G P)
    assert(s->transposed);
    const int IC = s->IC, K = s->OC * s->KH * s->KW, P = s->H * s->W, Gmax = group_of(s, N);
    const size_t in_size = (size_t)IC * P, out_size = (size_t)s->OC * s->OH * s->OW;
    if (N <= 0)
        return; // work may be NULL: mg_conv_work_size is 0
    if (is_dense(s)) { // out (N, K) = inp (N, IC) w, K = out_size
        gemm(0, 0, N, K, IC, 1, inp, IC, w, K, 0, out, K);
        for (int n = 0; n < N && b; n++)
            add_bias(out + (size_t)n * out_size, b, s->OC, s->OH * s->OW, s->untied);
        return;
    }
    if (s->wino.m) {
        mg_wino_run(out, NULL, NULL, NULL, inp, w, N, &s->wino, 0, work, gemm);
        for (int n = 0; n < N && b; n++)
            add_bias(out + n * out_size, b, s->OC, s->OH * s->OW, s->untied);
        return;
    }
    mg_real *col = work, *st = work + col_values(s, Gmax);
    for (int n0 = 0; n0 < N; n0 += Gmax) {
        const int G = N - n0 < Gmax ? N - n0 : Gmax, ld = G * P;
        const mg_real *x = inp + (size_t)n0 * in_size; // (IC, ld) once staged
        if (G > 1) {
            stage(st, x, G, IC, P);
            x = st;
        }
        gemm(1, 0, K, ld, IC, 1, w, K, x, ld, 0, col, ld);
        mg_real *o = out + (size_t)n0 * out_size;
        mg_col2im_images(o, out_size, col, ld, G, &s->im);
        for (int g = 0; g < G; g++)
            add_bias(o + g * out_size, b, s->OC, s->OH * s->OW, s->untied);
    }
}

void mg_deconv_backward(mg_real *dinp, mg_real *dw, mg_real *db, const mg_real *dout,
                        const mg_real *inp, const mg_real *w, int N, const mg_conv_shape *s,
                        int add, mg_real *work, mg_gemm_fn gemm)
{
    // dinp (N, IC, H, W), dw (IC, OC KH KW), db (OC) or (OC, OH OW), dout (N, OC, OH, OW),
    // inp (N, IC, H, W), w (IC, OC KH KW); work: col (K, G P), then stage (IC, G P)
    assert(s->transposed);
    const int IC = s->IC, K = s->OC * s->KH * s->KW, P = s->H * s->W, Gmax = group_of(s, N);
    const size_t in_size = (size_t)IC * P, out_size = (size_t)s->OC * s->OH * s->OW;
    if (db)
        bias_grad(db, dout, N, s->OC, s->OH * s->OW, s->untied, add);
    if (dw && !add && N == 0)
        memset(dw, 0, mg_conv_weight_size(s) * sizeof *dw);
    if ((!dw && !dinp) || N <= 0)
        return;
    if (is_dense(s)) { // inp and dinp (N, IC), dout (N, K)
        if (dw)
            gemm(1, 0, IC, K, N, 1, inp, IC, dout, K, add ? 1 : 0, dw, K);
        if (dinp)
            gemm(0, 1, N, IC, K, 1, dout, K, w, K, 0, dinp, IC);
        return;
    }
    if (s->wino.m) {
        mg_wino_run(NULL, dinp, dw, dout, inp, w, N, &s->wino, add, work, gemm);
        return;
    }
    mg_real *col = work, *st = work + col_values(s, Gmax);
    for (int n0 = 0; n0 < N; n0 += Gmax) {
        const int G = N - n0 < Gmax ? N - n0 : Gmax, ld = G * P;
        mg_im2col_images(col, ld, dout + (size_t)n0 * out_size, out_size, G, &s->im);
        if (dw) {
            const mg_real *x = inp + (size_t)n0 * in_size;
            if (G > 1) {
                stage(st, x, G, IC, P);
                x = st;
            }
            gemm(0, 1, IC, K, ld, 1, x, ld, col, ld, add || n0 > 0 ? 1 : 0, dw, K);
        }
        if (dinp) {
            mg_real *dx = dinp + (size_t)n0 * in_size;
            gemm(0, 0, IC, ld, K, 1, w, K, col, ld, 0, G > 1 ? st : dx, ld);
            if (G > 1)
                unstage(dx, st, NULL, G, IC, P, 0);
        }
    }
}

/* ---- channel maxout, max pooling ---- */

MG_HOT void mg_channel_maxout_forward(mg_real *restrict out, int32_t *restrict argmax,
                                      const mg_real *restrict pre, int N, int U, int P, int HW)
{
    // out (N, U, HW), argmax (N, U, HW), pre (N, U P, HW)
    const size_t units = (size_t)N * U;
    for (size_t nu = 0; nu < units; nu++) {
        const mg_real *restrict p0 = pre + nu * P * HW;
        mg_real *restrict o = out + nu * HW;
        int32_t *restrict a = argmax + nu * HW;
        for (int i = 0; i < HW; i++) {
            o[i] = p0[i];
            a[i] = 0;
        }
        for (int32_t k = 1; k < P; k++) { // strict: ties keep the lowest piece
            const mg_real *restrict pk = p0 + (size_t)k * HW;
            for (int i = 0; i < HW; i++) {
                const int gt = pk[i] > o[i];
                o[i] = gt ? pk[i] : o[i];
                a[i] = gt ? k : a[i];
            }
        }
    }
}

MG_HOT void mg_channel_maxout_backward(mg_real *restrict dpre, const mg_real *restrict dout,
                                       const int32_t *restrict argmax, int N, int U, int P, int HW)
{
    // dpre (N, U P, HW), dout (N, U, HW), argmax (N, U, HW)
    const size_t units = (size_t)N * U;
    for (size_t nu = 0; nu < units; nu++) {
        const mg_real *restrict d = dout + nu * HW;
        const int32_t *restrict a = argmax + nu * HW;
        for (int32_t k = 0; k < P; k++) {
            mg_real *restrict dk = dpre + (nu * P + k) * HW;
            for (int i = 0; i < HW; i++)
                dk[i] = a[i] == k ? d[i] : 0;
        }
    }
}

int mg_pool_shape_init(mg_pool_shape *s, const char *name, mg_error *err)
{
    if (s->C < 1 || s->H < 1 || s->W < 1)
        return mg_fail(err, "%s: input %d x %d x %d must be positive", name, s->C, s->H, s->W);
    if (s->KH < 1 || s->KW < 1 || s->SH < 1 || s->SW < 1)
        return mg_fail(err, "%s: pool %dx%d and stride %dx%d must be positive", name, s->KH, s->KW,
                       s->SH, s->SW);
    if (s->KH > s->H || s->KW > s->W)
        return mg_fail(err, "%s: pool %dx%d larger than the input %dx%d", name, s->KH, s->KW, s->H,
                       s->W);
    if (mul_capped(mul_capped(s->C, s->H), s->W) > INT_MAX)
        return mg_fail(err, "%s: input %d x %d x %d overflows an int", name, s->C, s->H, s->W);
    s->OH = mg_pool_out_size(s->H, s->KH, s->SH);
    s->OW = mg_pool_out_size(s->W, s->KW, s->SW);
    return 0;
}

void mg_maxpool_forward(mg_real *restrict out, int32_t *restrict argmax,
                        const mg_real *restrict inp, int N, const mg_pool_shape *s)
{
    // out (N, C, OH, OW), argmax (N, C, OH, OW), inp (N, C, H, W)
    const int H = s->H, W = s->W, OH = s->OH, OW = s->OW;
    const size_t planes = (size_t)N * s->C;
    for (size_t pl = 0; pl < planes; pl++) {
        const mg_real *restrict x = inp + pl * H * W;
        mg_real *restrict o = out + pl * OH * OW;
        int32_t *restrict a = argmax + pl * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const int h0 = oh * s->SH, h1 = h0 + s->KH < H ? h0 + s->KH : H;
            for (int ow = 0; ow < OW; ow++) {
                const int w0 = ow * s->SW, w1 = w0 + s->KW < W ? w0 + s->KW : W;
                int32_t best = h0 * W + w0;
                mg_real v = x[best];
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        if (x[h * W + w] > v) { // strict: ties keep the first
                            v = x[h * W + w];
                            best = h * W + w;
                        }
                o[oh * OW + ow] = v;
                a[oh * OW + ow] = best;
            }
        }
    }
}

void mg_maxpool_backward(mg_real *restrict dinp, const mg_real *restrict dout,
                         const int32_t *restrict argmax, int N, const mg_pool_shape *s)
{
    // dinp (N, C, H, W), dout (N, C, OH, OW), argmax (N, C, OH, OW)
    const size_t planes = (size_t)N * s->C, in = (size_t)s->H * s->W, out = (size_t)s->OH * s->OW;
    memset(dinp, 0, planes * in * sizeof *dinp);
    for (size_t pl = 0; pl < planes; pl++) {
        mg_real *restrict dx = dinp + pl * in;
        const mg_real *restrict d = dout + pl * out;
        const int32_t *restrict a = argmax + pl * out;
        for (size_t i = 0; i < out; i++)
            dx[a[i]] += d[i];
    }
}

/* ---- batch normalisation ----
 * Spatial inputs (HW > 1) go plane by plane, a channel's constants hoisted; flat ones (HW = 1)
 * row by row, vectorised across channels. Values are computed in double and rounded once. */

MG_HOT void mg_batchnorm_sums(double *restrict sums, const mg_real *restrict x, int N, int C,
                              int HW)
{
    // sums (2, C), x (N, C, HW)
    double *restrict s1 = sums, *restrict s2 = sums + C;
    for (int c = 0; c < C; c++)
        s1[c] = s2[c] = 0;
    for (int n = 0; n < N; n++) {
        const mg_real *restrict xn = x + (size_t)n * C * HW;
        if (HW == 1) {
            for (int c = 0; c < C; c++) {
                const double v = xn[c];
                s1[c] += v;
                s2[c] += v * v;
            }
            continue;
        }
        for (int c = 0; c < C; c++) {
            const mg_real *restrict xc = xn + (size_t)c * HW; // a plane: in L1 for the 2nd pass
            s1[c] += sum8(xc, (size_t)HW);
            s2[c] += sum8_prod(xc, xc, 0, 1, (size_t)HW);
        }
    }
}

void mg_batchnorm_moments(double *stats, const double *sums, double count, double eps, int C)
{
    // stats (2, C): mean, invstd; sums (2, C)
    assert(count > 0);
    for (int c = 0; c < C; c++) {
        const double mean = sums[c] / count;
        double var = sums[C + c] / count - mean * mean;
        var = var > 0 ? var : 0;
        stats[c] = mean;
        stats[C + c] = 1 / sqrt(var + eps);
    }
}

void mg_batchnorm_running(mg_real *run_mean, mg_real *run_var, const double *sums, double count,
                          double momentum, int C)
{
    // run_mean (C), run_var (C), sums (2, C)
    assert(count > 1);
    for (int c = 0; c < C; c++) {
        const double mean = sums[c] / count;
        double var = sums[C + c] / count - mean * mean;
        var = var > 0 ? var : 0;
        const double unbiased = var * count / (count - 1);
        run_mean[c] = (mg_real)((1 - momentum) * run_mean[c] + momentum * mean);
        run_var[c] = (mg_real)((1 - momentum) * run_var[c] + momentum * unbiased);
    }
}

void mg_batchnorm_eval_stats(double *stats, const mg_real *run_mean, const mg_real *run_var,
                             double eps, int C)
{
    // stats (2, C), run_mean (C), run_var (C)
    for (int c = 0; c < C; c++) {
        stats[c] = run_mean[c];
        stats[C + c] = 1 / sqrt((double)run_var[c] + eps);
    }
}

MG_HOT void mg_batchnorm_forward(mg_real *restrict out, const mg_real *restrict x,
                                 const double *restrict stats, const mg_real *restrict gamma,
                                 const mg_real *restrict beta, int N, int C, int HW)
{
    // out (N, C, HW), x (N, C, HW), stats (2, C): mean, invstd; gamma (C), beta (C)
    const double *restrict mean = stats, *restrict invstd = stats + C;
    for (int n = 0; n < N; n++) {
        const size_t o = (size_t)n * C * HW;
        if (HW == 1) {
            for (int c = 0; c < C; c++)
                out[o + c] = (mg_real)((double)gamma[c] * (((double)x[o + c] - mean[c]) *
                                                           invstd[c]) + (double)beta[c]);
            continue;
        }
        for (int c = 0; c < C; c++) {
            const double m = mean[c], k = invstd[c], g = gamma[c], b = beta[c];
            const mg_real *restrict xc = x + o + (size_t)c * HW;
            mg_real *restrict oc = out + o + (size_t)c * HW;
            for (int i = 0; i < HW; i++)
                oc[i] = (mg_real)(g * (((double)xc[i] - m) * k) + b);
        }
    }
}

MG_HOT void mg_batchnorm_backward_sums(double *restrict sums, mg_real *restrict dgamma,
                                       mg_real *restrict dbeta, const mg_real *restrict dout,
                                       const mg_real *restrict x, const double *restrict stats,
                                       int N, int C, int HW, int add)
{
    // sums (2, C): sum dout, sum dout xhat; dgamma (C), dbeta (C); dout, x (N, C, HW)
    const double *restrict mean = stats, *restrict invstd = stats + C;
    double *restrict s1 = sums, *restrict s2 = sums + C;
    for (int c = 0; c < C; c++)
        s1[c] = s2[c] = 0;
    for (int n = 0; n < N; n++) {
        const size_t o = (size_t)n * C * HW;
        if (HW == 1) {
            for (int c = 0; c < C; c++) {
                const double d = dout[o + c];
                s1[c] += d;
                s2[c] += d * (((double)x[o + c] - mean[c]) * invstd[c]);
            }
            continue;
        }
        for (int c = 0; c < C; c++) {
            const mg_real *restrict dc = dout + o + (size_t)c * HW;
            s1[c] += sum8(dc, (size_t)HW);
            s2[c] += sum8_prod(dc, x + o + (size_t)c * HW, mean[c], invstd[c], (size_t)HW);
        }
    }
    for (int c = 0; c < C; c++) {
        if (dbeta)
            dbeta[c] = (mg_real)(add ? dbeta[c] + s1[c] : s1[c]);
        if (dgamma)
            dgamma[c] = (mg_real)(add ? dgamma[c] + s2[c] : s2[c]);
    }
}

MG_HOT void mg_batchnorm_backward(mg_real *restrict dinp, const mg_real *restrict dout,
                                  const mg_real *restrict x, const double *restrict stats,
                                  const mg_real *restrict gamma, const double *restrict sums,
                                  double count, int N, int C, int HW)
{
    // dinp, dout, x (N, C, HW); stats (2, C): mean, invstd; gamma (C); sums (2, C) global
    const double *restrict mean = stats, *restrict invstd = stats + C;
    const double rc = 1 / count;
    for (int n = 0; n < N; n++) {
        const size_t o = (size_t)n * C * HW;
        if (HW == 1) {
            for (int c = 0; c < C; c++) {
                const double xhat = ((double)x[o + c] - mean[c]) * invstd[c];
                const double m1 = sums[c] * rc, m2 = sums[C + c] * rc;
                dinp[o + c] = (mg_real)((double)gamma[c] * invstd[c] *
                                        ((double)dout[o + c] - m1 - xhat * m2));
            }
            continue;
        }
        for (int c = 0; c < C; c++) {
            const double m = mean[c], k = invstd[c], gk = (double)gamma[c] * k;
            const double m1 = sums[c] * rc, m2 = sums[C + c] * rc;
            const mg_real *restrict dc = dout + o + (size_t)c * HW;
            const mg_real *restrict xc = x + o + (size_t)c * HW;
            mg_real *restrict dx = dinp + o + (size_t)c * HW;
            for (int i = 0; i < HW; i++) {
                const double xhat = ((double)xc[i] - m) * k;
                dx[i] = (mg_real)(gk * ((double)dc[i] - m1 - xhat * m2));
            }
        }
    }
}
