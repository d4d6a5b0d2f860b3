/* Pictures: nearest neighbours against a brute-force double loop (BLAS and plain-C GEMM), and PNG
 * grids read back with libpng pixel by pixel, with every error message and what a failed write
 * leaves behind. */
#include "mpigan/image.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

#ifdef MG_REAL_DOUBLE
#define REAL_UNIT_ROUNDOFF (DBL_EPSILON / 2)
#else
#define REAL_UNIT_ROUNDOFF (FLT_EPSILON / 2)
#endif

static void fill(mg_real *x, size_t n, double lo, double hi, uint64_t row)
{
    const mg_rng_key key = {.seed = 20140610, .stream = 4242, .step = 0};
    mg_rng_uniform(x, n, lo, hi, &key, row);
}

/* Values k/16, k = 0..16: every product is a multiple of 2^-8 and every sum of up to 784 of them
 * stays below 2^10 with 2^-8 resolution, i.e. within 18 bits, so a float GEMM computes each dot
 * product exactly in any order. Distances are then exact and ties are real ties. */
static void fill_dyadic(mg_real *x, size_t n, uint64_t row)
{
    fill(x, n, 0, 17, row);
    for (size_t i = 0; i < n; i++)
        x[i] = fmin(floor(x[i]), 16) / 16;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The message must be exactly `want`. */
#define ASSERT_MSG(rc, err, ...)                                                               \
    do {                                                                                       \
        char want_[MG_ERROR_LEN + 64];                                                         \
        snprintf(want_, sizeof want_, __VA_ARGS__);                                            \
        CU_ASSERT_EQUAL((rc), -1);                                                             \
        if (strcmp((err).msg, want_) != 0)                                                     \
            fprintf(stderr, "\n  %s:%d:\n    got:  %s\n    want: %s\n", __FILE__, __LINE__,    \
                    (err).msg, want_);                                                         \
        CU_ASSERT_STRING_EQUAL((err).msg, want_);                                              \
    } while (0)

/* ---- nearest ---- */

static double dist2(const mg_real *a, const mg_real *b, size_t dim)
{
    double s = 0;
    for (size_t k = 0; k < dim; k++) {
        const double d = (double)a[k] - b[k];
        s += d * d;
    }
    return s;
}

/* The obvious loop: differences squared in double, strict < so ties go to the lowest index. */
static int brute_nearest(const mg_real *q, const mg_real *data, int n, size_t dim, int *ties)
{
    int best = 0;
    double bd = INFINITY;
    for (int j = 0; j < n; j++) {
        const double d = dist2(q, data + (size_t)j * dim, dim);
        if (d < bd) {
            bd = d;
            best = j;
            *ties = 0;
        } else if (d == bd) {
            (*ties)++;
        }
    }
    return best;
}

static const struct {
    int nq, n;
    size_t dim;
} shapes[] = {
    {1, 1, 1}, {5, 1023, 3}, {7, 1024, 5}, {7, 1025, 5}, {4, 3000, 17}, {9, 2500, 784},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof *shapes))

/* On dyadic data every distance is exact, so both GEMMs must give the brute-force index exactly,
 * including every tie (dim 3 and 5 over ~1000 rows of 17 levels make many). */
static void test_nearest_exact(void)
{
    mg_gemm_fn fns[2] = {mg_gemm_blas, mg_gemm_ref};
    const char *names[2] = {"blas", "ref"};
    for (int s = 0; s < N_SHAPES; s++) {
        const int nq = shapes[s].nq, n = shapes[s].n;
        const size_t dim = shapes[s].dim;
        mg_real *q = malloc(nq * dim * sizeof *q), *data = malloc(n * dim * sizeof *data);
        int *want = malloc(nq * sizeof *want), *got = malloc(nq * sizeof *got);
        fill_dyadic(q, nq * dim, 100 + s);
        fill_dyadic(data, n * dim, 200 + s);
        int tied = 0;
        for (int i = 0; i < nq; i++) {
            int ties = 0;
            want[i] = brute_nearest(q + i * dim, data, n, dim, &ties);
            tied += ties > 0;
        }
        for (int f = 0; f < 2; f++) {
            mg_error err = {""};
            CU_ASSERT_EQUAL_FATAL(mg_nearest(got, q, nq, data, n, dim, fns[f], &err), 0);
            int bad = 0;
            for (int i = 0; i < nq; i++)
                bad += got[i] != want[i];
            if (bad)
                fprintf(stderr, "\n  %s (%d, %d, %zu): %d of %d indices differ", names[f], nq, n,
                        dim, bad, nq);
            CU_ASSERT_EQUAL(bad, 0);
        }
        printf("\n    nq %d, n %d, dim %zu: %d of %d queries have tied nearest rows", nq, n, dim,
               tied, nq);
        free(q);
        free(data);
        free(want);
        free(got);
    }
}

