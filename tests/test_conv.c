/* Convolutional kernels in single precision: sizes and shape errors, im2col by hand, conv and
 * deconv against direct loops on both GEMM paths, the adjoint identity, channel maxout and max
 * pooling by hand, batch normalisation by hand, split over "ranks", running averages and eval.
 * (Gradients themselves are checked in double in test_conv_gradcheck.c.)
 *
 * Tolerances. A value that is a sum of products computed in float with a chain of L roundings
 * (GEMM dot products of length K, then col2im's additions, then the bias) is within
 * L eps_f sum |terms| of the exact sum (the standard bound, gamma_L ~ L eps); the direct loops
 * compute the sum and sum |terms| in double, so each value gets its own bound, and the worst
 * ratio error / bound is printed. A wrong index or a lost tap is off by a term, 1e-2 to 1. */
#include "mpigan/conv.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/rng.h"

#include "testlib.h"

static void fill(mg_real *x, size_t n, double lo, double hi, uint64_t row)
{
    const mg_rng_key key = {.seed = 20140610, .stream = 1515, .step = 0};
    mg_rng_uniform(x, n, lo, hi, &key, row);
}

/* ---- guarded buffers: every kernel must stay inside the sizes it was given ---- */

enum { GUARD = 16 };
static const mg_real SENTINEL = 1234.5f;

static mg_real *guarded(size_t n, mg_real init)
{
    mg_real *p = malloc((n + GUARD) * sizeof *p);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = init;
    for (size_t i = 0; i < GUARD; i++)
        p[n + i] = SENTINEL;
    return p;
}

static void check_guard(const mg_real *p, size_t n, const char *what)
{
    int ok = 1;
    for (size_t i = 0; i < GUARD; i++)
        ok &= p[n + i] == SENTINEL;
    if (!ok)
        fprintf(stderr, "\n  %s: written past its %zu values", what, n);
    CU_ASSERT(ok);
}

/* ---- sizes ---- */

static void test_out_sizes(void)
{
    /* conv: (in + 2 pad - kernel) / stride + 1 */
    CU_ASSERT_EQUAL(mg_conv_out_size(32, 8, 1, 4), 33);
    CU_ASSERT_EQUAL(mg_conv_out_size(32, 4, 2, 1), 16);
    CU_ASSERT_EQUAL(mg_conv_out_size(7, 3, 2, 0), 3);
    CU_ASSERT_EQUAL(mg_conv_out_size(8, 3, 2, 0), 3); // floor
    CU_ASSERT_EQUAL(mg_conv_out_size(3, 7, 1, 2), 1);
    CU_ASSERT_EQUAL(mg_conv_out_size(3, 8, 1, 2), -1); // kernel larger than the padded input
    CU_ASSERT_EQUAL(mg_conv_out_size(0, 1, 1, 0), -1);
    CU_ASSERT_EQUAL(mg_conv_out_size(5, 0, 1, 0), -1);
    CU_ASSERT_EQUAL(mg_conv_out_size(5, 1, 0, 0), -1);
    CU_ASSERT_EQUAL(mg_conv_out_size(5, 1, -2, 0), -1);
    CU_ASSERT_EQUAL(mg_conv_out_size(5, 1, 1, -1), -1);
    CU_ASSERT_EQUAL(mg_conv_out_size(-5, 1, 1, 4), -1);
    CU_ASSERT_EQUAL(mg_conv_out_size(INT_MAX, 1, 1, 0), INT_MAX);
    CU_ASSERT_EQUAL(mg_conv_out_size(INT_MAX - 2, 1, 1, 1), INT_MAX);
    CU_ASSERT_EQUAL(mg_conv_out_size(INT_MAX, 1, 1, 1), -1); // padded size overflows
    CU_ASSERT_EQUAL(mg_conv_out_size(1, 1, 1, INT_MAX), -1);

    /* deconv: (in - 1) stride - 2 pad + kernel + out_pad, 0 <= out_pad < stride */
    CU_ASSERT_EQUAL(mg_deconv_out_size(16, 4, 2, 1, 0), 32);
    CU_ASSERT_EQUAL(mg_deconv_out_size(16, 4, 2, 1, 1), 33);
    CU_ASSERT_EQUAL(mg_deconv_out_size(4, 3, 3, 0, 2), 14);
    CU_ASSERT_EQUAL(mg_deconv_out_size(4, 3, 3, 0, 3), -1); // out_pad not below the stride
    CU_ASSERT_EQUAL(mg_deconv_out_size(4, 3, 3, 0, -1), -1);
    CU_ASSERT_EQUAL(mg_deconv_out_size(1, 1, 1, 1, 0), -1); // -1: no output
    CU_ASSERT_EQUAL(mg_deconv_out_size(2, 1, 1, 1, 0), -1); // 0
    CU_ASSERT_EQUAL(mg_deconv_out_size(3, 1, 1, 1, 0), 1);
    CU_ASSERT_EQUAL(mg_deconv_out_size(0, 1, 1, 0, 0), -1);
    CU_ASSERT_EQUAL(mg_deconv_out_size(5, 0, 1, 0, 0), -1);
    CU_ASSERT_EQUAL(mg_deconv_out_size(5, 1, 0, 0, 0), -1);
    CU_ASSERT_EQUAL(mg_deconv_out_size(5, 1, 1, -1, 0), -1);
    CU_ASSERT_EQUAL(mg_deconv_out_size(INT_MAX, 2, 2, 0, 0), -1);
    CU_ASSERT_EQUAL(mg_deconv_out_size(INT_MAX, 1, 1, 0, 0), INT_MAX);
    CU_ASSERT_EQUAL(mg_deconv_out_size(INT_MAX, 1, 1, 1, 0), INT_MAX - 2);
    CU_ASSERT_EQUAL(mg_deconv_out_size(INT_MAX, 2, 1, 1, 0), -1); // out fits, out + 2 pad not
    /* The defining property: conv of the deconv's size gives back the input, for every out_pad. */
    for (int in = 1; in <= 9; in++)
        for (int k = 1; k <= 5; k++)
            for (int s = 1; s <= 3; s++)
                for (int p = 0; p <= 3; p++)
                    for (int op = 0; op < s; op++) {
                        const int out = mg_deconv_out_size(in, k, s, p, op);
                        if (out > 0)
                            CU_ASSERT_EQUAL(mg_conv_out_size(out, k, s, p), in);
                    }

    /* pool, ceil mode: ceil((in - pool) / stride) + 1 */
    CU_ASSERT_EQUAL(mg_pool_out_size(33, 4, 2), 16);
    CU_ASSERT_EQUAL(mg_pool_out_size(15, 4, 2), 7);
    CU_ASSERT_EQUAL(mg_pool_out_size(9, 2, 2), 5);
    CU_ASSERT_EQUAL(mg_pool_out_size(8, 2, 2), 4);
    CU_ASSERT_EQUAL(mg_pool_out_size(7, 3, 3), 3); // last window clipped to 1
    CU_ASSERT_EQUAL(mg_pool_out_size(4, 4, 2), 1);
    CU_ASSERT_EQUAL(mg_pool_out_size(7, 2, 3), 3); // stride > pool, last window [6, 7)
    CU_ASSERT_EQUAL(mg_pool_out_size(5, 1, 3), 2); // a third window would start at 6: dropped
    CU_ASSERT_EQUAL(mg_pool_out_size(3, 4, 2), -1); // window larger than the input
    CU_ASSERT_EQUAL(mg_pool_out_size(0, 1, 1), -1);
    CU_ASSERT_EQUAL(mg_pool_out_size(5, 0, 1), -1);
    CU_ASSERT_EQUAL(mg_pool_out_size(5, 2, 0), -1);
    CU_ASSERT_EQUAL(mg_pool_out_size(INT_MAX, 1, INT_MAX), 1);
    CU_ASSERT_EQUAL(mg_pool_out_size(INT_MAX, 2, 1), INT_MAX - 1);
    /* Every window starts inside the input and is non-empty (PyTorch's rule). */
    for (int in = 1; in <= 12; in++)
        for (int k = 1; k <= in; k++)
            for (int s = 1; s <= 5; s++) {
                const int out = mg_pool_out_size(in, k, s);
                CU_ASSERT(out >= 1);
                CU_ASSERT((out - 1) * s < in);                    // last window starts inside
                CU_ASSERT((out - 1) * s + k >= in || out * s >= in); // and nothing is left over
            }
}

/* The paper's CIFAR-10 discriminator, through the shape checks: 32x32 -> conv 8 pad 4 -> 33 ->
 * pool 4/2 -> 16 -> conv 8 pad 3 -> 15 -> pool 4/2 -> 7 -> conv 5 pad 3 -> 9 -> pool 2/2 -> 5. */
static void test_cifar10_shapes(void)
{
    mg_error err = {""};
    const int k[3] = {8, 8, 5}, pad[3] = {4, 3, 3}, pool[3] = {4, 4, 2}, stride[3] = {2, 2, 2};
    const int conv_out[3] = {33, 15, 9}, pool_out[3] = {16, 7, 5};
    int size = 32, channels = 3;
    for (int l = 0; l < 3; l++) {
        mg_conv_shape c = {.IC = channels, .H = size, .W = size, .OC = 2 * 96, .KH = k[l],
                           .KW = k[l], .SH = 1, .SW = 1, .PH = pad[l], .PW = pad[l]};
        CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&c, "conv", &err), 0);
        CU_ASSERT_EQUAL(c.OH, conv_out[l]);
        CU_ASSERT_EQUAL(c.OW, conv_out[l]);
        mg_pool_shape p = {.C = 96, .H = c.OH, .W = c.OW, .KH = pool[l], .KW = pool[l],
                           .SH = stride[l], .SW = stride[l]};
        CU_ASSERT_EQUAL_FATAL(mg_pool_shape_init(&p, "pool", &err), 0);
        CU_ASSERT_EQUAL(p.OH, pool_out[l]);
        CU_ASSERT_EQUAL(p.OW, pool_out[l]);
        size = p.OH;
        channels = 96;
    }
    /* DCGAN's 32x32 pair: conv 4x4 stride 2 pad 1 halves, deconv with the same doubles. */
    mg_conv_shape c = {.IC = 64, .H = 32, .W = 32, .OC = 128, .KH = 4, .KW = 4, .SH = 2, .SW = 2,
                       .PH = 1, .PW = 1, .algorithm = MG_CONV_GEMM};
    CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&c, "conv", &err), 0);
    CU_ASSERT_EQUAL(c.wino.m, 0); // asked for the GEMM
    CU_ASSERT(c.OH == 16 && c.OW == 16 && !c.transposed);
    CU_ASSERT_EQUAL(c.group, 1); // an image has 256 columns: MG_CONV_GROUP_COLUMNS
    mg_conv_shape d = {.IC = 128, .H = 16, .W = 16, .OC = 64, .KH = 4, .KW = 4, .SH = 2, .SW = 2,
                       .PH = 1, .PW = 1, .algorithm = MG_CONV_GEMM};
    CU_ASSERT_EQUAL_FATAL(mg_deconv_shape_init(&d, "deconv", &err), 0);
    CU_ASSERT(d.OH == 32 && d.OW == 32 && d.transposed);
    CU_ASSERT(d.im.C == 64 && d.im.H == 32 && d.im.OH == 16 && d.im.OW == 16);
    CU_ASSERT_EQUAL(mg_conv_weight_size(&c), 128 * 64 * 16);
    CU_ASSERT_EQUAL(mg_conv_bias_size(&c), 128);
    c.untied = 1;
    CU_ASSERT_EQUAL(mg_conv_bias_size(&c), 128 * 16 * 16);
    /* Work: col (K, G P) plus the staging matrix (OC, G P) when G > 1; nothing for no images. */
    CU_ASSERT_EQUAL(mg_conv_work_size(&c, 64), (size_t)1024 * 256);
    CU_ASSERT_EQUAL(mg_conv_work_size(&c, 0), 0);
    mg_conv_shape c4 = c;
    c4.group = 4;
    CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&c4, "conv", &err), 0);
    CU_ASSERT_EQUAL(mg_conv_work_size(&c4, 64), (size_t)1024 * 1024 + 128 * 1024);
    CU_ASSERT_EQUAL(mg_conv_work_size(&c4, 2), (size_t)1024 * 512 + 128 * 512);
    CU_ASSERT_EQUAL(mg_conv_work_size(&c4, 1), (size_t)1024 * 256);
    mg_conv_shape d4 = d;
    d4.group = 4;
    CU_ASSERT_EQUAL_FATAL(mg_deconv_shape_init(&d4, "deconv", &err), 0);
    CU_ASSERT_EQUAL(mg_conv_work_size(&d4, 64), (size_t)1024 * 1024 + 128 * 1024);
    /* The 4x4 maps of the next layer: 16 images of 16 positions per GEMM. */
    mg_conv_shape e = {.IC = 256, .H = 8, .W = 8, .OC = 512, .KH = 4, .KW = 4, .SH = 2, .SW = 2,
                       .PH = 1, .PW = 1, .algorithm = MG_CONV_GEMM};
    CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&e, "conv", &err), 0);
    CU_ASSERT_EQUAL(e.group, 16);
    CU_ASSERT_EQUAL(mg_conv_work_size(&e, 64), (size_t)4096 * 256 + 512 * 256);
    CU_ASSERT_EQUAL(mg_conv_work_size(&e, 3), (size_t)4096 * 48 + 512 * 48);
    /* By default the same layers take F(4x4, 2x2): 4 phases of the input's channels, tiles of
     * 4x4 outputs, groups of at least 256 tiles; the deconv's A is its output. */
    mg_conv_shape cw = c, dw = d, ew = e;
    cw.algorithm = dw.algorithm = ew.algorithm = MG_CONV_AUTO;
    CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&cw, "conv", &err), 0);
    CU_ASSERT_EQUAL_FATAL(mg_deconv_shape_init(&dw, "deconv", &err), 0);
    CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&ew, "conv", &err), 0);
    CU_ASSERT(cw.wino.m == 4 && cw.wino.r == 2 && cw.wino.alpha == 5 && cw.wino.Cp == 256 &&
              cw.wino.CB == 128 && cw.wino.TH == 4 && cw.wino.TW == 4 && cw.wino.group == 16);
    CU_ASSERT(dw.wino.m == 4 && dw.wino.CA == 64 && dw.wino.HA == 32 && dw.wino.CB == 128 &&
              dw.wino.HB == 16 && dw.wino.Cp == 256 && dw.wino.group == 16);
    CU_ASSERT(ew.wino.m == 4 && ew.wino.TH == 1 && ew.wino.group == 256);
    CU_ASSERT_EQUAL(mg_conv_work_size(&cw, 64), mg_wino_work_size(&cw.wino, 64));
    CU_ASSERT(mg_conv_work_size(&ew, 64) > 0 && mg_conv_work_size(&ew, 0) == 0);
    /* The paper's 8x8 stride-1 kernels have no table: the GEMM. */
    mg_conv_shape p8 = {.IC = 3, .H = 32, .W = 32, .OC = 192, .KH = 8, .KW = 8, .SH = 1, .SW = 1,
                        .PH = 4, .PW = 4};
    CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&p8, "conv", &err), 0);
    CU_ASSERT_EQUAL(p8.wino.m, 0);
}

