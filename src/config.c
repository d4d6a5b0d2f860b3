/* Run configuration. libyaml builds the document tree; each mapping is then read against a table
 * of its keys (type, destination, bounds), so every key is checked the same way and every message
 * can name the file, the line, the key and the problem. `--set` overrides edit the tree before it
 * is read, so they pass exactly the same checks as keys written in the file. */
#define _POSIX_C_SOURCE 200809L
#include "mpigan/config.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#ifndef NAME_MAX
#define NAME_MAX 255
#endif
#ifdef PATH_MAX
_Static_assert(MG_PATH_MAX <= PATH_MAX, "a path mpigan holds must be one the system accepts");
#endif

#define KEY_LEN 256                 /* key paths in messages; longer (unknown) keys are cut */
#define MAX_FIELDS 32               /* keys in the largest mapping */
#define MAX_CONFIG_BYTES (16 << 20) /* anything larger is not a configuration file */

/* Name tables of the model's enums live with the model (nn.h, optim.h, rng.h, train.h); these are
 * the configuration's own. */
static const char *const format_names[] = {"idx", "cifar10", "tfd", "hdf5", NULL};
static const char *const split_names[] = {"unlabeled", "train", "valid", "test", NULL};
static const char *const dtype_names[] = {"float32", "bf16", NULL};
/* A K_REAL with names takes their one word too, stored as the field's `word` value. */
static const char *const auto_names[] = {"auto", NULL};
static const char *const preprocess_names[] = {
    [MG_PREPROCESS_SCALE] = "scale", [MG_PREPROCESS_GCN] = "gcn", NULL};

/* ---- Schema ---------------------------------------------------------------------------------- */

enum kind {
    K_INT,     /* int */
    K_I64,     /* int64_t */
    K_U64,     /* uint64_t */
    K_REAL,    /* double */
    K_BOOL,    /* int, 0 or 1 */
    K_ENUM,    /* int: index into names */
    K_WORD,    /* char[size] holding one of names */
    K_STR,     /* char[size] */
    K_IDENT,   /* char[size] of [A-Za-z0-9_], at least one */
    K_PATH,    /* char[size]: a data file, resolved against the configuration's directory */
    K_INTS,    /* int[size / sizeof(int)]: one integer for all, or a list of exactly that many */
    K_REALS,   /* double[size / sizeof(double)]: a list of exactly that many numbers */
    K_SECTION, /* mapping read with `sub`, whose offsets are from the same base */
    K_LAYERS,  /* list of layer mappings into the mg_net_spec at off */
    K_OPTIM,   /* optimizer mapping into the mg_optim_spec at off */
};

enum {
    F_REQUIRED = 1 << 0,
    F_MIN = 1 << 1,      /* value >= min ... */
    F_MIN_OPEN = 1 << 2, /* ... or > min */
    F_MAX = 1 << 3,      /* value <= max ... */
    F_MAX_OPEN = 1 << 4, /* ... or < max */
    F_DISCRIMINATOR = 1 << 5,
    F_DIR_OK = 1 << 6,   /* K_PATH: a folder will do (CIFAR-10's batches) */
    F_NONEMPTY = 1 << 7, /* K_PATH: optional, but not given empty */
    F_ZERO_OFF = 1 << 8, /* 0 (off) is allowed besides the range [min, max] */
    F_RUN_DIR = 1 << 9,  /* K_STR: a run directory, with room for the file names put in it */
    F_CLASSIFIER = 1 << 10, /* K_LAYERS: a classifier's, ending in the logits */
};

/* `only` restricts a key to some layer or optimizer types: a bit per type index; 0 means any. */
#define ONLY(type) (1 << (type))

typedef struct field {
    const char *key;
    enum kind kind;
    size_t off, size;
    int flags;
    double min, max;
    const char *const *names;
    const struct field *sub;
    int only;
    double word; /* K_REAL with names: the value that its one word (names[0]) stands for */
} field;

#define AT(type, m) .off = offsetof(type, m), .size = sizeof(((type *)0)->m)
#define CFG(m) AT(mg_config, m)
#define LAYER(m) AT(mg_layer_spec, m)
#define OPT(m) AT(mg_optim_spec, m)
#define AT_LEAST(x) .flags = F_MIN, .min = (x)
#define RANGE(lo, hi) .flags = F_MIN | F_MAX, .min = (lo), .max = (hi)
#define ABOVE(x) .flags = F_MIN | F_MIN_OPEN, .min = (x)
#define UNIT_CLOSED_OPEN .flags = F_MIN | F_MAX | F_MAX_OPEN, .min = 0, .max = 1 /* [0, 1) */
#define END {.key = NULL}

/* A layer's `type`: a dense layer's activation, or another layer's operation. Index t of this
 * list is the activation t for t <= MG_ACT_MAXOUT, then the operations in enum mg_op's order from
 * conv. */
static const char *const layer_type_names[] = {
    "linear", "relu", "leaky_relu", "sigmoid", "tanh", "maxout",
    "conv",   "maxout_conv", "deconv", "reshape", "batchnorm", NULL};
enum { T_CONV = MG_ACT_MAXOUT + 1, T_MAXOUT_CONV, T_DECONV, T_RESHAPE, T_BATCHNORM };
/* The activations another layer may end in: every one but maxout. */
static const char *const activation_names[] = {"linear", "relu", "leaky_relu", "sigmoid", "tanh",
                                               NULL};

#define DENSE_TYPES                                                                            \
    (ONLY(MG_ACT_LINEAR) | ONLY(MG_ACT_RELU) | ONLY(MG_ACT_LEAKY_RELU) | ONLY(MG_ACT_SIGMOID) |  \
     ONLY(MG_ACT_TANH) | ONLY(MG_ACT_MAXOUT))
#define CONV_TYPES (ONLY(T_CONV) | ONLY(T_MAXOUT_CONV) | ONLY(T_DECONV))
#define WEIGHTED_TYPES (DENSE_TYPES | CONV_TYPES)

/* Indices into layer_fields and optim_fields, for the keys their readers treat specially. */
enum {
    L_NAME, L_TYPE, L_UNITS, L_CHANNELS, L_PIECES, L_ACTIVATION, L_KERNEL, L_STRIDE, L_PAD,
    L_OUT_PAD, L_POOL, L_POOL_STRIDE, L_TIED_BIAS, L_BIAS, L_ALGORITHM, L_SHAPE, L_SYNC, L_MOMENTUM, L_EPS,
    L_INIT, L_IRANGE, L_STD, L_KEEP, L_INPUT_SCALE, L_LEAK, L_MAX_COL_NORM, L_N
};
enum {
    O_TYPE, O_LR, O_LR_DECAY, O_MIN_LR, O_MOMENTUM, O_FINAL_MOMENTUM, O_MOMENTUM_START,
    O_MOMENTUM_SATURATE, O_BETA1, O_BETA2, O_EPS, O_N
};

_Static_assert(L_N < MAX_FIELDS && O_N < MAX_FIELDS, "collect() sizes its arrays by MAX_FIELDS");

#define SIDES(lo) RANGE(lo, MG_CONFIG_MAX_SIDE)
static const field layer_fields[] = {
    [L_NAME] = {"name", K_IDENT, LAYER(name)},
    [L_TYPE] = {"type", K_ENUM, LAYER(type), .flags = F_REQUIRED, .names = layer_type_names},
    [L_UNITS] = {"units", K_INT, LAYER(units), RANGE(1, MG_CONFIG_MAX_DIM), .only = DENSE_TYPES},
    [L_CHANNELS] = {"channels", K_INT, LAYER(units), RANGE(1, MG_CONFIG_MAX_DIM),
                    .only = CONV_TYPES},
    [L_PIECES] = {"pieces", K_INT, LAYER(pieces), RANGE(2, MG_CONFIG_MAX_PIECES),
                  .only = ONLY(MG_ACT_MAXOUT) | ONLY(T_MAXOUT_CONV)},
    [L_ACTIVATION] = {"activation", K_ENUM, LAYER(type), .names = activation_names,
                      .only = ONLY(T_CONV) | ONLY(T_DECONV) | ONLY(T_BATCHNORM)},
    [L_KERNEL] = {"kernel", K_INTS, LAYER(kernel), SIDES(1), .only = CONV_TYPES},
    [L_STRIDE] = {"stride", K_INTS, LAYER(stride), SIDES(1), .only = CONV_TYPES},
    [L_PAD] = {"pad", K_INTS, LAYER(pad), SIDES(0), .only = CONV_TYPES},
    [L_OUT_PAD] = {"output_padding", K_INTS, LAYER(out_pad), SIDES(0), .only = ONLY(T_DECONV)},
    [L_POOL] = {"pool", K_INTS, LAYER(pool), SIDES(1), .only = ONLY(T_MAXOUT_CONV)},
    [L_POOL_STRIDE] = {"pool_stride", K_INTS, LAYER(pool_stride), SIDES(1),
                       .only = ONLY(T_MAXOUT_CONV)},
    [L_TIED_BIAS] = {"tied_bias", K_BOOL, LAYER(tied_bias), .only = CONV_TYPES},
    [L_BIAS] = {"bias", K_BOOL, LAYER(bias), .only = ONLY(T_CONV) | ONLY(T_DECONV)},
    [L_ALGORITHM] = {"algorithm", K_ENUM, LAYER(algorithm), .names = mg_conv_algorithm_names,
                     .only = CONV_TYPES},
    [L_SHAPE] = {"shape", K_INTS, LAYER(shape), SIDES(1), .only = ONLY(T_RESHAPE)},
    [L_SYNC] = {"sync", K_BOOL, LAYER(sync), .only = ONLY(T_BATCHNORM)},
    [L_MOMENTUM] = {"momentum", K_REAL, LAYER(bn_momentum), RANGE(0, 1),
                    .only = ONLY(T_BATCHNORM)},
    [L_EPS] = {"eps", K_REAL, LAYER(bn_eps), RANGE(1e-12, 1), .only = ONLY(T_BATCHNORM)},
    [L_INIT] = {"init", K_ENUM, LAYER(init), .names = mg_init_names,
                .only = WEIGHTED_TYPES | ONLY(T_BATCHNORM)},
    [L_IRANGE] = {"irange", K_REAL, LAYER(irange), AT_LEAST(0), .only = WEIGHTED_TYPES},
    [L_STD] = {"std", K_REAL, LAYER(std), ABOVE(0), .only = WEIGHTED_TYPES | ONLY(T_BATCHNORM)},
    [L_KEEP] = {"keep", K_REAL, LAYER(keep), .flags = F_MIN | F_MIN_OPEN | F_MAX, .min = 0,
                .max = 1},
    [L_INPUT_SCALE] = {"input_scale", K_REAL, LAYER(input_scale), ABOVE(0)},
    [L_LEAK] = {"leak", K_REAL, LAYER(leak), UNIT_CLOSED_OPEN,
                .only = ONLY(MG_ACT_LEAKY_RELU) | ONLY(T_CONV) | ONLY(T_DECONV) |
                        ONLY(T_BATCHNORM)},
    [L_MAX_COL_NORM] = {"max_col_norm", K_REAL, LAYER(max_col_norm), AT_LEAST(0),
                        .only = DENSE_TYPES},
    [L_N] = END,
};

#define SGD .only = ONLY(MG_OPTIM_SGD)
#define ADAM .only = ONLY(MG_OPTIM_ADAM)
static const field optim_fields[] = {
    [O_TYPE] = {"type", K_ENUM, OPT(type), .names = mg_optim_names},
    [O_LR] = {"lr", K_REAL, OPT(lr), ABOVE(0)},
    [O_LR_DECAY] = {"lr_decay", K_REAL, OPT(lr_decay), AT_LEAST(1), SGD},
    [O_MIN_LR] = {"min_lr", K_REAL, OPT(min_lr), AT_LEAST(0), SGD},
    [O_MOMENTUM] = {"momentum", K_REAL, OPT(momentum), UNIT_CLOSED_OPEN, SGD},
    [O_FINAL_MOMENTUM] = {"final_momentum", K_REAL, OPT(final_momentum), UNIT_CLOSED_OPEN, SGD},
    [O_MOMENTUM_START] = {"momentum_start", K_INT, OPT(momentum_start), AT_LEAST(0), SGD},
    [O_MOMENTUM_SATURATE] = {"momentum_saturate", K_INT, OPT(momentum_saturate), AT_LEAST(0),
                             SGD},
    [O_BETA1] = {"beta1", K_REAL, OPT(beta1), UNIT_CLOSED_OPEN, ADAM},
    [O_BETA2] = {"beta2", K_REAL, OPT(beta2), UNIT_CLOSED_OPEN, ADAM},
    [O_EPS] = {"eps", K_REAL, OPT(eps), ABOVE(0), ADAM},
    [O_N] = END,
};