/* On continuous data a float GEMM may order two rows differently from exact arithmetic only when
 * their distances are closer than its rounding error. The computed d2 = ||q||^2 - 2 q.d +
 * ||d||^2 has norms in double and the dot product off by at most gamma_dim sum_k |q_k d_k|
 * (gamma_K = K u / (1 - K u), u the unit roundoff of mg_real), so with e(j) = 2 gamma_dim
 * sum_k |q_k d_kj| the chosen row j* must satisfy d2(j*) <= d2(best) + e(j*) + e(best). */
static void test_nearest_random(void)
{
    mg_gemm_fn fns[2] = {mg_gemm_blas, mg_gemm_ref};
    const char *names[2] = {"blas", "ref"};
    for (int s = 0; s < N_SHAPES; s++) {
        const int nq = shapes[s].nq, n = shapes[s].n;
        const size_t dim = shapes[s].dim;
        const double u = REAL_UNIT_ROUNDOFF, gamma = dim * u / (1 - dim * u);
        mg_real *q = malloc(nq * dim * sizeof *q), *data = malloc(n * dim * sizeof *data);
        int *got[2] = {malloc(nq * sizeof(int)), malloc(nq * sizeof(int))};
        fill(q, nq * dim, 0, 1, 300 + s);
        fill(data, n * dim, 0, 1, 400 + s);
        for (int f = 0; f < 2; f++) {
            mg_error err = {""};
            CU_ASSERT_EQUAL_FATAL(mg_nearest(got[f], q, nq, data, n, dim, fns[f], &err), 0);
        }
        int exact[2] = {0, 0}, agree = 0;
        double worst[2] = {0, 0};
        for (int i = 0; i < nq; i++) {
            const mg_real *qi = q + i * dim;
            int ties = 0;
            const int jb = brute_nearest(qi, data, n, dim, &ties);
            agree += got[0][i] == got[1][i];
            for (int f = 0; f < 2; f++) {
                const int j = got[f][i];
                CU_ASSERT_FATAL(j >= 0 && j < n);
                exact[f] += j == jb;
                double e = 0;
                for (int t = 0; t < 2; t++) {
                    const mg_real *d = data + (size_t)(t ? j : jb) * dim;
                    double a = 0;
                    for (size_t k = 0; k < dim; k++)
                        a += fabs((double)qi[k] * d[k]);
                    e += 2 * gamma * a;
                }
                const double gap = dist2(qi, data + (size_t)j * dim, dim) -
                                   dist2(qi, data + (size_t)jb * dim, dim);
                if (!(gap <= e))
                    fprintf(stderr, "\n  %s query %d: row %d is %.6g farther than row %d (bound "
                            "%.3g)", names[f], i, j, gap, jb, e);
                CU_ASSERT(gap <= e);
                worst[f] = fmax(worst[f], gap / e);
            }
        }
        printf("\n    nq %d, n %d, dim %zu: exact index blas %d/%d, ref %d/%d, blas == ref %d/%d; "
               "max gap/bound %.3g, %.3g (bound 2 gamma_dim sum|q d| per row, u = %.3g)",
               nq, n, dim, exact[0], nq, exact[1], nq, agree, nq, worst[0], worst[1], u);
        free(q);
        free(data);
        free(got[0]);
        free(got[1]);
    }
}

/* Queries that are copies of data rows, at block edges (1023, 1024) and the last row, come back
 * at distance 0 from their own row. With exact (dyadic) data, rows planted twice more later on
 * (in this block and the next) go to their first copy. */
