/* The commands: load and check everything, then train (or sample, or describe), writing what a
 * user expects to find in the run directory. Rank 0 reads, prints and writes; every decision
 * that ends a run is agreed by all ranks, so none is left waiting in a collective. */
#define _GNU_SOURCE /* open_memstream */
#include "mpigan/run.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpigan/blas.h"
#include "mpigan/checkpoint.h"
#include "mpigan/config.h"
#include "mpigan/cifar10.h"
#include "mpigan/h5data.h"
#include "mpigan/idx.h"
#include "mpigan/splits.h"
#include "mpigan/tfd.h"
#include "mpigan/image.h"
#include "mpigan/parzen.h"
#include "mpigan/sampleset.h"
#include "mpigan/signals.h"
#include "mpigan/train.h"

/* Rank 0 prints an error every rank shares, and all return the same status. */
static int fail_all(const mg_comm *comm, const mg_error *err, int code)
{
    if (mg_comm_rank(comm) == 0)
        fprintf(stderr, "mpigan: %s\n", err->msg);
    return code;
}

/* Rank 0: the configuration of the run: the file given, or the checkpoint's own. */
static int read_config(mg_config *cfg, const mg_train_opts *o, const char *ckpt, mg_error *err)
{
    if (o->config || !ckpt)
        return mg_config_load(cfg, o->config, o->overrides, o->n_overrides, err);
    mg_checkpoint_info info;
    if (mg_checkpoint_read_info(&info, ckpt, err))
        return -1;
    int rc = mg_config_parse(cfg, info.config_yaml, ckpt, o->overrides, o->n_overrides, err);
    mg_checkpoint_info_free(&info);
    return rc;
}

/* Resuming from an older checkpoint into a directory that holds newer ones would mix two
 * histories (and `latest` would name the wrong one): refused, or with --force the newer ones go. */
static int later_checkpoints(const char *dir, int64_t step, int force, mg_error *err)
{
    char newest[MG_PATH_MAX + 64];
    mg_error none;
    while (mg_checkpoint_find_latest(newest, sizeof newest, dir, &none) == 0 &&
           mg_checkpoint_step_of(newest) > step) {
        if (!force)
            return mg_fail(err,
                           "%s: holds checkpoints after step %lld (%s): resume into another "
                           "--out, or pass --force to delete them",
                           dir, (long long)step, newest);
        if (unlink(newest) != 0)
            return mg_fail(err, "%s: cannot delete: %s", newest, strerror(errno));
    }
    return 0;
}

static char *config_text(const mg_config *cfg)
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

/* Rank 0's buffers for sample snapshots, sized once. */
typedef struct {
    int count, cols, rows;
    mg_real *z;    /* (count, noise_dim) the fixed noise */
    mg_real *x;    /* (count, dim) G's output */
    mg_real *q;    /* (rows, dim) each grid row's last sample */
    mg_real *nb;   /* (rows, dim) its nearest training example */
    int *idx;      /* (rows) */
} snapshots;

static void snapshots_init(snapshots *s, const mg_trainer *t)
{
    const mg_config *cfg = &t->cfg;
    const size_t dim = t->data->dim;
    s->count = cfg->samples.count;
    s->cols = cfg->samples.columns;
    if (s->cols <= 0)
        while ((int64_t)s->cols * s->cols < s->count)
            s->cols++;
    s->rows = (s->count + s->cols - 1) / s->cols;
    s->z = mg_xmalloc((size_t)s->count * cfg->generator.noise_dim * sizeof *s->z);
    s->x = mg_xmalloc((size_t)s->count * dim * sizeof *s->x);
    s->q = mg_xmalloc((size_t)s->rows * dim * sizeof *s->q);
    s->nb = mg_xmalloc((size_t)s->rows * dim * sizeof *s->nb);
    s->idx = mg_xmalloc((size_t)s->rows * sizeof *s->idx);
    mg_sample_noise(s->z, cfg, 0, s->count, 0);
}

static void snapshots_free(snapshots *s)
{
    free(s->z);
    free(s->x);
    free(s->q);
    free(s->nb);
    free(s->idx);
}