static const field data_fields[] = {
    {"format", K_WORD, CFG(data.format), .names = format_names},
    {"train_images", K_PATH, CFG(data.train_images), .flags = F_NONEMPTY},
    {"test_images", K_PATH, CFG(data.test_images)},
    {"train_labels", K_PATH, CFG(data.train_labels)},
    {"test_labels", K_PATH, CFG(data.test_labels)},
    {"classes", K_INT, CFG(data.classes), RANGE(0, MG_MAX_CLASSES)},
    {"path", K_PATH, CFG(data.path), .flags = F_DIR_OK | F_NONEMPTY},
    {"test_path", K_PATH, CFG(data.test_path)},
    {"images", K_STR, CFG(data.images)},
    {"labels", K_STR, CFG(data.labels)},
    {"fold", K_INT, CFG(data.fold), .flags = F_MIN | F_MAX, .min = 0, .max = 4},
    {"split", K_ENUM, CFG(data.split), .names = split_names},
    {"train_count", K_INT, CFG(data.train_count), AT_LEAST(0)},
    {"valid_count", K_INT, CFG(data.valid_count), AT_LEAST(0)},
    {"preprocess", K_ENUM, CFG(data.preprocess), .names = preprocess_names},
    {"gcn_scale", K_REAL, CFG(data.gcn_scale), ABOVE(0)},
    {"range", K_REALS, CFG(data.range), RANGE(-1e6, 1e6)},
    {"shared_memory", K_BOOL, CFG(data.shared_memory)},
    END,
};

/* generator.layers and discriminator.layers are required of a GAN configuration, classifier.layers
 * of a classifier's (check_kind). */
static const field generator_fields[] = {
    {"noise_dim", K_INT, CFG(generator.noise_dim), RANGE(1, MG_CONFIG_MAX_DIM)},
    {"prior", K_ENUM, CFG(generator.prior), .names = mg_prior_names},
    {"output_bias_from_data", K_BOOL, CFG(generator.output_bias_from_data)},
    {"layers", K_LAYERS, CFG(generator.net)},
    {"optimizer", K_OPTIM, CFG(generator.optim)},
    END,
};

static const field discriminator_fields[] = {
    {"layers", K_LAYERS, CFG(discriminator.net), .flags = F_DISCRIMINATOR},
    {"optimizer", K_OPTIM, CFG(discriminator.optim)},
    END,
};

static const field conditional_fields[] = {
    {"enabled", K_BOOL, CFG(conditional.enabled)},
    {"fake_labels", K_ENUM, CFG(conditional.fake_labels), .names = mg_label_draw_names},
    END,
};

static const field classifier_fields[] = {
    {"layers", K_LAYERS, CFG(classifier.net), .flags = F_CLASSIFIER},
    {"optimizer", K_OPTIM, CFG(classifier.optim)},
    END,
};

static const field train_fields[] = {
    {"batch_size", K_INT, CFG(train.batch_size), RANGE(1, MG_CONFIG_MAX_DIM)},
    {"k", K_INT, CFG(train.k), RANGE(1, MG_CONFIG_MAX_K)},
    {"mode", K_ENUM, CFG(train.mode), .names = mg_mode_names},
    {"generator_loss", K_ENUM, CFG(train.generator_loss), .names = mg_gen_loss_names},
    {"epochs", K_INT, CFG(train.epochs), AT_LEAST(0)},
    {"steps", K_I64, CFG(train.steps), AT_LEAST(0)},
    {"check_every", K_INT, CFG(train.check_every), AT_LEAST(0)},
    {"log_every", K_INT, CFG(train.log_every), AT_LEAST(1)},
    {"overlap", K_BOOL, CFG(train.overlap)},
    {"shared_allreduce", K_BOOL, CFG(train.shared_allreduce)},
    {"node_ranks", K_INT, CFG(train.node_ranks), AT_LEAST(0)},
    {"sharded_update", K_BOOL, CFG(train.sharded_update)},
    {"bucket_mb", K_REAL, CFG(train.bucket_mb), RANGE(0, 1e6), .names = auto_names,
     .word = MG_BUCKETS_AUTO},
    {"gradient_dtype", K_ENUM, CFG(train.gradient_bf16), .names = dtype_names},
    {"error_feedback", K_BOOL, CFG(train.error_feedback)},
    {"nonfinite", K_ENUM, CFG(train.nonfinite), .names = mg_nonfinite_names},
    {"stall_seconds", K_REAL, CFG(train.stall_seconds), .flags = F_MIN | F_MAX | F_ZERO_OFF,
     .min = MG_STALL_MIN_SECONDS, .max = MG_STALL_MAX_SECONDS},
    END,
};

static const field checkpoint_fields[] = {
    {"every", K_INT, CFG(checkpoint.every), AT_LEAST(0)},
    {"keep", K_INT, CFG(checkpoint.keep), AT_LEAST(1)},
    END,
};

static const field samples_fields[] = {
    {"every", K_INT, CFG(samples.every), AT_LEAST(0)},
    {"count", K_INT, CFG(samples.count), RANGE(1, MG_CONFIG_MAX_DIM)},
    {"columns", K_INT, CFG(samples.columns), RANGE(0, MG_CONFIG_MAX_DIM)},
    {"png", K_BOOL, CFG(samples.png)},
    {"nearest", K_BOOL, CFG(samples.nearest)},
    END,
};

static const field output_fields[] = {
    {"dir", K_STR, CFG(output.dir), .flags = F_RUN_DIR},
    END,
};

static const field eval_fields[] = {
    {"every", K_INT, CFG(eval.every), AT_LEAST(0)},
    {"samples", K_INT, CFG(eval.samples), RANGE(1, MG_CONFIG_MAX_DIM)},
    {"points", K_INT, CFG(eval.points), RANGE(1, MG_CONFIG_MAX_DIM)},
    {"classifier", K_PATH, CFG(eval.classifier)},
    END,
};

static const field top_fields[] = {
    {"seed", K_U64, CFG(seed)},
    {"data", K_SECTION, .sub = data_fields},
    {"generator", K_SECTION, .sub = generator_fields},
    {"discriminator", K_SECTION, .sub = discriminator_fields},
    {"conditional", K_SECTION, .sub = conditional_fields},
    {"classifier", K_SECTION, .sub = classifier_fields},
    {"train", K_SECTION, .sub = train_fields},
    {"checkpoint", K_SECTION, .sub = checkpoint_fields},
    {"samples", K_SECTION, .sub = samples_fields},
    {"eval", K_SECTION, .sub = eval_fields},
    {"output", K_SECTION, .sub = output_fields},
    END,
};

/* ---- Defaults -------------------------------------------------------------------------------- */

static void optim_defaults(mg_optim_spec *o)
{
    o->type = MG_OPTIM_SGD;
    o->lr = 0.1;
    o->lr_decay = 1.0;
    o->min_lr = 0.0;
    o->momentum = 0.0;
    o->final_momentum = 0.0;
    o->momentum_start = 0;
    o->momentum_saturate = 0;
    o->beta1 = 0.5;
    o->beta2 = 0.999;
    o->eps = 1e-8;
}

void mg_config_defaults(mg_config *cfg)
{
    /* Padding and unused layer slots too: the struct is broadcast and compared as bytes. */
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    strcpy(cfg->data.format, "idx");
    cfg->data.train_count = 50000;
    cfg->data.valid_count = 10000;
    strcpy(cfg->data.images, "/images");
    cfg->data.preprocess = MG_PREPROCESS_SCALE;
    cfg->data.gcn_scale = 55;
    cfg->data.range[0] = 0;
    cfg->data.range[1] = 1;
    cfg->data.shared_memory = 1;
    cfg->generator.noise_dim = 100;
    cfg->generator.prior = MG_PRIOR_UNIFORM;
    cfg->generator.output_bias_from_data = 0;
    optim_defaults(&cfg->generator.optim);
    optim_defaults(&cfg->discriminator.optim);
    optim_defaults(&cfg->classifier.optim);
    cfg->conditional.enabled = 0;
    cfg->conditional.fake_labels = MG_LABELS_UNIFORM;
    cfg->train.batch_size = 100;
    cfg->train.k = 1;
    cfg->train.mode = MG_MODE_ALTERNATING;
    cfg->train.generator_loss = MG_GEN_LOSS_NONSATURATING;
    cfg->train.epochs = 1;
    cfg->train.steps = 0;
    cfg->train.check_every = 100;
    cfg->train.log_every = 50;
    cfg->train.overlap = 1;
    cfg->train.shared_allreduce = 1;
    cfg->train.sharded_update = 1;
    cfg->train.bucket_mb = MG_BUCKETS_AUTO;
    cfg->train.gradient_bf16 = 0;
    cfg->train.error_feedback = 1;
    cfg->train.stall_seconds = 120;
    cfg->checkpoint.every = 1000;
    cfg->checkpoint.keep = 3;
    cfg->samples.every = 500;
    cfg->samples.count = 100;
    cfg->samples.columns = 0;
    cfg->samples.png = 1;
    cfg->samples.nearest = 1;
    cfg->eval.every = 0;
    cfg->eval.samples = 1000;
    cfg->eval.points = 1000;
}

/* ---- Reading the tree ------------------------------------------------------------------------ */

typedef struct {
    yaml_document_t doc;
    int n_file_nodes; /* node ids above this were added by --set */
    const char *name; /* the file, as messages name it */
    /* Prefixes for relative data paths, absolute where getcwd allows, so that the configuration
     * mg_config_write copies into a run directory still finds the data from there. */
    char file_dir[MG_PATH_MAX]; /* the configuration file's directory, with a trailing '/' */
    char cwd[MG_PATH_MAX];      /* for paths given with --set, as any command-line path */
    struct {
        int node;
        const char *dest;
        char key[KEY_LEN];
        int dir_ok;
    } files[8]; /* data files to check once everything else is valid */
    int n_files;
    /* Where each integer key was given (its destination in the struct and its node), so that the
     * checks of sizes that combine keys can point at a line. A key left at its default has none. */
    struct {
        const void *dest;
        int node;
    } given[256];
    int n_given;
    /* The first required key found missing. Reported only after every given value was checked:
     * an error with a line number is the more useful one to see first. */
    char missing[KEY_LEN];
    mg_error *err;
} ctx;

static yaml_node_t *node_at(ctx *c, int id)
{
    return id ? yaml_document_get_node(&c->doc, id) : NULL;
}

static const char *text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain ~, null or nothing: YAML's null. An empty section reads as all defaults, an empty
 * string key as "". */
static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = text(n);
    return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* Key paths only appear in messages, where a cut one is acceptable. A key is any YAML scalar, so
 * a control character in it (a quoted "\n", a plain key folded over lines) is shown as '?', as
 * in values (shown): a message is one line. A cut does not leave half a UTF-8 sequence. */
