/* Pictures: sample grids as PNG (libpng), and nearest training examples. */
#ifndef MPIGAN_IMAGE_H
#define MPIGAN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/error.h"
#include "mpigan/nn.h"
#include "mpigan/real.h"

/* How values become 8-bit pixels: [lo, hi] onto 0 to 255, clamped; or with per_image each image's
 * own [min, max] (GCN'd data has no fixed range: the released code's viewers showed it so; a
 * constant image is drawn mid-grey). The neighbour column is drawn the same way. */
typedef struct {
    double lo, hi;
    int per_image;
} mg_pixel_scale;

/* The scale of a configuration's data: data.range for pixels as the file gives them ([0, 1] by
 * default), per image for GCN'd data. */
mg_pixel_scale mg_pixel_scale_of(const mg_config *cfg);

/* Writes images (n, C, H, W), values drawn through `scale`, as a PNG grid of `cols` columns and
 * ceil(n / cols) rows, 8-bit grey for C = 1 and RGB for C = 3, with a 1-pixel border between
 * cells. If `neighbours` is not NULL it holds (rows, C, H, W): one more column, after a wider
 * separator, shows for each grid row the training example nearest to that row's last sample, as
 * in Figure 2 of the paper. Written through a temporary name and a rename. */
int mg_png_grid(const char *path, const mg_real *images, int n, int cols, int C, int H, int W,
                const mg_real *neighbours, const mg_pixel_scale *scale, mg_error *err);

/* The samples of a conditional G, sample i of class i mod classes (generate.h), one grid row per
 * class: sample r + classes c in row r, column c, ceil(n / classes) columns, cells past n border
 * grey. `neighbours` (classes, C, H, W): the training example nearest to each row's last sample
 * (mg_class_grid_last). As mg_png_grid otherwise. */
int mg_png_class_grid(const char *path, const mg_real *images, int n, int classes, int C, int H,
                      int W, const mg_real *neighbours, const mg_pixel_scale *scale,
                      mg_error *err);

/* The sample in the last cell of class grid row r (the largest i < n of class r), or -1 when the
 * row is empty (r >= n). */
int mg_class_grid_last(int n, int classes, int r);

/* mg_png_grid_fits for mg_png_class_grid. */
int mg_class_grid_fits(int n, int classes, int C, int H, int W, int neighbours, mg_error *what);

/* Columns of a grid of n images: `given` if positive, at most n (more would draw empty cells),
 * else the smallest square that holds n. */
int mg_grid_columns(int64_t n, int64_t given);

/* 0 if mg_png_grid can draw n images (C, H, W) in cols columns (with the neighbour column when
 * `neighbours`), else -1 with what is wrong ("grid of 100001 x 29 pixels is too large"): for a
 * run to check before it starts rather than at its first snapshot. */
int mg_png_grid_fits(int n, int cols, int C, int H, int W, int neighbours, mg_error *what);

/* idx[i] = argmin_j ||q_i - data_j||^2 for q (nq, dim) and data (n, dim), with the distances
 * computed as ||q||^2 - 2 q.d + ||d||^2 through `gemm` in blocks of data rows (no allocation
 * beyond one block of (nq, block) products, made here). */
int mg_nearest(int *idx, const mg_real *q, int nq, const mg_real *data, int n, size_t dim,
               mg_gemm_fn gemm, mg_error *err);
/* The same over a data set's examples, kept as values or as bytes. */
int mg_nearest_in(int *idx, const mg_real *q, int nq, const mg_dataset *ds, mg_gemm_fn gemm,
                  mg_error *err);

#endif
