/* Multilayer perceptrons: layer kernels and a network over one contiguous parameter buffer.
 *
 * Kernels follow one convention: outputs first, then inputs, then sizes; backward kernels *add*
 * into weight and bias gradients (so a caller zeroes them once per step) or, asked to, *write*
 * them (a step whose one backward pass gives the whole gradient: no zeroing pass), and *write*
 * input gradients. Matrices are row-major; a batch is `rows` examples. Every GEMM goes through an
 * mg_gemm_fn, so the BLAS path and its plain-C twin run the very same layer code. */
#ifndef MPIGAN_NN_H
#define MPIGAN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/blas.h"
#include "mpigan/conv.h"
#include "mpigan/error.h"
#include "mpigan/real.h"
#include "mpigan/rng.h"

#define MG_MAX_LAYERS 16
#define MG_NAME_MAX 32

/* ---- specification: what a configuration says about a network ---- */

/* Activations. `maxout` takes the max over `pieces` linear pieces per unit. */
enum mg_act {
    MG_ACT_LINEAR,
    MG_ACT_RELU,
    MG_ACT_LEAKY_RELU,
    MG_ACT_SIGMOID,
    MG_ACT_TANH,
    MG_ACT_MAXOUT,
};
/* The activations' names, as configurations and checkpoints spell them, indexed by enum mg_act
 * and ended by NULL. */
extern const char *const mg_act_names[];
const char *mg_act_name(enum mg_act act); /* "unknown" for a value out of range */

/* What a layer computes before its activation. A configuration names a dense layer by its
 * activation (`type: relu`) and every other by its operation (`type: conv`, with `activation`). */
enum mg_op {
    MG_OP_DENSE,       /* x W + b */
    MG_OP_CONV,        /* 2-D convolution (NCHW) + b */
    MG_OP_MAXOUT_CONV, /* convolution to units * pieces channels + b, the max over each unit's
                          pieces (consecutive channels), then max pooling: pylearn2's
                          MaxoutConvC01B */
    MG_OP_DECONV,      /* transposed convolution + b (PyTorch's ConvTranspose2d) */
    MG_OP_RESHAPE,     /* the same values seen as (C, H, W) */
    MG_OP_BATCHNORM,   /* batch normalisation with a learned scale and shift */
};
/* "dense", "conv", "maxout_conv", "deconv", "reshape", "batchnorm", indexed by enum mg_op. */
extern const char *const mg_op_names[];

/* How weights start. */
enum mg_init {
    MG_INIT_UNIFORM, /* uniform in [-irange, irange] (pylearn2) */
    MG_INIT_NORMAL,  /* normal(0, std) (DCGAN: 0.02); a batch norm's scale normal(1, std) */
};
extern const char *const mg_init_names[];

typedef struct {
    char name[MG_NAME_MAX]; /* checkpoint tensor names use it: /generator/h0/W */
    enum mg_op op;
    enum mg_act type;   /* the activation (maxout_conv: MG_ACT_MAXOUT; reshape: linear) */
    int units;          /* dense: outputs; conv, deconv: output channels; maxout_conv: channels
                           after the maxout; batchnorm, reshape: 0 (they keep their input's) */
    int pieces;         /* maxout, maxout_conv: linear pieces per unit; 1 for the others */
    int kernel[2], stride[2], pad[2]; /* conv, deconv, maxout_conv: (height, width) */
    int out_pad[2];     /* deconv: output padding, below the stride */
    int pool[2], pool_stride[2]; /* maxout_conv: max pooling window and stride */
    int tied_bias;      /* conv, deconv, maxout_conv: one bias per output channel (1, pylearn2's
                           tied_b 1), or one per output value (0) */
    int bias;           /* conv, deconv: 0 for none (DCGAN's convolutions before a batch norm) */
    int algorithm;      /* conv, deconv, maxout_conv: enum mg_conv_algorithm (conv.h) */
    int shape[3];       /* reshape: (C, H, W) */
    int sync;           /* batchnorm: statistics of the global batch over all ranks (1) or of
                           each rank's own rows (0, PyTorch DDP's default) */
    double bn_momentum; /* batchnorm: weight of a batch in the running averages (0.1) */
    double bn_eps;      /* batchnorm: added to the variance (1e-5) */
    enum mg_init init;
    double irange;      /* init uniform: weights in [-irange, irange]; biases start at 0 */
    double std;         /* init normal: the weights' standard deviation */
    double keep;        /* dropout on this layer's input: probability of keeping a unit (1 = off) */
    double input_scale; /* factor on kept inputs during training; default 1/keep (inverted) */
    double leak;        /* leaky_relu: slope for negative inputs */
    double max_col_norm; /* dense: after each update, each column of W (one output's weights) is
                            scaled down to at most this L2 norm (pylearn2's max_col_norm); 0 = off */
} mg_layer_spec;

