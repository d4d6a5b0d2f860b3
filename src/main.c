/* mpigan: the command line. A thin layer over libmpigan: parse, load, train, report.
 *
 * Exit status: 0 success; 1 a failure during training (I/O, replicas drifting apart); 2 bad
 * input found before training starts (command line, configuration, data, run directory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/data.h"
#include "mpigan/report.h"
#include "mpigan/train.h"

enum { EXIT_RUNTIME = 1, EXIT_INPUT = 2 };

#define MAX_OVERRIDES 256

typedef struct {
    const char *config;
    const char *overrides[MAX_OVERRIDES];
    int n_overrides;
    char steps_set[64], epochs_set[64];
    const char *out;
    int force, quiet;
    enum mg_progress progress;
} train_args;

static const char *usage_main =
    "mpigan " MPIGAN_VERSION ": generative adversarial nets (Goodfellow et al., 2014), trained\n"
    "data-parallel over MPI.\n"
    "\n"
    "usage: mpirun -np N mpigan COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG   train a generator and a discriminator as CONFIG (YAML) describes\n"
    "\n"
    "options:\n"
    "  -h, --help     this text; 'mpigan COMMAND --help' lists a command's options\n"
    "  --version      print the version\n"
    "\n"
    "Configurations: configs/*.yaml; every key is described in README.md.\n";

static const char *usage_train =
    "usage: mpirun -np N mpigan train CONFIG [options]\n"
    "\n"
    "Trains G and D with the paper's Algorithm 1 (k D steps, then one G step) on N ranks; the\n"
    "global batch train.batch_size is split evenly over the ranks.\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE  override a configuration key, e.g. --set train.batch_size=50 or\n"
    "                   --set discriminator.layers.0.keep=1; repeatable, later ones win\n"
    "  --steps N        stop after N steps (same as --set train.steps=N; default: from epochs)\n"
    "  --epochs N       train for N epochs (same as --set train.epochs=N; default: config, 1)\n"
    "  --out DIR        run directory (default: output.dir, else runs/<config name>-<date>-<time>)\n"
    "  --force          write into a run directory that already holds a run\n"
    "  --quiet          no progress lines on stdout (metrics.jsonl is still written)\n"
    "  --progress MODE  redraw (one line updated in place), lines (a line every train.log_every\n"
    "                   steps, for logs) or auto (default: lines in a SLURM batch job, else redraw\n"
    "                   when stdout is a terminal; mpirun gives ranks a terminal even when its own\n"
    "                   output goes to a file, so scripts should say which they want)\n"
    "  -h, --help       this text\n"
    "\n"
    "Environment: OPENBLAS_NUM_THREADS sets BLAS threads per rank (default: the cores a rank may\n"
    "use, shared among the node's ranks). Exit status: 0 done, 1 failed while training, 2 bad\n"
    "input (command line, configuration, data, run directory).\n";

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

static int usage_error(const char *fmt, const char *arg)
{
    if (launcher_rank() == 0) {
        fprintf(stderr, "mpigan: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, " (see 'mpigan train --help')\n");
    }
    return EXIT_INPUT;
}

static int is_count(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Returns -1 to go on, else the exit status. */
static int parse_train_args(train_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = !strcmp(arg, "--set") || !strcmp(arg, "--steps") ||
                          !strcmp(arg, "--epochs") || !strcmp(arg, "--out") ||
                          !strcmp(arg, "--progress");
        if (takes_value && !val)
            return usage_error("%s needs a value", arg);
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            if (launcher_rank() == 0)
                fputs(usage_train, stdout);
            return 0;
        } else if (!strcmp(arg, "--set")) {
            if (a->n_overrides >= MAX_OVERRIDES - 2)
                return usage_error("too many --set options (at most %s)", "253");
            a->overrides[a->n_overrides++] = val;
            i++;
        } else if (!strcmp(arg, "--steps") || !strcmp(arg, "--epochs")) {
            if (!is_count(val))
                return usage_error("%s needs a whole number", arg);
            int steps = !strcmp(arg, "--steps");
            snprintf(steps ? a->steps_set : a->epochs_set, sizeof a->steps_set, "train.%s=%s",
                     steps ? "steps" : "epochs", val);
            i++;
        } else if (!strcmp(arg, "--out")) {
            a->out = val;
            i++;
        } else if (!strcmp(arg, "--progress")) {
            if (!strcmp(val, "auto"))
                a->progress = MG_PROGRESS_AUTO;
            else if (!strcmp(val, "redraw"))
                a->progress = MG_PROGRESS_REDRAW;
            else if (!strcmp(val, "lines"))
                a->progress = MG_PROGRESS_LINES;
            else
                return usage_error("--progress takes auto, redraw or lines, not %s", val);
            i++;
        } else if (!strcmp(arg, "--force")) {
            a->force = 1;
        } else if (!strcmp(arg, "--quiet")) {
            a->quiet = 1;
        } else if (arg[0] == '-') {
            return usage_error("unknown option %s", arg);
        } else if (a->config) {
            return usage_error("one configuration file only; extra argument %s", arg);
        } else {
            a->config = arg;
        }
    }
    if (!a->config)
        return usage_error("%s", "train needs a configuration file");
    /* The dedicated options go last, so they win over --set like a later --set would. */
    if (a->epochs_set[0])
        a->overrides[a->n_overrides++] = a->epochs_set;
    if (a->steps_set[0])
        a->overrides[a->n_overrides++] = a->steps_set;
    return -1;
}

