/* mpigan: the command line. It parses arguments into the option structs of mpigan/run.h and
 * calls the library; everything else lives in libmpigan.
 *
 * Exit status: see MG_EXIT_* in mpigan/run.h and `mpigan --help`. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/classify.h"
#include "mpigan/comm.h"
#include "mpigan/real.h"
#include "mpigan/evaluate.h"
#include "mpigan/generate.h"
#include "mpigan/plot.h"
#include "mpigan/run.h"
#include "mpigan/signals.h"

#define MAX_OVERRIDES 256

static const char *usage_main =
    "mpigan " MPIGAN_VERSION ": generative adversarial nets (Goodfellow et al., 2014), trained\n"
    "data-parallel over MPI.\n"
    "\n"
    "usage: mpirun -np N mpigan COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG       train a generator and a discriminator as CONFIG (YAML) describes\n"
    "  train --resume CKPT   continue a run from a checkpoint\n"
    "  classifier train CONFIG   train a classifier of the data's labels (for eval --classifier)\n"
    "  sample CKPT -n N -o FILE.h5   draw N samples from a checkpoint's generator\n"
    "  eval CKPT          the paper's Parzen window log-likelihood of a checkpoint's generator\n"
    "  plot RUN_DIR       training curves, Parzen curves and a sample grid of a run, as PNG\n"
    "  info CKPT          describe a checkpoint: step, configuration, tensors\n"
    "  prepare FORMAT INPUT... -o OUT.h5   convert a data set once into mpigan's HDF5 input\n"
    "\n"
    "options:\n"
    "  -h, --help     this text; 'mpigan COMMAND --help' lists a command's options\n"
    "  --version      print the version\n"
    "\n"
    "Exit status: 0 done; 1 failed while running; 2 bad input (command line, configuration, data,\n"
    "files), found before any work; 3 stopped by SIGTERM, SIGINT or SIGUSR1 after writing a\n"
    "checkpoint (resume with --resume). Configurations: configs/*.yaml and README.md.\n";

static const char *usage_train =
    "usage: mpirun -np N mpigan train CONFIG [options]\n"
    "       mpirun -np N mpigan train --resume CHECKPOINT [CONFIG] [options]\n"
    "\n"
    "Trains G and D with the paper's Algorithm 1 (k D steps, then one G step) on N ranks; the\n"
    "global batch train.batch_size is split evenly over the ranks.\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE  override a configuration key, e.g. --set train.batch_size=50 or\n"
    "                   --set discriminator.layers.0.keep=1; repeatable, later ones win\n"
    "  --steps N        stop after N steps (same as --set train.steps=N; default: from epochs)\n"
    "  --epochs N       train for N epochs (same as --set train.epochs=N; default: config, 1)\n"
    "  --resume CKPT    continue from a checkpoint file, from the newest checkpoint of a run\n"
    "                   directory, or with 'latest' from that of --out (default: none). Without\n"
    "                   CONFIG the checkpoint's own configuration is used; with CONFIG its\n"
    "                   networks must match the checkpoint's\n"
    "  --out DIR        run directory (default: the resumed checkpoint's, else output.dir, else\n"
    "                   runs/<config name>-<date>-<time>)\n"
    "  --force          write into a run directory that already holds a run\n"
    "  --quiet          no progress lines on stdout (metrics.jsonl is still written)\n"
    "  --progress MODE  redraw (one line updated in place), lines (a line every train.log_every\n"
    "                   steps, for logs) or auto (default: lines in a SLURM batch job, else redraw\n"
    "                   when stdout is a terminal; mpirun gives ranks a terminal even when its own\n"
    "                   output goes to a file, so scripts should say which they want)\n"
    "  -h, --help       this text\n"
    "\n"
    "Signals: SIGTERM, SIGINT or SIGUSR1 on any rank stops the run at the next step with a\n"
    "checkpoint (exit status 3); a second SIGINT stops at once. Environment: OPENBLAS_NUM_THREADS\n"
    "sets BLAS threads per rank (default: the cores a rank may use, shared among the node's ranks).\n";

static const char *usage_classifier =
    "usage: mpirun -np N mpigan classifier train CONFIG [options]\n"
    "       mpirun -np N mpigan classifier train --resume CHECKPOINT [CONFIG] [options]\n"
    "\n"
    "Trains a classifier of the data set's labels on N ranks, data-parallel as a GAN is trained:\n"
    "CONFIG has a classifier section (layers ending in a linear layer of data.classes units,\n"
    "an optimizer) instead of generator and discriminator. Reports the validation accuracy at\n"
    "each epoch's end and the test accuracy at the end; its checkpoints are what\n"
    "'mpigan eval --classifier' measures generators with (configs/*-classifier.yaml).\n"
    "\n"
    "options: those of 'mpigan train' (--set, --steps, --epochs, --resume, --out, --force,\n"
    "--quiet, --progress); -h, --help this text\n";

static const char *usage_sample =
    "usage: mpirun -np N mpigan sample CHECKPOINT -n N -o FILE.h5 [options]\n"
    "\n"
    "Draws samples from a checkpoint's generator (no dropout), the work split over the ranks;\n"
    "rank 0 writes /samples (n, channels, height, width) and the noise /z to FILE.h5, and for a\n"
    "conditional generator the class of each sample, /labels (sample i: class i mod classes).\n"
    "CHECKPOINT may be a run directory: its newest checkpoint.\n"
    "\n"
    "options:\n"
    "  -n N             samples to draw (required)\n"
    "  -o FILE.h5       output file (required)\n"
    "  --class K        a conditional generator's samples of class K only: the rows of class K\n"
    "                   of the noise set, the same images as in a draw of every class\n"
    "  --png FILE.png   also draw them as a grid (a conditional generator's: one row per class)\n"
    "  --columns C      columns of the grid, at most N (default: the smallest square that holds\n"
    "                   N)\n"
    "  --noise-set K    which noise set to draw z from (default 1; set 0 is the noise of the\n"
    "                   training run's snapshots, so -n 100 --noise-set 0 redraws those)\n"
    "  -h, --help       this text\n";

static const char *usage_eval =
    "usage: mpirun -np N mpigan eval CHECKPOINT [options]\n"
    "\n"
    "The Gaussian Parzen window estimate of the paper's Table 1: a window of width sigma on each\n"
    "of the generator's samples; sigma is the grid value with the best mean log-likelihood of\n"
    "the validation examples; then the mean log-likelihood of the test examples and its standard\n"
    "error. The points are split over the ranks; the result does not depend on their number.\n"
    "Prints a table and writes a JSON record. CHECKPOINT may be a run directory.\n"
    "\n"
    "options:\n"
    "  -n N             samples in the window (default 10000)\n"
    "  --valid N        validation examples that choose sigma (default 1000: the first of the\n"
    "                   validation split)\n"
    "  --test N         test examples (default 0: all of the test set)\n"
    "  --sigmas LO,HI,K the sigma grid: K values log-spaced from LO to HI (default 0.1,1,10)\n"
    "  --real           a window on the first N training examples instead of generated samples:\n"
    "                   the figure a trained generator is compared with\n"
    "  --noise-set K    the generator's noise set (default 1: mpigan sample's samples)\n"
    "  --classifier CLS.h5  also measure the samples with a classifier's checkpoint (mpigan\n"
    "                   classifier train): the Frechet distance of its penultimate features\n"
    "                   (samples vs test examples), the classifier score, the class histogram\n"
    "                   and its coverage, and a conditional generator's accuracy\n"
    "  --class K        a conditional generator's samples of class K only (with --real: the\n"
    "                   training examples of class K): a generator collapsed onto one class\n"
    "  --set KEY=VALUE  override a key of the checkpoint's configuration, e.g. data paths on\n"
    "                   another machine: --set data.test_images=PATH\n"
    "  -o FILE.json     the record (default: eval-<step>.json beside the checkpoint,\n"
    "                   eval-<step>-real.json with --real)\n"
    "  --quiet          no table\n"
    "  -h, --help       this text\n";

static const char *usage_plot =
    "usage: mpigan plot RUN_DIR [options]\n"
    "\n"
    "Draws a run's pictures with gnuplot into RUN_DIR/plots: losses.png, d_outputs.png,\n"
    "throughput.png and parzen_training.png from metrics.jsonl; parzen-<step>.png for each\n"
    "eval-<step>.json; samples.png, the newest checkpoint's samples with the nearest training\n"
    "examples. The gnuplot scripts stay beside them. No mpirun needed.\n"
    "\n"
    "options:\n"
    "  -o DIR           where to write (default RUN_DIR/plots)\n"
    "  --size WxH       pixels of each curve (default 900x560)\n"
    "  -h, --help       this text\n";

static const char *usage_info =
    "usage: mpigan info CHECKPOINT\n"
    "\n"
    "Prints a checkpoint's step, epoch, versions, configuration summary and every tensor with\n"
    "its shape. CHECKPOINT may be a run directory: its newest checkpoint.\n";

static const char *usage_prepare =
    "usage: mpigan prepare FORMAT INPUT... -o OUT.h5 [options]\n"
    "\n"
    "Converts a data set into mpigan's HDF5 input (/images (N, C, H, W), /labels (N)), to train\n"
    "with data.format hdf5: convert once, train many times.\n"
    "\n"
    "  prepare idx train-images-idx3-ubyte.gz [train-labels-idx1-ubyte.gz] -o mnist.h5\n"
    "  prepare cifar10 data_batch_1.bin ... data_batch_5.bin -o cifar10.h5\n"
    "  prepare tfd TFD_48x48.mat --fold 0 --split unlabeled -o tfd.h5\n"
    "\n"
    "options:\n"
    "  -o OUT.h5        output file (required)\n"
    "  --fold K         tfd: fold 0 to 4 (default 0)\n"
    "  --split S        tfd: unlabeled, train, valid or test (default unlabeled)\n"
    "  -h, --help       this text\n";

/* Before MPI_Init the rank is only known from the launcher's environment; it lets a command-line
 * error be printed once, not once per rank. */