static void test_nearest_duplicates(void)
{
    enum { N = 3000, NQ = 5 };
    const size_t dim = 784;
    const int planted[NQ] = {0, 700, 1023, 1024, N - 1};
    mg_real *data = malloc(N * dim * sizeof *data), *q = malloc(NQ * dim * sizeof *q);
    int got[NQ];
    mg_gemm_fn fns[2] = {mg_gemm_blas, mg_gemm_ref};
    for (int dyadic = 0; dyadic < 2; dyadic++) {
        if (dyadic)
            fill_dyadic(data, N * dim, 501);
        else
            fill(data, N * dim, 0, 1, 500);
        for (int i = 0; i < NQ; i++)
            memcpy(q + i * dim, data + planted[i] * dim, dim * sizeof *q);
        if (dyadic) { // row 700 again at 900 (same block) and 2000 (a later block)
            memcpy(data + 900 * dim, data + 700 * dim, dim * sizeof *data);
            memcpy(data + 2000 * dim, data + 700 * dim, dim * sizeof *data);
        }
        for (int f = 0; f < 2; f++) {
            mg_error err = {""};
            CU_ASSERT_EQUAL_FATAL(mg_nearest(got, q, NQ, data, N, dim, fns[f], &err), 0);
            for (int i = 0; i < NQ; i++) {
                if (got[i] != planted[i])
                    fprintf(stderr, "\n  %s data, gemm %d: query %d found row %d, planted %d",
                            dyadic ? "dyadic" : "uniform", f, i, got[i], planted[i]);
                CU_ASSERT_EQUAL(got[i], planted[i]);
                CU_ASSERT_EQUAL(dist2(q + i * dim, data + got[i] * dim, dim), 0);
            }
        }
    }
    free(data);
    free(q);
}

static void test_nearest_errors(void)
{
    mg_real q[4] = {0}, data[8] = {0};
    int idx[2];
    mg_error err = {""};
    ASSERT_MSG(mg_nearest(idx, q, 0, data, 2, 2, mg_gemm_blas, &err), err,
               "nearest: nothing to compare (0 queries, 2 examples)");
    ASSERT_MSG(mg_nearest(idx, q, 2, data, 0, 2, mg_gemm_blas, &err), err,
               "nearest: nothing to compare (2 queries, 0 examples)");
    ASSERT_MSG(mg_nearest(idx, q, 2, data, -1, 2, mg_gemm_blas, &err), err,
               "nearest: nothing to compare (2 queries, -1 examples)");
    ASSERT_MSG(mg_nearest(idx, q, 2, data, 2, 0, mg_gemm_blas, &err), err,
               "nearest: dimension 0 out of range (1 to 2147483647)");
    ASSERT_MSG(mg_nearest(idx, q, 2, data, 2, (size_t)1 << 31, mg_gemm_blas, &err), err,
               "nearest: dimension 2147483648 out of range (1 to 2147483647)");
}

/* ---- PNG grids ---- */

typedef struct {
    png_uint_32 width, height;
    int color_type, bit_depth, channels;
    unsigned char *px; // (height, width, channels)
} picture;

/* libpng's reading side, independent of the writer: the file as stored, no transformations. */
static int read_png(const char *path, picture *pic)
{
    memset(pic, 0, sizeof *pic);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    pic->width = png_get_image_width(png, info);
    pic->height = png_get_image_height(png, info);
    pic->color_type = png_get_color_type(png, info);
    pic->bit_depth = png_get_bit_depth(png, info);
    pic->channels = png_get_channels(png, info);
    const size_t rowbytes = png_get_rowbytes(png, info);
    png_bytepp rows = png_get_rows(png, info);
    pic->px = malloc(rowbytes * pic->height);
    for (png_uint_32 y = 0; y < pic->height; y++)
        memcpy(pic->px + y * rowbytes, rows[y], rowbytes);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return 0;
}

/* The expected picture, painted from the layout documented in src/image.c: border everywhere,
 * yellow separator, then each cell at (1 + r (H + 1), 1 + c (W + 1)), the neighbour at column
 * 1 + cols (W + 1) + 3 + 1. */
typedef struct {
    int width, height, channels;
    unsigned char *px;
} expected;

static void paint(expected *e, int row, int col, const mg_real *img, int C, int H, int W)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int ch = 0; ch < e->channels; ch++) {
                const double v = img[(size_t)(C == 3 ? ch : 0) * H * W + y * W + x];
                const double c = v < 0 ? 0 : v > 1 ? 1 : v;
                e->px[((size_t)(row + y) * e->width + col + x) * e->channels + ch] =
                    (unsigned char)lround(c * 255);
            }
}

static expected paint_grid(const mg_real *images, int n, int cols, int C, int H, int W,
                           const mg_real *nb)
{
    const int rows = (n + cols - 1) / cols;
    expected e = {.width = 1 + cols * (W + 1) + (nb ? 3 + W + 2 : 0),
                  .height = 1 + rows * (H + 1), .channels = C == 3 || nb ? 3 : 1};
    const size_t bytes = (size_t)e.width * e.height * e.channels;
    e.px = malloc(bytes);
    memset(e.px, 128, bytes);
    const int sep = 1 + cols * (W + 1);
    if (nb)
        for (int y = 0; y < e.height; y++)
            for (int x = sep; x < sep + 3; x++) {
                unsigned char *p = e.px + ((size_t)y * e.width + x) * 3;
                p[0] = 255, p[1] = 220, p[2] = 0;
            }
    for (int i = 0; i < n; i++)
        paint(&e, 1 + i / cols * (H + 1), 1 + i % cols * (W + 1),
              images + (size_t)i * C * H * W, C, H, W);
    if (nb)
        for (int r = 0; r < rows; r++)
            paint(&e, 1 + r * (H + 1), sep + 4, nb + (size_t)r * C * H * W, C, H, W);
    return e;
}