/* Rank 0: G's output for the fixed noise, appended to samples.h5 and drawn as a grid. */
static int take_snapshot(snapshots *s, mg_trainer *t, const char *dir, mg_error *err)
{
    const mg_dataset *data = t->data;
    const size_t dim = data->dim;
    mg_trainer_generate(t, s->z, s->count, s->x);
    mg_image_shape shape = {s->count, data->channels, data->height, data->width};
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/samples.h5", dir);
    if (mg_sampleset_append(path, s->x, shape, s->z, t->cfg.generator.noise_dim, t->step, err))
        return -1;
    if (!t->cfg.samples.png)
        return 0;
    const mg_real *nb = NULL;
    if (t->cfg.samples.nearest) {
        for (int r = 0; r < s->rows; r++) {
            int last = (r + 1) * s->cols < s->count ? (r + 1) * s->cols - 1 : s->count - 1;
            memcpy(s->q + (size_t)r * dim, s->x + (size_t)last * dim, dim * sizeof *s->q);
        }
        if (mg_nearest_in(s->idx, s->q, s->rows, data, t->g.gemm, err))
            return -1;
        for (int r = 0; r < s->rows; r++)
            mg_dataset_row(data, (size_t)s->idx[r], s->nb + (size_t)r * dim);
        nb = s->nb;
    }
    snprintf(path, sizeof path, "%s/samples-%08lld.png", dir, (long long)t->step);
    return mg_png_grid(path, s->x, s->count, s->cols, data->channels, data->height, data->width,
                       nb, err);
}

/* Rank 0's Parzen estimates during training (eval.every epochs): fixed noise, the first
 * eval.points validation examples, the default sigma grid. */
typedef struct {
    mg_dataset valid;
    mg_real *z, *x; /* (samples, noise_dim), (samples, dim) */
    double *ll;     /* (points, EVAL_SIGMAS) */
    double next;    /* the epoch of the next estimate */
} evaluator;

#define EVAL_SIGMAS 10
#define EVAL_NOISE_SET 2 /* apart from the snapshots' (0) and mpigan sample's default (1) */

static int evaluator_init(evaluator *e, const mg_trainer *t, mg_error *err)
{
    const mg_config *cfg = &t->cfg;
    memset(e, 0, sizeof *e);
    const double every = cfg->eval.every;
    e->next = (floor(mg_trainer_epoch(t) / every + 1e-9) + 1) * every;
    if (mg_split_read(&e->valid, cfg, MG_SPLIT_VALID, cfg->eval.points, err))
        return -1;
    if (e->valid.dim != t->data->dim) {
        size_t have = e->valid.dim;
        mg_dataset_free(&e->valid);
        return mg_fail(err, "%s: eval: the validation examples have %zu values, the training "
                            "examples %zu",
                       cfg->source, have, t->data->dim);
    }
    const int n = cfg->eval.samples;
    e->z = mg_xmalloc((size_t)n * cfg->generator.noise_dim * sizeof *e->z);
    e->x = mg_xmalloc((size_t)n * t->data->dim * sizeof *e->x);
    e->ll = mg_xmalloc((size_t)e->valid.n * EVAL_SIGMAS * sizeof *e->ll);
    mg_sample_noise(e->z, cfg, 0, n, EVAL_NOISE_SET);
    return 0;
}

static void evaluator_free(evaluator *e)
{
    mg_dataset_free(&e->valid);
    free(e->z);
    free(e->x);
    free(e->ll);
}

/* Rank 0: the best mean validation log-likelihood over the grid, for the report's next record. */
static int evaluate(evaluator *e, mg_trainer *t, mg_report *rep, mg_error *err)
{
    const double t0 = mg_comm_wtime();
    const int n = t->cfg.eval.samples;
    double sigmas[EVAL_SIGMAS], mean[EVAL_SIGMAS];
    mg_parzen_grid(sigmas, EVAL_SIGMAS, 0.1, 1.0);
    mg_trainer_generate(t, e->z, n, e->x);
    if (mg_parzen_ll(e->ll, e->valid.x, e->valid.n, e->x, n, e->valid.dim, sigmas, EVAL_SIGMAS,
                     err))
        return -1;
    const int best = mg_parzen_select(e->ll, e->valid.n, EVAL_SIGMAS, mean);
    rep->parzen_pending = 1;
    rep->parzen_points = e->valid.n;
    rep->parzen_ll = best >= 0 ? mean[best] : NAN;
    rep->parzen_sigma = best >= 0 ? sigmas[best] : NAN;
    t->timer[MG_TIMER_EVAL] += mg_comm_wtime() - t0;
    return 0;
}