static void join(char *out, const char *path, const char *key)
{
    size_t n = 0;
    for (const char *p = path; *p && n < KEY_LEN - 1; p++)
        out[n++] = *p;
    if (path[0] && n < KEY_LEN - 1)
        out[n++] = '.';
    const unsigned char *p = (const unsigned char *)key;
    for (; *p && n < KEY_LEN - 1; p++)
        out[n++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
    if (*p) {
        size_t lead = n;
        while (lead > 0 && ((unsigned char)out[lead - 1] & 0xc0) == 0x80)
            lead--;
        unsigned char b = lead > 0 ? (unsigned char)out[lead - 1] : 0;
        size_t len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
        if (b >= 0xc0 && n - (lead - 1) < len)
            n = lead - 1;
    }
    out[n] = '\0';
}

static void join_index(char *out, const char *path, int index)
{
    char digits[16];
    snprintf(digits, sizeof digits, "%d", index);
    join(out, path, digits);
}

/* A scalar as messages quote it: on one line and short. */
static const char *shown(char *buf, size_t n, const yaml_node_t *node)
{
    const char *s = text(node);
    size_t len = node->data.scalar.length, keep = len < 60 ? len : 56, j = 0;
    while (keep < len && keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
        keep--; /* not inside a UTF-8 sequence */
    for (size_t i = 0; i < keep && j + 1 < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[j++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    buf[j] = '\0';
    if (keep < len)
        snprintf(buf + j, n - j, "...");
    return buf;
}

/* Nodes an override added have no place in the file. The copies an override makes of a part the
 * file shares through an alias (unshare) keep the original's place, and with it its line. */
static int from_set(const ctx *c, const yaml_node_t *node)
{
    const yaml_mark_t *m = &node->start_mark;
    return (int)(node - c->doc.nodes.start) + 1 > c->n_file_nodes && !m->index && !m->line &&
           !m->column;
}

/* Fails with "<file>:<line>: <key>: <problem>", or "--set <key>: <problem>" when the node came
 * from an override, whose line would mean nothing to the user. */
__attribute__((format(printf, 4, 5))) static int fail_at(ctx *c, const yaml_node_t *node,
                                                         const char *key, const char *fmt, ...)
{
    char problem[MG_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    if (from_set(c, node))
        return mg_fail(c->err, "--set%s%s: %s", key[0] ? " " : "", key, problem);
    return mg_fail(c->err, "%s:%zu: %s%s%s", c->name, node->start_mark.line + 1, key,
                   key[0] ? ": " : "", problem);
}

static int fail_missing(ctx *c, const char *key, const char *why)
{
    return mg_fail(c->err, "%s: %s: required key missing%s", c->name, key, why);
}

enum { NUM_OK, NUM_BAD, NUM_RANGE };

/* Decimal only: YAML 1.1 would read 010 as octal and 0x10 as hex, which nobody means here. */
static int parse_int(const char *s, size_t len, long long *out)
{
    if (len == 0 || !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return NUM_BAD;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || end != s + len)
        return NUM_BAD;
    if (errno == ERANGE)
        return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    /* strtoull would wrap "-1" to 2^64 - 1. */
    if (len == 0 || !(s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return NUM_BAD;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || end != s + len)
        return NUM_BAD;
    if (errno == ERANGE)
        return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static int parse_real(const char *s, size_t len, double *out)
{
    if (len == 0 || s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))
        return NUM_BAD;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || end != s + len)
        return NUM_BAD;
    if (!isfinite(v))
        return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
            *out = !strcmp(s, yes[i]);
            return NUM_OK;
        }
    }
    return NUM_BAD;
}

/* v within f's bounds; with `rounded`, v and the bounds as mg_real (0.01 as a float is below
 * 0.01 as a double, and still the bound's own value). */
static int in_bounds(const field *f, double v, int rounded)
{
    if ((f->flags & F_ZERO_OFF) && v == 0)
        return 1;
    const double lo = rounded ? (mg_real)f->min : f->min, hi = rounded ? (mg_real)f->max : f->max;
    int lo_ok = !(f->flags & F_MIN) || (f->flags & F_MIN_OPEN ? v > lo : v >= lo);
    int hi_ok = !(f->flags & F_MAX) || (f->flags & F_MAX_OPEN ? v < hi : v <= hi);
    return lo_ok && hi_ok;
}

/* "must be >= 1" or "must be in [0, 1)", from the field's bounds. */
static const char *bounds_str(char *buf, size_t n, const field *f)
{
    char lo[40], hi[40]; /* bounds are short decimals: 0.01, 86400, 16777216 */
    snprintf(lo, sizeof lo, "%.15g", f->min);
    snprintf(hi, sizeof hi, "%.15g", f->max);
    if (!(f->flags & F_MAX))
        snprintf(buf, n, "must be %s %s", f->flags & F_MIN_OPEN ? ">" : ">=", lo);
    else
        snprintf(buf, n, "must be %sin %c%s, %s%c", f->flags & F_ZERO_OFF ? "0 (off) or " : "",
                 f->flags & F_MIN_OPEN ? '(' : '[', lo, hi, f->flags & F_MAX_OPEN ? ')' : ']');
    return buf;
}

static int check_bounds(ctx *c, const field *f, const yaml_node_t *node, const char *key,
                        double v)
{
    if (in_bounds(f, v, 0))
        return 0;
    char got[80], bounds[128];
    return fail_at(c, node, key, "%s, got %s", bounds_str(bounds, sizeof bounds, f),
                   shown(got, sizeof got, node));
}

/* Every real is used as an mg_real (float in the trainer): a value finite as a double can be Inf
 * there (1e39), a positive one 0 (5e-324), one below 1 be 1 (0.99999999 as a momentum), a
 * tiny one subnormal, which flush-to-zero arithmetic reads as 0. So the bounds are checked again
 * on the value rounded to mg_real, and what is left must be a normal number or 0. */
static int check_real_precision(ctx *c, const field *f, const yaml_node_t *node, const char *key,
                                double v)
{
    const int single = sizeof(mg_real) == sizeof(float);
    const double max = single ? FLT_MAX : DBL_MAX, min = single ? FLT_MIN : DBL_MIN;
    const char *precision = single ? "single" : "double";
    char got[80], bounds[128];
    if (fabs(v) > max) /* checked first: converting it would be undefined */
        return fail_at(c, node, key, "%s is beyond %s precision (largest %g)",
                       shown(got, sizeof got, node), precision, max);
    const double r = (mg_real)v;
    if (!in_bounds(f, r, 1))
        return fail_at(c, node, key, "%s, got %s (%g in %s precision)",
                       bounds_str(bounds, sizeof bounds, f), shown(got, sizeof got, node), r,
                       precision);
    if (r != 0 && fabs(r) < min)
        return fail_at(c, node, key, "%s is too close to 0 for %s precision (smallest normal %g)",
                       shown(got, sizeof got, node), precision, min);
    return 0;
}

static int lookup_name(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

static int fail_enum(ctx *c, const field *f, const yaml_node_t *node, const char *key)
{
    char list[256] = "", got[80];
    size_t n = 0;
    for (int i = 0; f->names[i] && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", f->names[i]);
    return fail_at(c, node, key, "expected one of %s; got \"%s\"", list,
                   shown(got, sizeof got, node));
}

static int resolve_path(ctx *c, const field *f, const yaml_node_t *node, const char *key,
                        const char *s, char *dest)
{
    size_t len = strlen(s);
    if (len == 0) {
        if (f->flags & (F_REQUIRED | F_NONEMPTY))
            return fail_at(c, node, key, "must not be empty");
        dest[0] = '\0';
        return 0;
    }
    /* A path in the file is relative to the file, so that a configuration and its data move
     * together and a run does not depend on where it was started; one given with --set is a
     * command-line path, relative to the working directory as a shell user expects. */
    const char *prefix = s[0] == '/' ? "" : from_set(c, node) ? c->cwd : c->file_dir;
    size_t plen = strlen(prefix);
    if (plen + len >= f->size)
        return fail_at(c, node, key, "path too long (at most %zu characters)", f->size - 1);
    memcpy(dest, prefix, plen);
    memcpy(dest + plen, s, len + 1);
    if (c->n_files == (int)(sizeof c->files / sizeof *c->files))
        return fail_at(c, node, key, "internal error: too many data files");
    c->files[c->n_files].node = (int)(node - c->doc.nodes.start) + 1;
    c->files[c->n_files].dest = dest;
    snprintf(c->files[c->n_files].key, KEY_LEN, "%s", key);
    c->files[c->n_files].dir_ok = (f->flags & F_DIR_OK) != 0;
    c->n_files++;
    return 0;
}

/* A run directory whose own files fit in MG_PATH_MAX (session.c and checkpoint.c compose
 * "<dir>/ckpt-<step>.h5" and the like into buffers of that size), and whose every name the file
 * system can hold: a longer one would fail only after its parents were created. */
static int check_run_dir(ctx *c, const yaml_node_t *node, const char *key, const char *s)
{
    const size_t len = strlen(s), max = MG_PATH_MAX - 1 - MG_RUN_NAME_ROOM;
    if (len > max)
        return fail_at(c, node, key,
                       "%zu characters, more than the %zu a run directory may have (its files' "
                       "paths must fit in %d)",
                       len, max, MG_PATH_MAX - 1);
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "/");
        if (n > NAME_MAX)
            return fail_at(c, node, key,
                           "a name of %zu characters in it, more than the %d a file name may have",
                           n, NAME_MAX);
        p += n + (p[n] == '/');
    }
    return 0;
}

static int convert_scalar(ctx *c, const field *f, const yaml_node_t *node, const char *key,
                          char *base)
{
    void *dest = base + f->off;
    char got[80];
    if (node->type != YAML_SCALAR_NODE)
        return fail_at(c, node, key, "expected a scalar");
    const char *s = text(node);
    size_t len = node->data.scalar.length;
    if (strlen(s) != len) /* "\0" in a quoted scalar would cut every C string after it */
        return fail_at(c, node, key, "must not contain a NUL byte");
    int rc;
    switch (f->kind) {
    case K_INT:
    case K_I64: {
        long long v = 0;
        rc = parse_int(s, len, &v);
        if (rc == NUM_BAD)
            return fail_at(c, node, key, "expected an integer, got \"%s\"",
                           shown(got, sizeof got, node));
        if (rc == NUM_RANGE || (f->kind == K_INT && (v < INT_MIN || v > INT_MAX)))
            return fail_at(c, node, key, "integer out of range, got %s",
                           shown(got, sizeof got, node));
        if (check_bounds(c, f, node, key, (double)v))
            return -1;
        if (f->kind == K_INT)
            *(int *)dest = (int)v;
        else
            *(int64_t *)dest = v;
        /* Later entries win: a --set replaces the file's value, and the alias-shared values of
         * two destinations get one entry each. Beyond the table, a message names no line. */
        if (c->n_given < (int)(sizeof c->given / sizeof *c->given)) {
            c->given[c->n_given].dest = dest;
            c->given[c->n_given++].node = (int)(node - c->doc.nodes.start) + 1;
        }
        return 0;
    }
    case K_U64: {
        uint64_t v = 0;
        long long negative;
        if (s[0] == '-' && parse_int(s, len, &negative) != NUM_BAD)
            return fail_at(c, node, key, "must be >= 0, got %s", shown(got, sizeof got, node));
        rc = parse_u64(s, len, &v);
        if (rc == NUM_BAD)
            return fail_at(c, node, key, "expected an integer, got \"%s\"",
                           shown(got, sizeof got, node));
        if (rc == NUM_RANGE)
            return fail_at(c, node, key, "integer out of range, got %s",
                           shown(got, sizeof got, node));
        *(uint64_t *)dest = v;
        return 0;
    }
    case K_REAL: {
        double v = 0;
        if (f->names && lookup_name(f->names, s) == 0) {
            *(double *)dest = f->word;
            return 0;
        }
        rc = parse_real(s, len, &v);
        if (rc == NUM_BAD)
            return fail_at(c, node, key, "expected a number%s%s, got \"%s\"",
                           f->names ? " or " : "", f->names ? f->names[0] : "",
                           shown(got, sizeof got, node));
        if (rc == NUM_RANGE)
            return fail_at(c, node, key, "expected a finite number, got \"%s\"",
                           shown(got, sizeof got, node));
        if (check_bounds(c, f, node, key, v) || check_real_precision(c, f, node, key, v))
            return -1;
        *(double *)dest = v;
        return 0;
    }
    case K_BOOL:
        if (parse_bool(s, (int *)dest) != NUM_OK)
            return fail_at(c, node, key, "expected true or false, got \"%s\"",
                           shown(got, sizeof got, node));
        return 0;
    case K_ENUM:
    case K_WORD: {
        int i = lookup_name(f->names, s);
        if (i < 0)
            return fail_enum(c, f, node, key);
        if (f->kind == K_ENUM)
            *(int *)dest = i;
        else
            snprintf(dest, f->size, "%s", f->names[i]);
        return 0;
    }
    case K_STR:
    case K_IDENT:
    case K_PATH:
        if (f->kind == K_IDENT) {
            size_t ok =
                strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
            if (len == 0 || ok != len || len >= f->size)
                return fail_at(c, node, key,
                               "must be 1 to %zu characters of A-Z, a-z, 0-9 and _, got \"%s\"",
                               f->size - 1, shown(got, sizeof got, node));
            memcpy(dest, s, len + 1);
            return 0;
        }
        if (is_null(node))
            s = "";
        if (f->kind == K_PATH)
            return resolve_path(c, f, node, key, s, dest);
        if (strlen(s) >= f->size)
            return fail_at(c, node, key, "too long (at most %zu characters)", f->size - 1);
        if ((f->flags & F_RUN_DIR) && check_run_dir(c, node, key, s))
            return -1;
        memcpy(dest, s, strlen(s) + 1);
        return 0;
    default:
        return fail_at(c, node, key, "internal error: kind %d is not a scalar", (int)f->kind);
    }
}

/* Edit distance, for "did you mean"; keys are short, so the quadratic table is tiny. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return INT_MAX;
    int prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

/* Finds the value of every key of `map` that `fields` describes (value[i], key[i]: node ids, 0 if
 * absent) and fails on a key that is not a scalar, not known, or given twice. libyaml keeps
 * duplicate keys, so they are caught here. */
static int collect(ctx *c, yaml_node_t *map, const char *path, const field *fields, int *value,
                   int *key)
{
    int n = 0;
    while (fields[n].key)
        n++;
    for (int i = 0; i < n; i++)
        value[i] = key[i] = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return fail_at(c, k, path, "mapping keys must be scalars");
        char kpath[KEY_LEN];
        join(kpath, path, text(k));
        int i = 0;
        while (i < n && strcmp(fields[i].key, text(k)) != 0)
            i++;
        if (i == n) {
            int best = -1, best_d = 3;
            for (int j = 0; j < n; j++) {
                int d = edit_distance(text(k), fields[j].key);
                if (d < best_d)
                    best = j, best_d = d;
            }
            if (best < 0)
                return fail_at(c, k, kpath, "unknown key");
            char hint[KEY_LEN];
            join(hint, path, fields[best].key);
            return fail_at(c, k, kpath, "unknown key (did you mean %s?)", hint);
        }
        if (key[i])
            return fail_at(c, k, kpath, "duplicate key (first at line %zu)",
                           node_at(c, key[i])->start_mark.line + 1);
        key[i] = p->key;
        value[i] = p->value;
    }
    return 0;
}

/* Fails on keys given for another type than `type`: they would be silently ignored. */
static int check_only(ctx *c, const field *fields, const int *key, const char *path, int type,
                      const char *const *type_names)
{
    for (int i = 0; fields[i].key; i++) {
        if (key[i] && fields[i].only && !(fields[i].only & ONLY(type))) {
            char kpath[KEY_LEN], list[256] = "";
            size_t n = 0;
            int count = 0;
            for (int t = 0; type_names[t]; t++)
                count += (fields[i].only & ONLY(t)) != 0;
            for (int t = 0, seen = 0; type_names[t] && n < sizeof list; t++) {
                if (!(fields[i].only & ONLY(t)))
                    continue;
                seen++;
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
                                      seen == 1 ? "" : seen == count ? " and " : ", ",
                                      type_names[t]);
            }
            join(kpath, path, fields[i].key);
            return fail_at(c, node_at(c, key[i]), kpath, "only for type%s %s",
                           count == 1 ? "" : "s", list);
        }
    }
    return 0;
}

/* K_INTS: one integer for every element (`kernel: 4`), or a list of exactly as many (`kernel:
 * [4, 3]`), each checked as a K_INT of the field's bounds. K_REALS: a list of exactly as many
 * numbers (`range: [-1, 1]`), each checked as a K_REAL. */
static int convert_list(ctx *c, const field *f, yaml_node_t *node, const char *key, char *base)
{
    const int ints = f->kind == K_INTS;
    const size_t item = ints ? sizeof(int) : sizeof(double);
    const char *what = ints ? "integers" : "numbers";
    const int n = (int)(f->size / item);
    field one = *f;
    one.kind = ints ? K_INT : K_REAL;
    one.size = item;
    if (ints && node->type == YAML_SCALAR_NODE) {
        if (convert_scalar(c, &one, node, key, base))
            return -1;
        int *dest = (int *)(base + f->off);
        for (int i = 1; i < n; i++)
            dest[i] = dest[0];
        return 0;
    }
    if (node->type != YAML_SEQUENCE_NODE)
        return ints ? fail_at(c, node, key, "expected an integer or a list of %d", n)
                    : fail_at(c, node, key, "expected a list of %d numbers", n);
    const int got = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (got != n)
        return fail_at(c, node, key, "expected a list of %d %s, got %d", n, what, got);
    for (int i = 0; i < n; i++) {
        char ipath[KEY_LEN];
        join_index(ipath, key, i);
        one.off = f->off + (size_t)i * item;
        if (convert_scalar(c, &one, node_at(c, node->data.sequence.items.start[i]), ipath, base))
            return -1;
    }
    return 0;
}

static int convert_given(ctx *c, const field *fields, const int *value, const char *path,
                         int skip, char *base)
{
    for (int i = 0; fields[i].key; i++) {
        if (i == skip || !value[i])
            continue;
        char kpath[KEY_LEN];
        join(kpath, path, fields[i].key);
        yaml_node_t *node = node_at(c, value[i]);
        if (fields[i].kind == K_INTS || fields[i].kind == K_REALS
                ? convert_list(c, &fields[i], node, kpath, base)
                                     : convert_scalar(c, &fields[i], node, kpath, base))
            return -1;
    }
    return 0;
}

/* The key of layer_fields for index i, with its layer's path: for messages. */
static int missing_for(ctx *c, const char *path, int i, const char *why)
{
    char kpath[KEY_LEN];
    join(kpath, path, layer_fields[i].key);
    return fail_missing(c, kpath, why);
}

static int convert_layer(ctx *c, yaml_node_t *map, const char *path, int index, mg_layer_spec *l,
                         int *name_node)
{
    int value[MAX_FIELDS], key[MAX_FIELDS];
    char kpath[KEY_LEN];
    if (map->type != YAML_MAPPING_NODE)
        return fail_at(c, map, path, "expected a mapping");
    if (collect(c, map, path, layer_fields, value, key))
        return -1;
    join(kpath, path, "type");
    if (!value[L_TYPE])
        return fail_missing(c, kpath, "");
    /* The type decides which keys are allowed and what the defaults are. The type index goes
     * through an int, then into the spec's operation and activation. */
    int t = 0;
    const field type_field = {"type", K_ENUM, .off = 0, .size = sizeof t,
                              .names = layer_type_names};
    if (convert_scalar(c, &type_field, node_at(c, value[L_TYPE]), kpath, (char *)&t) ||
        check_only(c, layer_fields, key, path, t, layer_type_names))
        return -1;
    const enum mg_op ops[] = {[T_CONV] = MG_OP_CONV, [T_MAXOUT_CONV] = MG_OP_MAXOUT_CONV,
                              [T_DECONV] = MG_OP_DECONV, [T_RESHAPE] = MG_OP_RESHAPE,
                              [T_BATCHNORM] = MG_OP_BATCHNORM};
    l->op = t <= MG_ACT_MAXOUT ? MG_OP_DENSE : ops[t];
    l->type = t <= MG_ACT_MAXOUT ? (enum mg_act)t
              : t == T_MAXOUT_CONV ? MG_ACT_MAXOUT
                                   : MG_ACT_LINEAR;
    const int maxout = l->type == MG_ACT_MAXOUT;
    l->pieces = maxout ? 0 : 1;
    l->stride[0] = l->stride[1] = 1;
    l->tied_bias = 1;
    l->bias = 1;
    l->sync = 1;
    l->bn_momentum = 0.1;
    l->bn_eps = 1e-5;
    l->init = MG_INIT_UNIFORM;
    l->irange = 0.05;
    l->std = 0.02;
    l->keep = 1.0;
    if (convert_given(c, layer_fields, value, path, L_TYPE, (char *)l))
        return -1;
    if (l->type == MG_ACT_LEAKY_RELU && !value[L_LEAK])
        l->leak = 0.2;
    if (value[L_LEAK] && l->type != MG_ACT_LEAKY_RELU) {
        join(kpath, path, "leak");
        return fail_at(c, node_at(c, key[L_LEAK]), kpath, "only with activation leaky_relu");
    }
    if (l->op == MG_OP_DENSE && !value[L_UNITS])
        return missing_for(c, path, L_UNITS, "");
    if ((l->op == MG_OP_CONV || l->op == MG_OP_DECONV || l->op == MG_OP_MAXOUT_CONV) &&
        !value[L_CHANNELS])
        return missing_for(c, path, L_CHANNELS, "");
    if ((l->op == MG_OP_CONV || l->op == MG_OP_DECONV || l->op == MG_OP_MAXOUT_CONV) &&
        !value[L_KERNEL])
        return missing_for(c, path, L_KERNEL, "");
    if (maxout && !value[L_PIECES])
        return missing_for(c, path, L_PIECES, t == T_MAXOUT_CONV ? " for type maxout_conv"
                                                                  : " for type maxout");
    if (l->op == MG_OP_MAXOUT_CONV && !value[L_POOL])
        return missing_for(c, path, L_POOL, " for type maxout_conv");
    if (l->op == MG_OP_MAXOUT_CONV && !value[L_POOL_STRIDE])
        memcpy(l->pool_stride, l->pool, sizeof l->pool);
    if (l->op == MG_OP_RESHAPE && !value[L_SHAPE])
        return missing_for(c, path, L_SHAPE, " for type reshape");
    if (value[L_SHAPE] && node_at(c, value[L_SHAPE])->type != YAML_SEQUENCE_NODE) {
        join(kpath, path, "shape");
        return fail_at(c, node_at(c, value[L_SHAPE]), kpath, "expected a list of 3 integers "
                                                               "[channels, height, width]");
    }
    if (value[L_STD] && l->init != MG_INIT_NORMAL) {
        join(kpath, path, "std");
        return fail_at(c, node_at(c, key[L_STD]), kpath, "only with init normal");
    }
    if (value[L_IRANGE] && l->init != MG_INIT_UNIFORM) {
        join(kpath, path, "irange");
        return fail_at(c, node_at(c, key[L_IRANGE]), kpath, "only with init uniform");
    }
    if (!value[L_NAME])
        snprintf(l->name, sizeof l->name, "h%d", index);
    /* Inverted dropout by default: kept inputs are scaled so the expected input is unchanged. */
    if (!value[L_INPUT_SCALE])
        l->input_scale = 1.0 / l->keep;
    *name_node = value[L_NAME];
    return 0;
}

static int convert_layers(ctx *c, yaml_node_t *list, const char *path, mg_net_spec *net,
                          int flags)
{
    const int discriminator = (flags & F_DISCRIMINATOR) != 0;
    if (list->type != YAML_SEQUENCE_NODE)
        return fail_at(c, list, path, "expected a list");
    int n = (int)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n < 1)
        return fail_at(c, list, path, "at least 1 layer, got 0");
    if (n > MG_MAX_LAYERS)
        return fail_at(c, list, path, "at most %d layers, got %d", MG_MAX_LAYERS, n);
    int name_node[MG_MAX_LAYERS];
    char lpath[KEY_LEN];
    for (int i = 0; i < n; i++) {
        join_index(lpath, path, i);
        if (convert_layer(c, node_at(c, list->data.sequence.items.start[i]), lpath, i,
                          &net->layers[i], &name_node[i]))
            return -1;
    }
    net->n_layers = n;
    /* A checkpoint keeps the network's optimizer state in a group of this name beside the layers. */
    for (int i = 0; i < n; i++) {
        if (name_node[i] && strcmp(net->layers[i].name, "optimizer") == 0) {
            char npath[KEY_LEN];
            join_index(lpath, path, i);
            join(npath, lpath, "name");
            return fail_at(c, node_at(c, name_node[i]), npath,
                           "\"optimizer\" is reserved (checkpoints keep optimizer state under it)");
        }
    }
    /* Checkpoints name tensors by layer, so two layers of one name would overwrite each other. */
    for (int i = 1; i < n; i++) {
        for (int j = 0; j < i; j++) {
            if (strcmp(net->layers[i].name, net->layers[j].name) != 0)
                continue;
            char other[KEY_LEN];
            join_index(lpath, path, i);
            join_index(other, path, j);
            if (name_node[i]) {
                char npath[KEY_LEN];
                join(npath, lpath, "name");
                return fail_at(c, node_at(c, name_node[i]), npath,
                               "name \"%s\" is already used by %s", net->layers[i].name, other);
            }
            return fail_at(c, node_at(c, list->data.sequence.items.start[i]), lpath,
                           "default name \"%s\" is already used by %s", net->layers[i].name,
                           other);
        }
    }
    const mg_layer_spec *last = &net->layers[n - 1];
    if (discriminator && last->op == MG_OP_DENSE &&
        (last->type != MG_ACT_SIGMOID || last->units != 1)) {
        join_index(lpath, path, n - 1);
        return fail_at(c, node_at(c, list->data.sequence.items.start[n - 1]), lpath,
                       "the discriminator's last layer must be sigmoid with 1 unit (got %s, %d "
                       "unit%s)",
                       mg_act_names[last->type], last->units, last->units == 1 ? "" : "s");
    }
    /* A convolution may end D too (DCGAN's 4x4 to one value): its 1x1 output is checked when the
     * network is built, against the data's shape. */
    if (discriminator && last->op != MG_OP_DENSE &&
        !((last->op == MG_OP_CONV || last->op == MG_OP_DECONV) && last->type == MG_ACT_SIGMOID &&
          last->units == 1)) {
        join_index(lpath, path, n - 1);
        return fail_at(c, node_at(c, list->data.sequence.items.start[n - 1]), lpath,
                       "the discriminator's last layer must be sigmoid with 1 unit, or a conv of "
                       "1 channel with activation sigmoid (got %s)",
                       mg_layer_type_name(last));
    }
    /* A classifier's logits: softmax cross-entropy works on them, so no activation of its own. */
    if ((flags & F_CLASSIFIER) && !(last->op == MG_OP_DENSE && last->type == MG_ACT_LINEAR)) {
        join_index(lpath, path, n - 1);
        return fail_at(c, node_at(c, list->data.sequence.items.start[n - 1]), lpath,
                       "the classifier's last layer must be linear, one unit per class (its "
                       "logits go through a softmax), got %s",
                       mg_layer_type_name(last));
    }
    return 0;
}

