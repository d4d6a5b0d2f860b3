/* Run configuration: the YAML file a user writes, with `--set key=value` overrides.
 *
 * The struct is plain data (no pointers), so rank 0 can parse and validate it and broadcast it
 * as bytes: ranks can never disagree about the run. Every key is documented in README.md
 * ("Configuration reference"); mg_config_write prints the effective configuration in the same
 * form. */
#ifndef MPIGAN_CONFIG_H
#define MPIGAN_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "mpigan/error.h"

#define MG_MAX_LAYERS 16
#define MG_PATH_MAX 1024
#define MG_NAME_MAX 32

/* A layer is a dense map followed by an activation; `maxout` takes the max over `pieces` linear
 * pieces per unit. */
enum mg_act {
    MG_ACT_LINEAR,
    MG_ACT_RELU,
    MG_ACT_LEAKY_RELU,
    MG_ACT_SIGMOID,
    MG_ACT_TANH,
    MG_ACT_MAXOUT,
};

typedef struct {
    char name[MG_NAME_MAX]; /* checkpoint tensor names use it: /generator/h0/W */
    enum mg_act type;
    int units;
    int pieces;         /* maxout: linear pieces per unit; 1 for the other types */
    double irange;      /* weights drawn uniform in [-irange, irange]; biases start at 0 */
    double keep;        /* dropout on this layer's input: probability of keeping a unit (1 = off) */
    double input_scale; /* factor on kept inputs during training; default 1/keep (inverted) */
    double leak;        /* leaky_relu: slope for negative inputs */
    double max_col_norm; /* after each update, each column of W (one output's weights) is scaled
                            down to at most this L2 norm (pylearn2's max_col_norm); 0 = off */
} mg_layer_spec;

enum mg_optim_type { MG_OPTIM_SGD, MG_OPTIM_ADAM };

enum mg_preprocess {
    MG_PREPROCESS_SCALE, /* pixels in [0, 1] (bytes / 255), as the file gives them */
    MG_PREPROCESS_GCN,   /* global contrast normalisation: per example centred, L2 norm gcn_scale */
};

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
    int n_layers;
    mg_layer_spec layers[MG_MAX_LAYERS];
    mg_optim_spec optim;
} mg_net_spec;

enum mg_prior {
    MG_PRIOR_UNIFORM,       /* uniform(-1, 1) */
    MG_PRIOR_UNIFORM_SQRT3, /* uniform(-sqrt 3, sqrt 3): unit variance */
    MG_PRIOR_NORMAL,        /* standard normal */
};

enum mg_gen_loss {
    MG_GEN_LOSS_NONSATURATING, /* G minimizes -log D(G(z)) */
    MG_GEN_LOSS_MINIMAX,       /* G minimizes log(1 - D(G(z))) */
};

enum mg_nonfinite {
    MG_NONFINITE_STOP, /* NaN or Inf in a gradient: no update, the run stops at that step */
    MG_NONFINITE_SKIP, /* no update of that network at that step; the run goes on */
};

enum mg_mode {
    MG_MODE_ALTERNATING,  /* Algorithm 1: k D steps, then one G step */
    MG_MODE_SIMULTANEOUS, /* the original code: one minibatch, D and G updated together */
};

typedef struct {
    char source[MG_PATH_MAX]; /* the file the configuration was read from */
    uint64_t seed;

    struct {
        char format[16]; /* idx, cifar10, tfd or hdf5 */
        char train_images[MG_PATH_MAX]; /* idx */
        char test_images[MG_PATH_MAX];  /* idx */
        char path[MG_PATH_MAX];  /* cifar10: folder of the binary batches; tfd: the .mat; hdf5 */
        char test_path[MG_PATH_MAX]; /* hdf5: the test set's file (same dataset names) */
        char images[128];        /* hdf5: dataset of the images */
        char labels[128];        /* hdf5: dataset of the labels (optional) */
        int fold;                /* tfd: 0 to 4 */
        int split;               /* tfd: an mg_tfd_split, the examples to train on */
        int train_count; /* the first train_count examples train (0: all but the validation) */
        int valid_count; /* the last valid_count examples of the training source validate */
        enum mg_preprocess preprocess;
        double gcn_scale;
        int shared_memory; /* the ranks of a node share one copy of the training set */
    } data;

    struct {
        int noise_dim;
        enum mg_prior prior;
        int output_bias_from_data; /* output bias = logit of the training set's pixel means */
        mg_net_spec net;
    } generator;

    mg_net_spec discriminator; /* the last layer must be sigmoid with 1 unit */

    struct {
        int batch_size; /* global minibatch, split evenly over ranks */
        int k;          /* discriminator steps per generator step */
        enum mg_mode mode;
        enum mg_gen_loss generator_loss;
        int epochs;      /* length of the run in passes over the training split ... */
        int64_t steps;   /* ... unless steps > 0: generator updates */
        int check_every; /* steps between cross-rank parameter checksums (0 = never) */
        int log_every;   /* steps between progress lines and metrics records */
        int overlap;     /* D's gradient allreduce runs while G's next forward pass computes */
        int shared_allreduce; /* gradient sums through shared memory inside a node (comm.h) */
        enum mg_nonfinite nonfinite; /* what a NaN or Inf in an allreduced gradient does */
        double stall_seconds; /* a gradient allreduce waiting longer: report the late ranks */
    } train;

    struct {
        int every; /* steps between checkpoints (0: only at the end and when stopped) */
        int keep;  /* newest checkpoints kept in the run directory */
    } checkpoint;

    struct {
        int every;   /* steps between snapshots of G's output for fixed noise (0: never) */
        int count;   /* fixed noise vectors */
        int columns; /* of the PNG grid; 0: the smallest square that holds count */
        int png;     /* draw each snapshot as samples-<step>.png */
        int nearest; /* the grid's last column: the training example nearest each row's last sample */
    } samples;

    struct {
        int every;    /* epochs between Parzen estimates during training (0: never) */
        int samples;  /* generated samples in the window */
        int points;   /* validation examples scored (the first of the validation split) */
    } eval;

    struct {
        char dir[MG_PATH_MAX]; /* run directory; empty: runs/<config name>-<date-time> */
    } output;
} mg_config;

/* Fills every key with its documented default. */
void mg_config_defaults(mg_config *cfg);

/* Reads `path`, applies the overrides ("key=value", keys as in the file: `train.batch_size`,
 * `discriminator.layers.1.keep`), and validates everything, including that data files exist.
 * On error err->msg is one line: "<file>:<line>: <key>: <problem>" (or "--set <key>: ..."). */
int mg_config_load(mg_config *cfg, const char *path, const char *const *overrides,
                   int n_overrides, mg_error *err);

/* The same from YAML text in memory; `name` stands for the file name in messages. */
int mg_config_parse(mg_config *cfg, const char *text, const char *name,
                    const char *const *overrides, int n_overrides, mg_error *err);

/* The same, without overrides and without checking that the data files exist: for reading a
 * checkpoint's configuration when only its networks matter (sampling). */
int mg_config_parse_networks(mg_config *cfg, const char *text, const char *name, mg_error *err);

/* Writes the effective configuration as YAML that mg_config_load reads back to the same struct. */
int mg_config_write(const mg_config *cfg, FILE *f);

const char *mg_act_name(enum mg_act act);

#endif
