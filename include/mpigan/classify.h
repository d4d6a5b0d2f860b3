/* `mpigan classifier train CONFIG`: a classifier of the data set's labels (classifier.h), trained
 * data-parallel with a GAN run's configuration style, run directory and checkpoints; and a
 * classifier loaded from its checkpoint for `mpigan eval --classifier` and eval.classifier. */
#ifndef MPIGAN_CLASSIFY_H
#define MPIGAN_CLASSIFY_H

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/error.h"
#include "mpigan/nn.h"
#include "mpigan/session.h"

/* Collective over comm; returns the process exit status (MG_EXIT_*). The options are a training
 * run's: config (or the checkpoint's with resume), overrides, out, resume, force, quiet (progress
 * is always a line per record). The run directory gets config.yaml, metrics.jsonl (loss and accuracy every
 * train.log_every steps, validation accuracy at each epoch's end, test accuracy in the last
 * record), checkpoints and run.json. */
int mg_run_classifier_train(const mg_train_opts *o, const mg_comm *comm);

/* A classifier for evaluation, as its checkpoint holds it. */
typedef struct {
    char path[MG_PATH_MAX];  /* the checkpoint */
    mg_net net;              /* for up to MG_CLASSIFIER_CHUNK rows */
    int classes;
    int features;            /* values of its penultimate layer (the last layer's input) */
    int channels, height, width; /* the examples it takes */
    int64_t step;
    /* The values it was trained on: its configuration's data.preprocess gcn (with gcn_scale), or
     * pixels in data.range [lo, hi]. */
    int gcn;
    double gcn_scale, lo, hi;
} mg_classifier_model;

/* Examples x (n values) of data configured as cfg, into the values m was trained on: pixels of one
 * data.range into another's (lo + (hi - lo) p for the same pixel p: exact up to rounding). Data
 * of GCN'd values have no pixel scale: the classifier must have been trained on GCN'd data of
 * the same gcn_scale. -1 with one line naming the classifier otherwise. */
int mg_classifier_model_input(const mg_classifier_model *m, const mg_config *cfg, mg_real *x,
                              size_t n, mg_error *err);

/* Collective: the classifier of checkpoint `path` (a file, or a run directory: its newest), read
 * by rank 0 and broadcast. It must take examples of (channels, height, width), the data's of the
 * evaluation; refused with one line otherwise, as a GAN's checkpoint is. On an error every rank
 * returns -1 (err set on rank 0) with nothing to free. */
int mg_classifier_model_load(mg_classifier_model *m, const char *path, int channels, int height,
                             int width, const mg_comm *comm, mg_error *err);
void mg_classifier_model_free(mg_classifier_model *m);

/* The same on this process alone (no MPI): a run's rank 0 measuring its samples as it trains
 * (eval.classifier). */
int mg_classifier_model_read(mg_classifier_model *m, const char *path, int channels, int height,
                             int width, mg_error *err);

#endif
