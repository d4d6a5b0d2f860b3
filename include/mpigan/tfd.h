/* The Toronto Face Database as its authors distribute it: TFD_48x48.mat or TFD_96x96.mat (MATLAB
 * v5 or v7.3, read with libmatio). The reader checks sizes against the file before it allocates
 * and reports a bad file in one line naming it and the problem. Pixels come out in [0, 1]. */
#ifndef MPIGAN_TFD_H
#define MPIGAN_TFD_H

#include <stdint.h>

#include "mpigan/dataset.h"
#include "mpigan/error.h"

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

/* TFD's expression labels as classes: labs_ex 1 to 7 (anger, disgust, fear, happy, sad,
 * surprise, neutral) becomes 0 to 6 in place, as pylearn2's TFD reads them. A row without one
 * (-1) or another value is an error naming the example of split `split` (a name) of file path. */
int mg_tfd_expression_classes(int32_t *labs_ex, int n, const char *path, const char *split,
                              mg_error *err);

#endif
