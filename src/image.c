/* Pictures: sample grids as PNG through libpng, and the nearest training examples through GEMM.
 *
 * Grid geometry, in pixels. Every cell has a 1-pixel grey border (128) on each side, shared with
 * the cells next to it; the optional neighbour column follows the grid's right border after SEP
 * yellow columns and has a border of its own:
 *
 *   rows   = ceil(n / cols)
 *   width  = 1 + cols (W + 1)  [+ SEP + 1 + W + 1 with neighbours]
 *   height = 1 + rows (H + 1)
 *
 *   cell (r, c), pixel (y, x)     at row 1 + r (H + 1) + y, column 1 + c (W + 1) + x
 *   separator                     columns 1 + cols (W + 1) ... + SEP - 1, every row
 *   neighbour of row r, (y, x)    at row 1 + r (H + 1) + y, column 1 + cols (W + 1) + SEP + 1 + x
 *
 * Cells past n (the last row of a grid whose n is not a multiple of cols) are border grey.
 *
 * A class grid (a conditional G's samples, sample i of class i mod K) has rows = K, one per class,
 * and cols = ceil(n / K): cell (r, c) holds sample r + K c, or border grey past n. */
#include "mpigan/image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/files.h"

enum { GRID_BORDER = 128, GRID_SEP = 3 };
static const unsigned char GRID_SEP_RGB[3] = {255, 220, 0};
/* 2^28 pixels (768 MiB as RGB for any reader that decodes it whole) is far beyond any sample
 * grid; a larger request is a mistake in the arguments. A side may not exceed 10^6 pixels either:
 * libpng refuses larger sides by default when reading (PNG_USER_WIDTH_MAX, PNG_USER_HEIGHT_MAX),
 * so such a file could be written but not viewed. */
#define GRID_MAX_PIXELS (INT64_C(1) << 28)
#define GRID_MAX_SIDE INT64_C(1000000)

/* round(clamp(v, 0, 1) * 255), with NaN drawn black rather than left to an undefined conversion. */
static unsigned char to_byte(double v)
{
    if (!(v > 0))
        return 0;
    if (v >= 1)
        return 255;
    return (unsigned char)(v * 255.0 + 0.5);
}

typedef struct {
    int n, cols, C, H, W;
    int classes;                 /* > 0: a class grid of this many rows */
    int rgb;                     /* output channels: 3 when C = 3 or neighbours are drawn */
    int64_t width, height;
    const mg_real *images;       /* (n, C, H, W) */
    const mg_real *neighbours;   /* (rows, C, H, W) or NULL */
    mg_pixel_scale scale;
    double *lo, *mul;            /* (n + rows): each image's value drawn as 0, and factor */
} grid;

/* The value drawn as 0 and the factor onto [0, 1] for one image (C, H, W). */
static void image_scale(const grid *g, const mg_real *img, double *lo, double *mul)
{
    double a = g->scale.lo, b = g->scale.hi;
    if (g->scale.per_image) {
        const size_t n = (size_t)g->C * g->H * g->W;
        a = INFINITY;
        b = -INFINITY;
        for (size_t i = 0; i < n; i++) { // NaN compares false: left out of the range
            if (img[i] < a)
                a = img[i];
            if (img[i] > b)
                b = img[i];
        }
        if (!(b > a)) { // constant (or all NaN): mid-grey where finite
            *lo = a - 1;
            *mul = 0.5;
            return;
        }
    }
    *lo = a;
    *mul = 1.0 / (b - a);
}

/* One image's row y into out (W pixels of 1 or 3 bytes): planes (C, H, W) channel-first, as
 * CIFAR stores them, interleaved; grey replicated to R = G = B when the output is RGB. */
static void draw_cell_row(unsigned char *out, const grid *g, const mg_real *img, int y,
                          double lo, double mul)
{
    const size_t plane = (size_t)g->H * g->W;
    const mg_real *src = img + (size_t)y * g->W; // (W) row y of channel 0
    if (!g->rgb) {
        for (int x = 0; x < g->W; x++)
            out[x] = to_byte((src[x] - lo) * mul);
    } else if (g->C == 1) {
        for (int x = 0; x < g->W; x++)
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = to_byte((src[x] - lo) * mul);
    } else {
        for (int x = 0; x < g->W; x++)
            for (int ch = 0; ch < 3; ch++)
                out[3 * x + ch] = to_byte((src[ch * plane + x] - lo) * mul);
    }
}