/* The word a configuration's `type` and a checkpoint's layer `type` give: the activation of a
 * dense layer, else the operation. */
const char *mg_layer_type_name(const mg_layer_spec *spec);

typedef struct {
    int n_layers;
    mg_layer_spec layers[MG_MAX_LAYERS];
} mg_net_spec;

/* ---- kernels ---- */

/* out(rows, n_out) = inp(rows, n_in) W(n_in, n_out) + b(n_out). (Not `I`: <complex.h>, which
 * OpenBLAS's cblas.h includes, defines it as a macro.) */
void mg_dense_forward(mg_real *out, const mg_real *inp, const mg_real *W, const mg_real *b,
                      int rows, int n_in, int n_out, mg_gemm_fn gemm);
/* dW(n_in, n_out) += inp^T dout; db(n_out) += colsum(dout); dinp(rows, n_in) = dout W^T.
 * add 0: dW = inp^T dout and db = colsum(dout) instead, never reading them (a GEMM with beta 0).
 * dW/db NULL: skipped (the generator step needs no discriminator weight gradients); dinp NULL:
 * skipped. */
void mg_dense_backward(mg_real *dinp, mg_real *dW, mg_real *db, const mg_real *dout,
                       const mg_real *inp, const mg_real *W, int rows, int n_in, int n_out,
                       int add, mg_gemm_fn gemm);

/* Elementwise activations over n values; maxout is separate. out may alias pre. */
void mg_act_forward(mg_real *out, const mg_real *pre, size_t n, enum mg_act act, double leak);
/* dpre = dout * act'(pre), using out where that is cheaper (sigmoid, tanh). May alias dout. */
void mg_act_backward(mg_real *dpre, const mg_real *dout, const mg_real *pre, const mg_real *out,
                     size_t n, enum mg_act act, double leak);

/* Fused bias and activation, the forward pass's one sweep after its GEMM (beta 0): pre(rows,
 * width) += b(width) in place, then out(rows, width) = act(pre). out must not alias pre.
 * Rounds exactly as mg_dense_forward followed by mg_act_forward (the reference pair). */
void mg_bias_act_forward(mg_real *out, mg_real *pre, const mg_real *b, int rows, int width,
                         enum mg_act act, double leak);
/* The same for maxout: pre(rows, U * P) += b(U * P), then mg_maxout_forward. */
void mg_bias_maxout_forward(mg_real *out, int32_t *argmax, mg_real *pre, const mg_real *b,
                            int rows, int U, int P);

/* out(rows, U) = max over p of pre(rows, U * P) at column u * P + p; argmax keeps p. */
void mg_maxout_forward(mg_real *out, int32_t *argmax, const mg_real *pre, int rows, int U, int P);
/* dpre(rows, U * P) = dout routed to the winning piece, 0 elsewhere. */
void mg_maxout_backward(mg_real *dpre, const mg_real *dout, const int32_t *argmax, int rows,
                        int U, int P);