static int convert_optim(ctx *c, yaml_node_t *map, const char *path, mg_optim_spec *o)
{
    int value[MAX_FIELDS], key[MAX_FIELDS];
    char kpath[KEY_LEN];
    if (map->type != YAML_MAPPING_NODE)
        return fail_at(c, map, path, "expected a mapping");
    if (collect(c, map, path, optim_fields, value, key))
        return -1;
    join(kpath, path, "type");
    if (value[O_TYPE] &&
        convert_scalar(c, &optim_fields[O_TYPE], node_at(c, value[O_TYPE]), kpath, (char *)o))
        return -1;
    if (check_only(c, optim_fields, key, path, (int)o->type, mg_optim_names))
        return -1;
    /* Adam's steps are normalized, so it wants a far smaller rate than SGD (Radford et al.). */
    if (o->type == MG_OPTIM_ADAM)
        o->lr = 0.0002;
    if (convert_given(c, optim_fields, value, path, O_TYPE, (char *)o))
        return -1;
    if (!value[O_FINAL_MOMENTUM])
        o->final_momentum = o->momentum;
    if (!value[O_MOMENTUM_SATURATE])
        o->momentum_saturate = o->momentum_start;
    if (o->momentum_saturate < o->momentum_start) {
        yaml_node_t *v = node_at(c, value[O_MOMENTUM_SATURATE]);
        char got[80];
        join(kpath, path, "momentum_saturate");
        return fail_at(c, v, kpath, "must be >= momentum_start (%d), got %s", o->momentum_start,
                       shown(got, sizeof got, v));
    }
    return 0;
}