/* Output row yy of the grid: (width) pixels of 1 or 3 bytes. */
static void draw_row(unsigned char *row, const grid *g, int64_t yy)
{
    const int pc = g->rgb ? 3 : 1;
    const size_t image = (size_t)g->C * g->H * g->W;
    memset(row, GRID_BORDER, (size_t)g->width * pc);
    const int64_t grid_width = 1 + (int64_t)g->cols * (g->W + 1);
    if (g->neighbours)
        for (int64_t x = grid_width; x < grid_width + GRID_SEP; x++)
            memcpy(row + 3 * x, GRID_SEP_RGB, 3);

    // yy = 1 + r (H + 1) + y; y == H and yy == 0 are border rows
    if (yy == 0)
        return;
    const int64_t r = (yy - 1) / (g->H + 1);
    const int y = (int)((yy - 1) % (g->H + 1));
    if (y == g->H)
        return;
    for (int c = 0; c < g->cols; c++) {
        const int64_t i = g->classes ? r + (int64_t)g->classes * c : r * g->cols + c;
        if (i >= g->n)
            break;
        draw_cell_row(row + (size_t)(1 + (int64_t)c * (g->W + 1)) * pc, g,
                      g->images + (size_t)i * image, y, g->lo[i], g->mul[i]);
    }
    if (g->neighbours)
        draw_cell_row(row + (size_t)(grid_width + GRID_SEP + 1) * pc, g,
                      g->neighbours + (size_t)r * image, y, g->lo[g->n + r], g->mul[g->n + r]);
}

/* libpng reports through these: the reason is kept for the caller's one-line message, and the
 * error handler must not return (libpng would fall back to its default, which prints). Warnings
 * are dropped: the library never prints. */