/* Rank 0 does `what` (returns 0 or -1); every rank learns whether it worked. */
#define ON_RANK0_AGREE(comm, t, err, what)                                                     \
    ({                                                                                         \
        double t0_ = mg_comm_wtime();                                                          \
        int ok_ = mg_comm_rank(comm) != 0 || (what) == 0;                                      \
        ok_ = mg_comm_all_ok(comm, ok_);                                                       \
        (t)->timer[MG_TIMER_IO] += mg_comm_wtime() - t0_;                                      \
        ok_;                                                                                   \
    })

int mg_run_train(const mg_train_opts *o, const mg_comm *comm)
{
    const int rank = mg_comm_rank(comm);
    mg_error err = {{0}};
    mg_config cfg;
    char ckpt[MG_PATH_MAX] = "";
    int ok = 1;

    if (rank == 0) {
        ok = (!o->resume || mg_checkpoint_resolve(ckpt, sizeof ckpt, o->resume, o->out, &err) == 0) &&
             read_config(&cfg, o, o->resume ? ckpt : NULL, &err) == 0;
    }
    if (!mg_comm_all_ok(comm, ok))
        return fail_all(comm, &err, MG_EXIT_INPUT);
    mg_comm_bcast(comm, &cfg, sizeof cfg, 0);

    mg_dataset data = {0};
    if (mg_split_load_train(&data, &cfg, comm, &err))
        return fail_all(comm, &err, MG_EXIT_INPUT);

    int threads = mg_threads_choose(comm);
    mg_trainer t;
    if (mg_trainer_init(&t, &cfg, &data, comm, &err)) {
        mg_dataset_unload(&data);
        return fail_all(comm, &err, MG_EXIT_INPUT);
    }
    if (o->resume) {
        if (!mg_comm_all_ok(comm, rank != 0 || mg_checkpoint_load(&t, ckpt, &err) == 0)) {
            mg_trainer_free(&t);
            mg_dataset_unload(&data);
            return fail_all(comm, &err, MG_EXIT_INPUT);
        }
        mg_trainer_broadcast_state(&t);
    }

    /* The run directory: --out, else the resumed checkpoint's, else the configuration's. */
    char dir[MG_PATH_MAX];
    if (o->out)
        snprintf(dir, sizeof dir, "%s", o->out);
    else if (o->resume) {
        char tmp[MG_PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", ckpt);
        snprintf(dir, sizeof dir, "%s", dirname(tmp));
    } else if (cfg.output.dir[0])
        snprintf(dir, sizeof dir, "%s", cfg.output.dir);
    else
        default_run_dir(dir, sizeof dir, o->config);

    mg_report rep;
    char *yaml = NULL;
    snapshots snap = {0};
    evaluator ev = {0};
    if (rank == 0) {
        yaml = config_text(&cfg);
        ok = (!o->resume || later_checkpoints(dir, t.step, o->force, &err) == 0) &&
             mg_run_dir_create(dir, &cfg, o->force || o->resume, &err) == 0 &&
             (!o->resume || mg_metrics_trim(dir, t.step, &err) == 0) &&
             mg_report_open(&rep, dir, &t, threads, o->quiet, o->progress, &err) == 0;
        if (cfg.samples.every > 0)
            snapshots_init(&snap, &t);
        if (ok && cfg.eval.every > 0)
            ok = evaluator_init(&ev, &t, &err) == 0;
    }
    if (!mg_comm_all_ok(comm, ok)) {
        free(yaml);
        evaluator_free(&ev);
        snapshots_free(&snap);
        mg_trainer_free(&t);
        mg_dataset_unload(&data);
        return fail_all(comm, &err, MG_EXIT_INPUT);
    }

    const int64_t total = mg_trainer_total_steps(&t);
    if (rank == 0 && !o->quiet) {
        printf("mpigan %s: %s, %d rank%s x %d thread%s (OpenBLAS %s kernels), global batch %d "
               "(%d per rank), %d training examples of %zu values\nG %zu parameters, D %zu "
               "parameters; ",
               MPIGAN_VERSION, cfg.source, t.nranks, t.nranks == 1 ? "" : "s", threads,
               threads == 1 ? "" : "s", mg_blas_kernels(), t.batch, t.rows, data.n, data.dim, t.g.n_params,
               t.d.n_params);
        if (o->resume)
            printf("resuming %s at step %lld of %lld", ckpt, (long long)t.step, (long long)total);
        else
            printf("%lld steps", (long long)total);
        printf("; run directory %s\n", dir);
        printf("training set %.0f MB (%s), %s; gradient sums: %s\n",
               (double)data.n * data.dim * (data.bytes ? 1 : sizeof(mg_real)) / (1 << 20),
               data.bytes ? "pixel bytes" : "float values",
               data.shared ? "one copy per node in shared memory" : "one copy per rank",
               mg_trainer_sums(&t));
        fflush(stdout);
    }

    mg_signals_install();
    int status = MG_EXIT_OK, stopped = 0;
    int64_t saved_at = o->resume ? t.step : -1;
    char saved[MG_PATH_MAX + 64] = "";
    while (t.step < total) {
        mg_step_stats stats;
        t.stop_request = mg_signals_pending() != 0;
        mg_trainer_step(&t, &stats);
        if (rank == 0 && cfg.eval.every > 0 && mg_trainer_epoch(&t) >= ev.next - 1e-9) {
            ev.next += cfg.eval.every;
            if (evaluate(&ev, &t, &rep, &err))
                fprintf(stderr, "mpigan: %s\n", err.msg); /* a lost estimate, not a lost run */
        }
        if (rank == 0)
            mg_report_step(&rep, &t, &stats);
        if (stats.nonfinite && cfg.train.nonfinite == MG_NONFINITE_STOP) {
            /* Every rank saw the same allreduced gradients: all stop here, no checkpoint of it. */
            mg_fail(&err,
                    "step %lld: NaN or Inf in the %s gradients, not applied; stopped. The newest "
                    "checkpoint holds the last good state: resume from it (with a lower learning "
                    "rate, say), or set train.nonfinite: skip",
                    (long long)t.step,
                    stats.nonfinite == (MG_NET_D | MG_NET_G) ? "discriminator's and generator's"
                    : stats.nonfinite == MG_NET_D            ? "discriminator's"
                                                             : "generator's");
            status = fail_all(comm, &err, MG_EXIT_RUNTIME);
            break;
        }
        if (cfg.train.check_every > 0 && t.step % cfg.train.check_every == 0 &&
            mg_trainer_check_replicas(&t, &err)) {
            status = fail_all(comm, &err, MG_EXIT_RUNTIME);
            break;
        }
        if (cfg.samples.every > 0 && t.step % cfg.samples.every == 0 &&
            !ON_RANK0_AGREE(comm, &t, &err, take_snapshot(&snap, &t, dir, &err))) {
            status = fail_all(comm, &err, MG_EXIT_RUNTIME);
            break;
        }
        stopped = stats.stop;
        if (stopped || (cfg.checkpoint.every > 0 && t.step % cfg.checkpoint.every == 0)) {
            if (!ON_RANK0_AGREE(comm, &t, &err,
                                mg_checkpoint_save(&t, yaml, dir, cfg.checkpoint.keep, saved,
                                                   sizeof saved, &err))) {
                status = fail_all(comm, &err, MG_EXIT_RUNTIME);
                break;
            }
            saved_at = t.step;
        }
        if (stopped)
            break;
    }
    /* The end of a run is a checkpoint too, and its last snapshot. */
    if (status == MG_EXIT_OK && !stopped && saved_at != t.step) {
        if (cfg.samples.every > 0 && t.step % cfg.samples.every != 0 &&
            !ON_RANK0_AGREE(comm, &t, &err, take_snapshot(&snap, &t, dir, &err)))
            status = fail_all(comm, &err, MG_EXIT_RUNTIME);
        if (status == MG_EXIT_OK &&
            !ON_RANK0_AGREE(comm, &t, &err,
                            mg_checkpoint_save(&t, yaml, dir, cfg.checkpoint.keep, saved,
                                               sizeof saved, &err)))
            status = fail_all(comm, &err, MG_EXIT_RUNTIME);
    }

    double tmin[MG_TIMER_COUNT], tmean[MG_TIMER_COUNT], tmax[MG_TIMER_COUNT];
    mg_trainer_timers(&t, tmin, tmean, tmax);
    /* Resident memory per rank at the end, when training has touched the data: RSS, and PSS,
     * which counts the node's shared copy of the training set once per node. */
    double rss, pss, sum, mem[6], lo;
    mg_memory_mb(&rss, &pss);
    mg_comm_minmaxsum(comm, rss, &mem[0], &mem[1], &sum);
    mg_comm_minmaxsum(comm, pss, &mem[2], &mem[3], &mem[4]);
    mg_comm_minmaxsum(comm, mg_peak_rss_mb(), &lo, &mem[5], &sum);
    if (rank == 0) {
        memcpy(rep.mem, mem, sizeof mem);
        if (mg_report_close(&rep, &t, tmin, tmean, tmax, &err)) {
            fprintf(stderr, "mpigan: %s\n", err.msg);
            if (status == MG_EXIT_OK)
                status = MG_EXIT_RUNTIME;
        }
        if (stopped && status == MG_EXIT_OK)
            fprintf(stderr,
                    "mpigan: stopped by a signal at step %lld; checkpoint %s written; continue "
                    "with: mpigan train --resume %s\n",
                    (long long)t.step, saved, dir);
    }
    if (stopped && status == MG_EXIT_OK)
        status = MG_EXIT_STOPPED;
    free(yaml);
    evaluator_free(&ev);
    snapshots_free(&snap);
    mg_trainer_free(&t);
    mg_dataset_unload(&data);
    return status;
}

int mg_run_info(const char *checkpoint)
{
    mg_error err;
    char path[MG_PATH_MAX];
    if (mg_checkpoint_resolve(path, sizeof path, checkpoint, NULL, &err) ||
        mg_checkpoint_describe(stdout, path, &err)) {
        fprintf(stderr, "mpigan: %s\n", err.msg);
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

int mg_run_sample(const mg_sample_opts *o, const mg_comm *comm)
{
    const int rank = mg_comm_rank(comm), size = mg_comm_size(comm);
    mg_error err = {{0}};
    char ckpt[MG_PATH_MAX] = "";
    mg_config cfg;
    int shape[3] = {0}; /* channels, height, width */
    int ok = 1;
    if (rank == 0) {
        mg_checkpoint_info info;
        ok = mg_checkpoint_resolve(ckpt, sizeof ckpt, o->checkpoint, NULL, &err) == 0 &&
             mg_checkpoint_read_info(&info, ckpt, &err) == 0;
        if (ok) {
            ok = mg_config_parse_networks(&cfg, info.config_yaml, ckpt, &err) == 0;
            memcpy(shape, (int[3]){info.channels, info.height, info.width}, sizeof shape);
            mg_checkpoint_info_free(&info);
        }
        const size_t dim = (size_t)shape[0] * shape[1] * shape[2];
        if (ok && (size_t)o->n * dim > ((size_t)1 << 34))
            ok = mg_fail(&err, "%s: %lld samples of %zu values are more than one file holds here "
                               "(2^34 values)",
                         o->out, (long long)o->n, dim) == 0;
    }
    if (!mg_comm_all_ok(comm, ok))
        return fail_all(comm, &err, MG_EXIT_INPUT);
    mg_comm_bcast(comm, &cfg, sizeof cfg, 0);
    mg_comm_bcast(comm, shape, sizeof shape, 0);

    mg_net g;
    if (mg_generator_load(&g, &cfg, MG_GENERATE_CHUNK, ckpt, comm, &err))
        return fail_all(comm, &err, MG_EXIT_INPUT);

    const int nz = cfg.generator.noise_dim;
    const size_t dim = (size_t)g.out_dim;
    mg_real *all_x = NULL, *all_z = NULL;
    if (rank == 0) {
        all_x = mg_xmalloc((size_t)o->n * dim * sizeof *all_x);
        all_z = mg_xmalloc((size_t)o->n * nz * sizeof *all_z);
    }
    mg_generate(all_x, all_z, &g, &cfg, o->n, o->set, comm, 0);

    int status = MG_EXIT_OK;
    if (rank == 0) {
        mg_checkpoint_info info;
        int64_t step = mg_checkpoint_read_info(&info, ckpt, &err) == 0 ? info.step : -1;
        if (step >= 0)
            mg_checkpoint_info_free(&info);
        mg_image_shape ishape = {(int)o->n, shape[0], shape[1], shape[2]};
        int cols = o->columns;
        if (cols <= 0)
            while ((int64_t)cols * cols < o->n)
                cols++;
        if (step < 0 ||
            mg_sampleset_write(o->out, all_x, ishape, all_z, nz, ckpt, step, &err) ||
            (o->png && mg_png_grid(o->png, all_x, (int)o->n, cols, shape[0], shape[1], shape[2],
                                   NULL, &err))) {
            fprintf(stderr, "mpigan: %s\n", err.msg);
            status = MG_EXIT_RUNTIME;
        } else {
            printf("%lld samples of %s (step %lld) on %d rank%s: %s%s%s\n", (long long)o->n, ckpt,
                   (long long)step, size, size == 1 ? "" : "s", o->out, o->png ? ", " : "",
                   o->png ? o->png : "");
        }
    }
    free(all_x);
    free(all_z);
    mg_net_free(&g);
    return status;
}

int mg_run_prepare(const mg_prepare_opts *o)
{
    mg_error err;
    mg_dataset ds = {0};
    int32_t *labels = NULL;
    int rc = -1;
    char source[1024];
    int at = snprintf(source, sizeof source, "%s:", o->format);
    for (int i = 0; i < o->n_inputs && at < (int)sizeof source; i++)
        at += snprintf(source + at, sizeof source - at, " %s", o->inputs[i]);

    if (!strcmp(o->format, "idx")) {
        rc = mg_idx_read_images(&ds, o->inputs[0], 0, -1, &err);
        if (rc == 0 && o->n_inputs == 2) {
            uint8_t *bytes = NULL;
            int n = 0;
            rc = mg_idx_read_labels(&bytes, &n, o->inputs[1], &err);
            if (rc == 0 && n != ds.n)
                rc = mg_fail(&err, "%s: %d labels for the %d images of %s", o->inputs[1], n, ds.n,
                             o->inputs[0]);
            if (rc == 0) {
                labels = mg_xmalloc((size_t)n * sizeof *labels);
                for (int i = 0; i < n; i++)
                    labels[i] = bytes[i];
            }
            free(bytes);
        }
    } else if (!strcmp(o->format, "cifar10")) {
        uint8_t *bytes = NULL;
        rc = mg_cifar10_read(&ds, &bytes, o->inputs, o->n_inputs, &err);
        if (rc == 0) {
            labels = mg_xmalloc((size_t)ds.n * sizeof *labels);
            for (int i = 0; i < ds.n; i++)
                labels[i] = bytes[i];
            free(bytes);
        }
    } else if (!strcmp(o->format, "tfd")) {
        rc = mg_tfd_read(&ds, &labels, NULL, o->inputs[0], o->fold, (enum mg_tfd_split)o->split,
                         &err);
    } else {
        rc = mg_fail(&err, "prepare: format %s is not one of idx, cifar10, tfd", o->format);
    }
    if (rc == 0)
        rc = mg_h5data_write(o->out, &ds, labels, source, &err);
    if (rc == 0)
        printf("%s: %d examples of %dx%dx%d from %s\n", o->out, ds.n, ds.channels, ds.height,
               ds.width, source);
    else
        fprintf(stderr, "mpigan: %s\n", err.msg);
    free(labels);
    mg_dataset_free(&ds);
    return rc == 0 ? MG_EXIT_OK : MG_EXIT_INPUT;
}