/* `map` is NULL when the section is absent: its required keys are then reported missing. */
static int convert_map(ctx *c, yaml_node_t *map, const char *path, const field *fields,
                       char *base)
{
    int value[MAX_FIELDS] = {0}, key[MAX_FIELDS] = {0};
    if (map && is_null(map))
        map = NULL;
    if (map && map->type != YAML_MAPPING_NODE)
        return fail_at(c, map, path, "expected a mapping");
    if (map && collect(c, map, path, fields, value, key))
        return -1;
    for (int i = 0; fields[i].key; i++) {
        const field *f = &fields[i];
        char kpath[KEY_LEN];
        join(kpath, path, f->key);
        yaml_node_t *v = node_at(c, value[i]);
        /* An empty section means "all defaults"; an empty scalar is a value and checked as one. */
        if (v && (f->kind == K_SECTION || f->kind == K_LAYERS || f->kind == K_OPTIM) && is_null(v))
            v = NULL;
        if (!v && f->kind != K_SECTION) {
            if ((f->flags & F_REQUIRED) && !c->missing[0])
                snprintf(c->missing, sizeof c->missing, "%s", kpath);
            continue;
        }
        int rc;
        if (f->kind == K_SECTION)
            rc = convert_map(c, v, kpath, f->sub, base);
        else if (f->kind == K_LAYERS)
            rc = convert_layers(c, v, kpath, (mg_net_spec *)(base + f->off), f->flags);
        else if (f->kind == K_OPTIM)
            rc = convert_optim(c, v, kpath, (mg_optim_spec *)(base + f->off));
        else if (f->kind == K_INTS || f->kind == K_REALS)
            rc = convert_list(c, f, v, kpath, base);
        else
            rc = convert_scalar(c, f, v, kpath, base);
        if (rc)
            return -1;
    }
    return 0;
}

/* ---- Overrides ------------------------------------------------------------------------------- */

static int add_scalar(ctx *c, const char *s, size_t len, const char *set)
{
    if (len > INT_MAX)
        return mg_fail(c->err, "--set %s: too long", set), 0;
    int id = yaml_document_add_scalar(&c->doc, NULL, (const yaml_char_t *)s, (int)len,
                                      YAML_PLAIN_SCALAR_STYLE);
    /* libyaml refuses only invalid UTF-8 here (or fails to allocate). */
    if (!id)
        mg_fail(c->err, "--set %s: not valid UTF-8", set);
    return id;
}

/* A --set value: "[a, b]" becomes a list of the scalars between the commas (spaces around them
 * dropped), for the keys that take lists (`data.range=[-1,1]`, `...kernel=[4,3]`); anything else
 * is one scalar, as the file would hold it unquoted. */
static int add_value(ctx *c, const char *value, const char *set)
{
    const size_t len = strlen(value);
    if (len < 2 || value[0] != '[' || value[len - 1] != ']')
        return add_scalar(c, value, len, set);
    int list = yaml_document_add_sequence(&c->doc, NULL, YAML_FLOW_SEQUENCE_STYLE);
    if (!list)
        return mg_fail(c->err, "--set %s: out of memory", set), 0;
    const char *p = value + 1, *end = value + len - 1;
    while (p < end && *p == ' ')
        p++;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *last = stop;
        while (last > p && last[-1] == ' ')
            last--;
        int item = add_scalar(c, p, (size_t)(last - p), set);
        if (!item)
            return 0;
        if (!yaml_document_append_sequence_item(&c->doc, list, item))
            return mg_fail(c->err, "--set %s: out of memory", set), 0;
        p = comma ? comma + 1 : end;
        while (p < end && *p == ' ')
            p++;
    }
    return list;
}

static int add_mapping(ctx *c, const char *set)
{
    int id = yaml_document_add_mapping(&c->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
    if (!id)
        mg_fail(c->err, "--set %s: out of memory", set);
    return id;
}

/* Points slot `slot` of node `parent` (a mapping's pair or a list's item) at node `child`. */
static void relink(ctx *c, int parent, int slot, int child)
{
    yaml_node_t *p = node_at(c, parent);
    if (p->type == YAML_MAPPING_NODE)
        p->data.mapping.pairs.start[slot].value = child;
    else
        p->data.sequence.items.start[slot] = child;
}

/* How many places name node `id`: the root is named by the document, every other node by the
 * mapping values and list items that hold it (more than one when the file shares it with an
 * alias, `optimizer: *sgd`). */
static int references(ctx *c, int id)
{
    int n = id == 1;
    for (yaml_node_t *node = c->doc.nodes.start; node < c->doc.nodes.top; node++) {
        if (node->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
                 p < node->data.mapping.pairs.top; p++)
                n += p->value == id;
        } else if (node->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *i = node->data.sequence.items.start;
                 i < node->data.sequence.items.top; i++)
                n += *i == id;
        }
    }
    return n;
}

/* Puts a copy of the mapping or list `id` in slot `slot` of `parent`, holding the same children,
 * so that an edit below it changes this path alone, not the other places that share `id`. The
 * copy's id, or 0 (err set). Children shared in turn are copied as the walk reaches them. */
static int unshare(ctx *c, int parent, int slot, int id, const char *set)
{
    const yaml_node_t *node = node_at(c, id);
    const yaml_mark_t start = node->start_mark, end = node->end_mark;
    const int mapping = node->type == YAML_MAPPING_NODE;
    const int n = mapping ? (int)(node->data.mapping.pairs.top - node->data.mapping.pairs.start)
                          : (int)(node->data.sequence.items.top - node->data.sequence.items.start);
    int copy = mapping ? yaml_document_add_mapping(&c->doc, NULL, node->data.mapping.style)
                       : yaml_document_add_sequence(&c->doc, NULL, node->data.sequence.style);
    for (int i = 0; copy && i < n; i++) {
        node = node_at(c, id); /* adding nodes may move them */
        int ok = mapping ? yaml_document_append_mapping_pair(
                               &c->doc, copy, node->data.mapping.pairs.start[i].key,
                               node->data.mapping.pairs.start[i].value)
                         : yaml_document_append_sequence_item(
                               &c->doc, copy, node->data.sequence.items.start[i]);
        if (!ok)
            copy = 0;
    }
    if (!copy)
        return mg_fail(c->err, "--set %s: out of memory", set), 0;
    yaml_node_t *made = node_at(c, copy);
    made->start_mark = start;
    made->end_mark = end;
    relink(c, parent, slot, copy);
    return copy;
}

/* Edits the tree for one "dotted.key=value": existing values are replaced, missing keys and
 * sections are added, so that the converted result cannot tell an override from the file except
 * by node id. Node pointers move when nodes are added, so only ids are kept across additions. */
static int apply_override(ctx *c, const char *set)
{
    const char *eq = strchr(set, '=');
    if (!eq || eq == set)
        return mg_fail(c->err, "--set %s: expected key=value", set);
    const char *value = eq + 1;
    char sofar[KEY_LEN] = "";
    int id = 1, parent = 0, slot = -1; /* the root, which has no parent */
    for (const char *comp = set;;) {
        const char *dot = memchr(comp, '.', (size_t)(eq - comp));
        const char *end = dot ? dot : eq;
        size_t n = (size_t)(end - comp);
        int last = !dot;
        if (n == 0)
            return mg_fail(c->err, "--set %s: empty key component", set);
        yaml_node_t *node = node_at(c, id);
        if (parent && is_null(node)) {
            /* `optimizer:` left empty in the file: the override fills it in. */
            int m = add_mapping(c, set);
            if (!m)
                return -1;
            relink(c, parent, slot, m);
            id = m;
            node = node_at(c, id);
        } else if (parent &&
                   (node->type == YAML_MAPPING_NODE || node->type == YAML_SEQUENCE_NODE) &&
                   references(c, id) > 1) {
            /* Shared by an alias: `--set generator.optimizer.lr` must not change D's rate too. */
            if (!(id = unshare(c, parent, slot, id, set)))
                return -1;
            node = node_at(c, id);
        }
        int next = 0;
        if (node->type == YAML_SEQUENCE_NODE) {
            int count = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
            if (n > 9 || strspn(comp, "0123456789") < n)
                return mg_fail(c->err, "--set %s: %s is a list; expected an index, got \"%.*s\"",
                               set, sofar, (int)n, comp);
            int index = atoi(comp);
            if (index >= count)
                return mg_fail(c->err, "--set %s: the list has %d entr%s", set, count,
                               count == 1 ? "y" : "ies");
            if (last) {
                int v = add_value(c, value, set);
                if (!v)
                    return -1;
                relink(c, id, index, v);
                return 0;
            }
            parent = id, slot = index;
            next = node->data.sequence.items.start[index];
        } else if (node->type == YAML_MAPPING_NODE) {
            int found = -1;
            int n_pairs = (int)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
            for (int i = 0; i < n_pairs && found < 0; i++) {
                yaml_node_t *k = node_at(c, node->data.mapping.pairs.start[i].key);
                if (k->type == YAML_SCALAR_NODE && k->data.scalar.length == n &&
                    !memcmp(k->data.scalar.value, comp, n))
                    found = i;
            }
            if (found >= 0) {
                if (last) {
                    int v = add_value(c, value, set);
                    if (!v)
                        return -1;
                    relink(c, id, found, v);
                    return 0;
                }
                parent = id, slot = found;
                next = node->data.mapping.pairs.start[found].value;
            } else {
                int k = add_scalar(c, comp, n, set);
                int v = !k     ? 0
                        : last ? add_value(c, value, set)
                               : add_mapping(c, set);
                if (!v)
                    return -1;
                if (!yaml_document_append_mapping_pair(&c->doc, id, k, v))
                    return mg_fail(c->err, "--set %s: out of memory", set);
                if (last)
                    return 0;
                parent = id, slot = n_pairs;
                next = v;
            }
        } else if (node->start_mark.index == 0) {
            /* A node an earlier --set made (libyaml leaves their marks 0): blame that one too. */
            return mg_fail(c->err, "--set %s: %s is a value of an earlier --set, not a mapping",
                           set, sofar);
        } else {
            return mg_fail(c->err, "--set %s: %s is a scalar (%s:%zu), not a mapping", set, sofar,
                           c->name, node->start_mark.line + 1);
        }
        size_t used = strlen(sofar);
        snprintf(sofar + used, sizeof sofar - used, "%s%.*s", used ? "." : "", (int)n, comp);
        id = next;
        comp = end + 1;
    }
}

/* ---- Entry points ---------------------------------------------------------------------------- */

/* libyaml's scanner checks every open flow level on every token (its simple keys), so a document
 * nested d deep costs d^2: 200,000 levels (400 kB of '[') took over a minute, and 16 MiB would
 * take hours. The schema needs 4 levels. So the events are read first, without building
 * anything, and reading stops at the first level past MG_CONFIG_MAX_DEPTH: the work done is then
 * bounded whatever follows. A syntax error ends this pass quietly; the load reports it. */
static int check_depth(ctx *c, const char *bytes, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return mg_fail(c->err, "%s: out of memory", c->name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)bytes, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev))
            break;
        const yaml_event_type_t type = ev.type;
        const size_t line = ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
            if (++depth > MG_CONFIG_MAX_DEPTH) {
                rc = mg_fail(c->err, "%s:%zu: nesting deeper than %d levels", c->name, line,
                             MG_CONFIG_MAX_DEPTH);
                break;
            }
        } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (type == YAML_STREAM_END_EVENT) {
            break;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

static int load_document(ctx *c, const char *bytes, size_t len)
{
    if (check_depth(c, bytes, len))
        return -1;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return mg_fail(c->err, "%s: out of memory", c->name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)bytes, len);
    int ok = yaml_parser_load(&parser, &c->doc);
    if (ok) {
        /* A second document would be silently ignored otherwise. */
        yaml_document_t extra;
        int extra_ok = yaml_parser_load(&parser, &extra);
        if (extra_ok) {
            yaml_node_t *root = yaml_document_get_root_node(&extra);
            size_t line = root ? root->start_mark.line + 1 : 0;
            yaml_document_delete(&extra);
            if (root) {
                yaml_document_delete(&c->doc);
                yaml_parser_delete(&parser);
                return mg_fail(c->err, "%s:%zu: expected one YAML document, found a second",
                               c->name, line);
            }
        } else {
            yaml_document_delete(&c->doc);
            ok = 0;
        }
    }
    if (!ok) {
        /* libyaml has freed the document of a failed load. */
        if (parser.error == YAML_MEMORY_ERROR)
            mg_fail(c->err, "%s: out of memory reading YAML", c->name);
        else if (parser.error == YAML_READER_ERROR)
            mg_fail(c->err, "%s: YAML syntax error: %s (byte %zu)", c->name,
                    parser.problem ? parser.problem : "unreadable input", parser.problem_offset);
        else
            mg_fail(c->err, "%s:%zu:%zu: YAML syntax error: %s", c->name,
                    parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "unknown problem");
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_parser_delete(&parser);
    return 0;
}

static int fail_key(ctx *c, const void *dest, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The value node of `key` in mapping `map`, or NULL (map NULL or not a mapping, or no such key);
 * the key's own node into *key_node when not NULL. */
static yaml_node_t *value_of(ctx *c, yaml_node_t *map, const char *key, yaml_node_t **key_node)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp(text(k), key) == 0) {
            if (key_node)
                *key_node = k;
            return node_at(c, p->value);
        }
    }
    return NULL;
}

/* A configuration trains a GAN (generator and discriminator) or a classifier (classifier), and
 * the sections and keys of the other kind do not apply to it: they are errors, not ignored. */