typedef struct {
    FILE *f;
    char reason[256];
} png_sink;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_sink *s = png_get_error_ptr(png);
    if (msg != s->reason)
        snprintf(s->reason, sizeof s->reason, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Our own output functions, so that a failed write reports errno ("No space left on device")
 * instead of libpng's "Write Error". */
static void on_png_write(png_structp png, png_bytep data, size_t len)
{
    png_sink *s = png_get_io_ptr(png);
    errno = 0;
    if (fwrite(data, 1, len, s->f) != len) {
        snprintf(s->reason, sizeof s->reason, "%s", errno ? strerror(errno) : "write error");
        png_error(png, s->reason);
    }
}

static void on_png_flush(png_structp png)
{
    png_sink *s = png_get_io_ptr(png);
    if (fflush(s->f) != 0) {
        snprintf(s->reason, sizeof s->reason, "%s", strerror(errno));
        png_error(png, s->reason);
    }
}

/* Everything that can longjmp lives in this function, so no local of the caller is live across
 * the setjmp; nothing set here after setjmp is read once it returns. */
static int write_png(png_structp png, png_infop info, const grid *g, unsigned char *row)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_IHDR(png, info, (png_uint_32)g->width, (png_uint_32)g->height, 8,
                 g->rgb ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int64_t yy = 0; yy < g->height; yy++) {
        draw_row(row, g, yy);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    return 0;
}

/* The grid's size in pixels, or -1 with what is wrong; rows <= 0: as many as n in cols take. */
static int grid_size(int n, int cols, int rows_given, int C, int H, int W, int neighbours,
                     int64_t *width, int64_t *height, mg_error *what)
{
    if (n < 1 || cols < 1 || H < 1 || W < 1)
        return mg_fail(what, "nothing to draw (n %d, cols %d, H %d, W %d)", n, cols, H, W);
    if (C != 1 && C != 3)
        return mg_fail(what, "cannot draw images with %d channels (1 or 3)", C);
    // each factor < 2^31, so every sum and product here stays below 2^63
    const int64_t rows = rows_given > 0 ? rows_given : ((int64_t)n + cols - 1) / cols;
    *width = 1 + (int64_t)cols * ((int64_t)W + 1) + (neighbours ? GRID_SEP + (int64_t)W + 2 : 0);
    *height = 1 + rows * ((int64_t)H + 1);
    if (*width > GRID_MAX_SIDE || *height > GRID_MAX_SIDE || *width * *height > GRID_MAX_PIXELS)
        return mg_fail(what, "grid of %lld x %lld pixels is too large", (long long)*width,
                       (long long)*height);
    return 0;
}

int mg_grid_columns(int64_t n, int64_t given)
{
    int64_t cols = given;
    if (cols <= 0)
        for (cols = 1; cols * cols < n; cols++)
            ;
    return (int)(cols < n ? cols : n);
}

int mg_png_grid_fits(int n, int cols, int C, int H, int W, int neighbours, mg_error *what)
{
    int64_t w, h;
    return grid_size(n, cols, 0, C, H, W, neighbours, &w, &h, what);
}

int mg_class_grid_fits(int n, int classes, int C, int H, int W, int neighbours, mg_error *what)
{
    int64_t w, h;
    return grid_size(n, (n + classes - 1) / classes, classes, C, H, W, neighbours, &w, &h, what);
}

int mg_class_grid_last(int n, int classes, int r)
{
    return r < n ? r + (n - 1 - r) / classes * classes : -1;
}

mg_pixel_scale mg_pixel_scale_of(const mg_config *cfg)
{
    if (cfg->data.preprocess == MG_PREPROCESS_GCN)
        return (mg_pixel_scale){.lo = 0, .hi = 1, .per_image = 1};
    return (mg_pixel_scale){.lo = cfg->data.range[0], .hi = cfg->data.range[1]};
}

/* Both grids: classes 0 a plain one of cols columns, else a class grid. */
static int draw_grid(const char *path, const mg_real *images, int n, int cols, int classes, int C,
                     int H, int W, const mg_real *neighbours, const mg_pixel_scale *scale,
                     mg_error *err)
{
    grid g = {.n = n, .cols = cols, .classes = classes, .C = C, .H = H, .W = W,
              .rgb = C == 3 || neighbours, .images = images, .neighbours = neighbours,
              .scale = *scale};
    if (!scale->per_image && !(scale->hi > scale->lo))
        return mg_fail(err, "%s: cannot draw values in [%g, %g]", path, scale->lo, scale->hi);
    mg_error why;
    if (grid_size(n, cols, classes, C, H, W, neighbours != NULL, &g.width, &g.height, &why))
        return mg_fail(err, "%s: %s", path, why.msg);

    const int rows = classes ? classes : (int)(((int64_t)n + cols - 1) / cols);
    const size_t image = (size_t)C * H * W;
    unsigned char *row = malloc((size_t)g.width * (g.rgb ? 3 : 1)); // (width) pixels
    g.lo = malloc(2 * ((size_t)n + rows) * sizeof *g.lo);
    if (!row || !g.lo) {
        free(row);
        free(g.lo);
        return mg_fail(err, "%s: cannot write PNG: out of memory", path);
    }
    g.mul = g.lo + n + rows;
    for (int i = 0; i < n + (neighbours ? rows : 0); i++)
        image_scale(&g, i < n ? images + (size_t)i * image : neighbours + (size_t)(i - n) * image,
                    &g.lo[i], &g.mul[i]);
    mg_file out;
    mg_error what;
    if (mg_file_create(&out, path, &what)) {
        free(row);
        free(g.lo);
        return mg_fail(err, "%s: cannot write PNG: %s", path, what.msg);
    }
    png_sink sink = {.f = out.f};
    int rc = -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_error,
                                              on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(sink.reason, sizeof sink.reason, "out of memory");
    } else {
        png_set_write_fn(png, &sink, on_png_write, on_png_flush);
        rc = write_png(png, info, &g, row);
    }
    png_destroy_write_struct(&png, &info);
    free(row);
    free(g.lo);

    // the commit flushes the last buffered bytes: its failure is a failed write like any other
    if (rc != 0) {
        mg_file_discard(&out);
        return mg_fail(err, "%s: cannot write PNG: %s", path, sink.reason);
    }
    if (mg_file_commit(&out, &what))
        return mg_fail(err, "%s: cannot write PNG: %s", path, what.msg);
    return 0;
}

int mg_png_grid(const char *path, const mg_real *images, int n, int cols, int C, int H, int W,
                const mg_real *neighbours, const mg_pixel_scale *scale, mg_error *err)
{
    return draw_grid(path, images, n, cols, 0, C, H, W, neighbours, scale, err);
}

int mg_png_class_grid(const char *path, const mg_real *images, int n, int classes, int C, int H,
                      int W, const mg_real *neighbours, const mg_pixel_scale *scale,
                      mg_error *err)
{
    if (classes < 1)
        return mg_fail(err, "%s: a class grid of %d classes", path, classes);
    return draw_grid(path, images, n, (n + classes - 1) / classes, classes, C, H, W, neighbours,
                     scale, err);
}