/* The generator's loss. */
enum mg_gen_loss {
    MG_GEN_LOSS_NONSATURATING, /* G minimizes -log D(G(z)) */
    MG_GEN_LOSS_MINIMAX,       /* G minimizes log(1 - D(G(z))) */
};
/* Their names, indexed by enum mg_gen_loss and ended by NULL. */
extern const char *const mg_gen_loss_names[];

/* ---- losses, computed from the discriminator's logits l = D's pre-sigmoid output ----
 * Each returns the *sum* of the per-example losses of its rows and writes dlogit already divided
 * by `norm` (the global batch size), so that summing gradients over ranks gives the global
 * mean's gradient exactly. softplus(x) = log(1 + e^x) is evaluated without overflow. */

/* D minimizes -log D(x) - log(1 - D(G(z))) = softplus(-l_real) + softplus(l_fake).
 * Adds sum D(x) and sum D(G(z)) into *sum_d_real and *sum_d_fake (may be NULL). */
double mg_loss_d(mg_real *dl_real, mg_real *dl_fake, const mg_real *l_real, const mg_real *l_fake,
                 int rows, double norm, double *sum_d_real, double *sum_d_fake);
/* G: softplus(-l) (non-saturating) or -softplus(l) = log(1 - D(G(z))) (minimax). */
double mg_loss_g(mg_real *dl_fake, const mg_real *l_fake, int rows, enum mg_gen_loss loss,
                 double norm);
double mg_softplus(double x);

/* ---- network ---- */

/* A layer as built: its shapes and where its tensors live. Every tensor is seen flat per row:
 * an (N, C, H, W) batch is N rows of C * H * W values, channel-first. */
typedef struct {
    mg_layer_spec spec;
    int in, units, width;    /* values per row: input, output, pre-activation (dense: width =
                                units * pieces, the columns of W; maxout_conv: the detector
                                channels units * pieces at the convolution's size) */
    int in_c, in_h, in_w;    /* the input as (C, H, W); a flat input of n values is (n, 1, 1) */
    int out_c, out_h, out_w; /* the output likewise */
    int mid;                 /* maxout_conv: values per row after the maxout, before pooling */
    size_t w_off, b_off;     /* W (batchnorm: its scale) and b (its shift) as offsets into params */
    size_t w_n, b_n;         /* their sizes; b_n 0 for no bias */
    size_t s_off;            /* batchnorm: running mean (C), then running variance (C) in state */
    mg_conv_shape conv;      /* conv, deconv, maxout_conv */
    mg_pool_shape pool;      /* maxout_conv */
} mg_layer;

/* Gradient buffers carry this many extra slots after the parameters, so that training
 * statistics (loss sums, mean outputs) ride along in the one gradient allreduce of a step. */
#define MG_STATS_SLOTS 4

/* Sums a vector of doubles over the ranks that train together (in place): how a batch norm with
 * sync reaches the global batch without the network code knowing MPI (the trainer sets it to a
 * comm.h call). NULL: one rank's rows are the batch. */
typedef void (*mg_sum_fn)(void *arg, double *x, int n);