static int check_kind(ctx *c, const mg_config *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc), *key;
    if (!value_of(c, root, "classifier", NULL)) {
        /* Reported after every given value was checked, in the file's order of sections. */
        const char *need[2] = {"generator.layers", "discriminator.layers"};
        const int have[2] = {cfg->generator.net.n_layers, cfg->discriminator.net.n_layers};
        for (int i = 0; i < 2; i++)
            if (!have[i] && !c->missing[0])
                snprintf(c->missing, sizeof c->missing, "%s", need[i]);
        return 0;
    }
    static const char *const gan_only[] = {"generator", "discriminator", "conditional", "samples",
                                           "eval"};
    for (size_t i = 0; i < sizeof gan_only / sizeof *gan_only; i++)
        if (value_of(c, root, gan_only[i], &key))
            return fail_at(c, key, gan_only[i],
                           "not for a classifier configuration (it has a classifier section): "
                           "a configuration trains a GAN or a classifier");
    static const char *const gan_train[] = {"k", "mode", "generator_loss", "overlap"};
    yaml_node_t *train = value_of(c, root, "train", NULL);
    for (size_t i = 0; i < sizeof gan_train / sizeof *gan_train; i++) {
        if (value_of(c, train, gan_train[i], &key)) {
            char kpath[KEY_LEN];
            join(kpath, "train", gan_train[i]);
            return fail_at(c, key, kpath, "not for a classifier configuration: it trains a GAN");
        }
    }
    if (!cfg->classifier.net.n_layers && !c->missing[0])
        snprintf(c->missing, sizeof c->missing, "classifier.layers");
    return 0;
}

int mg_config_is_classifier(const mg_config *cfg)
{
    return cfg->classifier.net.n_layers > 0;
}

int mg_config_has_labels(const mg_config *cfg)
{
    const char *format = cfg->data.format;
    if (!strcmp(format, "idx"))
        return cfg->data.train_labels[0] != '\0';
    if (!strcmp(format, "cifar10"))
        return 1;
    if (!strcmp(format, "tfd"))
        return cfg->data.split != 0; /* the unlabeled split has none */
    return cfg->data.labels[0] != '\0';
}

int mg_config_gan_classes(const mg_config *cfg)
{
    return cfg->conditional.enabled ? cfg->data.classes : 0;
}

/* A format that knows its classes sets data.classes (CIFAR-10's 10, TFD's 7 expressions); a
 * value given for it must be that one. */
static int resolve_classes(ctx *c, mg_config *cfg)
{
    const char *format = cfg->data.format;
    const int own = !strcmp(format, "cifar10") ? 10 : !strcmp(format, "tfd") ? 7 : 0;
    if (own && cfg->data.classes == 0)
        cfg->data.classes = own;
    else if (own && cfg->data.classes != own)
        return fail_key(c, &cfg->data.classes, "data.classes", "%s has %d classes, got %d",
                        own == 10 ? "CIFAR-10" : "TFD (expressions)", own, cfg->data.classes);
    return 0;
}

/* Where labels come from and how many classes they count (the formats without classes of their
 * own must say); who needs them. */
static int check_labels(ctx *c, mg_config *cfg)
{
    const char *format = cfg->data.format;
    const int idx = !strcmp(format, "idx");
    if (!idx && (cfg->data.train_labels[0] || cfg->data.test_labels[0]))
        return mg_fail(c->err, "%s: data.%s: only for format idx (%s)", c->name,
                       cfg->data.train_labels[0] ? "train_labels" : "test_labels",
                       !strcmp(format, "hdf5") ? "an HDF5 file names its labels with data.labels"
                                               : "this format's files hold their labels");
    if (idx && cfg->data.test_labels[0] && !cfg->data.test_images[0])
        return mg_fail(c->err, "%s: data.test_labels: given without data.test_images", c->name);
    const int labelled = mg_config_has_labels(cfg);
    if ((labelled || cfg->data.test_labels[0]) && cfg->data.classes == 0)
        return mg_fail(c->err, "%s: data.classes: required with data.%s: how many classes the "
                       "labels count (10 for MNIST and Fashion-MNIST)", c->name,
                       !idx ? "labels" : labelled ? "train_labels" : "test_labels");
    const int classifier = mg_config_is_classifier(cfg);
    if ((cfg->conditional.enabled || classifier) && !labelled) {
        const char *who = classifier ? "classifier.layers: a classifier"
                                     : "conditional.enabled: a conditional GAN";
        if (idx)
            return mg_fail(c->err, "%s: %s trains on labels: set data.train_labels", c->name,
                           who);
        if (!strcmp(format, "tfd"))
            return mg_fail(c->err, "%s: %s trains on labels, and data.split unlabeled has none: "
                           "use train, valid or test", c->name, who);
        return mg_fail(c->err, "%s: %s trains on labels: set data.labels", c->name, who);
    }
    if (classifier && idx && cfg->data.test_images[0] && !cfg->data.test_labels[0])
        return mg_fail(c->err, "%s: data.test_labels: required with data.test_images for a "
                       "classifier (its test accuracy)", c->name);
    const mg_net_spec *net = &cfg->classifier.net;
    if (classifier && net->layers[net->n_layers - 1].units != cfg->data.classes) {
        char key[KEY_LEN];
        snprintf(key, sizeof key, "classifier.layers.%d.units", net->n_layers - 1);
        return fail_key(c, &net->layers[net->n_layers - 1].units, key,
                        "%d, but the data has %d classes (data.classes): one logit per class",
                        net->layers[net->n_layers - 1].units, cfg->data.classes);
    }
    return 0;
}

/* Which data keys a format needs, and what cannot go together. */
static int check_data(ctx *c, const mg_config *cfg)
{
    const int idx = strcmp(cfg->data.format, "idx") == 0;
    if (idx && !cfg->data.train_images[0])
        return fail_missing(c, "data.train_images", " for format idx");
    if (!idx && !cfg->data.path[0]) {
        char why[64];
        snprintf(why, sizeof why, " for format %s", cfg->data.format);
        return fail_missing(c, "data.path", why);
    }
    const mg_net_spec *g = &cfg->generator.net;
    const mg_layer_spec *g_out = g->n_layers > 0 ? &g->layers[g->n_layers - 1] : NULL;
    if (cfg->generator.output_bias_from_data && g_out &&
        !(g_out->op == MG_OP_DENSE ||
          ((g_out->op == MG_OP_CONV || g_out->op == MG_OP_DECONV) && g_out->bias &&
           !g_out->tied_bias)))
        return mg_fail(c->err,
                       "%s: generator.output_bias_from_data: needs a bias per output value in G's "
                       "last layer (dense, or a conv or deconv with tied_bias: false)",
                       c->name);
    const double lo = cfg->data.range[0], hi = cfg->data.range[1];
    if (!(lo < hi))
        return mg_fail(c->err, "%s: data.range: [%g, %g] is empty: the first value must be the "
                       "smaller", c->name, lo, hi);
    const int gcn = cfg->data.preprocess == MG_PREPROCESS_GCN;
    if (gcn && (lo != 0 || hi != 1))
        return mg_fail(c->err, "%s: data.range: applies to pixels as the file gives them, and "
                       "data.preprocess gcn makes other values", c->name);
    /* G's last activation bounds what it can draw: data outside its range can never be matched. */
    const enum mg_act act = g_out ? g_out->type : MG_ACT_LINEAR;
    const double act_lo = act == MG_ACT_SIGMOID ? 0 : act == MG_ACT_TANH ? -1 : -HUGE_VAL;
    const double act_hi = act == MG_ACT_SIGMOID || act == MG_ACT_TANH ? 1 : HUGE_VAL;
    if (act_lo > -HUGE_VAL && (gcn || lo < act_lo || hi > act_hi))
        return gcn ? mg_fail(c->err, "%s: G's last layer is %s, whose outputs lie in [%g, %g], and "
                             "data.preprocess gcn makes values outside it: make it linear",
                             c->name, mg_act_name(act), act_lo, act_hi)
                   : mg_fail(c->err, "%s: G's last layer is %s, whose outputs lie in [%g, %g], but "
                             "data.range is [%g, %g]%s",
                             c->name, mg_act_name(act), act_lo, act_hi, lo, hi,
                             act == MG_ACT_SIGMOID ? " (use [0, 1], or a tanh output for [-1, 1])"
                                                   : "");
    if (cfg->generator.output_bias_from_data && !(act == MG_ACT_SIGMOID || act == MG_ACT_TANH ||
                                                  act == MG_ACT_LINEAR))
        return mg_fail(c->err,
                       "%s: generator.output_bias_from_data: needs G's last layer sigmoid, tanh "
                       "or linear (one whose inverse gives the bias), not %s",
                       c->name, mg_act_name(act));
    return 0;
}

/* ---- Sizes that combine keys ------------------------------------------------------------------
 *
 * Each key has its own bounds, but the buffers a run allocates are products of several: G's
 * activations hold (k + 1) x batch_size rows of each layer's width. Every such product must fit
 * in MG_CONFIG_MAX_VALUES (GEMM sizes and row offsets are ints); the message names the largest
 * factor's key, the one most likely set by mistake. Ranks split the batch, so one rank's share is
 * smaller; the bound is taken for one rank, which must be able to run any configuration. */

/* The sample grid's limits, as image.c draws it (mg_png_grid): 1-pixel borders around cells. */
#define GRID_MAX_SIDE INT64_C(1000000)
#define GRID_MAX_PIXELS (INT64_C(1) << 28)

typedef struct {
    char label[KEY_LEN + 8]; /* "(train.k + 1)", "train.batch_size", "2" */
    char key[KEY_LEN];       /* the key it comes from, "" for a constant */
    int64_t value;           /* its value in the product */
    int64_t own;             /* the key's own value, as the message quotes it */
    const void *dest;        /* where the key's value is in the struct (NULL: a constant) */
} factor;

static factor key_factor(const char *label, const char *key, const void *dest, int64_t own,
                         int64_t value)
{
    factor f = {.value = value, .own = own, .dest = dest};
    snprintf(f.label, sizeof f.label, "%s", label);
    snprintf(f.key, sizeof f.key, "%s", key);
    return f;
}

static factor int_factor(const char *key, const int *dest)
{
    return key_factor(key, key, dest, *dest, *dest);
}

static factor const_factor(int64_t value)
{
    factor f = {.value = value, .own = value};
    snprintf(f.label, sizeof f.label, "%lld", (long long)value);
    return f;
}

/* Fails at the node key was given at ("--set key: ..." for an override), or without a line when
 * the key kept its default. */
__attribute__((format(printf, 4, 5))) static int fail_key(ctx *c, const void *dest,
                                                          const char *key, const char *fmt, ...)
{
    char problem[MG_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    for (int i = c->n_given - 1; i >= 0; i--)
        if (c->given[i].dest == dest)
            return fail_at(c, node_at(c, c->given[i].node), key, "%s", problem);
    return mg_fail(c->err, "%s: %s: %s", c->name, key, problem);
}

/* The product of f[0..n) (each >= 1) must be at most limit: "train.k: 65534 makes (train.k + 1) x
 * train.batch_size x generator.layers.0.units = 65535 x 100 x 1200 = 7864200000 values in ...". */
static int check_product(ctx *c, const factor *f, int n, int64_t limit, const char *what)
{
    int64_t p = 1;
    int over = 0, big = -1;
    double approx = 1;
    for (int i = 0; i < n; i++) {
        approx *= (double)f[i].value;
        if (!over && f[i].value > 0 && p > INT64_MAX / f[i].value)
            over = 1;
        else if (!over)
            p *= f[i].value;
        if (f[i].dest && (big < 0 || f[i].value >= f[big].value)) /* ties: the later, a layer's own */
            big = i;
    }
    if (!over && p <= limit)
        return 0;
    char labels[1024] = "", values[256] = "", total[48];
    size_t nl = 0, nv = 0;
    for (int i = 0; i < n; i++) {
        nl += (size_t)snprintf(labels + nl, nl < sizeof labels ? sizeof labels - nl : 0, "%s%s",
                               i ? " x " : "", f[i].label);
        nv += (size_t)snprintf(values + nv, nv < sizeof values ? sizeof values - nv : 0,
                               "%s%lld", i ? " x " : "", (long long)f[i].value);
    }
    if (over)
        snprintf(total, sizeof total, "%.4g", approx);
    else
        snprintf(total, sizeof total, "%lld", (long long)p);
    return fail_key(c, f[big].dest, f[big].key, "%lld makes %s = %s = %s %s, more than %lld",
                    (long long)f[big].own, labels, values, total, what, (long long)limit);
}

/* A network as nn.c lays it out for `rows` rows (the product of n_rows factors) of `in` inputs:
 * for every layer, rows x width activations, rows x inputs inputs and inputs x width weights,
 * where width = units (x pieces for maxout). */
static int check_net(ctx *c, const char *name, const char *who, const mg_net_spec *net,
                     const factor *rows, int n_rows, factor in)
{
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer_spec *L = &net->layers[l];
        /* A convolution's sizes follow from the data's shape, unknown here: the network checks
         * them, with 64-bit arithmetic, when it is built (nn.c), and the dense layers after one
         * with them. */
        if (L->op != MG_OP_DENSE)
            return 0;
        char key[KEY_LEN], what[96];
        factor w[2], f[6];
        int n_w = 1, n;
        snprintf(key, sizeof key, "%s.layers.%d.units", name, l);
        w[0] = int_factor(key, &L->units);
        if (L->type == MG_ACT_MAXOUT) {
            snprintf(key, sizeof key, "%s.layers.%d.pieces", name, l);
            w[n_w++] = int_factor(key, &L->pieces);
        }
        n = 0;
        for (int i = 0; i < n_rows; i++)
            f[n++] = rows[i];
        for (int i = 0; i < n_w; i++)
            f[n++] = w[i];
        snprintf(what, sizeof what, "activations in %s's layer %d", who, l);
        if (check_product(c, f, n, MG_CONFIG_MAX_VALUES, what))
            return -1;
        n = 0;
        for (int i = 0; i < n_rows; i++)
            f[n++] = rows[i];
        f[n++] = in;
        snprintf(what, sizeof what, "inputs of %s's layer %d", who, l);
        if (check_product(c, f, n, MG_CONFIG_MAX_VALUES, what))
            return -1;
        n = 0;
        f[n++] = in;
        for (int i = 0; i < n_w; i++)
            f[n++] = w[i];
        snprintf(what, sizeof what, "weights in %s's layer %d", who, l);
        if (check_product(c, f, n, MG_CONFIG_MAX_VALUES, what))
            return -1;
        in = w[0];
    }
    return 0;
}