/* Every refusal of the shape checks, message by message. */
static void test_shape_errors(void)
{
    mg_error err = {""};
    const mg_conv_shape ok = {.IC = 2, .H = 5, .W = 6, .OC = 3, .KH = 3, .KW = 2, .SH = 1,
                              .SW = 2, .PH = 0, .PW = 1};
    mg_conv_shape s = ok;
    CU_ASSERT_EQUAL(mg_conv_shape_init(&s, "c", &err), 0);
    CU_ASSERT(s.OH == 3 && s.OW == 4 && s.group == 22); // ceil(256 / 12)

    s = ok, s.H = 0;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c1", &err), err, "c1",
                    "input 2 x 0 x 6 and output channels 3 must be positive");
    s = ok, s.OC = -1;
    MG_ASSERT_FAILS(mg_deconv_shape_init(&s, "d1", &err), err, "d1",
                    "input 2 x 5 x 6 and output channels -1 must be positive");
    s = ok, s.SW = 0;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c2", &err), err, "c2",
                    "kernel 3x2 and stride 1x0 must be positive, padding 0x1 not negative");
    s = ok, s.PH = -1;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c2", &err), err, "c2",
                    "kernel 3x2 and stride 1x2 must be positive, padding -1x1 not negative");
    s = ok, s.KW = 0;
    MG_ASSERT_FAILS(mg_deconv_shape_init(&s, "d2", &err), err, "d2",
                    "kernel 3x0 and stride 1x2 must be positive, padding 0x1 not negative");
    s = ok, s.OPW = 1;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c3", &err), err, "c3",
                    "output padding 0x1 is for deconv layers only");
    s = ok, s.KH = 6;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c4", &err), err, "c4",
                    "kernel 6x2 larger than the padded input 5x8");
    s = ok, s.W = INT_MAX, s.KW = 1;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c5", &err), err, "c5",
                    "padded input 5x2147483649 overflows an int");
    s = ok, s.IC = 1 << 20, s.H = 1 << 6, s.W = 1 << 6;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c6", &err), err, "c6",
                    "sizes overflow an int (1048576 x 64 x 64 -> 3 x 62 x 33, kernel 3x2)");
    s = ok, s.algorithm = MG_CONV_WINOGRAD; // 3x2 at stride 1x2: no F(m, r)
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "cw", &err), err, "cw",
                    "algorithm winograd needs a kernel 2 or 3 times its stride in both directions "
                    "(kernel 3x2, stride 1x2) and output sides that are even (3x4)");
    s = ok, s.KH = 4, s.KW = 4, s.SH = 2, s.SW = 2, s.PH = 2, s.PW = 1, s.algorithm =
        MG_CONV_WINOGRAD; // 5x6 to 3x2: the output's height is odd
    MG_ASSERT_FAILS(mg_deconv_shape_init(&s, "dw", &err), err, "dw",
                    "algorithm winograd needs a kernel 2 or 3 times its stride in both directions "
                    "(kernel 4x4, stride 2x2) and input sides that are even (5x6)");
    s = ok, s.KH = 5, s.KW = 6, s.PH = 0, s.PW = 0, s.SW = 1, s.algorithm = MG_CONV_WINOGRAD;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "cd", &err), err, "cd",
                    "algorithm winograd: a kernel that covers its input is one dense GEMM already");
    s = ok, s.group = -2;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c7", &err), err, "c7",
                    "group -2 must be 0 (automatic) or positive");
    s = ok, s.group = INT_MAX / 4;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c8", &err), err, "c8",
                    "group 536870911 of 12-column images overflows an int");
    /* One image of 2^30 columns fits, alone: automatic groups of 1; two do not. */
    const mg_conv_shape big = {.IC = 1, .H = 1 << 15, .W = 1 << 15, .OC = 1, .KH = 1, .KW = 1,
                               .SH = 1, .SW = 1};
    s = big;
    CU_ASSERT_EQUAL(mg_conv_shape_init(&s, "c9", &err), 0);
    CU_ASSERT_EQUAL(s.group, 1);
    s = big, s.group = 2;
    MG_ASSERT_FAILS(mg_conv_shape_init(&s, "c9", &err), err, "c9",
                    "group 2 of 1073741824-column images overflows an int");

    /* deconv */
    mg_conv_shape d = {.IC = 2, .H = 4, .W = 5, .OC = 3, .KH = 3, .KW = 4, .SH = 3, .SW = 2,
                       .PH = 1, .PW = 0, .OPH = 2, .OPW = 1};
    CU_ASSERT_EQUAL(mg_deconv_shape_init(&d, "d", &err), 0);
    CU_ASSERT(d.OH == 12 && d.OW == 13);
    s = d, s.OPH = 3;
    MG_ASSERT_FAILS(mg_deconv_shape_init(&s, "d3", &err), err, "d3",
                    "output padding 3x1 must be at least 0 and below the stride 3x2");
    s = d, s.OPW = -1;
    MG_ASSERT_FAILS(mg_deconv_shape_init(&s, "d3", &err), err, "d3",
                    "output padding 2x-1 must be at least 0 and below the stride 3x2");
    s = d, s.H = 1, s.KH = 1, s.PH = 2, s.OPH = 0;
    MG_ASSERT_FAILS(mg_deconv_shape_init(&s, "d4", &err), err, "d4",
                    "padding 2x0 leaves no output (-3 x 13)");
    s = d, s.W = INT_MAX / 2 + 1;
    MG_ASSERT_FAILS(mg_deconv_shape_init(&s, "d5", &err), err, "d5",
                    "output 12 x 2147483651 overflows an int");

    /* pool */
    const mg_pool_shape pok = {.C = 2, .H = 5, .W = 7, .KH = 4, .KW = 4, .SH = 2, .SW = 2};
    mg_pool_shape p = pok;
    CU_ASSERT_EQUAL(mg_pool_shape_init(&p, "p", &err), 0);
    CU_ASSERT(p.OH == 2 && p.OW == 3);
    p = pok, p.C = 0;
    MG_ASSERT_FAILS(mg_pool_shape_init(&p, "p1", &err), err, "p1",
                    "input 0 x 5 x 7 must be positive");
    p = pok, p.SH = 0;
    MG_ASSERT_FAILS(mg_pool_shape_init(&p, "p2", &err), err, "p2",
                    "pool 4x4 and stride 0x2 must be positive");
    p = pok, p.KW = -4;
    MG_ASSERT_FAILS(mg_pool_shape_init(&p, "p2", &err), err, "p2",
                    "pool 4x-4 and stride 2x2 must be positive");
    p = pok, p.KH = 6;
    MG_ASSERT_FAILS(mg_pool_shape_init(&p, "p3", &err), err, "p3",
                    "pool 6x4 larger than the input 5x7");
    p = pok, p.C = 1 << 30;
    MG_ASSERT_FAILS(mg_pool_shape_init(&p, "p4", &err), err, "p4",
                    "input 1073741824 x 5 x 7 overflows an int");
}

/* ---- im2col ---- */