/* Every pixel of the file equals the expected one; prints the first difference. */
static void assert_picture(const char *path, const expected *e, int color_type)
{
    picture pic;
    CU_ASSERT_EQUAL_FATAL(read_png(path, &pic), 0);
    CU_ASSERT_EQUAL(pic.width, (png_uint_32)e->width);
    CU_ASSERT_EQUAL(pic.height, (png_uint_32)e->height);
    CU_ASSERT_EQUAL(pic.color_type, color_type);
    CU_ASSERT_EQUAL(pic.bit_depth, 8);
    CU_ASSERT_EQUAL(pic.channels, e->channels);
    if (pic.width == (png_uint_32)e->width && pic.height == (png_uint_32)e->height &&
        pic.channels == e->channels) {
        size_t bad = 0;
        for (size_t k = 0; k < (size_t)e->width * e->height * e->channels; k++) {
            if (pic.px[k] != e->px[k] && bad++ == 0) {
                const size_t p = k / e->channels;
                fprintf(stderr, "\n  %s: pixel (y %zu, x %zu) channel %zu is %d, want %d", path,
                        p / e->width, p % e->width, k % e->channels, pic.px[k], e->px[k]);
            }
        }
        if (bad)
            fprintf(stderr, "\n  %zu values differ", bad);
        CU_ASSERT_EQUAL(bad, 0);
    }
    printf("\n    %s: %u x %u, colour type %d", strrchr(path, '/') + 1, pic.width, pic.height,
           pic.color_type);
    free(pic.px);
}

/* Values in [0, 1] drawn as round(v * 255): the scale of pixels as the files give them. */
static const mg_pixel_scale UNIT = {.lo = 0, .hi = 1};

/* Three 2 x 3 grey images in 2 columns; image i pixel (y, x) is byte 10 (i + 1) + 3 y + x. The
 * whole 9 x 7 picture is written out by hand, so it checks the layout formula itself. */
static void make_tiny(mg_real *images, mg_real *nb)
{
    for (int i = 0; i < 3; i++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                images[i * 6 + y * 3 + x] = (mg_real)((10 * (i + 1) + 3 * y + x) / 255.0);
    for (int r = 0; r < 2; r++) // neighbour of row r: byte 200 + 10 r + 3 y + x
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                nb[r * 6 + y * 3 + x] = (mg_real)((200 + 10 * r + 3 * y + x) / 255.0);
}

static void test_grid_grey_by_hand(void)
{
    mg_real images[18], nb[12];
    make_tiny(images, nb);
    const char *path = mg_test_path("tiny.png");
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_png_grid(path, images, 3, 2, 1, 2, 3, NULL, &UNIT, &err), 0);
    // width 1 + 2 (3 + 1) = 9, height 1 + 2 (2 + 1) = 7; cell (1, 1) is empty
    enum { B = 128 };
    unsigned char want[7][9] = {
        {B, B, B, B, B, B, B, B, B},
        {B, 10, 11, 12, B, 20, 21, 22, B},
        {B, 13, 14, 15, B, 23, 24, 25, B},
        {B, B, B, B, B, B, B, B, B},
        {B, 30, 31, 32, B, B, B, B, B},
        {B, 33, 34, 35, B, B, B, B, B},
        {B, B, B, B, B, B, B, B, B},
    };
    expected e = {9, 7, 1, &want[0][0]};
    assert_picture(path, &e, PNG_COLOR_TYPE_GRAY);
    CU_ASSERT_FALSE(file_exists(mg_test_path("tiny.png.tmp")));
}

/* A conditional G's samples, one row per class: 5 samples of 2 classes (sample i of class
 * i mod 2) in rows of class 0 (samples 0, 2, 4) and class 1 (1, 3, and an empty cell), with the
 * neighbours of each row's last sample (4 and 3); the layout by hand. */