/* ---- nearest neighbours ---- */

/* Data rows per GEMM: the products of one block, (nq, 1024), are 400 KB for 100 queries in float,
 * and each call is large enough that BLAS runs at full speed. */
#define NEAREST_BLOCK 1024

/* sum x_k^2 in double: the norms are the large terms of ||q||^2 - 2 q.d + ||d||^2, whose
 * cancellation would otherwise magnify their rounding. Four partial sums let the additions
 * overlap: one dependent chain made a whole search about 10% slower (100 queries against
 * 50,000 x 784 in float, one BLAS thread: 0.14 s against 0.125 s). */
static double sumsq(const mg_real *x, size_t dim)
{
    double s[4] = {0, 0, 0, 0};
    size_t k = 0;
    for (; k + 4 <= dim; k += 4)
        for (int l = 0; l < 4; l++)
            s[l] += (double)x[k + l] * x[k + l];
    for (; k < dim; k++)
        s[0] += (double)x[k] * x[k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* Examples as values (data), or those of a data set kept as bytes (ds, widened a block at a
 * time). */
static int nearest(int *idx, const mg_real *q, int nq, const mg_real *data, const mg_dataset *ds,
                   int n, size_t dim, mg_gemm_fn gemm, mg_error *err)
{
    if (nq < 1 || n < 1)
        return mg_fail(err, "nearest: nothing to compare (%d queries, %d examples)", nq, n);
    if (dim < 1 || dim > INT_MAX)
        return mg_fail(err, "nearest: dimension %zu out of range (1 to %d)", dim, INT_MAX);
    const int ld = (int)dim;
    const int block = n < NEAREST_BLOCK ? n : NEAREST_BLOCK;

    // one allocation: doubles first, so the mg_real products after them stay aligned
    const size_t n_doubles = 2 * (size_t)nq + (size_t)block;
    const int bytes = ds && ds->bytes;
    const size_t n_wide = bytes ? (size_t)block * dim : 0;
    double *qn = malloc(n_doubles * sizeof(double) + ((size_t)nq * block + n_wide) * sizeof(mg_real));
    if (!qn)
        return mg_fail(err, "nearest: out of memory");
    double *best = qn + nq;                            // (nq) smallest d2 so far
    double *dn = best + nq;                            // (block) ||d_j||^2 of this block
    mg_real *prod = (mg_real *)(qn + n_doubles);       // (nq, block) q_i . d_j
    mg_real *wide = prod + (size_t)nq * block;         // (block, dim) a block of bytes as values

    for (int i = 0; i < nq; i++) {
        qn[i] = sumsq(q + (size_t)i * dim, dim);
        best[i] = INFINITY;
        idx[i] = 0; // kept only if every distance is NaN
    }
    for (int j0 = 0; j0 < n; j0 += block) {
        const int nb = n - j0 < block ? n - j0 : block;
        if (bytes)
            for (int j = 0; j < nb; j++)
                mg_dataset_row(ds, (size_t)(j0 + j), wide + (size_t)j * dim);
        const mg_real *d = bytes ? wide : data + (size_t)j0 * dim; // (nb, dim)
        gemm(0, 1, nq, nb, ld, 1, q, ld, d, ld, 0, prod, nb);
        for (int j = 0; j < nb; j++)
            dn[j] = sumsq(d + (size_t)j * dim, dim);
        // strict < over ascending j: of equal computed distances the lowest index wins
        for (int i = 0; i < nq; i++) {
            const mg_real *p = prod + (size_t)i * nb;
            for (int j = 0; j < nb; j++) {
                const double d2 = qn[i] - 2.0 * p[j] + dn[j];
                if (d2 < best[i]) {
                    best[i] = d2;
                    idx[i] = j0 + j;
                }
            }
        }
    }
    free(qn);
    return 0;
}

int mg_nearest(int *idx, const mg_real *q, int nq, const mg_real *data, int n, size_t dim,
               mg_gemm_fn gemm, mg_error *err)
{
    return nearest(idx, q, nq, data, NULL, n, dim, gemm, err);
}

int mg_nearest_in(int *idx, const mg_real *q, int nq, const mg_dataset *ds, mg_gemm_fn gemm,
                  mg_error *err)
{
    return nearest(idx, q, nq, ds->x, ds, ds->n, ds->dim, gemm, err);
}
