/* Sample sets in HDF5: the snapshots a run takes of G's output for fixed noise (samples.h5), and
 * the files `mpigan sample` writes. Images are float32 in [0, 1], shaped (n, channels, height,
 * width). */
#ifndef MPIGAN_SAMPLESET_H
#define MPIGAN_SAMPLESET_H

#include <stdint.h>

#include "mpigan/error.h"
#include "mpigan/real.h"

typedef struct {
    int n, channels, height, width;
} mg_image_shape;

/* Appends one snapshot x (n, C, H, W) taken at `step` to `path`, creating it when missing with an
 * extendible, chunked dataset /samples (snapshots, n, C, H, W), a dataset /steps (snapshots), the
 * fixed noise /z (n, noise_dim) and attributes format = "mpigan-samples", format_version. An
 * existing file whose shapes differ is an error, never overwritten. */
int mg_sampleset_append(const char *path, const mg_real *x, mg_image_shape shape, const mg_real *z,
                        int noise_dim, int64_t step, mg_error *err);

/* Writes a new file with /samples (n, C, H, W) and /z (n, noise_dim) and attributes naming the
 * checkpoint and step they came from; through a temporary name and a rename. */
int mg_sampleset_write(const char *path, const mg_real *x, mg_image_shape shape, const mg_real *z,
                       int noise_dim, const char *checkpoint, int64_t step, mg_error *err);

/* The same for a conditional G's samples: labels (n), the class of each, go into /labels (NULL:
 * none). An existing file must hold the same labels. */
int mg_sampleset_append_labeled(const char *path, const mg_real *x, mg_image_shape shape,
                                const mg_real *z, int noise_dim, const int32_t *labels,
                                int64_t step, mg_error *err);
int mg_sampleset_write_labeled(const char *path, const mg_real *x, mg_image_shape shape,
                               const mg_real *z, int noise_dim, const int32_t *labels,
                               const char *checkpoint, int64_t step, mg_error *err);

/* For a resumed run: drops the snapshots of `path` taken after `step` (written after the
 * checkpoint the run resumes from, and about to be taken again), so that the file equals that
 * of an uninterrupted run. A missing file: nothing to do. *kept receives the snapshots left. */
int mg_sampleset_trim(const char *path, int64_t step, int64_t *kept, mg_error *err);

#endif