static void test_class_grid_by_hand(void)
{
    mg_real images[5 * 6], nb[12];
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 6; k++)
            images[i * 6 + k] = (mg_real)((10 * (i + 1) + k) / 255.0);
    for (int k = 0; k < 12; k++)
        nb[k] = (mg_real)((200 + k) / 255.0);
    CU_ASSERT_EQUAL(mg_class_grid_last(5, 2, 0), 4);
    CU_ASSERT_EQUAL(mg_class_grid_last(5, 2, 1), 3);
    CU_ASSERT_EQUAL(mg_class_grid_last(5, 7, 4), 4);
    CU_ASSERT_EQUAL(mg_class_grid_last(5, 7, 5), -1); /* more classes than samples: empty rows */
    const char *path = mg_test_path("classes.png");
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_png_class_grid(path, images, 5, 2, 1, 2, 3, NULL, &UNIT, &err), 0);
    // 3 columns: width 1 + 3 (3 + 1) = 13, height 1 + 2 (2 + 1) = 7
    enum { B = 128 };
    unsigned char want[7][13] = {
        {B, B, B, B, B, B, B, B, B, B, B, B, B},
        {B, 10, 11, 12, B, 30, 31, 32, B, 50, 51, 52, B},
        {B, 13, 14, 15, B, 33, 34, 35, B, 53, 54, 55, B},
        {B, B, B, B, B, B, B, B, B, B, B, B, B},
        {B, 20, 21, 22, B, 40, 41, 42, B, B, B, B, B},
        {B, 23, 24, 25, B, 43, 44, 45, B, B, B, B, B},
        {B, B, B, B, B, B, B, B, B, B, B, B, B},
    };
    expected e = {13, 7, 1, &want[0][0]};
    assert_picture(path, &e, PNG_COLOR_TYPE_GRAY);
    /* With neighbours: an RGB picture 13 + 3 + 3 + 2 = 21 wide, as mg_png_grid's. */
    CU_ASSERT_EQUAL_FATAL(mg_png_class_grid(path, images, 5, 2, 1, 2, 3, nb, &UNIT, &err), 0);
    CU_ASSERT_EQUAL(mg_class_grid_fits(5, 2, 1, 2, 3, 1, &err), 0);
    CU_ASSERT_EQUAL(mg_class_grid_fits(5, 2, 2, 2, 3, 1, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "cannot draw images with 2 channels (1 or 3)");
    CU_ASSERT_EQUAL(mg_png_class_grid(path, images, 5, 0, 1, 2, 3, NULL, &UNIT, &err), -1);
}

/* The same grid with neighbours: RGB although the images are grey, 3 yellow columns after the
 * grid's right border, then the neighbour column with its own border: width 9 + 3 + 3 + 2 = 17. */
static void test_grid_grey_neighbours_by_hand(void)
{
    mg_real images[18], nb[12];
    make_tiny(images, nb);
    const char *path = mg_test_path("tiny-nb.png");
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_png_grid(path, images, 3, 2, 1, 2, 3, nb, &UNIT, &err), 0);
    enum { B = 128, Y = -1 };
    const int want[7][17] = {
        {B, B, B, B, B, B, B, B, B, Y, Y, Y, B, B, B, B, B},
        {B, 10, 11, 12, B, 20, 21, 22, B, Y, Y, Y, B, 200, 201, 202, B},
        {B, 13, 14, 15, B, 23, 24, 25, B, Y, Y, Y, B, 203, 204, 205, B},
        {B, B, B, B, B, B, B, B, B, Y, Y, Y, B, B, B, B, B},
        {B, 30, 31, 32, B, B, B, B, B, Y, Y, Y, B, 210, 211, 212, B},
        {B, 33, 34, 35, B, B, B, B, B, Y, Y, Y, B, 213, 214, 215, B},
        {B, B, B, B, B, B, B, B, B, Y, Y, Y, B, B, B, B, B},
    };
    unsigned char px[7 * 17 * 3];
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 17; x++) {
            unsigned char *p = px + (y * 17 + x) * 3;
            if (want[y][x] == Y)
                p[0] = 255, p[1] = 220, p[2] = 0;
            else
                p[0] = p[1] = p[2] = (unsigned char)want[y][x];
        }
    expected e = {17, 7, 3, px};
    assert_picture(path, &e, PNG_COLOR_TYPE_RGB);
}

/* Colour images (C, H, W) channel-first, 7 in 3 columns (two empty cells), with and without
 * neighbours, every pixel checked; width 1 + 3 (5 + 1) = 19 (+ 3 + 5 + 2 = 29), height
 * 1 + 3 (4 + 1) = 16. A grey grid of MNIST shape checks the documented formula at scale. */