/* A 1 x 3 x 4 image (values 1..12), kernel 2x3, stride 1x2, padding 1x1: OH = 4, OW = 2. */
static void test_im2col_by_hand(void)
{
    const mg_real img[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const mg_patches p = {.C = 1, .H = 3, .W = 4, .KH = 2, .KW = 3, .SH = 1, .SW = 2, .PH = 1,
                          .PW = 1, .OH = mg_conv_out_size(3, 2, 1, 1),
                          .OW = mg_conv_out_size(4, 3, 2, 1)};
    CU_ASSERT_EQUAL_FATAL(p.OH, 4);
    CU_ASSERT_EQUAL_FATAL(p.OW, 2);
    /* Row (kh, kw), column (oh, ow) = img[oh - 1 + kh][2 ow - 1 + kw], 0 outside. Two spare
     * columns per row (ldcol 10) must stay untouched. */
    const mg_real want[6][8] = {
        {0, 0, 0, 2, 0, 6, 0, 10},   // kh 0, kw 0: rows -1..2, columns -1, 1
        {0, 0, 1, 3, 5, 7, 9, 11},   // kw 1: columns 0, 2
        {0, 0, 2, 4, 6, 8, 10, 12},  // kw 2: columns 1, 3
        {0, 2, 0, 6, 0, 10, 0, 0},   // kh 1: rows 0..3
        {1, 3, 5, 7, 9, 11, 0, 0},
        {2, 4, 6, 8, 10, 12, 0, 0},
    };
    mg_real col[6 * 10];
    for (int i = 0; i < 60; i++)
        col[i] = -7;
    mg_im2col(col, 10, img, &p);
    for (int r = 0; r < 6; r++) {
        for (int j = 0; j < 8; j++)
            CU_ASSERT_EQUAL(col[r * 10 + j], want[r][j]);
        CU_ASSERT(col[r * 10 + 8] == -7 && col[r * 10 + 9] == -7);
    }
    /* col2im of all ones counts the taps that see each pixel: every row by both kh; column 1 by
     * (ow 0, kw 2) and (ow 1, kw 0), columns 0, 2 and 3 by one tap each. */
    mg_real ones[6 * 10], count[12];
    for (int i = 0; i < 60; i++)
        ones[i] = 1;
    mg_col2im(count, ones, 10, &p);
    const mg_real want_count[4] = {2, 4, 2, 2};
    for (int i = 0; i < 12; i++)
        CU_ASSERT_EQUAL(count[i], want_count[i % 4]);
}

/* <im2col(x), c> = <x, col2im(c)> over many geometries, including taps that see only padding
 * and strides larger than the kernel. Both sides are sums of the same products, one float
 * addition chain (col2im's) apart: the bound is (taps + 1) eps_f sum |x c|. */
static void test_im2col_adjoint(void)
{
    double worst = 0;
    int cases = 0;
    for (int kh = 1; kh <= 4; kh++)
        for (int kw = 1; kw <= 3; kw++)
            for (int s = 1; s <= 3; s++)
                for (int pad = 0; pad <= 3; pad++) {
                    mg_patches p = {.C = 2, .H = 5, .W = 4, .KH = kh, .KW = kw, .SH = s,
                                    .SW = 4 - s, .PH = pad, .PW = 3 - pad};
                    p.OH = mg_conv_out_size(p.H, kh, p.SH, p.PH);
                    p.OW = mg_conv_out_size(p.W, kw, p.SW, p.PW);
                    if (p.OH < 0 || p.OW < 0)
                        continue;
                    const size_t n_img = 2 * 5 * 4, rows = (size_t)2 * kh * kw;
                    const int ld = p.OH * p.OW + 3;
                    mg_real *x = guarded(n_img, 0), *c = guarded(rows * ld, 0);
                    mg_real *xc = guarded(rows * ld, 0), *cx = guarded(n_img, 0);
                    fill(x, n_img, -1, 1, (uint64_t)cases);
                    fill(c, rows * ld, -1, 1, 1000 + (uint64_t)cases);
                    mg_im2col(xc, ld, x, &p);
                    mg_col2im(cx, c, ld, &p);
                    check_guard(xc, rows * ld, "im2col");
                    check_guard(cx, n_img, "col2im");
                    double lhs = 0, rhs = 0, scale = 0;
                    for (size_t r = 0; r < rows; r++)
                        for (int j = 0; j < p.OH * p.OW; j++) {
                            lhs += (double)xc[r * ld + j] * c[r * ld + j];
                            scale += fabs((double)xc[r * ld + j] * c[r * ld + j]);
                        }
                    for (size_t i = 0; i < n_img; i++)
                        rhs += (double)x[i] * cx[i];
                    const double tol = (kh * kw + 1) * FLT_EPSILON * scale;
                    MG_ASSERT_CLOSE(lhs, rhs, tol);
                    worst = fmax(worst, fabs(lhs - rhs) / fmax(tol, DBL_MIN));
                    cases++;
                    free(x), free(c), free(xc), free(cx);
                }
    printf("\n    %d geometries: max |<im2col x, c> - <x, col2im c>| / tol %.3g "
           "(tol = (KH KW + 1) eps sum |x c|)", cases, worst);
}

/* im2col and col2im bit for bit against their definitions, on both of their paths: planes of up
 * to 4096 values (padding included) take the phase path, larger ones the run path (conv.c).
 * im2col copies, so it is exact; col2im adds each pixel's terms in (kh, kw) order from 0, which
 * the reference does too, so it is exact as well. */
static void test_im2col_paths(void)
{
    const struct {
        int C, H, W, KH, KW, SH, SW, PH, PW;
    } g[] = {
        {3, 8, 8, 4, 4, 2, 2, 1, 1},     // DCGAN's 4x4, stride 2, pad 1 (phase path)
        {2, 16, 16, 4, 4, 2, 2, 1, 1},
        {2, 5, 7, 3, 2, 3, 1, 2, 0},     // stride above the kernel, uneven padding
        {1, 32, 32, 8, 8, 1, 1, 4, 4},   // the paper's D: 40x40 padded
        {2, 9, 9, 5, 5, 3, 3, 3, 3},     // (kh % SH, kw % SW) phases of 3x3
        {1, 70, 70, 3, 3, 2, 2, 1, 1},   // 72x72 padded: the run path
        {2, 64, 80, 4, 4, 2, 2, 1, 1},   // 66x82: the run path
    };
    for (size_t t = 0; t < sizeof g / sizeof *g; t++) {
        mg_patches p = {.C = g[t].C, .H = g[t].H, .W = g[t].W, .KH = g[t].KH, .KW = g[t].KW,
                        .SH = g[t].SH, .SW = g[t].SW, .PH = g[t].PH, .PW = g[t].PW};
        p.OH = mg_conv_out_size(p.H, p.KH, p.SH, p.PH);
        p.OW = mg_conv_out_size(p.W, p.KW, p.SW, p.PW);
        CU_ASSERT_FATAL(p.OH > 0 && p.OW > 0);
        const int P = p.OH * p.OW, ld = P + 5;
        const size_t n_img = (size_t)p.C * p.H * p.W, rows = (size_t)p.C * p.KH * p.KW;
        mg_real *x = guarded(n_img, 0), *c = guarded(rows * ld, 0);
        mg_real *xc = guarded(rows * ld, -7), *cx = guarded(n_img, -7);
        mg_real *want = guarded(n_img, 0);
        fill(x, n_img, -1, 1, 40 + t);
        fill(c, rows * ld, -1, 1, 80 + t);
        mg_im2col(xc, ld, x, &p);
        mg_col2im(cx, c, ld, &p);
        check_guard(xc, rows * ld, "im2col");
        check_guard(cx, n_img, "col2im");
        int bad_copy = 0, bad_sum = 0;
        for (int ch = 0; ch < p.C; ch++)
            for (int kh = 0; kh < p.KH; kh++)
                for (int kw = 0; kw < p.KW; kw++) {
                    const size_t r = (size_t)(ch * p.KH + kh) * p.KW + kw;
                    for (int oh = 0; oh < p.OH; oh++)
                        for (int ow = 0; ow < p.OW; ow++) {
                            const int ih = oh * p.SH - p.PH + kh, iw = ow * p.SW - p.PW + kw;
                            const int in = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
                            const size_t at = ((size_t)ch * p.H + ih) * p.W + iw;
                            const mg_real v = in ? x[at] : 0;
                            bad_copy += xc[r * ld + oh * p.OW + ow] != v;
                            if (in) // (kh, kw) ascending, as the contract says
                                want[at] += c[r * ld + oh * p.OW + ow];
                        }
                    bad_copy += xc[r * ld + P] != -7; // past the image's columns: untouched
                }
        for (size_t i = 0; i < n_img; i++)
            bad_sum += cx[i] != want[i];
        if (bad_copy || bad_sum)
            printf("\n    geometry %zu: %d im2col values and %d col2im values differ", t,
                   bad_copy, bad_sum);
        CU_ASSERT_EQUAL(bad_copy, 0);
        CU_ASSERT_EQUAL(bad_sum, 0);
        free(x), free(c), free(xc), free(cx), free(want);
    }
}

/* The group functions against one image at a time, bit for bit: 1 to 41 images side by side
 * (more than the 40 slots a 128 x 8 x 8 phase plane gets, so the slots are reused), images
 * further apart than their size, a matrix wider than the group. */
static void test_im2col_images(void)
{
    const struct {
        int C, H, W, KH, KW, SH, SW, PH, PW;
    } g[] = {
        {128, 8, 8, 4, 4, 2, 2, 1, 1},   // DCGAN's D: 40 slots of 100 values in the phase path
        {4, 16, 16, 4, 4, 2, 2, 1, 1},
        {2, 5, 7, 3, 2, 3, 1, 2, 0},
        {2, 9, 9, 5, 5, 3, 3, 3, 3},
        {1, 70, 70, 3, 3, 2, 2, 1, 1},   // the run path
    };
    const int counts[] = {1, 2, 5, 41};
    for (size_t t = 0; t < sizeof g / sizeof *g; t++)
        for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
            mg_patches p = {.C = g[t].C, .H = g[t].H, .W = g[t].W, .KH = g[t].KH, .KW = g[t].KW,
                            .SH = g[t].SH, .SW = g[t].SW, .PH = g[t].PH, .PW = g[t].PW};
            p.OH = mg_conv_out_size(p.H, p.KH, p.SH, p.PH);
            p.OW = mg_conv_out_size(p.W, p.KW, p.SW, p.PW);
            const int n = counts[k], P = p.OH * p.OW, ld = n * P + 3;
            const size_t n_img = (size_t)p.C * p.H * p.W, stride = n_img + 7;
            const size_t rows = (size_t)p.C * p.KH * p.KW;
            mg_real *x = guarded(stride * n, 0), *c = guarded(rows * ld, 0);
            mg_real *xc = guarded(rows * ld, -7), *cx = guarded(stride * n, -7);
            mg_real *xc1 = guarded(rows * ld, -7), *cx1 = guarded(stride * n, -7);
            fill(x, stride * n, -1, 1, 200 + t);
            fill(c, rows * ld, -1, 1, 300 + t);
            mg_im2col_images(xc, ld, x, stride, n, &p);
            mg_col2im_images(cx, stride, c, ld, n, &p);
            for (int i = 0; i < n; i++) {
                mg_im2col(xc1 + (size_t)i * P, ld, x + i * stride, &p);
                mg_col2im(cx1 + i * stride, c + (size_t)i * P, ld, &p);
            }
            check_guard(xc, rows * ld, "im2col_images");
            check_guard(cx, stride * n, "col2im_images");
            CU_ASSERT(memcmp(xc, xc1, rows * ld * sizeof *xc) == 0);
            CU_ASSERT(memcmp(cx, cx1, stride * n * sizeof *cx) == 0);
            free(x), free(c), free(xc), free(cx), free(xc1), free(cx1);
        }
}

/* ---- conv and deconv against direct loops ---- */

/* out[i] and scale[i] = sum |terms| of the conv, straight from its definition. */
static void direct_conv(double *out, double *scale, const mg_real *x, const mg_real *w,
                        const mg_real *b, int N, const mg_conv_shape *s)
{
    const int P = s->OH * s->OW;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < s->OC; o++)
            for (int oh = 0; oh < s->OH; oh++)
                for (int ow = 0; ow < s->OW; ow++) {
                    double v = 0, a = 0;
                    if (b) {
                        v = s->untied ? b[o * P + oh * s->OW + ow] : b[o];
                        a = fabs(v);
                    }
                    for (int c = 0; c < s->IC; c++)
                        for (int kh = 0; kh < s->KH; kh++)
                            for (int kw = 0; kw < s->KW; kw++) {
                                const int ih = oh * s->SH - s->PH + kh;
                                const int iw = ow * s->SW - s->PW + kw;
                                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
                                    continue;
                                const double t =
                                    (double)w[((o * s->IC + c) * s->KH + kh) * s->KW + kw] *
                                    x[((n * s->IC + c) * s->H + ih) * s->W + iw];
                                v += t;
                                a += fabs(t);
                            }
                    const size_t i = ((size_t)(n * s->OC + o) * s->OH + oh) * s->OW + ow;
                    out[i] = v;
                    scale[i] = a;
                }
}

/* The gradients by the chain rule on the same loops: each term w x feeds out, so dout flows to
 * w (times x), to x (times w) and to b. Arrays are zeroed here; scales are sums of |terms|. */
static void direct_conv_backward(double *dx, double *dxs, double *dw, double *dws, double *db,
                                 double *dbs, const mg_real *dout, const mg_real *x,
                                 const mg_real *w, int N, const mg_conv_shape *s)
{
    const size_t nx = (size_t)N * s->IC * s->H * s->W, nw = mg_conv_weight_size(s);
    const size_t nb = mg_conv_bias_size(s);
    memset(dx, 0, nx * sizeof *dx), memset(dxs, 0, nx * sizeof *dxs);
    memset(dw, 0, nw * sizeof *dw), memset(dws, 0, nw * sizeof *dws);
    memset(db, 0, nb * sizeof *db), memset(dbs, 0, nb * sizeof *dbs);
    const int P = s->OH * s->OW;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < s->OC; o++)
            for (int oh = 0; oh < s->OH; oh++)
                for (int ow = 0; ow < s->OW; ow++) {
                    const double d = dout[((n * s->OC + o) * s->OH + oh) * s->OW + ow];
                    const int bi = s->untied ? o * P + oh * s->OW + ow : o;
                    db[bi] += d;
                    dbs[bi] += fabs(d);
                    for (int c = 0; c < s->IC; c++)
                        for (int kh = 0; kh < s->KH; kh++)
                            for (int kw = 0; kw < s->KW; kw++) {
                                const int ih = oh * s->SH - s->PH + kh;
                                const int iw = ow * s->SW - s->PW + kw;
                                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
                                    continue;
                                const int wi = ((o * s->IC + c) * s->KH + kh) * s->KW + kw;
                                const int xi = ((n * s->IC + c) * s->H + ih) * s->W + iw;
                                dx[xi] += w[wi] * d;
                                dxs[xi] += fabs(w[wi] * d);
                                dw[wi] += x[xi] * d;
                                dws[wi] += fabs(x[xi] * d);
                            }
                }
}

