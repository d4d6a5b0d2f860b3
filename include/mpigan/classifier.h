/* A classifier of the data set's labels, trained data-parallel as the GAN is (train.h): every rank
 * holds a replica, computes the gradient of its B/N rows of each global minibatch, one allreduce
 * sums them, and every rank applies the same update. Its layers are mpigan's own (nn.h), the last
 * a linear layer whose outputs are the logits of a softmax over the classes.
 *
 * It is what the quality metrics of a generator measure with (quality.h): its softmax gives the
 * class histogram and the classifier score, its penultimate layer (the last layer's input) the
 * features of the Frechet distance, the offline stand-in for FID's Inception network. */
#ifndef MPIGAN_CLASSIFIER_H
#define MPIGAN_CLASSIFIER_H

#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/dataset.h"
#include "mpigan/error.h"
#include "mpigan/nn.h"
#include "mpigan/optim.h"
#include "mpigan/train.h"

/* Rows of a classifier's passes outside training (evaluation, features): the ranks take whole
 * chunks of this many examples with one BLAS thread each, so that the figures do not depend on
 * the rank count (as mg_generate's samples). */
#define MG_CLASSIFIER_CHUNK 256

/* softmax cross-entropy of logits l (rows, classes) against labels (rows): returns the *sum* of
 * -log softmax(l_i)[labels_i] and writes dlogit = (softmax(l_i) - onehot(labels_i)) / norm (norm:
 * the global batch, so that summed over ranks it is the global mean's gradient). The log-sum-exp
 * is shifted by each row's largest logit: no overflow for any finite logits. *correct (if not
 * NULL) receives the rows whose largest logit (the lowest class of equal ones) is the label.
 * dlogit NULL: the loss alone. */
double mg_loss_softmax(mg_real *dlogit, const mg_real *l, const int32_t *labels, int rows,
                       int classes, double norm, int *correct);

/* p (rows, classes) = softmax of the logits l (rows, classes), each row in double, rounded once. */
void mg_softmax_rows(mg_real *p, const mg_real *l, int rows, int classes);

/* What a configuration says about a classifier. */
typedef struct {
    uint64_t seed;       /* initial parameters, dropout masks, data order */
    mg_net_spec net;     /* the last layer linear, `classes` units */
    mg_optim_spec optim;
    mg_train_spec train; /* batch_size, epochs, steps, check_every, log_every, shared_allreduce,
                            nonfinite, stall_seconds; the GAN's keys are not used */
    int classes;
} mg_classifier_spec;

/* Where the time of a step goes. */
enum mg_classifier_timer {
    MG_CTIMER_DATA,    /* gathering the minibatch */
    MG_CTIMER_COMPUTE, /* forward and backward */
    MG_CTIMER_REDUCE,  /* the gradient allreduce */
    MG_CTIMER_UPDATE,  /* the optimizer step */
    MG_CTIMER_COUNT
};
extern const char *const mg_classifier_timer_names[MG_CTIMER_COUNT];

/* One step's statistics over the global minibatch. */
typedef struct {
    double loss;     /* mean cross-entropy */
    double accuracy; /* fraction of the minibatch classified right (in training mode: dropout) */
    int stop;        /* some rank asked to stop during this step */
    int nonfinite;   /* NaN or Inf in the summed gradients: the update was left out */
    int bad_params;  /* the update made the parameters NaN or Inf */
} mg_classifier_stats;

typedef struct {
    mg_classifier_spec spec;
    const mg_comm *comm;
    const mg_dataset *data;  /* the training split with its labels, identical on every rank */
    int rank, nranks;
    int batch, rows;         /* global minibatch, this rank's rows of it */
    mg_net net;
    mg_optim opt;
    int64_t step;            /* updates done; one minibatch each */
    int64_t batches_per_epoch;
    uint32_t *perm;          /* (data->n) data order of the current epoch */
    int64_t perm_epoch;
    uint64_t *row_id;        /* (rows) global row of each of this rank's rows */
    mg_real *x;              /* (rows, dim) this rank's examples */
    int32_t *y;              /* (rows) their labels */
    mg_real *dlogit;         /* (rows, classes) */
    mg_reducer *sum;
    double timer[MG_CTIMER_COUNT];
    double mark;
    int64_t skipped;
    int stop_request;        /* set by the caller on any rank: travels with the gradients */
} mg_classifier;

/* Builds the network (its input the data's (C, H, W)) and optimizer, parameters drawn on rank 0
 * and broadcast. Fails alike on every rank when the batch does not split over the ranks, the data
 * has no labels or another class count, or the network's last layer does not give `classes`
 * values. */
int mg_classifier_init(mg_classifier *c, const mg_classifier_spec *spec, const mg_dataset *data,
                       const mg_comm *comm, mg_error *err);
void mg_classifier_free(mg_classifier *c);

/* One update on the next global minibatch (one permutation of the split per epoch, the same on
 * every rank). */
void mg_classifier_step(mg_classifier *c, mg_classifier_stats *s);

int64_t mg_classifier_total_steps(const mg_classifier *c);
double mg_classifier_epoch(const mg_classifier *c);
int mg_classifier_check_replicas(const mg_classifier *c, mg_error *err);
/* Collective: rank 0's parameters, optimizer state and step to every rank (after a load). */
void mg_classifier_broadcast_state(mg_classifier *c);

/* Collective: the fraction of the examples of ds (every rank the same, with labels) that net
 * classifies as their labels, in evaluation mode; chunks of MG_CLASSIFIER_CHUNK examples over the
 * ranks, one BLAS thread each: the same figure on any number of ranks. net must take at least
 * MG_CLASSIFIER_CHUNK rows. */
double mg_classifier_accuracy(mg_net *net, const mg_dataset *ds, const mg_comm *comm);

/* The softmax probabilities (n, classes) and penultimate features (n, net's last layer's inputs)
 * of the examples x (n, dim) in evaluation mode, in chunks of MG_CLASSIFIER_CHUNK rows through
 * net's buffers, on this rank alone (prob or feat may be NULL). */
void mg_classifier_apply(mg_net *net, const mg_real *x, int64_t n, mg_real *prob, mg_real *feat);

/* Collective: the softmax probabilities (n, classes) and penultimate features (n, net's last
 * layer's inputs) of the examples x (n, dim), every rank holding x, in evaluation mode, chunked
 * as mg_classifier_accuracy; gathered on root (prob, feat there; others may pass NULL). */
void mg_classifier_outputs(mg_real *prob, mg_real *feat, mg_net *net, const mg_real *x, int64_t n,
                           const mg_comm *comm, int root);

#endif