static void test_grid_rgb_and_mnist(void)
{
    enum { N = 7, COLS = 3, C = 3, H = 4, W = 5 };
    mg_real images[N * C * H * W], nb[3 * C * H * W];
    fill(images, N * C * H * W, 0, 1, 600);
    fill(nb, 3 * C * H * W, 0, 1, 601);
    mg_error err = {""};
    for (int with_nb = 0; with_nb < 2; with_nb++) {
        const char *path = mg_test_path(with_nb ? "rgb-nb.png" : "rgb.png");
        CU_ASSERT_EQUAL_FATAL(
            mg_png_grid(path, images, N, COLS, C, H, W, with_nb ? nb : NULL, &UNIT, &err), 0);
        expected e = paint_grid(images, N, COLS, C, H, W, with_nb ? nb : NULL);
        CU_ASSERT_EQUAL(e.width, with_nb ? 29 : 19);
        CU_ASSERT_EQUAL(e.height, 16);
        assert_picture(path, &e, PNG_COLOR_TYPE_RGB);
        free(e.px);
    }

    // 100 MNIST-sized samples in 10 columns with neighbours: 1 + 10 * 29 + 3 + 30 = 324 wide
    enum { MN = 100, MC = 10, MH = 28, MW = 28 };
    mg_real *m = malloc(MN * MH * MW * sizeof *m), *mnb = malloc(10 * MH * MW * sizeof *mnb);
    fill(m, MN * MH * MW, 0, 1, 602);
    fill(mnb, 10 * MH * MW, 0, 1, 603);
    for (int with_nb = 0; with_nb < 2; with_nb++) {
        const char *path = mg_test_path(with_nb ? "mnist-nb.png" : "mnist.png");
        CU_ASSERT_EQUAL_FATAL(
            mg_png_grid(path, m, MN, MC, 1, MH, MW, with_nb ? mnb : NULL, &UNIT, &err), 0);
        expected e = paint_grid(m, MN, MC, 1, MH, MW, with_nb ? mnb : NULL);
        CU_ASSERT_EQUAL(e.width, with_nb ? 324 : 291);
        CU_ASSERT_EQUAL(e.height, 291);
        assert_picture(path, &e, with_nb ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY);
        free(e.px);
    }
    free(m);
    free(mnb);
}

/* round(clamp(v, 0, 1) * 255): rounding, not truncation, at 0.998 / 0.999; NaN is black. */
static void test_grid_clamp(void)
{
    const mg_real v[12] = {-0.5f, -INFINITY, 0, 0.2f, 0.5f, (mg_real)(100 / 255.0),
                           0.998f, 0.999f, 1, 1.5f, INFINITY, NAN};
    const int want[12] = {0, 0, 0, 51, 128, 100, 254, 255, 255, 255, 255, 0};
    const char *path = mg_test_path("clamp.png");
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_png_grid(path, v, 1, 1, 1, 3, 4, NULL, &UNIT, &err), 0);
    picture pic;
    CU_ASSERT_EQUAL_FATAL(read_png(path, &pic), 0);
    CU_ASSERT_EQUAL_FATAL(pic.width, 6);
    CU_ASSERT_EQUAL_FATAL(pic.height, 5);
    for (int k = 0; k < 12; k++) {
        const int got = pic.px[(1 + k / 4) * 6 + 1 + k % 4];
        if (got != want[k])
            fprintf(stderr, "\n  %g drawn as %d, want %d", (double)v[k], got, want[k]);
        CU_ASSERT_EQUAL(got, want[k]);
    }
    free(pic.px);
}

/* The pixel of cell 0 at (y, x) of a grey grid of one 1 x W image: (1 + y) * (W + 2) + 1 + x. */
static int cell_px(const picture *pic, int W, int k)
{
    return pic->px[1 * (W + 2) + 1 + k];
}

/* data.range [-1, 1]: -1 is black, 1 white, 0 mid-grey (127.5 rounds to 128), beyond clamped. */
static void test_grid_range(void)
{
    const mg_real v[7] = {-1, -0.5f, 0, 0.5f, 1, -3, 3};
    const int want[7] = {0, 64, 128, 191, 255, 0, 255};
    const mg_pixel_scale tanh_range = {.lo = -1, .hi = 1};
    const char *path = mg_test_path("range.png");
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_png_grid(path, v, 1, 1, 1, 1, 7, NULL, &tanh_range, &err), 0);
    picture pic;
    CU_ASSERT_EQUAL_FATAL(read_png(path, &pic), 0);
    for (int k = 0; k < 7; k++)
        CU_ASSERT_EQUAL(cell_px(&pic, 7, k), want[k]);
    free(pic.px);
    const mg_pixel_scale empty = {.lo = 1, .hi = 1};
    ASSERT_MSG(mg_png_grid(path, v, 1, 1, 1, 1, 7, NULL, &empty, &err), err,
               "%s: cannot draw values in [1, 1]", path);
}