/* PyTorch's ConvTranspose2d, straight from its definition: every input value times every tap,
 * scattered to out[y SH - PH + kh][x SW - PW + kw] when that lies in the output. */
static void direct_deconv(double *out, double *scale, const mg_real *x, const mg_real *w,
                          const mg_real *b, int N, const mg_conv_shape *s)
{
    const int P = s->OH * s->OW;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < s->OC; o++)
            for (int i = 0; i < P; i++) {
                const size_t j = ((size_t)n * s->OC + o) * P + i;
                out[j] = b ? (s->untied ? b[o * P + i] : b[o]) : 0;
                scale[j] = fabs(out[j]);
            }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < s->IC; c++)
            for (int y = 0; y < s->H; y++)
                for (int xx = 0; xx < s->W; xx++)
                    for (int o = 0; o < s->OC; o++)
                        for (int kh = 0; kh < s->KH; kh++)
                            for (int kw = 0; kw < s->KW; kw++) {
                                const int oy = y * s->SH - s->PH + kh;
                                const int ox = xx * s->SW - s->PW + kw;
                                if (oy < 0 || oy >= s->OH || ox < 0 || ox >= s->OW)
                                    continue;
                                const double t =
                                    (double)w[((c * s->OC + o) * s->KH + kh) * s->KW + kw] *
                                    x[((n * s->IC + c) * s->H + y) * s->W + xx];
                                const size_t j =
                                    ((size_t)(n * s->OC + o) * s->OH + oy) * s->OW + ox;
                                out[j] += t;
                                scale[j] += fabs(t);
                            }
}

static void direct_deconv_backward(double *dx, double *dxs, double *dw, double *dws, double *db,
                                   double *dbs, const mg_real *dout, const mg_real *x,
                                   const mg_real *w, int N, const mg_conv_shape *s)
{
    const size_t nx = (size_t)N * s->IC * s->H * s->W, nw = mg_conv_weight_size(s);
    const size_t nb = mg_conv_bias_size(s);
    memset(dx, 0, nx * sizeof *dx), memset(dxs, 0, nx * sizeof *dxs);
    memset(dw, 0, nw * sizeof *dw), memset(dws, 0, nw * sizeof *dws);
    memset(db, 0, nb * sizeof *db), memset(dbs, 0, nb * sizeof *dbs);
    const int P = s->OH * s->OW;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < s->OC; o++)
            for (int i = 0; i < P; i++) {
                const double d = dout[((size_t)n * s->OC + o) * P + i];
                const int bi = s->untied ? o * P + i : o;
                db[bi] += d;
                dbs[bi] += fabs(d);
            }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < s->IC; c++)
            for (int y = 0; y < s->H; y++)
                for (int xx = 0; xx < s->W; xx++)
                    for (int o = 0; o < s->OC; o++)
                        for (int kh = 0; kh < s->KH; kh++)
                            for (int kw = 0; kw < s->KW; kw++) {
                                const int oy = y * s->SH - s->PH + kh;
                                const int ox = xx * s->SW - s->PW + kw;
                                if (oy < 0 || oy >= s->OH || ox < 0 || ox >= s->OW)
                                    continue;
                                const int wi = ((c * s->OC + o) * s->KH + kh) * s->KW + kw;
                                const int xi = ((n * s->IC + c) * s->H + y) * s->W + xx;
                                const double d = dout[((n * s->OC + o) * s->OH + oy) * s->OW + ox];
                                dx[xi] += w[wi] * d;
                                dxs[xi] += fabs(w[wi] * d);
                                dw[wi] += x[xi] * d;
                                dws[wi] += fabs(x[xi] * d);
                            }
}

/* The worst error / bound over many comparisons of one quantity. */
typedef struct {
    const char *name;
    double err, ratio;
    size_t values;
    int failures;
} tally;

/* got[i] against want[i] + prior * sum (prior: what add mode added onto), bound
 * L eps_f (scale[i] + |prior|) with L the rounding chain length of the kernel. */
static void compare(tally *t, const mg_real *got, const double *want, const double *scale,
                    size_t n, double L, double prior, const char *config)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const double target = want[i] + prior;
        const double tol = L * FLT_EPSILON * (scale[i] + fabs(prior));
        const double e = fabs((double)got[i] - target);
        if (!(e <= tol) && bad++ == 0 && t->failures++ < 10)
            fprintf(stderr, "\n  %s %s[%zu]: got %.9g, want %.9g, |diff| %.3g > %.3g", config,
                    t->name, i, got[i], target, e, tol);
        t->err = fmax(t->err, e);
        if (tol > 0)
            t->ratio = fmax(t->ratio, e / tol);
    }
    CU_ASSERT_EQUAL(bad, 0); // one assertion per tensor: a broken kernel fails fast
    t->values += n;
}

static void init_tallies(tally t[2][4])
{
    const char *names[4] = {"out", "dinp", "dw", "db"};
    for (int f = 0; f < 2; f++)
        for (int q = 0; q < 4; q++)
            t[f][q] = (tally){.name = names[q]};
}

static void print_tally(const tally *t)
{
    printf("\n    %-10s %8zu values: max |err| %.3g, max err/bound %.3g", t->name, t->values,
           t->err, t->ratio);
}

typedef struct {
    const mg_conv_shape *s; // checked, group set
    int N;
    const mg_real *x, *w, *b, *dout;    // b may be NULL
    const double *y, *ys;               // direct forward and its scales
    const double *dx, *dxs, *dw, *dws, *db, *dbs;
    double L_out, L_dx, L_dw;           // rounding chains of the kernel's three sums
} direct_case;

/* Runs the kernels of c->s (conv or deconv) with gemm on the case and compares everything with
 * the direct loops: forward; backward with add 0 over NaN, then add 1 on top (twice the
 * gradient); the NULL gradients skipped without changing the others' bits. */
static void run_case(const direct_case *c, mg_gemm_fn gemm, tally t[4], const char *config)
{
    const mg_conv_shape *s = c->s;
    const int N = c->N;
    const size_t nx = (size_t)N * s->IC * s->H * s->W, ny = (size_t)N * s->OC * s->OH * s->OW;
    const size_t nw = mg_conv_weight_size(s), nb = mg_conv_bias_size(s);
    const size_t nwork = mg_conv_work_size(s, N);
    void (*fwd)(mg_real *, const mg_real *, const mg_real *, const mg_real *, int,
                const mg_conv_shape *, mg_real *, mg_gemm_fn) =
        s->transposed ? mg_deconv_forward : mg_conv_forward;
    void (*bwd)(mg_real *, mg_real *, mg_real *, const mg_real *, const mg_real *,
                const mg_real *, int, const mg_conv_shape *, int, mg_real *, mg_gemm_fn) =
        s->transposed ? mg_deconv_backward : mg_conv_backward;

    mg_real *y = guarded(ny, NAN), *work = guarded(nwork, NAN);
    mg_real *dx = guarded(nx, NAN), *dw = guarded(nw, NAN), *db = guarded(nb, NAN);
    fwd(y, c->x, c->w, c->b, N, s, work, gemm);
    compare(&t[0], y, c->y, c->ys, ny, c->L_out, 0, config);
    bwd(dx, dw, c->b ? db : NULL, c->dout, c->x, c->w, N, s, 0, work, gemm);
    compare(&t[1], dx, c->dx, c->dxs, nx, c->L_dx, 0, config);
    compare(&t[2], dw, c->dw, c->dws, nw, c->L_dw, 0, config);
    if (c->b)
        compare(&t[3], db, c->db, c->dbs, nb, 2, 0, config);
    /* add 1: dw and db receive the gradient again, dx is written again. */
    mg_real *dw1 = guarded(nw, 0), *db1 = guarded(nb, 0), *dx1 = guarded(nx, NAN);
    memcpy(dw1, dw, nw * sizeof *dw);
    memcpy(db1, db, nb * sizeof *db);
    bwd(dx1, dw1, c->b ? db1 : NULL, c->dout, c->x, c->w, N, s, 1, work, gemm);
    CU_ASSERT(memcmp(dx1, dx, nx * sizeof *dx) == 0);
    size_t bad = 0;
    for (size_t i = 0; i < nw; i++)
        bad += !(fabs(dw1[i] - 2 * c->dw[i]) <= (c->L_dw + 2) * FLT_EPSILON * 2 * c->dws[i]);
    for (size_t i = 0; c->b && i < nb; i++)
        bad += !(fabs(db1[i] - 2 * c->db[i]) <= 4 * FLT_EPSILON * 2 * c->dbs[i]);
    CU_ASSERT_EQUAL(bad, 0); // add 1: dw and db are twice the gradient
    /* NULLs: only what is asked, with the same bits. */
    mg_real *dx2 = guarded(nx, NAN), *dw2 = guarded(nw, NAN);
    bwd(dx2, NULL, NULL, c->dout, c->x, c->w, N, s, 0, work, gemm);
    CU_ASSERT(memcmp(dx2, dx, nx * sizeof *dx) == 0);
    bwd(NULL, dw2, NULL, c->dout, c->x, c->w, N, s, 0, work, gemm);
    CU_ASSERT(memcmp(dw2, dw, nw * sizeof *dw) == 0);
    check_guard(y, ny, "out");
    check_guard(dx, nx, "dinp");
    check_guard(dw, nw, "dw");
    check_guard(db, nb, "db");
    check_guard(work, nwork, "work");
    free(y), free(work), free(dx), free(dw), free(db), free(dw1), free(db1), free(dx1);
    free(dx2), free(dw2);
}

/* Allocates and fills a case for shape s (bias mode: 0 none, 1 tied, 2 untied); the caller
 * sets the L_* chains. */
static direct_case make_case(const mg_conv_shape *s, int N, int bias, uint64_t seed)
{
    const size_t nx = (size_t)N * s->IC * s->H * s->W, ny = (size_t)N * s->OC * s->OH * s->OW;
    const size_t nw = mg_conv_weight_size(s), nb = mg_conv_bias_size(s);
    mg_real *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
    mg_real *b = bias ? malloc(nb * sizeof *b) : NULL, *dout = malloc(ny * sizeof *dout);
    double *y = malloc(ny * sizeof *y), *ys = malloc(ny * sizeof *ys);
    double *dx = malloc(nx * sizeof *dx), *dxs = malloc(nx * sizeof *dxs);
    double *dw = malloc(nw * sizeof *dw), *dws = malloc(nw * sizeof *dws);
    double *db = malloc(nb * sizeof *db), *dbs = malloc(nb * sizeof *dbs);
    fill(x, nx, -1, 1, 10 * seed + 1);
    fill(w, nw, -1, 1, 10 * seed + 2);
    if (b)
        fill(b, nb, -1, 1, 10 * seed + 3);
    fill(dout, ny, -1, 1, 10 * seed + 4);
    if (s->transposed) {
        direct_deconv(y, ys, x, w, b, N, s);
        direct_deconv_backward(dx, dxs, dw, dws, db, dbs, dout, x, w, N, s);
    } else {
        direct_conv(y, ys, x, w, b, N, s);
        direct_conv_backward(dx, dxs, dw, dws, db, dbs, dout, x, w, N, s);
    }
    return (direct_case){.s = s, .N = N, .x = x, .w = w, .b = b, .dout = dout, .y = y, .ys = ys,
                         .dx = dx, .dxs = dxs, .dw = dw, .dws = dws, .db = db, .dbs = dbs};
}

static void free_case(direct_case *c)
{
    free((void *)c->x), free((void *)c->w), free((void *)c->b), free((void *)c->dout);
    free((void *)c->y), free((void *)c->ys), free((void *)c->dx), free((void *)c->dxs);
    free((void *)c->dw), free((void *)c->dws), free((void *)c->db), free((void *)c->dbs);
}

static const char *bias_name[3] = {"no bias", "tied", "untied"};

/* Runs case c with each grouping (0: the layer's own, as mg_conv_shape_init chose it) and both
 * GEMMs, tallying into t[gemm]; `shape` names the case in failure messages. */
static void run_groupings(direct_case *c, const mg_conv_shape *s, const int *groups,
                          int n_groups, tally t[2][4], const char *shape)
{
    static const mg_gemm_fn gemms[2] = {mg_gemm_ref, mg_gemm_blas};
    static const char *gemm_name[2] = {"ref", "blas"};
    for (int g = 0; g < n_groups; g++) {
        mg_conv_shape sg = *s;
        sg.group = groups[g] ? groups[g] : s->group;
        c->s = &sg;
        for (int f = 0; f < 2; f++) {
            char config[200];
            snprintf(config, sizeof config, "%s group %d %s", shape, sg.group, gemm_name[f]);
            run_case(c, gemms[f], t[f], config);
        }
    }
}