/* The smallest sample grid mg_png_grid could draw for samples.count images of the generator's
 * output (images of at least 1 pixel a side, and at least units / 3 pixels each): if even that is
 * beyond its limits, the configuration is wrong now, not at the first snapshot. */
static int check_grid(ctx *c, const mg_config *cfg, int64_t units)
{
    const int count = cfg->samples.count, given = cfg->samples.columns;
    const int classes = mg_config_gan_classes(cfg);
    int64_t cols = given;
    if (classes) /* one row per class */
        cols = (count + classes - 1) / classes;
    else if (cols <= 0)
        for (cols = 1; cols * cols < count; cols++)
            ;
    const int64_t rows = classes ? classes : (count + cols - 1) / cols;
    const void *dest = given ? (const void *)&cfg->samples.columns : &cfg->samples.count;
    const char *key = given ? "samples.columns" : "samples.count";
    const int own = given ? given : count;
    if (1 + 2 * cols > GRID_MAX_SIDE)
        return fail_key(c, dest, key,
                        "%d makes a sample grid of %lld columns, at least %lld pixels wide, more "
                        "than %lld",
                        own, (long long)cols, (long long)(1 + 2 * cols), (long long)GRID_MAX_SIDE);
    if (1 + 2 * rows > GRID_MAX_SIDE)
        return fail_key(c, dest, key,
                        "%d makes a sample grid of %lld rows, at least %lld pixels tall, more than "
                        "%lld",
                        own, (long long)rows, (long long)(1 + 2 * rows), (long long)GRID_MAX_SIDE);
    const int64_t per = (units + 2) / 3; /* at most 3 channels */
    if (count * per > GRID_MAX_PIXELS)
        return fail_key(c, &cfg->samples.count, "samples.count",
                        "%d makes a sample grid of at least %lld pixels (images of %lld values, "
                        "at least %lld pixels each), more than %lld",
                        count, (long long)(count * per), (long long)units, (long long)per,
                        (long long)GRID_MAX_PIXELS);
    return 0;
}

/* Every size the trainer (train.c, nn.c), the snapshots and the Parzen estimates (session.c,
 * image.c) and the generator (generate.c) form from the configuration. */
static int check_sizes(ctx *c, const mg_config *cfg)
{
    const mg_net_spec *gnet = &cfg->generator.net, *dnet = &cfg->discriminator.net;
    if (gnet->n_layers < 1 || dnet->n_layers < 1)
        return 0; /* reported as missing */
    char key[KEY_LEN];
    const int last = gnet->n_layers - 1;
    /* G's output size follows from the shapes of its convolutions: with one, the sizes are
     * checked where they are formed, with the data's shape (nn.c, train.c, session.c). */
    for (int l = 0; l < gnet->n_layers; l++)
        if (gnet->layers[l].op != MG_OP_DENSE)
            return 0;
    snprintf(key, sizeof key, "generator.layers.%d.units", last);
    const factor units = int_factor(key, &gnet->layers[last].units);
    const factor batch = int_factor("train.batch_size", &cfg->train.batch_size);
    const factor noise = int_factor("generator.noise_dim", &cfg->generator.noise_dim);
    /* A conditional G takes the one-hot label beside its noise, a dense D beside the example. */
    const int classes = mg_config_gan_classes(cfg);
    const factor g_in = classes ? key_factor("(generator.noise_dim + data.classes)",
                                             "generator.noise_dim", &cfg->generator.noise_dim,
                                             cfg->generator.noise_dim,
                                             (int64_t)cfg->generator.noise_dim + classes)
                                : noise;
    const factor d_in = classes ? key_factor("(G's output + data.classes)", units.key, units.dest,
                                             units.own, units.value + classes)
                                : units;
    const int alternating = cfg->train.mode == MG_MODE_ALTERNATING;
    /* G makes the fakes of all k + 1 phases of a step in one pass (train.c). */
    const factor g_rows[2] = {key_factor("(train.k + 1)", "train.k", &cfg->train.k, cfg->train.k,
                                         (int64_t)cfg->train.k + 1),
                              batch};
    const factor d_rows[2] = {const_factor(2), batch}; /* real and fake rows */
    if (check_net(c, "generator", "G", gnet, alternating ? g_rows : g_rows + 1,
                  alternating ? 2 : 1, g_in) ||
        check_net(c, "discriminator", "D", dnet, d_rows, 2, d_in))
        return -1;
    /* Minibatches are counted in an int64_t: k of them per step. */
    if (alternating && cfg->train.steps > 0) {
        const factor steps[2] = {key_factor("train.steps", "train.steps", &cfg->train.steps,
                                            cfg->train.steps, cfg->train.steps),
                                 int_factor("train.k", &cfg->train.k)};
        if (check_product(c, steps, 2, INT64_MAX, "minibatches"))
            return -1;
    }
    const factor count = int_factor("samples.count", &cfg->samples.count);
    const factor eval_n = int_factor("eval.samples", &cfg->eval.samples);
    const factor points = int_factor("eval.points", &cfg->eval.points);
    const struct {
        factor a, b;
        const char *what;
    } pairs[] = {
        {count, noise, "values of fixed noise for the samples"},
        {count, units, "values in a sample snapshot"},
        {eval_n, noise, "values of fixed noise for the Parzen estimates"},
        {eval_n, units, "values of samples for the Parzen estimates"},
        {points, units, "values of validation examples for the Parzen estimates"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        if (check_product(c, (factor[2]){pairs[i].a, pairs[i].b}, 2, MG_CONFIG_MAX_VALUES,
                          pairs[i].what))
            return -1;
    if (cfg->samples.png && check_grid(c, cfg, units.value))
        return -1;
    return 0;
}

/* A path as a message shows it: control characters (a quoted "\n" in the file) as '?'. */
static const char *printable(char *buf, size_t n, const char *s)
{
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && j + 1 < n; p++)
        buf[j++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
    buf[j] = '\0';
    return buf;
}

/* Each data file given must be there to read, checked without reading it, and without opening
 * anything that is not a regular file: a FIFO would block open(2) until a writer came. Only
 * CIFAR-10's data.path is a folder (of the batches, which the reader checks one by one). */
static int check_files(ctx *c, const mg_config *cfg)
{
    const int cifar = strcmp(cfg->data.format, "cifar10") == 0;
    for (int i = 0; i < c->n_files; i++) {
        const char *path = c->files[i].dest, *key = c->files[i].key;
        yaml_node_t *node = node_at(c, c->files[i].node);
        char shown_path[MG_PATH_MAX];
        printable(shown_path, sizeof shown_path, path);
        struct stat st;
        if (stat(path, &st) != 0)
            return fail_at(c, node, key, "cannot open \"%s\": %s", shown_path, strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            if (!(c->files[i].dir_ok && cifar))
                return fail_at(c, node, key, "cannot open \"%s\": %s", shown_path,
                               strerror(EISDIR));
            if (access(path, R_OK | X_OK) != 0)
                return fail_at(c, node, key, "cannot open \"%s\": %s", shown_path,
                               strerror(errno));
            continue;
        }
        if (!S_ISREG(st.st_mode))
            return fail_at(c, node, key, "\"%s\" is not a regular file", shown_path);
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return fail_at(c, node, key, "cannot open \"%s\": %s", shown_path, strerror(errno));
        close(fd);
    }
    return 0;
}

/* Without a working directory (deleted, or too deep), paths stay relative: still right for this
 * run, only not for a copy of the configuration elsewhere. */
static int base_dirs(ctx *c)
{
    if (!getcwd(c->cwd, sizeof c->cwd - 1))
        c->cwd[0] = '\0';
    else if (strcmp(c->cwd, "/") != 0)
        strcat(c->cwd, "/");
    const char *slash = strrchr(c->name, '/');
    size_t dir_len = slash ? (size_t)(slash - c->name) + 1 : 0;
    const char *prefix = c->name[0] == '/' ? "" : c->cwd;
    size_t plen = strlen(prefix);
    if (plen + dir_len >= sizeof c->file_dir)
        return mg_fail(c->err, "%s: directory name too long", c->name);
    memcpy(c->file_dir, prefix, plen);
    memcpy(c->file_dir + plen, c->name, dir_len);
    c->file_dir[plen + dir_len] = '\0';
    return 0;
}

static int parse_bytes(mg_config *cfg, const char *bytes, size_t len, const char *name,
                       const char *const *overrides, int n_overrides, int files, mg_error *err)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.name = name ? name : "<config>";
    c.err = err;
    mg_config_defaults(cfg);
    if (strlen(c.name) >= sizeof cfg->source)
        return mg_fail(err, "%s: file name too long (at most %zu characters)", c.name,
                       sizeof cfg->source - 1);
    if (base_dirs(&c))
        return -1;
    if (load_document(&c, bytes, len))
        return -1;

    int rc = -1;
    yaml_node_t *root = yaml_document_get_root_node(&c.doc);
    if (root && !is_null(root) && root->type != YAML_MAPPING_NODE) {
        mg_fail(err, "%s:%zu: expected a mapping at the top level", c.name,
                root->start_mark.line + 1);
        goto out;
    }
    if (!root || is_null(root)) {
        /* An empty file is a valid document without keys. Start over with a tree that has no
         * nodes, so that overrides can add a root mapping as node 1. */
        yaml_document_delete(&c.doc);
        if (!yaml_document_initialize(&c.doc, NULL, NULL, NULL, 1, 1)) {
            mg_fail(err, "%s: out of memory", c.name);
            goto out;
        }
        if (n_overrides > 0 && !add_mapping(&c, overrides[0]))
            goto out;
    } else {
        c.n_file_nodes = (int)(c.doc.nodes.top - c.doc.nodes.start);
    }
    for (int i = 0; i < n_overrides; i++)
        if (apply_override(&c, overrides[i]))
            goto out;
    if (convert_map(&c, yaml_document_get_root_node(&c.doc), "", top_fields, (char *)cfg) ||
        check_kind(&c, cfg) || resolve_classes(&c, cfg))
        goto out;
    /* Sizes that combine keys point at a line: more useful first than a missing key. */
    if (check_sizes(&c, cfg))
        goto out;
    /* The data section comes first in the file's order, so its missing keys are reported first. */
    if (check_data(&c, cfg) || (!c.missing[0] && check_labels(&c, cfg)))
        goto out;
    if (c.missing[0]) {
        fail_missing(&c, c.missing, "");
        goto out;
    }
    if (files && check_files(&c, cfg))
        goto out;
    snprintf(cfg->source, sizeof cfg->source, "%s", c.name);
    rc = 0;
out:
    yaml_document_delete(&c.doc);
    return rc;
}

/* Keys and values are shown on one line where messages quote them; the file's name is not. */
static int parse_one_line(mg_config *cfg, const char *bytes, size_t len, const char *name,
                          const char *const *overrides, int n_overrides, int files, mg_error *err)
{
    if (parse_bytes(cfg, bytes, len, name, overrides, n_overrides, files, err))
        return mg_file_one_line(err);
    return 0;
}

double mg_config_pixel_span(const mg_config *cfg)
{
    if (cfg->data.preprocess == MG_PREPROCESS_GCN)
        return 1.0;
    return cfg->data.range[1] - cfg->data.range[0];
}

mg_gan_spec mg_config_gan(const mg_config *cfg)
{
    mg_gan_spec spec;
    memset(&spec, 0, sizeof spec); /* padding too: the spec is compared and sent as bytes */
    spec.seed = cfg->seed;
    spec.generator = cfg->generator;
    spec.discriminator = cfg->discriminator;
    spec.train = cfg->train;
    spec.classes = mg_config_gan_classes(cfg);
    spec.fake_labels = cfg->conditional.fake_labels;
    return spec;
}

int mg_config_parse_networks(mg_config *cfg, const char *text, const char *name, mg_error *err)
{
    return parse_one_line(cfg, text, strlen(text), name, NULL, 0, 0, err);
}

int mg_config_parse(mg_config *cfg, const char *text, const char *name,
                    const char *const *overrides, int n_overrides, mg_error *err)
{
    return parse_one_line(cfg, text, strlen(text), name, overrides, n_overrides, 1, err);
}

int mg_config_load(mg_config *cfg, const char *path, const char *const *overrides,
                   int n_overrides, mg_error *err)
{
    /* A pipe is a fine source (`mpigan train <(make-config)`), but open(2) of a FIFO nobody
     * writes to would wait forever: O_NONBLOCK opens it at once, and reading it then finds the
     * end (an empty configuration) unless a writer has come. Reads block as usual after. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), flags = fd < 0 ? -1 : fcntl(fd, F_GETFL);
    FILE *f = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        mg_fail(err, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return mg_file_one_line(err);
    }
    size_t cap = 4096, len = 0;
    char *buf = mg_xmalloc(cap);
    for (;;) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        if (cap >= MAX_CONFIG_BYTES) {
            free(buf);
            fclose(f);
            mg_fail(err, "%s: larger than %d MiB: not a configuration file", path,
                    MAX_CONFIG_BYTES >> 20);
            return mg_file_one_line(err);
        }
        cap *= 2;
        char *grown = realloc(buf, cap);
        if (!grown) {
            free(buf);
            fclose(f);
            mg_fail(err, "%s: out of memory", path);
            return mg_file_one_line(err);
        }
        buf = grown;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        mg_fail(err, "%s: cannot read: %s", path, strerror(e));
        return mg_file_one_line(err);
    }
    fclose(f);
    /* The length, not a terminator: a NUL byte in the file is then a YAML error, not an end. */
    int rc = parse_one_line(cfg, buf, len, path, overrides, n_overrides, 1, err);
    free(buf);
    return rc;
}

/* ---- Writing --------------------------------------------------------------------------------- */

/* The shortest decimal that reads back to exactly x: "0.1", not "0.10000000000000001". */
static const char *real_str(char *buf, size_t n, double x)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return buf;
}