/* GCN'd values drawn per image: each image's own minimum black and maximum white, whatever the
 * other images hold (the neighbour column too); a constant image mid-grey; NaN black and left
 * out of the range. */
static void test_grid_per_image(void)
{
    enum { W = 4 };
    const mg_real v[3 * W] = {-20, -10, 0, 20,   // spans 40
                              5, 5, 5, 5,        // constant
                              NAN, 1, 2, 3};     // NaN left out: spans 2
    const mg_real nb[3 * W] = {100, 101, 102, 103, 0, 0, 0, 0, 0, 0, 0, 0}; // a row per grid row
    const mg_pixel_scale per_image = {.per_image = 1};
    const char *path = mg_test_path("per-image.png");
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_png_grid(path, v, 3, 1, 1, 1, W, nb, &per_image, &err), 0);
    picture pic;
    CU_ASSERT_EQUAL_FATAL(read_png(path, &pic), 0);
    // RGB (neighbours): row of cell r at y = 1 + 2 r; the neighbour column after x = 6 + 3
    const int width = (int)pic.width;
    const int want[3][W] = {{0, 64, 128, 255}, {128, 128, 128, 128}, {0, 0, 128, 255}};
    const int want_nb[W] = {0, 85, 170, 255};
    for (int r = 0; r < 3; r++)
        for (int x = 0; x < W; x++) {
            CU_ASSERT_EQUAL(pic.px[((1 + 2 * r) * width + 1 + x) * 3], want[r][x]);
            if (r == 0)
                CU_ASSERT_EQUAL(pic.px[((1 + 2 * r) * width + W + 2 + 3 + 1 + x) * 3],
                                want_nb[x]);
        }
    free(pic.px);
}

/* Writing over an existing file replaces it (the rename). */
static void test_grid_replaces(void)
{
    const mg_real dark[4] = {0, 0, 0, 0}, light[4] = {1, 1, 1, 1};
    const char *path = mg_test_path("replace.png");
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_png_grid(path, dark, 1, 1, 1, 2, 2, NULL, &UNIT, &err), 0);
    CU_ASSERT_EQUAL_FATAL(mg_png_grid(path, light, 1, 1, 1, 2, 2, NULL, &UNIT, &err), 0);
    picture pic;
    CU_ASSERT_EQUAL_FATAL(read_png(path, &pic), 0);
    CU_ASSERT_EQUAL(pic.px[1 * 4 + 1], 255);
    free(pic.px);
}

static void test_grid_errors(void)
{
    mg_real x[16] = {0};
    mg_error err = {""};
    const char *path = mg_test_path("bad.png"), *tmp = mg_test_path("bad.png.tmp");
    ASSERT_MSG(mg_png_grid(path, x, 0, 10, 1, 28, 28, NULL, &UNIT, &err), err,
               "%s: nothing to draw (n 0, cols 10, H 28, W 28)", path);
    ASSERT_MSG(mg_png_grid(path, x, 4, 0, 1, 2, 2, NULL, &UNIT, &err), err,
               "%s: nothing to draw (n 4, cols 0, H 2, W 2)", path);
    ASSERT_MSG(mg_png_grid(path, x, 4, 2, 1, 0, 2, NULL, &UNIT, &err), err,
               "%s: nothing to draw (n 4, cols 2, H 0, W 2)", path);
    ASSERT_MSG(mg_png_grid(path, x, 4, 2, 1, 2, -1, NULL, &UNIT, &err), err,
               "%s: nothing to draw (n 4, cols 2, H 2, W -1)", path);
    ASSERT_MSG(mg_png_grid(path, x, 4, 2, 2, 2, 2, NULL, &UNIT, &err), err,
               "%s: cannot draw images with 2 channels (1 or 3)", path);
    ASSERT_MSG(mg_png_grid(path, x, 4, 2, 4, 2, 2, x, &UNIT, &err), err,
               "%s: cannot draw images with 4 channels (1 or 3)", path);
    // 1 + 49999 = 50000 per side: 2.5e9 pixels > 2^28
    ASSERT_MSG(mg_png_grid(path, x, 1, 1, 1, 49998, 49998, NULL, &UNIT, &err), err,
               "%s: grid of 50000 x 50000 pixels is too large", path);
    // 3 million pixels, but wider than libpng reads by default (10^6)
    ASSERT_MSG(mg_png_grid(path, x, 1, 1, 1, 1, 1000000, NULL, &UNIT, &err), err,
               "%s: grid of 1000002 x 3 pixels is too large", path);
    // sizes whose products overflow 32 bits are reported, not wrapped
    ASSERT_MSG(mg_png_grid(path, x, 2147483647, 2147483647, 3, 2147483647, 2147483647, x, &UNIT,
                           &err),
               err, "%s: grid of 4611686018427387909 x 2147483649 pixels is too large", path);
    CU_ASSERT_FALSE(file_exists(path));
    CU_ASSERT_FALSE(file_exists(tmp));

    const char *missing = mg_test_path("no-such-dir/grid.png");
    ASSERT_MSG(mg_png_grid(missing, x, 4, 2, 1, 2, 2, NULL, &UNIT, &err), err,
               "%s: cannot write PNG: No such file or directory", missing);
    CU_ASSERT_FALSE(file_exists(mg_test_path("no-such-dir")));
}