static void print_tallies(tally t[2][4], int cases, int n_groups)
{
    static const char *gemm_name[2] = {"ref", "blas"};
    for (int f = 0; f < 2; f++) {
        printf("\n    %d shapes x %d groupings, gemm %s:", cases, n_groups, gemm_name[f]);
        for (int q = 0; q < 4; q++)
            print_tally(&t[f][q]);
    }
}

/* Conv: kernels 3x2, 2x4, 5x3 on 5 images of 3 x 6 x 9; padding (p, 4 - p) for p = 0..4 (every
 * padding 0..4 in each direction, never square); strides 1x1, 2x2, 1x2, 2x1; no, tied and untied
 * bias; groups of 1, 2 (2 + 2 + 1) and automatic (all 5); both GEMMs.
 * Chains: out, K = IC KH KW products and the bias; dinp, OC products per tap, then col2im's
 * KH KW additions; dw, N P products in the groups' GEMMs, then one addition per group. */
static void test_conv_vs_direct(void)
{
    enum { N = 5, IC = 3, H = 6, W = 9, OC = 4 };
    const int kernels[3][2] = {{3, 2}, {2, 4}, {5, 3}}, strides[4][2] = {{1, 1}, {2, 2}, {1, 2},
                                                                        {2, 1}};
    const int groups[3] = {0, 1, 2};
    tally t[2][4];
    init_tallies(t);
    int cases = 0;
    for (int k = 0; k < 3; k++)
        for (int p = 0; p <= 4; p++)
            for (int st = 0; st < 4; st++)
                for (int bias = 0; bias < 3; bias++) {
                    mg_conv_shape s = {.IC = IC, .H = H, .W = W, .OC = OC, .KH = kernels[k][0],
                                       .KW = kernels[k][1], .SH = strides[st][0],
                                       .SW = strides[st][1], .PH = p, .PW = 4 - p,
                                       .untied = bias == 2};
                    mg_error err = {""};
                    CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&s, "conv", &err), 0);
                    direct_case c = make_case(&s, N, bias, (uint64_t)cases);
                    c.L_out = IC * s.KH * s.KW + 2;
                    c.L_dx = OC + s.KH * s.KW + 2;
                    c.L_dw = N * s.OH * s.OW + N + 2;
                    char shape[160];
                    snprintf(shape, sizeof shape, "conv %dx%d stride %dx%d pad %dx%d %s", s.KH,
                             s.KW, s.SH, s.SW, s.PH, s.PW, bias_name[bias]);
                    run_groupings(&c, &s, groups, 3, t, shape);
                    free_case(&c);
                    cases++;
                }
    print_tallies(t, cases, 3);
}

/* Deconv: kernels 3x4, 4x3, 5x5 on 4 images of 3 x 4 x 5 to 2 channels; strides 2x2, 3x3, 2x3,
 * 3x2; output padding 0, the largest (stride - 1), and mixed; padding 0..2 in each direction;
 * bias none, tied, untied; groups of 1, 3 (3 + 1), automatic; both GEMMs.
 * Chains: out, IC products per tap then col2im's KH KW additions and the bias; dinp,
 * K = OC KH KW products (im2col copies exactly); dw, N H W products and one addition per group. */
static void test_deconv_vs_direct(void)
{
    enum { N = 4, IC = 3, H = 4, W = 5, OC = 2 };
    const int kernels[3][2] = {{3, 4}, {4, 3}, {5, 5}}, strides[4][2] = {{2, 2}, {3, 3}, {2, 3},
                                                                        {3, 2}};
    const int groups[3] = {0, 1, 3};
    tally t[2][4];
    init_tallies(t);
    int cases = 0;
    for (int k = 0; k < 3; k++)
        for (int st = 0; st < 4; st++)
            for (int op = 0; op < 3; op++)
                for (int p = 0; p <= 2; p++) {
                    const int bias = (k + st + op + p) % 3;
                    const int SH = strides[st][0], SW = strides[st][1];
                    mg_conv_shape s = {.IC = IC, .H = H, .W = W, .OC = OC, .KH = kernels[k][0],
                                       .KW = kernels[k][1], .SH = SH, .SW = SW, .PH = p,
                                       .PW = 2 - p, .OPH = op == 0 ? 0 : SH - 1,
                                       .OPW = op == 0 ? 0 : op == 1 ? SW - 1 : 1,
                                       .untied = bias == 2};
                    mg_error err = {""};
                    CU_ASSERT_EQUAL_FATAL(mg_deconv_shape_init(&s, "deconv", &err), 0);
                    direct_case c = make_case(&s, N, bias, 500 + (uint64_t)cases);
                    c.L_out = IC + s.KH * s.KW + 2;
                    c.L_dx = OC * s.KH * s.KW + 2;
                    c.L_dw = N * H * W + N + 2;
                    char shape[160];
                    snprintf(shape, sizeof shape, "deconv %dx%d stride %dx%d pad %dx%d out_pad "
                             "%dx%d %s", s.KH, s.KW, SH, SW, s.PH, s.PW, s.OPH, s.OPW,
                             bias_name[bias]);
                    run_groupings(&c, &s, groups, 3, t, shape);
                    free_case(&c);
                    cases++;
                }
    print_tallies(t, cases, 3);
}

/* Winograd's algorithm (winograd.h) against the direct loops, through the layers' own kernels:
 * F(4x4, 2x2) and F(2x2, 2x2) (kernels twice the stride: 4x4 at stride 2 as in DCGAN, 2x2 at
 * stride 1, 4x2 at stride 2x1), F(4x4, 3x3) and F(2x2, 3x3) (3x3 at stride 1, 6x6 at stride 2);
 * padding 0 to 2; square and non-square maps; conv and deconv (with output padding); bias none,
 * tied, untied; 3 images, and 35 for the layout's blocks; groups automatic, 1 and 2 images; both
 * GEMMs. The bound is the GEMM path's chain
 * times the table's growth (mg_wino_growth: how far the transforms' intermediate sums can exceed
 * the direct sum's terms), plus the transforms' own additions. */
static void test_winograd_vs_direct(void)
{
    typedef struct {
        int deconv, IC, H, W, OC, KH, KW, SH, SW, PH, PW, OP, m, N;
    } wshape;
    static const wshape shapes[] = {
        {0, 3, 16, 16, 5, 4, 4, 2, 2, 1, 1, 0, 4, 3}, {0, 4, 8, 8, 6, 4, 4, 2, 2, 1, 1, 0, 4, 3},
        {0, 2, 8, 12, 3, 4, 4, 2, 2, 1, 1, 0, 2, 3},  {0, 3, 10, 6, 2, 4, 4, 2, 2, 0, 2, 0, 4, 3},
        {0, 3, 7, 9, 4, 2, 2, 1, 1, 0, 0, 0, 2, 3},   {0, 2, 8, 8, 3, 3, 3, 1, 1, 1, 1, 0, 4, 3},
        {0, 3, 6, 10, 2, 3, 3, 1, 1, 1, 1, 0, 2, 3},  {0, 2, 12, 12, 3, 6, 6, 2, 2, 2, 2, 0, 2, 3},
        {0, 3, 9, 9, 4, 4, 2, 2, 1, 1, 0, 0, 4, 3},   {1, 5, 4, 4, 3, 4, 4, 2, 2, 1, 1, 0, 4, 3},
        {1, 4, 2, 4, 3, 4, 4, 2, 2, 1, 1, 1, 2, 3},   {1, 6, 8, 8, 2, 4, 4, 2, 2, 1, 1, 0, 4, 3},
        {1, 3, 4, 6, 2, 2, 2, 1, 1, 0, 0, 0, 2, 3},   {1, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 0, 4, 3},
        /* more channels than one call of the transforms takes (8): blocks of 8 and the rest */
        {0, 19, 8, 8, 11, 4, 4, 2, 2, 1, 1, 0, 4, 3}, {1, 10, 4, 4, 17, 4, 4, 2, 2, 1, 1, 0, 4, 3},
        /* 35 images: the turn to (C, H, W, N) in blocks of 16 x 16 (8 x 8 in double) and the
         * rest, on maps whose sizes are and are not multiples of 16 */
        {0, 4, 8, 8, 6, 4, 4, 2, 2, 1, 1, 0, 4, 35}, {0, 3, 7, 9, 4, 2, 2, 1, 1, 0, 0, 0, 2, 35},
        {1, 5, 4, 4, 3, 4, 4, 2, 2, 1, 1, 0, 4, 35},
    };
    const int groups[3] = {0, 1, 2};
    static const mg_gemm_fn gemms[2] = {mg_gemm_ref, mg_gemm_blas};
    static const char *gemm_name[2] = {"ref", "blas"};
    tally t[2][4];
    init_tallies(t);
    int cases = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const wshape *h = &shapes[k];
        const int bias = (int)(k % 3), N = h->N;
        mg_conv_shape s = {.IC = h->IC, .H = h->H, .W = h->W, .OC = h->OC, .KH = h->KH,
                           .KW = h->KW, .SH = h->SH, .SW = h->SW, .PH = h->PH, .PW = h->PW,
                           .OPH = h->OP, .OPW = h->OP, .untied = bias == 2,
                           .algorithm = MG_CONV_WINOGRAD};
        mg_error err = {""};
        if ((h->deconv ? mg_deconv_shape_init : mg_conv_shape_init)(&s, "winograd", &err))
            fprintf(stderr, "\n  shape %zu: %s", k, err.msg);
        CU_ASSERT_FATAL(s.wino.m > 0);
        if (s.wino.m != h->m)
            fprintf(stderr, "\n  shape %zu: F(%d, %d), want m %d", k, s.wino.m, s.wino.r, h->m);
        CU_ASSERT_EQUAL(s.wino.m, h->m);
        direct_case c = make_case(&s, N, bias, 900 + (uint64_t)cases);
        const double g = mg_wino_growth(&s.wino);
        const int CA = s.wino.CA, CB = s.wino.CB, a = s.wino.alpha;
        /* GEMM chains over the phase channels (forward), the out channels (adjoint), the tiles
         * (weights), each term grown by at most g, plus 2 alpha additions per transform. */
        c.L_out = g * (CA * s.SH * s.SW + 4 * a) + 2;
        c.L_dx = g * (CB + 4 * a) + 2;
        c.L_dw = g * (N * s.wino.TH * s.wino.TW + 4 * a) + N + 2;
        if (h->deconv) { // the deconv's forward is the conv's adjoint, and so on
            const double o = c.L_out;
            c.L_out = c.L_dx, c.L_dx = o;
        }
        for (int gi = 0; gi < 3; gi++) {
            mg_conv_shape sg = s;
            if (groups[gi]) {
                const mg_wino *w = &s.wino;
                CU_ASSERT_EQUAL_FATAL(mg_wino_plan(&sg.wino, w->CA, w->HA, w->WA, w->CB, w->HB,
                                                   w->WB, w->KH, w->KW, w->SH, w->SW, w->PH,
                                                   w->PW, w->m, groups[gi]), 0);
            }
            c.s = &sg;
            for (int f = 0; f < 2; f++) {
                char config[200];
                snprintf(config, sizeof config, "%s %dx%d stride %dx%d pad %dx%d on %dx%d, F(%d, "
                         "%d), group %d %s", h->deconv ? "deconv" : "conv", h->KH, h->KW, h->SH,
                         h->SW, h->PH, h->PW, h->H, h->W, sg.wino.m, sg.wino.r, sg.wino.group,
                         gemm_name[f]);
                run_case(&c, gemms[f], t[f], config);
            }
        }
        free_case(&c);
        cases++;
    }
    print_tallies(t, cases, 3);
}

/* mg_wino_gemm against dot products in double, for both block shapes on any CPU, A as it lies
 * and transposed, with leading dimensions wider than the matrices: M from 1 to 30, so every count
 * of rows left over after either block (1 to 11, 1 to 5), of columns after the vectors (0 to 2
 * vectors and 0 to W - 1 single columns), K from 1 up. Each value is within gamma_K sum |terms|
 * of the exact sum (gamma_K = K u / (1 - K u), u the unit roundoff: the dot product's bound,
 * fused or not; K = 1 reaches it, one rounding of a product); guards catch a write past C or
 * the scratch. */
