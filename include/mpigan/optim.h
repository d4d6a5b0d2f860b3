/* Optimizers over a flat parameter buffer: SGD with momentum (pylearn2's form, with its momentum
 * ramp and exponential learning-rate decay, as the paper trained) and Adam. One loop each. */
#ifndef MPIGAN_OPTIM_H
#define MPIGAN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/error.h"
#include "mpigan/real.h"

enum mg_optim_type { MG_OPTIM_SGD, MG_OPTIM_ADAM };
/* "sgd", "adam", indexed by enum mg_optim_type and ended by NULL. */
extern const char *const mg_optim_names[];

/* What a configuration says about an optimizer. */
typedef struct {
    enum mg_optim_type type;
    double lr;               /* base learning rate */
    double lr_decay;         /* sgd: lr after t updates = max(min_lr, lr / lr_decay^t) */
    double min_lr;
    double momentum;         /* sgd: momentum before momentum_start */
    double final_momentum;   /* sgd: reached at momentum_saturate, linear ramp in between */
    int momentum_start;      /* epochs (completed passes over the training split) */
    int momentum_saturate;
    double beta1, beta2, eps; /* adam */
} mg_optim_spec;

typedef struct {
    mg_optim_spec spec;
    size_t n;
    mg_real *m;    /* (n) sgd: velocity; adam: first moment */
    mg_real *v;    /* (n) adam: second moment; NULL for sgd */
    int64_t t;     /* updates applied so far */
} mg_optim;

int mg_optim_init(mg_optim *opt, const mg_optim_spec *spec, size_t n, mg_error *err);
void mg_optim_free(mg_optim *opt);

/* Learning rate of update t (0-based): sgd lr / lr_decay^t floored at min_lr; adam: lr. */
double mg_optim_lr(const mg_optim_spec *spec, int64_t t);

/* Momentum of the updates made once `epochs` passes over the training split are complete,
 * exactly pylearn2's MomentumAdjustor(final_momentum, start = momentum_start,
 * saturate = momentum_saturate) as the paper's released code runs it: its count of on_monitor
 * calls (one before the first epoch, one after each) is c = epochs + 1, and the momentum is
 *   momentum (1 - a) + final_momentum a,  a = clip((c - start) / (saturate - start), 0, 1),
 * or, when saturate == start, final_momentum once c >= start and momentum before.
 * So with start 1, saturate 250 (the paper's): epoch 0 trains at momentum, epoch e at
 * a = e / 249, and epochs 249 on at final_momentum. */
double mg_optim_momentum(const mg_optim_spec *spec, int64_t epochs);

/* One update of params from grads (both (n)).
 * sgd:  v = mu v - lr g;  p += v
 * adam: m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr mhat / (sqrt(vhat) + eps)
 * Returns 1 if every parameter it wrote is finite, 0 if the update made one NaN or +-Inf (finite
 * gradients times too large a rate): checked in the update's own loop, at no extra pass. */
int mg_optim_step(mg_optim *opt, mg_real *params, const mg_real *grads, int64_t epochs);

/* The same over pieces [lo[i], hi[i]) of params and grads, whose state lies one piece after
 * another in opt (opt->n their total): a sharded update's part of the parameters. */
int mg_optim_step_pieces(mg_optim *opt, mg_real *params, const mg_real *grads, const size_t *lo,
                         const size_t *hi, int n_pieces, int64_t epochs);

#endif
