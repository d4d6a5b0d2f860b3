/* The data a configuration names: its training, validation and test splits, in any supported
 * format (data.format), with the paper's preprocessing. */
#ifndef MPIGAN_SPLITS_H
#define MPIGAN_SPLITS_H

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/error.h"

/* The training split of cfg, preprocessed: read by rank 0 of comm and copied once into each
 * node's shared memory, so that the ranks of a node share one copy and every rank sees the same
 * examples. Values that are all pixel bytes (not GCN'd, not float input) are kept as bytes
 * (ds->bytes, ds->x NULL): read rows with mg_dataset_row. Collective; on an error every rank
 * returns -1, and err is set on rank 0. Free with mg_dataset_unload (collective too). */
int mg_split_load_train(mg_dataset *ds, const mg_config *cfg, const mg_comm *comm,
                        mg_error *err);

/* Rank 0's part of it: the training split of cfg read into a private ds (no MPI). */
int mg_split_read_train(mg_dataset *ds, const mg_config *cfg, mg_error *err);

enum mg_split_kind { MG_SPLIT_VALID, MG_SPLIT_TEST };

/* The validation or test examples of cfg's data set, preprocessed like the training split, at
 * most max_count of them (<= 0: all), into a private ds (no MPI).
 * Validation: the last data.valid_count examples of the training source, or for TFD with
 * valid_count 0 the fold's valid split. Test: idx data.test_images; cifar10 test_batch.bin in
 * data.path; tfd the fold's test split; hdf5 data.test_path. */
int mg_split_read(mg_dataset *ds, const mg_config *cfg, enum mg_split_kind which, int max_count,
                  mg_error *err);

/* Global contrast normalisation as the paper's CIFAR-10 and TFD runs used it (pylearn2's
 * global_contrast_normalize with scale 55, subtract_mean, no bias): each example minus its own
 * mean, then rescaled to L2 norm `scale`; an example whose norm / scale is below 1e-8 (pylearn2's
 * min_divisor) is only centred. */
void mg_gcn(mg_dataset *ds, double scale);

#endif