static void test_winograd_gemm(void)
{
    int Ms[30];
    for (int i = 0; i < 30; i++)
        Ms[i] = i + 1;
    const int Ns[] = {1, 3, 15, 16, 17, 31, 32, 33, 40, 64, 67};
    const int Ks[] = {1, 2, 12, 64};
    const double eps = sizeof(mg_real) == 4 ? FLT_EPSILON / 2 : DBL_EPSILON / 2;
    double worst = 0;
    long values = 0, printed = 0;
    for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
                for (int trans = 0; trans < 2; trans++)
                    for (int blocks = 1; blocks <= 2; blocks++) {
                        const int M = Ms[mi], N = Ns[ni], K = Ks[ki];
                        const size_t lda = (size_t)(trans ? M : K) + 3, ldb = (size_t)N + 5,
                                     ldc = (size_t)N + 2;
                        const size_t na = (trans ? (size_t)K : (size_t)M) * lda,
                                     nb = (size_t)K * ldb, nc = (size_t)M * ldc,
                                     np = (size_t)12 * K;
                        mg_real *a = guarded(na, 0), *b = guarded(nb, 0), *c = guarded(nc, -7),
                                *pk = guarded(np, 0);
                        fill(a, na, -1, 1, 7000 + mi * 100 + ki);
                        fill(b, nb, -1, 1, 8000 + ni * 100 + ki);
                        const size_t ars = trans ? 1 : lda, acs = trans ? lda : 1;
                        mg_wino_gemm(M, N, K, a, ars, acs, b, ldb, c, ldc, pk, blocks);
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < (int)ldc; j++) {
                                if (j >= N) { // between rows: untouched
                                    CU_ASSERT_EQUAL(c[i * ldc + j], -7);
                                    continue;
                                }
                                double sum = 0, mag = 0;
                                for (int k = 0; k < K; k++) {
                                    const double t = (double)a[i * ars + k * acs] * b[k * ldb + j];
                                    sum += t;
                                    mag += fabs(t);
                                }
                                const double err = fabs(c[i * ldc + j] - sum),
                                             bound = K * eps / (1 - K * eps) * mag + DBL_MIN;
                                worst = fmax(worst, err / bound);
                                values++;
                                if (err > bound && printed++ < 10)
                                    fprintf(stderr, "\n  M %d N %d K %d trans %d blocks %d: "
                                                    "(%d, %d) off by %.3g, bound %.3g",
                                            M, N, K, trans, blocks, i, j, err, bound);
                                CU_ASSERT(err <= bound);
                            }
                        check_guard(c, nc, "C");
                        check_guard(pk, np, "scratch");
                        free(a);
                        free(b);
                        free(c);
                        free(pk);
                    }
    printf("\n    %ld values: max err/bound %.3g ", values, worst);
}

/* The cache of transformed weights (mg_wino_cache): the same bits as without it while the
 * weights stay, and the new weights' result once one value of them changes, in the forward pass
 * and the adjoint (the input gradient); a deconv too. */
static void test_winograd_cache(void)
{
    enum { N = 4 };
    for (int deconv = 0; deconv < 2; deconv++) {
        mg_conv_shape s = {.IC = 6, .H = 8, .W = 8, .OC = 5, .KH = 4, .KW = 4, .SH = 2, .SW = 2,
                           .PH = 1, .PW = 1};
        mg_error err = {""};
        CU_ASSERT_EQUAL_FATAL((deconv ? mg_deconv_shape_init : mg_conv_shape_init)(&s, "c", &err),
                              0);
        CU_ASSERT_FATAL(s.wino.m == 4);
        mg_conv_shape cached = s;
        void *block = calloc(1, mg_wino_cache_bytes(&s.wino));
        mg_wino_cache_init(&cached.wino, block);
        const size_t nx = (size_t)N * s.IC * s.H * s.W, ny = (size_t)N * s.OC * s.OH * s.OW;
        const size_t nw = mg_conv_weight_size(&s), nwork = mg_conv_work_size(&s, N);
        mg_real *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
        mg_real *dy = malloc(ny * sizeof *dy), *work = malloc(nwork * sizeof *work);
        mg_real *y[2], *dx[2];
        for (int i = 0; i < 2; i++)
            y[i] = malloc(ny * sizeof **y), dx[i] = malloc(nx * sizeof **dx);
        fill(x, nx, -1, 1, 71), fill(w, nw, -1, 1, 72), fill(dy, ny, -1, 1, 73);
        void (*fwd)(mg_real *, const mg_real *, const mg_real *, const mg_real *, int,
                    const mg_conv_shape *, mg_real *, mg_gemm_fn) =
            deconv ? mg_deconv_forward : mg_conv_forward;
        void (*bwd)(mg_real *, mg_real *, mg_real *, const mg_real *, const mg_real *,
                    const mg_real *, int, const mg_conv_shape *, int, mg_real *, mg_gemm_fn) =
            deconv ? mg_deconv_backward : mg_conv_backward;
        for (int round = 0; round < 3; round++) {
            if (round == 2)
                w[nw / 2] += 0.25f; // one weight changes: the cache must see it
            fwd(y[0], x, w, NULL, N, &s, work, mg_gemm_blas);
            bwd(dx[0], NULL, NULL, dy, x, w, N, &s, 0, work, mg_gemm_blas);
            fwd(y[1], x, w, NULL, N, &cached, work, mg_gemm_blas);
            bwd(dx[1], NULL, NULL, dy, x, w, N, &cached, 0, work, mg_gemm_blas);
            CU_ASSERT(memcmp(y[0], y[1], ny * sizeof **y) == 0);
            CU_ASSERT(memcmp(dx[0], dx[1], nx * sizeof **dx) == 0);
            CU_ASSERT(cached.wino.cache->valid);
        }
        free(block), free(x), free(w), free(dy), free(work);
        for (int i = 0; i < 2; i++)
            free(y[i]), free(dx[i]);
    }
    /* A layer that keeps U (keeps_u, as nn.c's do: a smaller work space) gives the same weight
     * and input gradients as one that does not, with CB Cp = 9 (not a multiple of the vectors'
     * 8 or 16, the tails) and 4 x 6 = 24, F(4x4, 3x3) and F(4x4, 2x2). */
    const mg_conv_shape shapes[2] = {
        {.IC = 3, .H = 8, .W = 8, .OC = 3, .KH = 3, .KW = 3, .SH = 1, .SW = 1, .PH = 1, .PW = 1},
        {.IC = 6, .H = 8, .W = 8, .OC = 4, .KH = 4, .KW = 4, .SH = 2, .SW = 2, .PH = 1, .PW = 1}};
    for (int k = 0; k < 2; k++) {
        mg_conv_shape s = shapes[k], kept;
        mg_error err = {""};
        CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&s, "c", &err), 0);
        CU_ASSERT_FATAL(s.wino.m == 4);
        kept = s;
        kept.wino.keeps_u = 1;
        void *block = calloc(1, mg_wino_cache_bytes(&kept.wino));
        mg_wino_cache_init(&kept.wino, block);
        const size_t nx = (size_t)N * s.IC * s.H * s.W, ny = (size_t)N * s.OC * s.OH * s.OW;
        const size_t nw = mg_conv_weight_size(&s);
        const size_t nwork = mg_conv_work_size(&s, N), nkept = mg_conv_work_size(&kept, N);
        CU_ASSERT(nkept < nwork);
        mg_real *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
        mg_real *dy = malloc(ny * sizeof *dy), *work = guarded(nwork, NAN);
        mg_real *work2 = guarded(nkept, NAN);
        mg_real *dx[2] = {malloc(nx * sizeof *x), malloc(nx * sizeof *x)};
        mg_real *dw[2] = {malloc(nw * sizeof *w), malloc(nw * sizeof *w)};
        fill(x, nx, -1, 1, 81), fill(w, nw, -1, 1, 82), fill(dy, ny, -1, 1, 83);
        mg_conv_backward(dx[0], dw[0], NULL, dy, x, w, N, &s, 0, work, mg_gemm_blas);
        mg_conv_backward(dx[1], dw[1], NULL, dy, x, w, N, &kept, 0, work2, mg_gemm_blas);
        CU_ASSERT(memcmp(dw[0], dw[1], nw * sizeof *w) == 0);
        CU_ASSERT(memcmp(dx[0], dx[1], nx * sizeof *x) == 0);
        check_guard(work2, nkept, "work");
        free(block), free(x), free(w), free(dy), free(work), free(work2);
        for (int i = 0; i < 2; i++)
            free(dx[i]), free(dw[i]);
    }
}

/* A conv whose kernel covers its unpadded input (to 1x1) and a deconv of a 1x1 input to its
 * kernel's size are dense layers, run as one GEMM on the tensors as they lie, with no work space
 * (conv.c): 5 images of 3 x 4 x 5 by a 4x5 kernel to 2 channels and back, strides 1 and 2 (no
 * difference at 1x1), every bias, groups automatic and 2, both GEMMs.
 * Chains: conv out K products and the bias, dinp OC products, dw N products; deconv out IC
 * products and the bias, dinp OC KH KW products, dw N products. */
static void test_dense_shapes_vs_direct(void)
{
    enum { N = 5, IC = 3, H = 4, W = 5, OC = 2 };
    tally t[2][4];
    init_tallies(t);
    int cases = 0;
    for (int transposed = 0; transposed < 2; transposed++)
        for (int st = 1; st <= 2; st++)
            for (int bias = 0; bias < 3; bias++) {
                mg_conv_shape s = {.IC = IC, .H = transposed ? 1 : H, .W = transposed ? 1 : W,
                                   .OC = OC, .KH = H, .KW = W, .SH = st, .SW = st,
                                   .untied = bias == 2};
                mg_error err = {""};
                CU_ASSERT_EQUAL_FATAL(transposed ? mg_deconv_shape_init(&s, "deconv", &err)
                                                 : mg_conv_shape_init(&s, "conv", &err), 0);
                CU_ASSERT_EQUAL(s.OH * s.OW, transposed ? H * W : 1);
                CU_ASSERT_EQUAL(mg_conv_work_size(&s, N), 0); // no column matrix
                direct_case c = make_case(&s, N, bias, 900 + (uint64_t)cases);
                c.L_out = (transposed ? IC : IC * H * W) + 2;
                c.L_dx = (transposed ? OC * H * W : OC) + 2;
                c.L_dw = N + 2;
                char shape[160];
                snprintf(shape, sizeof shape, "%s %dx%d stride %d %s",
                         transposed ? "deconv" : "conv", H, W, st, bias_name[bias]);
                run_groupings(&c, &s, (const int[2]){0, 2}, 2, t, shape);
                free_case(&c);
                cases++;
            }
    print_tallies(t, cases, 2);
}

/* <conv(x), y> = <x, deconv(y)> with the same weights and no bias: the deconv (IC_d -> OC_d) is
 * the adjoint of the conv (OC_d -> IC_d) of its output size, w (IC_d, OC_d, KH, KW) read as the
 * conv's (OC, IC, KH, KW). Both sides are sums of the same products w x y: with
 * T = sum |w x y| and L the longer rounding chain of the two kernels, |lhs - rhs| <=
 * 2 L eps_f T. Returns |lhs - rhs| / that bound. */
