/* Readers for the data sets of the paper's experiments, each in the format its authors
 * distribute, and the preprocessing the paper applied. Every reader checks sizes against the file
 * before it allocates, and reports a bad file in one line naming it and the problem.
 *
 * Images come out as mg_dataset rows (n, channels * height * width), channel-first (CIFAR-10's
 * own order), pixels scaled to [0, 1] (bytes / 255) unless a float file says otherwise. */
#ifndef MPIGAN_DATASETS_H
#define MPIGAN_DATASETS_H

#include <stdint.h>

#include "mpigan/data.h"
#include "mpigan/error.h"

/* ---- CIFAR-10, binary version: records of 3073 bytes (label, 1024 R, 1024 G, 1024 B) ---- */

/* Reads the records of `n_files` files in order (e.g. data_batch_1.bin ... data_batch_5.bin) into
 * ds (n, 3, 32, 32) and, if labels is not NULL, a new array of n labels (free()). A file whose size
 * is not a multiple of 3073 bytes is an error naming its size and the remainder; a label above 9
 * is an error naming the record. */
int mg_cifar10_read(mg_dataset *ds, uint8_t **labels, const char *const *files, int n_files,
                    mg_error *err);

/* ---- Toronto Face Database: TFD_48x48.mat / TFD_96x96.mat (MATLAB v5 or v7.3, libmatio) ---- */

enum mg_tfd_split {
    MG_TFD_UNLABELED = 0, /* the unlabeled set the paper trained on */
    MG_TFD_TRAIN = 1,
    MG_TFD_VALID = 2,
    MG_TFD_TEST = 3,
};

/* Reads the examples of one split of one fold (0..4): `images` (N x S x S uint8), `folds` (N x 5,
 * per fold 0 unlabeled, 1 train, 2 valid, 3 test); labs_ex / labs_id are optional and returned
 * when the pointers are not NULL (ds->n values each, one per row read; all -1 when the file has
 * no such variable; free()). */
int mg_tfd_read(mg_dataset *ds, int32_t **labs_ex, int32_t **labs_id, const char *path, int fold,
                enum mg_tfd_split split, mg_error *err);

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

/* ---- preprocessing ---- */

/* Global contrast normalisation as the paper's CIFAR-10 and TFD runs used it (pylearn2's
 * global_contrast_normalize with scale 55, subtract_mean, no bias): each example minus its own
 * mean, then rescaled to L2 norm `scale`; an example whose norm / scale is below 1e-8 (pylearn2's
 * min_divisor) is only centred. */
void mg_gcn(mg_dataset *ds, double scale);

#endif