typedef struct {
    int n_layers;
    mg_layer layer[MG_MAX_LAYERS];
    int in_dim, out_dim;
    int max_rows;           /* activation buffers are sized for this many rows */
    int max_groups;         /* batch norm statistics for up to this many groups of rows */
    size_t n_params;
    mg_real *params;        /* (n_params) all weights and biases, layer after layer */
    mg_real *grads;         /* (n_params + MG_STATS_SLOTS) same layout, then the stats slots */
    size_t n_state;
    mg_real *state;         /* (n_state) batch norms' running averages: kept, not trained */
    mg_gemm_fn gemm;        /* mg_gemm_blas unless a test swaps in mg_gemm_ref */
    void (*progress)(void *); /* if set, called after each layer's forward: drives a
                                 communication in flight */
    void *progress_arg;
    void (*params_needed)(void *arg, size_t end); /* if set, called before each layer's forward
                                 with the end of its parameters: parameters [0, end) must be
                                 whole now (a sharded update's gather may still be in flight) */
    void *params_needed_arg;
    mg_sum_fn sum;          /* batch norms with sync sum their statistics through it */
    void *sum_arg;
    void (*grads_done)(void *arg, size_t from); /* if set, called by a backward pass that writes
                                 weight gradients each time those from parameter `from` on are
                                 final (after each layer with parameters): starts their sums */
    void *grads_done_arg;
    int keep_in;            /* the last keep_in input values of each row are never dropped out:
                               a conditional network's label (labels.h); set after init */

    /* Activations of the last forward pass; layer l reads x[l] and writes pre[l], out[l]. */
    const mg_real *x[MG_MAX_LAYERS]; /* (rows, in) input after dropout */
    mg_real *xdrop[MG_MAX_LAYERS];   /* (rows, in) storage for x[l] when layer l drops out */
    mg_real *mask[MG_MAX_LAYERS];    /* (rows, in) dropout multipliers: 0 or input_scale */
    mg_real *pre[MG_MAX_LAYERS];     /* (rows, width) pre-activations */
    mg_real *out[MG_MAX_LAYERS];     /* (rows, units) outputs (reshape: its input) */
    mg_real *mid[MG_MAX_LAYERS];     /* (rows, mid) maxout_conv: after the maxout */
    int32_t *argmax[MG_MAX_LAYERS];  /* maxout winners: (rows, units); maxout_conv (rows, mid) */
    int32_t *argpool[MG_MAX_LAYERS]; /* maxout_conv: pooling winners (rows, units) */
    double *bn_stats[MG_MAX_LAYERS]; /* batchnorm: (max_groups, 2, C) mean and 1/sd per group */
    double *bn_count[MG_MAX_LAYERS]; /* batchnorm: (max_groups) values per channel and group */
    int dropped;                     /* the last forward pass was a training pass */
    int groups;                      /* ... with its rows in this many groups */
    int fwd_rows;                    /* rows of the last forward pass */
    mg_real *dbuf[2];                /* (max_rows, widest layer) backward ping-pong */
    mg_real *work;                   /* the convolutions' work space */
    double *bn_sums;                 /* (max_groups, 2 C + 1) batch norm sums to reduce */
    uint32_t *u24;                   /* (widest input) 24-bit uniforms for one row's mask */
    double *colnorm;                 /* (widest layer) column norms for max_col_norm */
    void *arena;                     /* one allocation behind every buffer above */
    size_t arena_bytes;
} mg_net;

/* Sizes every buffer from the spec for an input of shape (in_c, in_h, in_w), batches of up to
 * max_rows rows and batch norm statistics of up to max_groups groups of rows; nothing is
 * allocated after this. A spec whose shapes do not chain fails with one line naming the layer
 * and the shapes ("layer 1 (h1): kernel 8x8 larger than its padded input 5x5"). */
int mg_net_init_shape(mg_net *net, const mg_net_spec *spec, int in_c, int in_h, int in_w,
                      int max_rows, int max_groups, mg_error *err);
/* The output shape of a spec for an input (in_c, in_h, in_w), without building it; -1 with
 * mg_net_init_shape's message when its shapes do not chain. */
int mg_net_out_shape(const mg_net_spec *spec, int in_c, int in_h, int in_w, int *out_c,
                     int *out_h, int *out_w, mg_error *err);

/* The same for a flat input of in_dim values, one group. */
int mg_net_init(mg_net *net, const mg_net_spec *spec, int in_dim, int max_rows, mg_error *err);
void mg_net_free(mg_net *net);

/* Weights from (seed, MG_STREAM_INIT, net_id): uniform in +-irange or normal(0, std) by the
 * layer's init; biases 0; batch norms' scale 1 (normal(1, std) with init normal), shift 0,
 * running mean 0 and variance 1. */
void mg_net_init_params(mg_net *net, uint64_t seed, uint32_t net_id);

