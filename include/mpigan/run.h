/* The commands of the mpigan program that train, sample, describe and convert, as library calls:
 * each returns the process exit status (MG_EXIT_*, error.h). src/main.c only parses the command
 * line into these option structs; `eval` is in evaluate.h, `plot` in plot.h. */
#ifndef MPIGAN_RUN_H
#define MPIGAN_RUN_H

#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/error.h"
#include "mpigan/session.h"

typedef struct {
    const char *checkpoint;          /* file, or run directory (its latest checkpoint) */
    int64_t n;                       /* samples */
    const char *out;                 /* HDF5 file */
    const char *png;                 /* grid picture, or NULL */
    int columns;                     /* of the grid; 0: square (a conditional G's: a row per class) */
    uint64_t set;                    /* which noise set: 0 is the training snapshots' */
    int cls;                         /* a conditional G's samples of this class only, or
                                        MG_ALL_CLASSES (-1): sample i of class i mod classes */
} mg_sample_opts;

typedef struct {
    const char *format;              /* idx, cifar10 or tfd */
    const char *const *inputs;       /* idx: images [labels]; cifar10: batch files; tfd: the .mat */
    int n_inputs;
    const char *out;                 /* HDF5 file */
    int fold;                        /* tfd */
    int split;                       /* tfd: an mg_tfd_split */
} mg_prepare_opts;



/* Serial: converts a data set once into mpigan's HDF5 input format. */
int mg_run_prepare(const mg_prepare_opts *o);

/* Collective over comm. */
int mg_run_train(const mg_train_opts *o, const mg_comm *comm);
int mg_run_sample(const mg_sample_opts *o, const mg_comm *comm);
/* Serial. */
int mg_run_info(const char *checkpoint);

#endif