static double adjoint_case(int SH, int SW, int oph, int opw, int group, uint64_t seed)
{
    enum { N = 3, IC = 4, H = 5, W = 4, OC = 3, KH = 4, KW = 3 };
    mg_error err = {""};
    mg_conv_shape d = {.IC = IC, .H = H, .W = W, .OC = OC, .KH = KH, .KW = KW, .SH = SH, .SW = SW,
                       .PH = 1, .PW = 2, .OPH = oph, .OPW = opw, .group = group};
    CU_ASSERT_EQUAL_FATAL(mg_deconv_shape_init(&d, "deconv", &err), 0);
    mg_conv_shape c = {.IC = OC, .H = d.OH, .W = d.OW, .OC = IC, .KH = KH, .KW = KW, .SH = SH,
                       .SW = SW, .PH = 1, .PW = 2, .group = group};
    CU_ASSERT_EQUAL_FATAL(mg_conv_shape_init(&c, "conv", &err), 0);
    CU_ASSERT_EQUAL_FATAL(c.OH, H);
    CU_ASSERT_EQUAL_FATAL(c.OW, W);
    const size_t nbig = (size_t)N * OC * d.OH * d.OW, nsmall = N * IC * H * W;
    const size_t nw = mg_conv_weight_size(&d);
    const size_t wc = mg_conv_work_size(&c, N), wd = mg_conv_work_size(&d, N);
    const size_t nwork = wc > wd ? wc : wd;
    mg_real *x = guarded(nbig, 0), *y = guarded(nsmall, 0), *w = guarded(nw, 0);
    mg_real *work = guarded(nwork, 0), *cx = guarded(nsmall, 0), *dy = guarded(nbig, 0);
    fill(x, nbig, -1, 1, 7000 + seed);
    fill(y, nsmall, -1, 1, 8000 + seed);
    fill(w, nw, -1, 1, 9000 + seed);
    mg_conv_forward(cx, x, w, NULL, N, &c, work, mg_gemm_blas);
    mg_deconv_forward(dy, y, w, NULL, N, &d, work, mg_gemm_blas);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < nsmall; i++)
        lhs += (double)cx[i] * y[i];
    for (size_t i = 0; i < nbig; i++)
        rhs += (double)x[i] * dy[i];
    /* T from the direct conv's scales: sum over its outputs of |y| sum |w x|. */
    double *ref = malloc(nsmall * sizeof *ref), *sc = malloc(nsmall * sizeof *sc);
    direct_conv(ref, sc, x, w, NULL, N, &c);
    double T = 0;
    for (size_t i = 0; i < nsmall; i++)
        T += fabs((double)y[i]) * sc[i];
    const double L = fmax(OC * KH * KW + 2, IC + KH * KW + 2);
    const double tol = 2 * L * FLT_EPSILON * T;
    MG_ASSERT_CLOSE(lhs, rhs, tol);
    check_guard(cx, nsmall, "conv out");
    check_guard(dy, nbig, "deconv out");
    check_guard(work, nwork, "work");
    free(x), free(y), free(w), free(work), free(cx), free(dy), free(ref), free(sc);
    return fabs(lhs - rhs) / tol;
}

/* Strides 2 and 3 in each direction, every output padding, one GEMM or groups of 2 images. */
static void test_deconv_adjoint(void)
{
    double worst = 0;
    int cases = 0;
    for (int SH = 2; SH <= 3; SH++)
        for (int SW = 2; SW <= 3; SW++)
            for (int oph = 0; oph < SH; oph++)
                for (int opw = 0; opw < SW; opw++)
                    for (int group = 0; group <= 2; group += 2, cases++)
                        worst = fmax(worst, adjoint_case(SH, SW, oph, opw, group,
                                                         (uint64_t)cases));
    printf("\n    %d geometries: max |<conv x, y> - <x, deconv y>| / tol %.3g "
           "(tol = 2 L eps sum |w x y|)", cases, worst);
}

/* No images: forward writes nothing and never touches work (NULL, as mg_conv_work_size is 0);
 * backward with add 0 writes zero gradients, with add 1 leaves them alone. */
static void test_no_images(void)
{
    mg_error err = {""};
    for (int t = 0; t < 2; t++) {
        mg_conv_shape s = {.IC = 2, .H = 5, .W = 4, .OC = 3, .KH = 3, .KW = 2, .SH = 2, .SW = 1,
                           .PH = 1, .PW = 0, .OPH = t, .untied = t};
        CU_ASSERT_EQUAL_FATAL(t ? mg_deconv_shape_init(&s, "d", &err)
                                : mg_conv_shape_init(&s, "c", &err), 0);
        CU_ASSERT_EQUAL(mg_conv_work_size(&s, 0), 0);
        const size_t nw = mg_conv_weight_size(&s), nb = mg_conv_bias_size(&s);
        mg_real *w = guarded(nw, 1), *b = guarded(nb, 1), *dw = guarded(nw, NAN);
        mg_real *db = guarded(nb, NAN), y = 7, x = 7, dx = 7, dy = 7;
        if (t) {
            mg_deconv_forward(&y, &x, w, b, 0, &s, NULL, mg_gemm_blas);
            mg_deconv_backward(&dx, dw, db, &dy, &x, w, 0, &s, 0, NULL, mg_gemm_blas);
        } else {
            mg_conv_forward(&y, &x, w, b, 0, &s, NULL, mg_gemm_blas);
            mg_conv_backward(&dx, dw, db, &dy, &x, w, 0, &s, 0, NULL, mg_gemm_blas);
        }
        CU_ASSERT(y == 7 && dx == 7);
        for (size_t i = 0; i < nw; i++)
            CU_ASSERT_EQUAL(dw[i], 0);
        for (size_t i = 0; i < nb; i++)
            CU_ASSERT_EQUAL(db[i], 0);
        for (size_t i = 0; i < nw; i++)
            dw[i] = 5;
        if (t)
            mg_deconv_backward(&dx, dw, db, &dy, &x, w, 0, &s, 1, NULL, mg_gemm_blas);
        else
            mg_conv_backward(&dx, dw, db, &dy, &x, w, 0, &s, 1, NULL, mg_gemm_blas);
        for (size_t i = 0; i < nw; i++)
            CU_ASSERT_EQUAL(dw[i], 5);
        check_guard(dw, nw, "dw");
        check_guard(db, nb, "db");
        free(w), free(b), free(dw), free(db);
    }
}

/* ---- channel maxout, max pooling by hand ---- */

static void test_channel_maxout_by_hand(void)
{
    /* N 2, U 2 units of P 3 pieces, HW 2: pre (2, 6, 2). */
    const mg_real pre[24] = {
        1, 5, 3, 5, 2, 0,      // image 0, unit 0: pieces (1, 5), (3, 5), (2, 0)
        -1, -2, -3, -1, -2, 7, // unit 1: pieces (-1, -2), (-3, -1), (-2, 7)
        4, 4, 4, 4, 4, 4,      // image 1, unit 0: all tied
        0, 1, 2, 3, 9, -9,     // unit 1
    };
    const mg_real want[8] = {3, 5, -1, 7, 4, 4, 9, 3};
    const int32_t want_arg[8] = {1, 0, 0, 2, 0, 0, 2, 1}; // ties keep the lowest piece
    mg_real out[8], dpre[24];
    int32_t arg[8];
    mg_channel_maxout_forward(out, arg, pre, 2, 2, 3, 2);
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(out[i], want[i]);
        CU_ASSERT_EQUAL(arg[i], want_arg[i]);
    }
    const mg_real dout[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < 24; i++)
        dpre[i] = NAN; // written everywhere
    mg_channel_maxout_backward(dpre, dout, arg, 2, 2, 3, 2);
    const mg_real want_d[24] = {0, 2, 1, 0, 0, 0, 3, 0, 0, 0, 0, 4,
                                5, 6, 0, 0, 0, 0, 0, 0, 0, 8, 7, 0};
    for (int i = 0; i < 24; i++)
        CU_ASSERT_EQUAL(dpre[i], want_d[i]);
}

/* Pool 4x4 at stride 2 (overlapping) on a 5 x 7 plane: windows rows [0, 4), [2, 5) (clipped),
 * columns [0, 4), [2, 6), [4, 7) (clipped); and pool 3x2 stride 3x3 with a one-row last window
 * and a window that would start past the input dropped. */
static void test_maxpool_by_hand(void)
{
    mg_error err = {""};
    const mg_real x[35] = {
        0, 1, 2,  3, 4, 5,  6,  //
        7, 8, 9,  1, 2, 3,  4,  //
        5, 6, 50, 7, 8, 40, 9,  // the 50 wins four windows, the 40 two
        1, 2, 3,  4, 5, 6,  7,  //
        8, 9, 1,  2, 3, 4,  60, // the 60 is only in the clipped corner window
    };
    mg_pool_shape s = {.C = 1, .H = 5, .W = 7, .KH = 4, .KW = 4, .SH = 2, .SW = 2};
    CU_ASSERT_EQUAL_FATAL(mg_pool_shape_init(&s, "pool", &err), 0);
    CU_ASSERT_EQUAL_FATAL(s.OH, 2);
    CU_ASSERT_EQUAL_FATAL(s.OW, 3);
    mg_real out[6], dx[35];
    int32_t arg[6];
    mg_maxpool_forward(out, arg, x, 1, &s);
    const mg_real want[6] = {50, 50, 40, 50, 50, 60};
    const int32_t want_arg[6] = {16, 16, 19, 16, 16, 34};
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(out[i], want[i]);
        CU_ASSERT_EQUAL(arg[i], want_arg[i]);
    }
    const mg_real dout[6] = {1, 2, 4, 8, 16, 32};
    for (int i = 0; i < 35; i++)
        dx[i] = NAN;
    mg_maxpool_backward(dx, dout, arg, 1, &s);
    for (int i = 0; i < 35; i++)
        CU_ASSERT_EQUAL(dx[i], i == 16 ? 1 + 2 + 8 + 16 : i == 19 ? 4 : i == 34 ? 32 : 0);

    /* Pool 2x2 at stride 1 on 1..9: every winner is its window's last value, so a window one
     * row or column short would lose it. */
    mg_pool_shape u = {.C = 1, .H = 3, .W = 3, .KH = 2, .KW = 2, .SH = 1, .SW = 1};
    CU_ASSERT_EQUAL_FATAL(mg_pool_shape_init(&u, "pool", &err), 0);
    const mg_real nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    mg_maxpool_forward(out, arg, nine, 1, &u);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(arg[i], 4 + i / 2 * 3 + i % 2);
        CU_ASSERT_EQUAL(out[i], 5 + i / 2 * 3 + i % 2);
    }

    /* Ties keep the first in row-major order; two planes (N 1, C 2). */
    mg_pool_shape t = {.C = 2, .H = 7, .W = 5, .KH = 3, .KW = 2, .SH = 3, .SW = 3};
    CU_ASSERT_EQUAL_FATAL(mg_pool_shape_init(&t, "pool", &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.OH, 3); // rows [0, 3), [3, 6), [6, 7)
    CU_ASSERT_EQUAL_FATAL(t.OW, 2); // columns [0, 2), [3, 5)
    mg_real y[70], o[12];
    int32_t a[12];
    for (int i = 0; i < 70; i++)
        y[i] = 1; // all tied
    y[35 + 1 * 5 + 4] = 2; // plane 1, row 1, column 4
    y[35 + 6 * 5 + 2] = 9; // plane 1, row 6, column 2: in no window (columns 2 are skipped)
    mg_maxpool_forward(o, a, y, 1, &t);
    const int32_t want_a[12] = {0, 3, 15, 18, 30, 33, 0, 9, 15, 18, 30, 33};
    for (int i = 0; i < 12; i++) {
        CU_ASSERT_EQUAL(a[i], want_a[i]);
        CU_ASSERT_EQUAL(o[i], i == 7 ? 2 : 1);
    }
}

/* ---- batch normalisation ---- */

/* Flat (N 4, C 2) with eps 0, chosen so xhat is +-1 exactly: channel 0 is -1, 1, -1, 1 (mean 0,
 * var 1), channel 1 is 0, 0, 3, 3 (mean 1.5, var 2.25). */
