/* mpigan's HDF5 input format, and any HDF5 file with a dataset of images: what `mpigan prepare`
 * writes, and what h5py writes from NumPy arrays. The reader checks sizes against the file before
 * it allocates and reports a bad file in one line naming it and the problem. */
#ifndef MPIGAN_H5DATA_H
#define MPIGAN_H5DATA_H

#include <stdint.h>

#include "mpigan/dataset.h"
#include "mpigan/error.h"

/* ---- HDF5 input: any file with a dataset of images (N, C, H, W) or (N, D), uint8 or float ---- */

/* Reads examples [first, first + count) (count < 0: to the end) of dataset `images` of an HDF5
 * file; uint8 is scaled by 1/255, float32/float64 taken as they are (NaN or Inf is an error naming
 * the example). An optional integer dataset `labels` (N) is returned when labels_name and labels
 * are not NULL. (N, D) data is read as (N, 1, 1, D). */
int mg_h5data_read(mg_dataset *ds, int32_t **labels, const char *path, const char *images,
                   const char *labels_name, int first, int count, mg_error *err);

/* Writes ds as the HDF5 input format: /images (N, C, H, W) float32 (or uint8 when every value
 * is k/255 exactly, as converted bytes are), /labels (N) int32 when labels is not NULL, and root
 * attributes format = "mpigan-data", format_version = 1, source (what it was made from). Through a
 * temporary name and a rename. */
int mg_h5data_write(const char *path, const mg_dataset *ds, const int32_t *labels,
                    const char *source, mg_error *err);

#endif