/* The length of the line break YAML 1.1 sees at p beyond ASCII's: NEL (U+0085), LS (U+2028) and
 * PS (U+2029), which libyaml folds like a newline inside a quoted scalar and ends a comment at;
 * 0 if there is none. The escape that writes it is "\\N", "\\L" or "\\P". */
static size_t unicode_break(const unsigned char *p, char *escape)
{
    if (p[0] == 0xc2 && p[1] == 0x85)
        return *escape = 'N', 2;
    if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
        return *escape = p[2] == 0xa8 ? 'L' : 'P', 3;
    return 0;
}

/* Double-quoted, so paths with ": ", "#" or a leading "~" read back unchanged; every line break
 * escaped, since a raw one would read back as a space. */
static void write_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char escape;
        size_t brk = unicode_break(p, &escape);
        if (brk) {
            fprintf(f, "\\%c", escape);
            p += brk - 1;
        } else if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void write_str(FILE *f, const char *indent, const char *key, const char *s)
{
    fprintf(f, "%s%s: ", indent, key);
    write_quoted(f, s);
    fputc('\n', f);
}

static void write_real(FILE *f, const char *indent, const char *key, double x)
{
    char buf[40];
    fprintf(f, "%s%s: %s\n", indent, key, real_str(buf, sizeof buf, x));
}

/* A struct filled by hand (tests, tools) may hold any int; the output must stay valid YAML. */
static const char *enum_name(const char *const *names, int v)
{
    for (int i = 0; names[i]; i++)
        if (i == v)
            return names[i];
    return "unknown";
}

/* Names are [A-Za-z0-9_]+, which mg_config_parse reads as text whatever they look like; other
 * YAML readers would take 12, yes or null for a number, a boolean or nothing. */
static int plain_name(const char *s)
{
    static const char *const words[] = {"y",  "n",   "yes",   "no",  "on",
                                        "off", "true", "false", "null"};
    if (s[0] >= '0' && s[0] <= '9')
        return 0;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strcasecmp(s, words[i]))
            return 0;
    return 1;
}

/* "      kernel: 4" when both sides agree, else "      kernel: [4, 3]". */
static void write_pair(FILE *f, const char *key, const int *v)
{
    if (v[0] == v[1])
        fprintf(f, "      %s: %d\n", key, v[0]);
    else
        fprintf(f, "      %s: [%d, %d]\n", key, v[0], v[1]);
}

static void write_net(FILE *f, const mg_net_spec *net, const mg_optim_spec *o)
{
    fprintf(f, "  layers:\n");
    for (int i = 0; i < net->n_layers; i++) {
        const mg_layer_spec *l = &net->layers[i];
        fprintf(f, "    - name: ");
        if (plain_name(l->name))
            fputs(l->name, f);
        else
            write_quoted(f, l->name);
        fprintf(f, "\n      type: %s\n", mg_layer_type_name(l));
        const int conv = l->op == MG_OP_CONV || l->op == MG_OP_DECONV ||
                         l->op == MG_OP_MAXOUT_CONV;
        if (l->op == MG_OP_DENSE)
            fprintf(f, "      units: %d\n", l->units);
        if (conv)
            fprintf(f, "      channels: %d\n", l->units);
        /* Keys only where they apply: elsewhere they are errors. */
        if (l->type == MG_ACT_MAXOUT)
            fprintf(f, "      pieces: %d\n", l->pieces);
        if (l->op == MG_OP_CONV || l->op == MG_OP_DECONV || l->op == MG_OP_BATCHNORM)
            fprintf(f, "      activation: %s\n", mg_act_name(l->type));
        if (conv) {
            write_pair(f, "kernel", l->kernel);
            write_pair(f, "stride", l->stride);
            write_pair(f, "pad", l->pad);
            fprintf(f, "      tied_bias: %s\n", l->tied_bias ? "true" : "false");
            fprintf(f, "      algorithm: %s\n", mg_conv_algorithm_names[l->algorithm]);
        }
        if (l->op == MG_OP_DECONV)
            write_pair(f, "output_padding", l->out_pad);
        if (l->op == MG_OP_CONV || l->op == MG_OP_DECONV)
            fprintf(f, "      bias: %s\n", l->bias ? "true" : "false");
        if (l->op == MG_OP_MAXOUT_CONV) {
            write_pair(f, "pool", l->pool);
            write_pair(f, "pool_stride", l->pool_stride);
        }
        if (l->op == MG_OP_RESHAPE)
            fprintf(f, "      shape: [%d, %d, %d]\n", l->shape[0], l->shape[1], l->shape[2]);
        if (l->op == MG_OP_BATCHNORM) {
            fprintf(f, "      sync: %s\n", l->sync ? "true" : "false");
            write_real(f, "      ", "momentum", l->bn_momentum);
            write_real(f, "      ", "eps", l->bn_eps);
        }
        if (l->op != MG_OP_RESHAPE) {
            if (l->init != MG_INIT_UNIFORM || l->op == MG_OP_BATCHNORM)
                fprintf(f, "      init: %s\n", enum_name(mg_init_names, (int)l->init));
            if (l->init == MG_INIT_NORMAL)
                write_real(f, "      ", "std", l->std);
            else if (l->op != MG_OP_BATCHNORM)
                write_real(f, "      ", "irange", l->irange);
        }
        write_real(f, "      ", "keep", l->keep);
        write_real(f, "      ", "input_scale", l->input_scale);
        if (l->type == MG_ACT_LEAKY_RELU)
            write_real(f, "      ", "leak", l->leak);
        if (l->op == MG_OP_DENSE)
            write_real(f, "      ", "max_col_norm", l->max_col_norm);
    }
    fprintf(f, "  optimizer:\n    type: %s\n", enum_name(mg_optim_names, (int)o->type));
    write_real(f, "    ", "lr", o->lr);
    if (o->type == MG_OPTIM_SGD) {
        write_real(f, "    ", "lr_decay", o->lr_decay);
        write_real(f, "    ", "min_lr", o->min_lr);
        write_real(f, "    ", "momentum", o->momentum);
        write_real(f, "    ", "final_momentum", o->final_momentum);
        fprintf(f, "    momentum_start: %d\n", o->momentum_start);
        fprintf(f, "    momentum_saturate: %d\n", o->momentum_saturate);
    } else {
        write_real(f, "    ", "beta1", o->beta1);
        write_real(f, "    ", "beta2", o->beta2);
        write_real(f, "    ", "eps", o->eps);
    }
}

int mg_config_write(const mg_config *cfg, FILE *f)
{
    fprintf(f, "# mpigan effective configuration: every key, defaults filled in, data paths "
               "resolved.\n");
    if (cfg->source[0]) {
        fprintf(f, "# read from ");
        for (const unsigned char *p = (const unsigned char *)cfg->source; *p; p++) {
            char escape;
            size_t brk = unicode_break(p, &escape);
            p += brk ? brk - 1 : 0;
            /* a line break would end the comment */
            fputc(brk || *p < 0x20 || *p == 0x7f ? '?' : *p, f);
        }
        fputc('\n', f);
    }
    fprintf(f, "seed: %" PRIu64 "\n", cfg->seed);
    fprintf(f, "data:\n  format: %s\n", cfg->data.format);
    /* A format's own file keys only: the others may not be given empty. */
    if (strcmp(cfg->data.format, "idx") == 0) {
        write_str(f, "  ", "train_images", cfg->data.train_images);
        write_str(f, "  ", "test_images", cfg->data.test_images);
        write_str(f, "  ", "train_labels", cfg->data.train_labels);
        write_str(f, "  ", "test_labels", cfg->data.test_labels);
    } else {
        write_str(f, "  ", "path", cfg->data.path);
        if (cfg->data.test_path[0])
            write_str(f, "  ", "test_path", cfg->data.test_path);
    }
    write_str(f, "  ", "images", cfg->data.images);
    write_str(f, "  ", "labels", cfg->data.labels);
    fprintf(f, "  fold: %d\n  split: %s\n", cfg->data.fold, enum_name(split_names, cfg->data.split));
    fprintf(f, "  train_count: %d\n  valid_count: %d\n", cfg->data.train_count,
            cfg->data.valid_count);
    fprintf(f, "  preprocess: %s\n", enum_name(preprocess_names, (int)cfg->data.preprocess));
    write_real(f, "  ", "gcn_scale", cfg->data.gcn_scale);
    char lo[40], hi[40];
    fprintf(f, "  range: [%s, %s]\n", real_str(lo, sizeof lo, cfg->data.range[0]),
            real_str(hi, sizeof hi, cfg->data.range[1]));
    fprintf(f, "  shared_memory: %s\n", cfg->data.shared_memory ? "true" : "false");
    fprintf(f, "  classes: %d\n", cfg->data.classes);
    /* A configuration of one kind only: the other's sections are errors (check_kind). */
    const int gan = !mg_config_is_classifier(cfg);
    if (gan) {
        fprintf(f, "generator:\n  noise_dim: %d\n  prior: %s\n  output_bias_from_data: %s\n",
                cfg->generator.noise_dim, enum_name(mg_prior_names, (int)cfg->generator.prior),
                cfg->generator.output_bias_from_data ? "true" : "false");
        write_net(f, &cfg->generator.net, &cfg->generator.optim);
        fprintf(f, "discriminator:\n");
        write_net(f, &cfg->discriminator.net, &cfg->discriminator.optim);
        fprintf(f, "conditional:\n  enabled: %s\n  fake_labels: %s\n",
                cfg->conditional.enabled ? "true" : "false",
                enum_name(mg_label_draw_names, (int)cfg->conditional.fake_labels));
    } else {
        fprintf(f, "classifier:\n");
        write_net(f, &cfg->classifier.net, &cfg->classifier.optim);
    }
    fprintf(f, "train:\n  batch_size: %d\n", cfg->train.batch_size);
    if (gan)
        fprintf(f, "  k: %d\n  mode: %s\n  generator_loss: %s\n", cfg->train.k,
                enum_name(mg_mode_names, (int)cfg->train.mode),
                enum_name(mg_gen_loss_names, (int)cfg->train.generator_loss));
    fprintf(f, "  epochs: %d\n  steps: %" PRId64 "\n  check_every: %d\n  log_every: %d\n",
            cfg->train.epochs, cfg->train.steps, cfg->train.check_every, cfg->train.log_every);
    if (gan)
        fprintf(f, "  overlap: %s\n", cfg->train.overlap ? "true" : "false");
    fprintf(f, "  shared_allreduce: %s\n", cfg->train.shared_allreduce ? "true" : "false");
    fprintf(f, "  node_ranks: %d\n", cfg->train.node_ranks);
    fprintf(f, "  sharded_update: %s\n", cfg->train.sharded_update ? "true" : "false");
    if (cfg->train.bucket_mb == MG_BUCKETS_AUTO)
        fprintf(f, "  bucket_mb: auto\n");
    else
        write_real(f, "  ", "bucket_mb", cfg->train.bucket_mb);
    fprintf(f, "  gradient_dtype: %s\n  error_feedback: %s\n",
            enum_name(dtype_names, cfg->train.gradient_bf16),
            cfg->train.error_feedback ? "true" : "false");
    fprintf(f, "  nonfinite: %s\n", enum_name(mg_nonfinite_names, (int)cfg->train.nonfinite));
    write_real(f, "  ", "stall_seconds", cfg->train.stall_seconds);
    fprintf(f, "checkpoint:\n  every: %d\n  keep: %d\n", cfg->checkpoint.every,
            cfg->checkpoint.keep);
    if (gan) {
        fprintf(f, "samples:\n  every: %d\n  count: %d\n  columns: %d\n  png: %s\n"
                   "  nearest: %s\n",
                cfg->samples.every, cfg->samples.count, cfg->samples.columns,
                cfg->samples.png ? "true" : "false", cfg->samples.nearest ? "true" : "false");
        fprintf(f, "eval:\n  every: %d\n  samples: %d\n  points: %d\n", cfg->eval.every,
                cfg->eval.samples, cfg->eval.points);
        write_str(f, "  ", "classifier", cfg->eval.classifier);
    }
    fprintf(f, "output:\n");
    write_str(f, "  ", "dir", cfg->output.dir);
    /* Buffered write errors show up here or at the caller's fclose. */
    return ferror(f) ? -1 : 0;
}

char *mg_config_text(const mg_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f || mg_config_write(cfg, f) != 0 || fclose(f) != 0) {
        fprintf(stderr, "mpigan: out of memory writing the configuration\n");
        exit(MG_EXIT_RUNTIME);
    }
    return text;
}