static void test_batchnorm_by_hand(void)
{
    const mg_real x[8] = {-1, 0, 1, 0, -1, 3, 1, 3}, gamma[2] = {2, -1}, beta[2] = {0.5f, 0.25f};
    double sums[4], stats[4];
    mg_batchnorm_sums(sums, x, 4, 2, 1);
    CU_ASSERT(sums[0] == 0 && sums[1] == 6 && sums[2] == 4 && sums[3] == 18);
    mg_batchnorm_moments(stats, sums, 4, 0, 2);
    CU_ASSERT(stats[0] == 0 && stats[1] == 1.5 && stats[2] == 1 && stats[3] == 1 / 1.5);
    mg_real out[8];
    mg_batchnorm_forward(out, x, stats, gamma, beta, 4, 2, 1);
    /* Channel 1's xhat is (x - 1.5) (1 / 1.5) = +-(1 - 2^-53) in double: no value here sits
     * where that could change its float. */
    const mg_real want[8] = {-1.5f, 1.25f, 2.5f, 1.25f, -1.5f, -0.75f, 2.5f, -0.75f};
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(out[i], want[i]);

    /* Backward: dx = gamma invstd (dy - mean dy - xhat mean(dy xhat)). Channel 0, dy = 1, 0, 0,
     * 0: means 1/4 and -1/4, dx = 2 (1 - 1/4 - 1/4), 2 (0 - 1/4 + 1/4), 2 (-1/4 - 1/4), 0 =
     * 1, 0, -1, 0. Channel 1, dy = 3 everywhere: the shift of all values, dx = 0. */
    const mg_real dy[8] = {1, 3, 0, 3, 0, 3, 0, 3};
    mg_real dgamma[2] = {NAN, NAN}, dbeta[2] = {NAN, NAN}, dx[8];
    double bsums[4];
    mg_batchnorm_backward_sums(bsums, dgamma, dbeta, dy, x, stats, 4, 2, 1, 0);
    CU_ASSERT(bsums[0] == 1 && bsums[1] == 12 && bsums[2] == -1 && bsums[3] == 0);
    CU_ASSERT(dbeta[0] == 1 && dbeta[1] == 12 && dgamma[0] == -1 && dgamma[1] == 0);
    mg_batchnorm_backward(dx, dy, x, stats, gamma, bsums, 4, 4, 2, 1);
    const mg_real want_dx[8] = {1, 0, 0, 0, -1, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(dx[i], want_dx[i]);
    mg_batchnorm_backward_sums(bsums, dgamma, dbeta, dy, x, stats, 4, 2, 1, 1); // add 1: twice
    CU_ASSERT(dbeta[0] == 2 && dbeta[1] == 24 && dgamma[0] == -2 && dgamma[1] == 0);

    /* Spatial (N 2, C 2, HW 3), the same numbers per channel spread over images and positions:
     * channel 0 holds -1, 1, -1 | 1, -1, 1, channel 1 holds 0, 0, 3 | 3, 3, 0. */
    const mg_real xs[12] = {-1, 1, -1, 0, 0, 3, 1, -1, 1, 3, 3, 0};
    double ssum[4], sstat[4];
    mg_batchnorm_sums(ssum, xs, 2, 2, 3);
    CU_ASSERT(ssum[0] == 0 && ssum[1] == 9 && ssum[2] == 6 && ssum[3] == 27);
    mg_batchnorm_moments(sstat, ssum, 6, 0, 2);
    CU_ASSERT(sstat[0] == 0 && sstat[1] == 1.5 && sstat[2] == 1 && sstat[3] == 1 / 1.5);
    mg_real outs[12];
    mg_batchnorm_forward(outs, xs, sstat, gamma, beta, 2, 2, 3);
    const mg_real want_s[12] = {-1.5f, 2.5f, -1.5f, 1.25f,  1.25f,  -0.75f,
                                2.5f,  -1.5f, 2.5f, -0.75f, -0.75f, 1.25f};
    for (int i = 0; i < 12; i++)
        CU_ASSERT_EQUAL(outs[i], want_s[i]);
    /* Backward over M = 6 values per channel: channel 0, dy 1 at its first value, means 1/6 and
     * -1/6, dx = 2 (dy - 1/6 + xhat / 6) = 4/3, 0, -2/3 | 0, -2/3, 0; channel 1, dy = 3
     * everywhere, dx = 0. Computed in double and rounded once: within half a float ulp. */
    const mg_real dys[12] = {1, 0, 0, 3, 3, 3, 0, 0, 0, 3, 3, 3};
    const double want_dxs[12] = {4 / 3.0, 0, -2 / 3.0, 0, 0, 0, 0, -2 / 3.0, 0, 0, 0, 0};
    mg_real dxs[12];
    mg_batchnorm_backward_sums(bsums, dgamma, dbeta, dys, xs, sstat, 2, 2, 3, 0);
    CU_ASSERT(bsums[0] == 1 && bsums[1] == 18 && bsums[2] == -1 && bsums[3] == 0);
    mg_batchnorm_backward(dxs, dys, xs, sstat, gamma, bsums, 6, 2, 2, 3);
    for (int i = 0; i < 12; i++)
        MG_ASSERT_CLOSE(dxs[i], want_dxs[i], FLT_EPSILON * fabs(want_dxs[i]));
}

/* The phases summed over two "ranks" (the halves of a batch) give the whole batch's results.
 * Both ways compute the same double sums up to reassociation, relative error about
 * n eps_d <= 1e-13 here, and round once to float, so results agree to one float ulp
 * (FLT_EPSILON |value|) plus that double error, bounded by 1e-12 per unit of scale. dgamma and
 * dbeta are rounded once more on the way (the first half's float, then the sum):
 * FLT_EPSILON (|half| + |whole|). Flat and spatial, with an odd split and a shifted mean. */
static void check_split(int N, int C, int HW, int split)
{
    const size_t n = (size_t)N * C * HW, n1 = (size_t)split * C * HW;
    mg_real *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
    mg_real *out = malloc(n * sizeof *out), *out2 = malloc(n * sizeof *out2);
    mg_real *dx = malloc(n * sizeof *dx), *dx2 = malloc(n * sizeof *dx2);
    mg_real gamma[8], beta[8], dg[8], db[8], dg2[8], db2[8];
    double sums[16], s1[16], s2[16], stats[16], stats2[16], b[16], b1[16], b2[16];
    fill(x, n, 2, 5, 11); // mean 3.5: the shift matters
    fill(dy, n, -1, 1, 12);
    fill(gamma, (size_t)C, 0.5, 1.5, 13);
    fill(beta, (size_t)C, -1, 1, 14);
    const double M = (double)N * HW, eps = 1e-5;
    /* whole batch */
    mg_batchnorm_sums(sums, x, N, C, HW);
    mg_batchnorm_moments(stats, sums, M, eps, C);
    mg_batchnorm_forward(out, x, stats, gamma, beta, N, C, HW);
    mg_batchnorm_backward_sums(b, dg, db, dy, x, stats, N, C, HW, 0);
    mg_batchnorm_backward(dx, dy, x, stats, gamma, b, M, N, C, HW);
    /* two ranks: rows [0, split) and [split, N) */
    mg_batchnorm_sums(s1, x, split, C, HW);
    mg_batchnorm_sums(s2, x + n1, N - split, C, HW);
    for (int i = 0; i < 2 * C; i++)
        s1[i] += s2[i]; // the allreduce
    mg_batchnorm_moments(stats2, s1, M, eps, C);
    mg_batchnorm_forward(out2, x, stats2, gamma, beta, split, C, HW);
    mg_batchnorm_forward(out2 + n1, x + n1, stats2, gamma, beta, N - split, C, HW);
    mg_batchnorm_backward_sums(b1, dg2, db2, dy, x, stats2, split, C, HW, 0);
    mg_real dg_half[8], db_half[8];
    memcpy(dg_half, dg2, sizeof dg_half);
    memcpy(db_half, db2, sizeof db_half);
    mg_batchnorm_backward_sums(b2, dg2, db2, dy + n1, x + n1, stats2, N - split, C, HW, 1);
    for (int i = 0; i < 2 * C; i++)
        b1[i] += b2[i]; // the allreduce
    mg_batchnorm_backward(dx2, dy, x, stats2, gamma, b1, M, split, C, HW);
    mg_batchnorm_backward(dx2 + n1, dy + n1, x + n1, stats2, gamma, b1, M, N - split, C, HW);

    double worst[3] = {0, 0, 0};
    for (int c = 0; c < 2 * C; c++) {
        MG_ASSERT_CLOSE(stats2[c], stats[c], 1e-12 * fabs(stats[c]));
        worst[0] = fmax(worst[0], fabs(stats2[c] - stats[c]) / fabs(stats[c]));
    }
    for (size_t i = 0; i < n; i++) {
        const int c = (int)(i / HW % C);
        const double scale_o = fabs(gamma[c]) * 3 + fabs(beta[c]); // |xhat| <= sqrt(3) here
        MG_ASSERT_CLOSE(out2[i], out[i], FLT_EPSILON * fabs(out[i]) + 1e-12 * scale_o);
        const double scale_d = fabs(gamma[c]) * stats[C + c] * 4; // |dy| + |mean|s <= 4
        MG_ASSERT_CLOSE(dx2[i], dx[i], FLT_EPSILON * fabs(dx[i]) + 1e-12 * scale_d);
        worst[1] = fmax(worst[1], fabs(out2[i] - out[i]) / fmax(fabs(out[i]), FLT_MIN));
        worst[2] = fmax(worst[2], fabs(dx2[i] - dx[i]) / fmax(fabs(dx[i]), FLT_MIN));
    }
    for (int c = 0; c < C; c++) {
        MG_ASSERT_CLOSE(dg2[c], dg[c], FLT_EPSILON * (fabs(dg_half[c]) + fabs(dg[c])));
        MG_ASSERT_CLOSE(db2[c], db[c], FLT_EPSILON * (fabs(db_half[c]) + fabs(db[c])));
    }
    printf("\n    N %d (split %d + %d), C %d, HW %d: stats rel. diff %.3g, out %.3g, dinp %.3g "
           "(in units of |value|)", N, split, N - split, C, HW, worst[0], worst[1], worst[2]);
    free(x), free(dy), free(out), free(out2), free(dx), free(dx2);
}

static void test_batchnorm_split_batch(void)
{
    check_split(7, 5, 1, 3);   // flat
    check_split(6, 3, 13, 2);  // spatial, HW not a multiple of 8
    check_split(5, 2, 64, 4);  // spatial, HW a multiple of 8
}

/* PyTorch's running averages (momentum 0.1, unbiased variance) and the inference forward. */
static void test_batchnorm_running(void)
{
    /* One channel: 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3). */
    const mg_real x[4] = {1, 2, 3, 4};
    mg_real rm = 0, rv = 1;
    double sums[2];
    mg_batchnorm_sums(sums, x, 4, 1, 1);
    mg_batchnorm_running(&rm, &rv, sums, 4, 0.1, 1);
    MG_ASSERT_CLOSE(rm, 0.25, FLT_EPSILON * 0.25);
    MG_ASSERT_CLOSE(rv, 0.9 + 0.1 * 5 / 3.0, FLT_EPSILON * 1.1);
    mg_batchnorm_running(&rm, &rv, sums, 4, 0.1, 1);
    MG_ASSERT_CLOSE(rm, 0.9 * 0.25 + 0.25, 2 * FLT_EPSILON * 0.5);
    MG_ASSERT_CLOSE(rv, 0.9 * (0.9 + 0.5 / 3) + 0.5 / 3, 2 * FLT_EPSILON * 1.1);

    /* Inference: (x - rm) / sqrt(rv + eps) gamma + beta, whatever the batch. */
    const mg_real run_mean[2] = {0.5f, -1}, run_var[2] = {4, 0.25f};
    const mg_real gamma[2] = {3, 1}, beta[2] = {0, 0.5f};
    double st[4];
    mg_batchnorm_eval_stats(st, run_mean, run_var, 0, 2);
    CU_ASSERT(st[0] == 0.5 && st[1] == -1 && st[2] == 0.5 && st[3] == 2);
    const mg_real xs[6] = {2.5f, 0, -0.5f, -1, 0.5f, 2}; // (N 1, C 2, HW 3)
    mg_real out[6];
    mg_batchnorm_forward(out, xs, st, gamma, beta, 1, 2, 3);
    const mg_real want[6] = {3, -0.75f, -1.5f, 0.5f, 3.5f, 6.5f};
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(out[i], want[i]);
    /* With eps: 1 / sqrt(4 + 1e-5). */
    mg_batchnorm_eval_stats(st, run_mean, run_var, 1e-5, 2);
    CU_ASSERT_EQUAL(st[2], 1 / sqrt(4 + 1e-5));
}

static const mg_test tests[] = {
    {"out_sizes", test_out_sizes},
    {"cifar10_shapes", test_cifar10_shapes},
    {"shape_errors", test_shape_errors},
    {"im2col_by_hand", test_im2col_by_hand},
    {"im2col_adjoint", test_im2col_adjoint},
    {"im2col_paths", test_im2col_paths},
    {"im2col_images", test_im2col_images},
    {"conv_vs_direct", test_conv_vs_direct},
    {"deconv_vs_direct", test_deconv_vs_direct},
    {"winograd_vs_direct", test_winograd_vs_direct},
    {"winograd_gemm", test_winograd_gemm},
    {"winograd_cache", test_winograd_cache},
    {"dense_shapes_vs_direct", test_dense_shapes_vs_direct},
    {"deconv_adjoint", test_deconv_adjoint},
    {"no_images", test_no_images},
    {"channel_maxout_by_hand", test_channel_maxout_by_hand},
    {"maxpool_by_hand", test_maxpool_by_hand},
    {"batchnorm_by_hand", test_batchnorm_by_hand},
    {"batchnorm_split_batch", test_batchnorm_split_batch},
    {"batchnorm_running", test_batchnorm_running},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("conv", tests, argc, argv);
}