mg_real *mg_net_weights(const mg_net *net, int l); /* (in, width); conv: (OC, IC, KH, KW) */
mg_real *mg_net_bias(const mg_net *net, int l);    /* (width); conv: (OC) or (OC, OH, OW) */

/* The tensors of layer l as a checkpoint stores them: name ("W", "b", "gamma", "beta",
 * "running_mean", "running_var"), shape, and where the values are: params or state. */
typedef struct {
    const char *name;
    int rank;
    size_t dims[5];
    int in_state; /* 1: net->state; 0: net->params */
    size_t off, n;
} mg_tensor_info;
#define MG_MAX_LAYER_TENSORS 4
/* Fills t (room for MG_MAX_LAYER_TENSORS) and returns how many. */
int mg_layer_tensors(const mg_net *net, int l, mg_tensor_info *t);

/* A training pass: dropout masks, row r of the batch drawing from (key, row_id[r]); and batch
 * norm statistics per group: the rows are `groups` equal blocks (0 or 1: one), each normalised
 * with its own statistics, as separate batches would be (D's real and fake rows; G's phases). */
typedef struct {
    mg_rng_key key;
    const uint64_t *row_id; /* (rows) global example indices */
    int groups;
} mg_dropout;

/* Forward pass over rows <= max_rows; drop NULL means evaluation: no dropout, batch norms with
 * their running averages. Returns the last layer's output (rows, out_dim); inp must stay
 * untouched until the matching backward. */
const mg_real *mg_net_forward(mg_net *net, const mg_real *inp, int rows, const mg_dropout *drop);

/* Logits of the last layer (its pre-activations): (rows, out_dim). */
const mg_real *mg_net_logits(const mg_net *net);

enum {
    MG_BACKWARD_FROM_LOGITS = 1, /* dout is the gradient of the last pre-activation */
    MG_BACKWARD_NO_WEIGHTS = 2,  /* only propagate to the input: no weight gradients */
    MG_BACKWARD_SET_GRADS = 4,   /* write the weight gradients rather than add into them */
};

/* Backward over rows [row0, row0 + rows) of the last forward pass, which with batch norms must be
 * whole groups of it. dout (rows, out_dim) is the gradient of the output (or of the logits);
 * weight gradients are added into net->grads, or with MG_BACKWARD_SET_GRADS written over its
 * first n_params values (0 when rows is 0), which are then never read: a step with one backward
 * pass per net needs no zeroing. The stats slots are never touched. dinp (rows, in_dim) receives
 * the input gradient unless NULL. */
void mg_net_backward(mg_net *net, mg_real *dinp, const mg_real *dout, int row0, int rows,
                     int flags);

/* Scales down every column of W (the weights into one output, or one maxout piece) whose L2 norm
 * exceeds its layer's max_col_norm to exactly that norm (pylearn2's constraint, applied after
 * each update). Layers with max_col_norm 0 are left alone. */
void mg_net_constrain(mg_net *net);
/* The same for columns [width part / parts, width (part + 1) / parts) of every constrained
 * layer: ranks sharing one copy of the parameters each take their columns, writing no other. */
void mg_net_constrain_part(mg_net *net, int part, int parts);
/* Non-zero if some layer has a max_col_norm to keep. */
int mg_net_has_constraint(const mg_net *net);

/* Sets the last layer's biases so that its output is the pixel marginals of the data where its
 * input is 0: the inverse of its activation at mean (sigmoid: logit, tanh: atanh, both of mean
 * clamped 1e-7 inside the open range; linear: mean itself). mean has out_dim values, and the last
 * layer a bias per output value (dense, or untied); other activations are left alone. */
void mg_net_bias_from_mean(mg_net *net, const double *mean);

/* CRC-32 of a network's parameter bytes: replicas on every rank must have the same. (Not the
 * state: batch norms without sync keep running averages of their own rank's rows.) */
uint32_t mg_net_checksum(const mg_net *net);

#endif
