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
#include "mpigan/files.h"
#include "mpigan/nn.h"
#include "mpigan/optim.h"
#include "mpigan/train.h"

/* Limits of a configuration, checked when it is read, so that every size the program forms from it
 * stays in range (README "Values"). */
#define MG_CONFIG_MAX_DEPTH 64 /* YAML nesting; the schema needs 4 levels (generator.layers.0.units) */
/* units, noise_dim, batch_size, samples.count, samples.columns, eval.samples, eval.points: the
 * IDX reader's largest example (4096 x 4096), far above any network trained here. */
#define MG_CONFIG_MAX_DIM (1 << 24)
/* train.k: D updates per G update. The noise of phase p of a step is drawn from noise stream p;
 * stream 0xffff is the sample noise's (generate.c), so k + 1 phases stay below it. */
#define MG_CONFIG_MAX_K 65534
#define MG_CONFIG_MAX_PIECES 1024 /* maxout pieces per unit */
#define MG_CONFIG_MAX_SIDE 4096   /* a kernel, stride, padding, pool window or image side */
/* Values in any one buffer the configuration sizes (a layer's activations, weights or inputs for
 * a whole batch, the fixed noise, a snapshot): GEMM sizes and row offsets are ints. */
#define MG_CONFIG_MAX_VALUES 2147483647
/* output.dir leaves this many bytes of MG_PATH_MAX for "/<file>" inside the run directory: the
 * longest is "/samples-<19-digit step>.png" with the ".tmp-XXXXXX" of its temporary (43). */
#define MG_RUN_NAME_ROOM 64
/* train.stall_seconds: 0 (off), or in this range. */
#define MG_STALL_MIN_SECONDS 0.01
#define MG_STALL_MAX_SECONDS 86400.0

enum mg_preprocess {
    MG_PREPROCESS_SCALE, /* pixels in [0, 1] (bytes / 255), as the file gives them */
    MG_PREPROCESS_GCN,   /* global contrast normalisation: per example centred, L2 norm gcn_scale */
};

typedef struct {
    char source[MG_PATH_MAX]; /* the file the configuration was read from */
    uint64_t seed;

    struct {
        char format[16]; /* idx, cifar10, tfd or hdf5 */
        char train_images[MG_PATH_MAX]; /* idx */
        char test_images[MG_PATH_MAX];  /* idx */
        char train_labels[MG_PATH_MAX]; /* idx: the labels of train_images (optional) */
        char test_labels[MG_PATH_MAX];  /* idx: the labels of test_images (optional) */
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
        double range[2]; /* scale: the pixel values byte 0 and byte 255 stand for ([0, 1]; [-1, 1]
                            for a tanh G) */
        int shared_memory; /* the ranks of a node share one copy of the training set */
        int classes;       /* how many classes the labels count: given, or the format's own
                              (cifar10 10, tfd 7); 0 where there are no labels */
    } data;

    /* A conditional GAN: G and D take the one-hot label beside their input (labels.h). */
    struct {
        int enabled;
        enum mg_label_draw fake_labels; /* the fake rows' labels: uniform or as the data's */
    } conditional;

    /* A classifier configuration (`mpigan classifier train`) has this instead of generator and
     * discriminator: its layers end in a linear layer of data.classes units, the logits of a
     * softmax. n_layers 0: a GAN configuration. */
    struct {
        mg_net_spec net;
        mg_optim_spec optim;
    } classifier;

    mg_generator_spec generator;
    mg_discriminator_spec discriminator; /* the last layer must be sigmoid with 1 unit */

    mg_train_spec train;

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
        char classifier[MG_PATH_MAX]; /* a classifier checkpoint: its figures too ("" none) */
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

/* The same YAML as a string (malloc'd), as checkpoints keep it; out of memory ends the process. */
char *mg_config_text(const mg_config *cfg);

/* What the trainer needs of cfg: seed, generator, discriminator, training loop and condition. */
mg_gan_spec mg_config_gan(const mg_config *cfg);

/* 1 for a classifier configuration, 0 for a GAN's. */
int mg_config_is_classifier(const mg_config *cfg);

/* The classes G and D are conditioned on: data.classes for a conditional GAN, else 0. */
int mg_config_gan_classes(const mg_config *cfg);

/* 1 if cfg's training split comes with labels: idx data.train_labels, cifar10 always, tfd a
 * labelled split (train, valid, test), hdf5 data.labels. */
int mg_config_has_labels(const mg_config *cfg);

/* How wide the values of one [0, 1] pixel are in the data G learns: data.range's span for pixels
 * as the file gives them, 1 for GCN'd data (which has no pixel scale of its own). Parzen windows
 * are reported in [0, 1] pixel units through it, so that figures compare with the paper's. */
double mg_config_pixel_span(const mg_config *cfg);

#endif