static int launcher_rank(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v)
            return atoi(v);
    }
    return 0;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    if (launcher_rank() == 0) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "mpigan: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, " (see 'mpigan %s --help')\n", cmd);
        va_end(ap);
    }
    return MG_EXIT_INPUT;
}

static int help(const char *text)
{
    if (launcher_rank() == 0)
        fputs(text, stdout);
    return MG_EXIT_OK;
}

static int is_count(const char *s)
{
    if (!*s || strlen(s) > 15)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* ---- one command's arguments, through getopt_long ---- */

/* Options without a short form, numbered above every character. */
enum {
    OPT_SET = 256, OPT_STEPS, OPT_EPOCHS, OPT_OUT, OPT_RESUME, OPT_PROGRESS, OPT_FORCE, OPT_QUIET,
    OPT_PNG, OPT_COLUMNS, OPT_NOISE_SET, OPT_VALID, OPT_TEST, OPT_SIGMAS, OPT_REAL, OPT_SIZE,
    OPT_FOLD, OPT_SPLIT, OPT_CLASS, OPT_CLASSIFIER,
};

#define HELP_OPTION {"help", no_argument, NULL, 'h'}

/* The arguments of one command, argv[0] its name. Options and positional arguments may come in
 * any order ("train --out DIR CONFIG", "train CONFIG --out DIR"), an option's value as the next
 * argument or after '=' (--set=KEY=VALUE), a long option by any unambiguous prefix, and
 * everything after "--" is positional. */
typedef struct {
    const char *cmd;                 /* for "see 'mpigan CMD --help'" */
    const char *shorts;              /* the short options, as getopt's optstring */
    const struct option *longs;      /* ending with a zero entry */
    char optstring[32];
    int argc;
    char **argv;
    int rest;                        /* past "--", or past the last option */
} args;

static void args_start(args *a, const char *cmd, const char *shorts,
                       const struct option *longs, int argc, char **argv)
{
    a->cmd = cmd;
    a->shorts = shorts;
    a->longs = longs;
    /* '-': positional arguments come back in order, as option 1, whatever POSIXLY_CORRECT says,
     * so that they may stand before and after options; ':' reports a missing value as ':'. */
    snprintf(a->optstring, sizeof a->optstring, "-:%s", shorts);
    a->argc = argc;
    a->argv = argv;
    a->rest = 0;
    optind = 0; /* glibc: 0 starts getopt afresh, for each command parsed */
    opterr = 0; /* its messages are replaced by mpigan's one line */
}

/* An option's name: "--set" for one written long (perhaps abbreviated, perhaps with "=VALUE"),
 * else "-n". */
static const char *option_name(const args *a, int val, int written_long)
{
    static char buf[64];
    for (const struct option *o = a->longs; written_long && o->name; o++)
        if (o->val == val) {
            snprintf(buf, sizeof buf, "--%s", o->name);
            return buf;
        }
    snprintf(buf, sizeof buf, "-%c", val);
    return buf;
}

/* getopt_long's '?' as mpigan's line. optopt tells the cases apart: one of this command's options
 * (only a long one, given "=VALUE" though it takes none), another character (an unknown short
 * option; the argument holding it may be a cluster, "-qx"), or 0 (an unknown long option, or an
 * abbreviation of several: getopt_long has moved past it). */
static int bad_option(const args *a)
{
    const int known = optopt >= 256 || (optopt > 0 && optopt != ':' && strchr(a->shorts, optopt));
    if (known)
        return usage_error(a->cmd, "%s takes no value", option_name(a, optopt, 1));
    if (optopt != 0)
        return usage_error(a->cmd, "unknown option -%c", optopt);
    const char *written = a->argv[optind - 1];
    const size_t len = strcspn(written + 2, "=");
    char candidates[256] = "";
    int n = 0;
    for (const struct option *o = a->longs; o->name; o++)
        if (strncmp(o->name, written + 2, len) == 0) {
            const size_t used = strlen(candidates);
            snprintf(candidates + used, sizeof candidates - used, "%s--%s", n++ ? ", " : "",
                     o->name);
        }
    if (n > 1)
        return usage_error(a->cmd, "option %.*s is ambiguous: %s", (int)len + 2, written,
                           candidates);
    return usage_error(a->cmd, "unknown option %s", written);
}

/* The next argument: an option's character (or OPT_*) with its value in *value, 1 for a
 * positional argument in *value, 0 at the end, or -1 after printing what is wrong (the caller
 * returns MG_EXIT_INPUT). */
static int args_next(args *a, const char **value)
{
    if (!a->rest) {
        const int c = getopt_long(a->argc, a->argv, a->optstring, a->longs, NULL);
        if (c == ':') {
            // getopt_long has moved past the option, the last argument: "--set" or "-n" (or "-qn")
            const char *written = a->argv[optind - 1];
            usage_error(a->cmd, "%s needs a value",
                        option_name(a, optopt, strncmp(written, "--", 2) == 0));
            return -1;
        }
        if (c == '?') {
            bad_option(a);
            return -1;
        }
        if (c != -1) {
            *value = optarg;
            return c;
        }
        a->rest = 1; /* getopt_long left optind at the arguments after "--", if any */
    }
    if (optind < a->argc) {
        *value = a->argv[optind++];
        return 1;
    }
    return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse_train(mg_train_opts *o, int argc, char **argv, const char *cmd,
                       const char *usage)
{
    static const char *overrides[MAX_OVERRIDES];
    static char steps_set[64], epochs_set[64];
    static const struct option longs[] = {
        HELP_OPTION,
        {"set", required_argument, NULL, OPT_SET},
        {"steps", required_argument, NULL, OPT_STEPS},
        {"epochs", required_argument, NULL, OPT_EPOCHS},
        {"out", required_argument, NULL, OPT_OUT},
        {"resume", required_argument, NULL, OPT_RESUME},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        {"force", no_argument, NULL, OPT_FORCE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->overrides = overrides;
    steps_set[0] = epochs_set[0] = '\0';
    args a;
    args_start(&a, cmd, "h", longs, argc, argv);
    const char *val;
    for (int c; (c = args_next(&a, &val)) != 0;) {
        switch (c) {
        case -1:
            return MG_EXIT_INPUT;
        case 'h':
            return help(usage);
        case OPT_SET:
            /* two places stay for --epochs and --steps */
            if (o->n_overrides >= MAX_OVERRIDES - 2)
                return usage_error(cmd, "too many --set options (at most %d)",
                                   MAX_OVERRIDES - 2);
            overrides[o->n_overrides++] = val;
            break;
        case OPT_STEPS:
        case OPT_EPOCHS:
            if (!is_count(val))
                return usage_error(cmd, "--%s needs a whole number",
                                   c == OPT_STEPS ? "steps" : "epochs");
            snprintf(c == OPT_STEPS ? steps_set : epochs_set, sizeof steps_set, "train.%s=%s",
                     c == OPT_STEPS ? "steps" : "epochs", val);
            break;
        case OPT_OUT:
            o->out = val;
            break;
        case OPT_RESUME:
            o->resume = val;
            break;
        case OPT_PROGRESS:
            if (!strcmp(val, "auto"))
                o->progress = MG_PROGRESS_AUTO;
            else if (!strcmp(val, "redraw"))
                o->progress = MG_PROGRESS_REDRAW;
            else if (!strcmp(val, "lines"))
                o->progress = MG_PROGRESS_LINES;
            else
                return usage_error(cmd, "--progress takes auto, redraw or lines, not %s", val);
            break;
        case OPT_FORCE:
            o->force = 1;
            break;
        case OPT_QUIET:
            o->quiet = 1;
            break;
        default: /* 1: the configuration */
            if (o->config)
                return usage_error(cmd, "one configuration file only; extra argument %s", val);
            o->config = val;
        }
    }
    if (!o->config && !o->resume)
        return usage_error(cmd, "%s needs a configuration file (or --resume)", cmd);
    /* The dedicated options go last, so they win over --set like a later --set would. */
    if (epochs_set[0])
        overrides[o->n_overrides++] = epochs_set;
    if (steps_set[0])
        overrides[o->n_overrides++] = steps_set;
    return -1;
}

static int parse_sample(mg_sample_opts *o, int argc, char **argv)
{
    static const struct option longs[] = {
        HELP_OPTION,
        {"png", required_argument, NULL, OPT_PNG},
        {"columns", required_argument, NULL, OPT_COLUMNS},
        {"noise-set", required_argument, NULL, OPT_NOISE_SET},
        {"class", required_argument, NULL, OPT_CLASS},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->n = -1;
    o->set = 1;
    o->cls = MG_ALL_CLASSES;
    args a;
    args_start(&a, "sample", "hn:o:", longs, argc, argv);
    const char *val;
    for (int c; (c = args_next(&a, &val)) != 0;) {
        switch (c) {
        case -1:
            return MG_EXIT_INPUT;
        case 'h':
            return help(usage_sample);
        case 'n':
        case OPT_COLUMNS:
        case OPT_NOISE_SET:
        case OPT_CLASS: {
            if (!is_count(val) || (c == OPT_CLASS && atoll(val) >= 65536))
                return usage_error("sample", "%s needs a whole number%s",
                                   c == 'n'           ? "-n"
                                   : c == OPT_COLUMNS ? "--columns"
                                   : c == OPT_CLASS   ? "--class"
                                                      : "--noise-set",
                                   c == OPT_CLASS ? " below 65536" : "");
            const long long v = atoll(val);
            if (c == 'n')
                o->n = v;
            else if (c == OPT_COLUMNS)
                o->columns = v > 100000 ? 100000 : (int)v;
            else if (c == OPT_CLASS)
                o->cls = (int)v;
            else
                o->set = (uint64_t)v;
            break;
        }
        case 'o':
            o->out = val;
            break;
        case OPT_PNG:
            o->png = val;
            break;
        default: /* 1: the checkpoint */
            if (o->checkpoint)
                return usage_error("sample", "one checkpoint only; extra argument %s", val);
            o->checkpoint = val;
        }
    }
    if (!o->checkpoint)
        return usage_error("sample", "sample needs a checkpoint");
    if (o->n < 1)
        return usage_error("sample", "sample needs -n N, N >= 1");
    if (!o->out)
        return usage_error("sample", "sample needs -o FILE.h5");
    return -1;
}

/* "LO,HI,K" with 0 < LO <= HI and 1 <= K <= 1000. */
static int parse_sigmas(mg_eval_opts *o, const char *val)
{
    double lo, hi;
    int k, used = 0;
    if (sscanf(val, "%lf,%lf,%d%n", &lo, &hi, &k, &used) != 3 || val[used] != '\0' || !(lo > 0) ||
        !(hi >= lo) || k < 1 || k > 1000 || (k == 1 && hi != lo))
        return -1;
    o->sigma_lo = lo;
    o->sigma_hi = hi;
    o->n_sigmas = k;
    return 0;
}

static int parse_eval(mg_eval_opts *o, int argc, char **argv)
{
    static const char *overrides[MAX_OVERRIDES];
    static const struct option longs[] = {
        HELP_OPTION,
        {"valid", required_argument, NULL, OPT_VALID},
        {"test", required_argument, NULL, OPT_TEST},
        {"sigmas", required_argument, NULL, OPT_SIGMAS},
        {"real", no_argument, NULL, OPT_REAL},
        {"noise-set", required_argument, NULL, OPT_NOISE_SET},
        {"set", required_argument, NULL, OPT_SET},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"classifier", required_argument, NULL, OPT_CLASSIFIER},
        {"class", required_argument, NULL, OPT_CLASS},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->cls = MG_ALL_CLASSES;
    o->overrides = overrides;
    o->samples = 10000;
    o->valid_points = 1000;
    o->sigma_lo = 0.1;
    o->sigma_hi = 1.0;
    o->n_sigmas = 10;
    o->set = 1;
    args a;
    args_start(&a, "eval", "hn:o:", longs, argc, argv);
    const char *val;
    for (int c; (c = args_next(&a, &val)) != 0;) {
        switch (c) {
        case -1:
            return MG_EXIT_INPUT;
        case 'h':
            return help(usage_eval);
        case 'n':
        case OPT_VALID:
        case OPT_TEST:
        case OPT_NOISE_SET: {
            if (!is_count(val) || (c != OPT_NOISE_SET && atoll(val) > 100000000))
                return usage_error("eval", "%s needs a whole number",
                                   c == 'n'         ? "-n"
                                   : c == OPT_VALID ? "--valid"
                                   : c == OPT_TEST  ? "--test"
                                                    : "--noise-set");
            const long long v = atoll(val);
            if (c == 'n')
                o->samples = v;
            else if (c == OPT_VALID)
                o->valid_points = (int)v;
            else if (c == OPT_TEST)
                o->test_points = (int)v;
            else
                o->set = (uint64_t)v;
            break;
        }
        case OPT_SIGMAS:
            if (parse_sigmas(o, val))
                return usage_error("eval", "--sigmas takes LO,HI,K with 0 < LO <= HI and K from 1 "
                                           "to 1000, not %s", val);
            break;
        case OPT_SET:
            if (o->n_overrides >= MAX_OVERRIDES)
                return usage_error("eval", "too many --set options (at most %d)", MAX_OVERRIDES);
            overrides[o->n_overrides++] = val;
            break;
        case 'o':
            o->out = val;
            break;
        case OPT_REAL:
            o->real = 1;
            break;
        case OPT_CLASSIFIER:
            o->classifier = val;
            break;
        case OPT_CLASS:
            if (!is_count(val) || atoll(val) >= 65536)
                return usage_error("eval", "--class needs a whole number below 65536");
            o->cls = atoi(val);
            break;
        case OPT_QUIET:
            o->quiet = 1;
            break;
        default: /* 1: the checkpoint */
            if (o->checkpoint)
                return usage_error("eval", "one checkpoint only; extra argument %s", val);
            o->checkpoint = val;
        }
    }
    if (!o->checkpoint)
        return usage_error("eval", "eval needs a checkpoint");
    if (o->samples < 1 || o->valid_points < 1)
        return usage_error("eval", "eval needs -n and --valid of at least 1");
    return -1;
}

static int parse_plot(mg_plot_opts *o, int argc, char **argv)
{
    static const struct option longs[] = {
        HELP_OPTION,
        {"size", required_argument, NULL, OPT_SIZE},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->width = 900;
    o->height = 560;
    args a;
    args_start(&a, "plot", "ho:", longs, argc, argv);
    const char *val;
    for (int c; (c = args_next(&a, &val)) != 0;) {
        switch (c) {
        case -1:
            return MG_EXIT_INPUT;
        case 'h':
            return help(usage_plot);
        case 'o':
            o->out = val;
            break;
        case OPT_SIZE: {
            int used = 0;
            if (sscanf(val, "%dx%d%n", &o->width, &o->height, &used) != 2 || val[used] ||
                o->width < MG_PLOT_MIN_SIDE || o->height < MG_PLOT_MIN_SIDE ||
                o->width > MG_PLOT_MAX_SIDE || o->height > MG_PLOT_MAX_SIDE)
                return usage_error("plot", "--size takes WxH, each %d to %d, not %s",
                                   MG_PLOT_MIN_SIDE, MG_PLOT_MAX_SIDE, val);
            break;
        }
        default: /* 1: the run directory */
            if (o->run_dir)
                return usage_error("plot", "one run directory only; extra argument %s", val);
            o->run_dir = val;
        }
    }
    if (!o->run_dir)
        return usage_error("plot", "plot needs a run directory");
    return -1;
}

static int parse_prepare(mg_prepare_opts *o, int argc, char **argv)
{
    static const char *inputs[256];
    static const char *const splits[] = {"unlabeled", "train", "valid", "test"};
    static const struct option longs[] = {
        HELP_OPTION,
        {"fold", required_argument, NULL, OPT_FOLD},
        {"split", required_argument, NULL, OPT_SPLIT},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->inputs = inputs;
    args a;
    args_start(&a, "prepare", "ho:", longs, argc, argv);
    const char *val;
    for (int c; (c = args_next(&a, &val)) != 0;) {
        switch (c) {
        case -1:
            return MG_EXIT_INPUT;
        case 'h':
            return help(usage_prepare);
        case 'o':
            o->out = val;
            break;
        case OPT_FOLD:
            if (!is_count(val) || atoi(val) > 4)
                return usage_error("prepare", "--fold takes 0 to 4, not %s", val);
            o->fold = atoi(val);
            break;
        case OPT_SPLIT:
            o->split = -1;
            for (int k = 0; k < 4; k++)
                if (!strcmp(val, splits[k]))
                    o->split = k;
            if (o->split < 0)
                return usage_error("prepare",
                                   "--split takes unlabeled, train, valid or test, not %s", val);
            break;
        default: /* 1: the format, then the inputs */
            if (!o->format)
                o->format = val;
            else if (o->n_inputs < 256)
                inputs[o->n_inputs++] = val;
            else
                return usage_error("prepare", "too many inputs (at most %d)", 256);
        }
    }
    if (!o->format)
        return usage_error("prepare", "prepare needs a format: idx, cifar10 or tfd");
    if (strcmp(o->format, "idx") && strcmp(o->format, "cifar10") && strcmp(o->format, "tfd"))
        return usage_error("prepare", "format %s is not one of idx, cifar10, tfd", o->format);
    int max_inputs = !strcmp(o->format, "idx") ? 2 : !strcmp(o->format, "tfd") ? 1 : 256;
    if (o->n_inputs < 1 || o->n_inputs > max_inputs)
        return usage_error("prepare", "wrong number of inputs for %s", o->format);
    if (!o->out)
        return usage_error("prepare", "prepare needs -o OUT.h5");
    return -1;
}

/* info CHECKPOINT: *checkpoint, or the exit status. */
static int parse_info(const char **checkpoint, int argc, char **argv)
{
    static const struct option longs[] = {HELP_OPTION, {NULL, 0, NULL, 0}};
    int n = 0;
    args a;
    args_start(&a, "info", "h", longs, argc, argv);
    const char *val;
    for (int c; (c = args_next(&a, &val)) != 0;) {
        if (c == -1)
            return MG_EXIT_INPUT;
        if (c == 'h')
            return help(usage_info);
        if (n++ == 0)
            *checkpoint = val;
    }
    if (n != 1)
        return usage_error("info", "info takes one checkpoint");
    return -1;
}

int main(int argc, char **argv)
{
    /* First of all: a stop signal (SLURM's time-limit warning, a requeue, scancel) that arrives
     * while MPI starts, the data load or a checkpoint is read must not kill the rank. It is
     * queued, and the run stops with a checkpoint at the end of its first step (status 3). */
    if (argc >= 2 && (!strcmp(argv[1], "train") || !strcmp(argv[1], "classifier")))
        mg_signals_install();
    if (argc < 2) {
        fputs(usage_main, stderr);
        return MG_EXIT_INPUT;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help"))
        return help(usage_main);
    if (!strcmp(cmd, "--version")) {
        printf("mpigan %s (%s)\n", MPIGAN_VERSION, MG_REAL_NAME);
        return MG_EXIT_OK;
    }

    int code;
    if (!strcmp(cmd, "info")) {
        const char *checkpoint = NULL;
        if ((code = parse_info(&checkpoint, argc - 1, argv + 1)) >= 0)
            return code;
        return mg_run_info(checkpoint);
    } else if (!strcmp(cmd, "prepare")) {
        mg_prepare_opts o;
        if ((code = parse_prepare(&o, argc - 1, argv + 1)) >= 0)
            return code;
        return mg_run_prepare(&o);
    } else if (!strcmp(cmd, "plot")) {
        mg_plot_opts o;
        if ((code = parse_plot(&o, argc - 1, argv + 1)) >= 0)
            return code;
        return mg_plot_run_dir(&o);
    } else if (!strcmp(cmd, "train")) {
        mg_train_opts o;
        if ((code = parse_train(&o, argc - 1, argv + 1, "train", usage_train)) >= 0)
            return code;
        mg_comm_init(&argc, &argv);
        code = mg_run_train(&o, mg_comm_world());
    } else if (!strcmp(cmd, "classifier")) {
        if (argc < 3 || strcmp(argv[2], "train") != 0) {
            if (argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help")))
                return help(usage_classifier);
            return usage_error("classifier", "classifier takes a subcommand: train");
        }
        mg_train_opts o;
        if ((code = parse_train(&o, argc - 2, argv + 2, "classifier train", usage_classifier)) >=
            0)
            return code;
        mg_comm_init(&argc, &argv);
        code = mg_run_classifier_train(&o, mg_comm_world());
    } else if (!strcmp(cmd, "sample")) {
        mg_sample_opts o;
        if ((code = parse_sample(&o, argc - 1, argv + 1)) >= 0)
            return code;
        mg_comm_init(&argc, &argv);
        code = mg_run_sample(&o, mg_comm_world());
    } else if (!strcmp(cmd, "eval")) {
        mg_eval_opts o;
        if ((code = parse_eval(&o, argc - 1, argv + 1)) >= 0)
            return code;
        mg_comm_init(&argc, &argv);
        code = mg_evaluate(&o, mg_comm_world());
    } else {
        if (launcher_rank() == 0)
            fprintf(stderr, "mpigan: unknown command '%s' (see 'mpigan --help')\n", cmd);
        return MG_EXIT_INPUT;
    }
    mg_comm_finalize();
    return code;
}