/* A write that fails half-way (the file size limit, so write(2) fails with EFBIG) leaves no file
 * and no .tmp at a new path, and leaves an existing file byte for byte as it was. A rename onto a
 * directory fails after a complete write and must remove the .tmp too. */
static void test_grid_failed_write(void)
{
    enum { N = 64, HW = 28 * 28 };
    mg_real *images = malloc(N * HW * sizeof *images);
    fill(images, N * HW, 0, 1, 700); // incompressible: the PNG is ~50 KB
    mg_error err = {""};
    const char *fresh = mg_test_path("limit.png"), *fresh_tmp = mg_test_path("limit.png.tmp");
    const char *old = mg_test_path("old.png"), *old_tmp = mg_test_path("old.png.tmp");
    const mg_real grey[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    CU_ASSERT_EQUAL_FATAL(mg_png_grid(old, grey, 1, 1, 1, 2, 2, NULL, &UNIT, &err), 0);
    FILE *f = fopen(old, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    unsigned char before[4096], after[4096];
    const size_t n_before = fread(before, 1, sizeof before, f);
    fclose(f);
    CU_ASSERT_FATAL(n_before > 0 && n_before < sizeof before);

    struct rlimit saved, lim;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    const int rc_fresh = mg_png_grid(fresh, images, N, 8, 1, 28, 28, NULL, &UNIT, &err);
    const mg_error err_fresh = err;
    const int rc_old = mg_png_grid(old, images, N, 8, 1, 28, 28, NULL, &UNIT, &err);
    const mg_error err_old = err;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    ASSERT_MSG(rc_fresh, err_fresh, "%s: cannot write PNG: %s", fresh, strerror(EFBIG));
    ASSERT_MSG(rc_old, err_old, "%s: cannot write PNG: %s", old, strerror(EFBIG));
    CU_ASSERT_FALSE(file_exists(fresh));
    CU_ASSERT_FALSE(file_exists(fresh_tmp));
    CU_ASSERT_FALSE(file_exists(old_tmp));
    f = fopen(old, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const size_t n_after = fread(after, 1, sizeof after, f);
    fclose(f);
    CU_ASSERT_EQUAL(n_after, n_before);
    CU_ASSERT(memcmp(before, after, n_before) == 0);

    const char *dir = mg_test_path("a-directory"), *dir_tmp = mg_test_path("a-directory.tmp");
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    ASSERT_MSG(mg_png_grid(dir, grey, 1, 1, 1, 2, 2, NULL, &UNIT, &err), err,
               "%s: cannot write PNG: Is a directory", dir);
    CU_ASSERT_FALSE(file_exists(dir_tmp));
    free(images);
}

static const mg_test tests[] = {
    {"nearest_exact", test_nearest_exact},
    {"nearest_random", test_nearest_random},
    {"nearest_duplicates", test_nearest_duplicates},
    {"nearest_errors", test_nearest_errors},
    {"grid_grey_by_hand", test_grid_grey_by_hand},
    {"class_grid_by_hand", test_class_grid_by_hand},
    {"grid_grey_neighbours_by_hand", test_grid_grey_neighbours_by_hand},
    {"grid_rgb_and_mnist", test_grid_rgb_and_mnist},
    {"grid_clamp", test_grid_clamp},
    {"grid_range", test_grid_range},
    {"grid_per_image", test_grid_per_image},
    {"grid_replaces", test_grid_replaces},
    {"grid_errors", test_grid_errors},
    {"grid_failed_write", test_grid_failed_write},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("image", tests, argc, argv);
}