static void default_run_dir(char *dir, size_t n, const char *config)
{
    const char *base = strrchr(config, '/');
    base = base ? base + 1 : config;
    size_t len = strcspn(base, ".");
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    snprintf(dir, n, "runs/%.*s-%s", (int)len, base, stamp);
}

/* Rank 0 prints an error that every rank shares. */
static int fail_all(const mg_comm *comm, const mg_error *err, int code)
{
    if (mg_comm_rank(comm) == 0)
        fprintf(stderr, "mpigan: %s\n", err->msg);
    return code;
}

static int train(const train_args *a)
{
    const mg_comm *comm = mg_comm_world();
    const int rank = mg_comm_rank(comm);
    mg_error err = {{0}};
    mg_config cfg;
    int ok = 1;

    if (rank == 0)
        ok = mg_config_load(&cfg, a->config, a->overrides, a->n_overrides, &err) == 0;
    if (!mg_comm_all_ok(comm, ok))
        return fail_all(comm, &err, EXIT_INPUT);
    mg_comm_bcast(comm, &cfg, sizeof cfg, 0);

    mg_dataset data = {0};
    if (mg_dataset_load_train(&data, &cfg, comm, &err))
        return fail_all(comm, &err, EXIT_INPUT);

    int threads = mg_threads_choose(comm);
    mg_trainer t;
    if (mg_trainer_init(&t, &cfg, &data, comm, &err)) {
        mg_dataset_free(&data);
        return fail_all(comm, &err, EXIT_INPUT);
    }

    char dir[MG_PATH_MAX];
    if (a->out)
        snprintf(dir, sizeof dir, "%s", a->out);
    else if (cfg.output.dir[0])
        snprintf(dir, sizeof dir, "%s", cfg.output.dir);
    else
        default_run_dir(dir, sizeof dir, a->config);
    mg_report rep;
    if (rank == 0)
        ok = mg_run_dir_create(dir, &cfg, a->force, &err) == 0 &&
             mg_report_open(&rep, dir, &t, threads, a->quiet, a->progress, &err) == 0;
    if (!mg_comm_all_ok(comm, ok)) {
        mg_trainer_free(&t);
        mg_dataset_free(&data);
        return fail_all(comm, &err, EXIT_INPUT);
    }

    if (rank == 0 && !a->quiet)
        printf("mpigan %s: %s, %d rank%s x %d thread%s, global batch %d (%d per rank), %d "
               "training examples of %zu values\nG %zu parameters, D %zu parameters, %lld steps; "
               "run directory %s\n",
               MPIGAN_VERSION, a->config, t.nranks, t.nranks == 1 ? "" : "s", threads,
               threads == 1 ? "" : "s", t.batch, t.rows, data.n, data.dim, t.g.n_params,
               t.d.n_params, (long long)mg_trainer_total_steps(&t), dir);

    int status = 0;
    const int64_t total = mg_trainer_total_steps(&t);
    const int check_every = cfg.train.check_every;
    while (t.step < total) {
        mg_step_stats stats;
        mg_trainer_step(&t, &stats);
        if (rank == 0)
            mg_report_step(&rep, &t, &stats);
        if ((check_every > 0 && t.step % check_every == 0) || t.step == total) {
            if (mg_trainer_check_replicas(&t, &err)) {
                status = fail_all(comm, &err, EXIT_RUNTIME);
                break;
            }
        }
    }

    double tmin[MG_TIMER_COUNT], tmean[MG_TIMER_COUNT], tmax[MG_TIMER_COUNT];
    mg_trainer_timers(&t, tmin, tmean, tmax);
    if (rank == 0 && mg_report_close(&rep, &t, tmin, tmean, tmax, &err)) {
        fprintf(stderr, "mpigan: %s\n", err.msg);
        status = EXIT_RUNTIME;
    }
    mg_trainer_free(&t);
    mg_dataset_free(&data);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_INPUT;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("mpigan %s (%s)\n", MPIGAN_VERSION, MG_REAL_NAME);
        return 0;
    }
    if (strcmp(cmd, "train") != 0) {
        if (launcher_rank() == 0)
            fprintf(stderr, "mpigan: unknown command '%s' (see 'mpigan --help')\n", cmd);
        return EXIT_INPUT;
    }

    train_args a;
    int code = parse_train_args(&a, argc - 1, argv + 1);
    if (code >= 0)
        return code;
    mg_comm_init(&argc, &argv);
    code = train(&a);
    mg_comm_finalize();
    return code;
}
