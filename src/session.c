/* A training session (session.h): mpigan train's prolog, loop and epilog. Rank 0 reads, prints and
 * writes; every decision that ends a run is agreed by all ranks, so none is left waiting in a
 * collective. */
#include "mpigan/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpigan/blas.h"
#include "mpigan/checkpoint.h"
#include "mpigan/classifier.h"
#include "mpigan/classify.h"
#include "mpigan/config.h"
#include "mpigan/evaluate.h"
#include "mpigan/generate.h"
#include "mpigan/image.h"
#include "mpigan/parzen.h"
#include "mpigan/rundir.h"
#include "mpigan/sampleset.h"
#include "mpigan/signals.h"
#include "mpigan/splits.h"
#include "mpigan/train.h"

/* Rank 0's buffers for sample snapshots, sized once. A conditional G's snapshot draws sample i for
 * class i mod classes (generate.h), its grid one row per class. */
typedef struct {
    int count, cols, rows;
    int classes;   /* 0: unconditional */
    mg_real *z;    /* (count, noise_dim) the fixed noise */
    int32_t *labels; /* (count) the class of each sample, conditional */
    mg_real *x;    /* (count, dim) G's output */
    mg_real *q;    /* (rows, dim) each grid row's last sample */
    mg_real *nb;   /* (rows, dim) its nearest training example */
    int *idx;      /* (rows) */
} snapshots;

/* Rank 0's Parzen estimates during training (eval.every epochs): fixed noise, the first
 * eval.points validation examples, the default sigma grid. */
typedef struct {
    mg_dataset valid;
    mg_real *z, *x; /* (samples, noise_dim), (samples, dim) */
    int32_t *labels; /* (samples) a conditional G's: sample i of class i mod classes */
    double *ll;     /* (points, EVAL_SIGMAS) */
    /* eval.classifier: its features of the validation examples, measured once; its outputs of
     * the samples of each estimate. */
    int measuring;
    mg_classifier_model model;
    mg_real *real_feat;     /* (points, features) */
    mg_real *prob, *feat;   /* (samples, classes), (samples, features) */
    int *histogram;         /* (classes) */
} evaluator;

#define EVAL_SIGMAS 10
#define EVAL_NOISE_SET 2 /* apart from the snapshots' (0) and mpigan sample's default (1) */

struct mg_session {
    const mg_comm *comm;
    int rank;
    mg_train_opts opts;
    mg_config cfg;
    mg_error err;
    char ckpt[MG_PATH_MAX];        /* the checkpoint resumed from, or "" */
    char dir[MG_PATH_MAX];         /* the run directory */
    int threads;                   /* OpenBLAS threads per rank */
    mg_dataset data;               /* the training split, one copy per node */
    mg_trainer t;
    int64_t total;                 /* steps the run lasts */
    /* The metrics record in progress and the training seconds, as a checkpoint carries them. */
    mg_metrics_window window;
    double elapsed_s;
    double next_eval;              /* the epoch of the next Parzen estimate (eval.every) */
    int64_t saved_at;              /* step of the newest checkpoint, -1 if none */
    char saved[MG_PATH_MAX + 64];  /* its file */
    int stopped;                   /* a stop signal ended the run */
    /* rank 0 */
    mg_rundir rundir;              /* locked while the session lasts */
    int started;                   /* the run directory was changed for this run */
    int opened;                    /* mg_session_open succeeded */
    mg_optim *g_whole, *d_whole;   /* the optimizers' whole state while a checkpoint is made */
    double stop_checked;           /* when rank 0 last looked for a STOP file ... */
    int stop_looked;               /* ... if it has looked yet */
    int stop_by_file;              /* rank 0 found one */
    char *yaml;                    /* the effective configuration, as checkpoints keep it */
    mg_report report;
    int reporting;                 /* report is open */
    snapshots snap;
    evaluator eval;
};

/* Rank 0 prints the error that every rank shares; all return `status`. */
static int fail(const mg_session *s, int status)
{
    if (s->rank == 0)
        fprintf(stderr, "mpigan: %s\n", s->err.msg);
    return status;
}

/* Rank 0 does `what` (0 or -1, err set); every rank learns whether it worked, waiting for it in
 * `name` of the current step. The time goes to the io timer. */
static int on_rank0(mg_session *s, int (*what)(mg_session *), const char *name)
{
    const double t0 = mg_comm_wtime();
    mg_comm_waiting_for(s->comm, "%s of step %lld", name, (long long)s->t.step);
    int ok = mg_comm_all_ok(s->comm, s->rank != 0 || what(s) == 0);
    mg_trainer_charge(&s->t, MG_TIMER_IO, t0);
    return ok;
}

/* What a checkpoint of this session holds. */
static mg_checkpoint_state state_of(mg_session *s)
{
    mg_trainer *t = &s->t;
    return (mg_checkpoint_state){
        .g = &t->g, .d = &t->d, .g_opt = s->g_whole ? s->g_whole : &t->g_opt,
        .d_opt = s->d_whole ? s->d_whole : &t->d_opt,
        .step = &t->step, .minibatch = &t->minibatch, .skipped = &t->skipped,
        .window = &s->window, .elapsed_s = &s->elapsed_s,
        .batches_per_epoch = t->batches_per_epoch, .seed = t->spec.seed, .ranks = t->nranks,
        .batch_size = t->batch, .channels = s->data.channels, .height = s->data.height,
        .width = s->data.width, .classes = t->spec.classes};
}

/* ---- sample snapshots (rank 0) ---- */

/* Sized and checked before the run directory changes: a grid that cannot be drawn, or buffers
 * that do not fit in memory, stop the run before it starts, not at its first snapshot. */
static int snapshots_init(snapshots *p, const mg_config *cfg, const mg_dataset *data,
                          mg_error *err)
{
    const size_t dim = data->dim;
    p->count = cfg->samples.count;
    p->classes = mg_config_gan_classes(cfg);
    p->cols = mg_grid_columns(p->count, cfg->samples.columns);
    p->rows = (int)(((int64_t)p->count + p->cols - 1) / p->cols);
    if (p->classes) {
        p->cols = (p->count + p->classes - 1) / p->classes;
        p->rows = p->classes;
    }
    mg_error why;
    if (cfg->samples.png &&
        (p->classes ? mg_class_grid_fits(p->count, p->classes, data->channels, data->height,
                                         data->width, cfg->samples.nearest, &why)
                    : mg_png_grid_fits(p->count, p->cols, data->channels, data->height,
                                       data->width, cfg->samples.nearest, &why)))
        return mg_fail(err, "%s: samples.count %d in samples.columns %d: %s", cfg->source,
                       p->count, cfg->samples.columns, why.msg);
    const double bytes = ((double)p->count * (cfg->generator.noise_dim + (double)dim) +
                          2.0 * p->rows * (double)dim) * sizeof(mg_real) +
                         (double)p->rows * sizeof(int);
    p->z = malloc((size_t)p->count * cfg->generator.noise_dim * sizeof *p->z);
    p->x = malloc((size_t)p->count * dim * sizeof *p->x);
    p->q = malloc((size_t)p->rows * dim * sizeof *p->q);
    p->nb = malloc((size_t)p->rows * dim * sizeof *p->nb);
    p->idx = malloc((size_t)p->rows * sizeof *p->idx);
    p->labels = p->classes ? malloc((size_t)p->count * sizeof *p->labels) : NULL;
    if (!p->z || !p->x || !p->q || !p->nb || !p->idx || (p->classes && !p->labels))
        return mg_fail(err, "%s: samples.count %d: out of memory for the snapshots (%.0f MB)",
                       cfg->source, p->count, bytes / (1 << 20));
    mg_sample_noise(p->z, cfg, 0, p->count, 0);
    for (int i = 0; p->classes && i < p->count; i++)
        p->labels[i] = (int32_t)(mg_sample_row(i, p->classes, MG_ALL_CLASSES) % p->classes);
    return 0;
}

static void snapshots_free(snapshots *p)
{
    free(p->z);
    free(p->x);
    free(p->q);
    free(p->nb);
    free(p->idx);
    free(p->labels);
    memset(p, 0, sizeof *p);
}

/* G's output for the fixed noise, appended to samples.h5 and drawn as a grid. */
static int take_snapshot(mg_session *s)
{
    snapshots *p = &s->snap;
    mg_trainer *t = &s->t;
    const mg_dataset *data = &s->data;
    const size_t dim = data->dim;
    mg_trainer_generate_labeled(t, p->z, p->labels, p->count, p->x);
    mg_image_shape shape = {p->count, data->channels, data->height, data->width};
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/samples.h5", s->dir);
    if (mg_sampleset_append_labeled(path, p->x, shape, p->z, s->cfg.generator.noise_dim,
                                    p->labels, t->step, &s->err))
        return -1;
    if (!s->cfg.samples.png)
        return 0;
    const mg_real *nb = NULL;
    if (s->cfg.samples.nearest) {
        for (int r = 0; r < p->rows; r++) {
            int last = (r + 1) * p->cols < p->count ? (r + 1) * p->cols - 1 : p->count - 1;
            if (p->classes) /* a row without samples (fewer than classes) shows sample 0's */
                last = p->count > r ? mg_class_grid_last(p->count, p->classes, r) : 0;
            memcpy(p->q + (size_t)r * dim, p->x + (size_t)last * dim, dim * sizeof *p->q);
        }
        if (mg_nearest_in(p->idx, p->q, p->rows, data, t->g.gemm, &s->err))
            return -1;
        for (int r = 0; r < p->rows; r++)
            mg_dataset_row(data, (size_t)p->idx[r], p->nb + (size_t)r * dim);
        nb = p->nb;
    }
    snprintf(path, sizeof path, "%s/samples-%08lld.png", s->dir, (long long)t->step);
    const mg_pixel_scale scale = mg_pixel_scale_of(&s->cfg);
    if (p->classes)
        return mg_png_class_grid(path, p->x, p->count, p->classes, data->channels, data->height,
                                 data->width, nb, &scale, &s->err);
    return mg_png_grid(path, p->x, p->count, p->cols, data->channels, data->height, data->width,
                       nb, &scale, &s->err);
}

/* ---- Parzen estimates during training (rank 0) ---- */

/* eval.classifier: the classifier (checked against the data and the generator's classes), and
 * its features of the validation examples in its own values. */
static int measurer_init(evaluator *e, const mg_session *s, mg_error *err)
{
    const mg_config *cfg = &s->cfg;
    const mg_dataset *v = &e->valid;
    const int classes = mg_config_gan_classes(cfg);
    if (mg_classifier_model_read(&e->model, cfg->eval.classifier, v->channels, v->height,
                                 v->width, err))
        return -1;
    e->measuring = 1;
    if (mg_classifier_model_input(&e->model, cfg, NULL, 0, err))
        return -1;
    if (classes && e->model.classes != classes)
        return mg_fail(err, "%s: eval.classifier: the classifier has %d classes, the conditional "
                            "generator %d",
                       e->model.path, e->model.classes, classes);
    const int n = cfg->eval.samples, nf = e->model.features, nc = e->model.classes;
    mg_real *x = mg_xmalloc(v->n * v->dim * sizeof *x); /* the examples in its values */
    memcpy(x, v->x, v->n * v->dim * sizeof *x);
    mg_classifier_model_input(&e->model, cfg, x, v->n * v->dim, err);
    e->real_feat = mg_xmalloc((size_t)v->n * nf * sizeof *e->real_feat);
    mg_classifier_apply(&e->model.net, x, v->n, NULL, e->real_feat);
    free(x);
    e->prob = mg_xmalloc((size_t)n * nc * sizeof *e->prob);
    e->feat = mg_xmalloc((size_t)n * nf * sizeof *e->feat);
    e->histogram = mg_xmalloc((size_t)nc * sizeof *e->histogram);
    return 0;
}

static int evaluator_init(evaluator *e, const mg_session *s, mg_error *err)
{
    const mg_config *cfg = &s->cfg;
    memset(e, 0, sizeof *e);
    if (mg_split_read(&e->valid, cfg, MG_SPLIT_VALID, cfg->eval.points, err))
        return -1;
    if (e->valid.dim != s->data.dim) {
        size_t have = e->valid.dim;
        mg_dataset_free(&e->valid);
        return mg_fail(err, "%s: eval: the validation examples have %zu values, the training "
                            "examples %zu",
                       cfg->source, have, s->data.dim);
    }
    const int n = cfg->eval.samples;
    e->z = mg_xmalloc((size_t)n * cfg->generator.noise_dim * sizeof *e->z);
    e->x = mg_xmalloc((size_t)n * s->data.dim * sizeof *e->x);
    e->ll = mg_xmalloc((size_t)e->valid.n * EVAL_SIGMAS * sizeof *e->ll);
    mg_sample_noise(e->z, cfg, 0, n, EVAL_NOISE_SET);
    const int classes = mg_config_gan_classes(cfg);
    if (classes) {
        e->labels = mg_xmalloc((size_t)n * sizeof *e->labels);
        for (int i = 0; i < n; i++)
            e->labels[i] = (int32_t)(i % classes);
    }
    return cfg->eval.classifier[0] ? measurer_init(e, s, err) : 0;
}

static void evaluator_free(evaluator *e)
{
    mg_dataset_free(&e->valid);
    free(e->z);
    free(e->x);
    free(e->labels);
    free(e->ll);
    if (e->measuring)
        mg_classifier_model_free(&e->model);
    free(e->real_feat);
    free(e->prob);
    free(e->feat);
    free(e->histogram);
    memset(e, 0, sizeof *e);
}

/* The best mean validation log-likelihood over the grid, for the report's next record. */
static int evaluate(mg_session *s)
{
    evaluator *e = &s->eval;
    mg_trainer *t = &s->t;
    const double t0 = mg_comm_wtime();
    const int n = s->cfg.eval.samples;
    /* In [0, 1] pixel units whatever data.range is (parzen.h). */
    const double span = mg_config_pixel_span(&s->cfg);
    double sigmas[EVAL_SIGMAS], data_sigmas[EVAL_SIGMAS], mean[EVAL_SIGMAS];
    mg_parzen_grid(sigmas, EVAL_SIGMAS, 0.1, 1.0);
    memcpy(data_sigmas, sigmas, sizeof sigmas);
    mg_parzen_grid_to_data(data_sigmas, EVAL_SIGMAS, span);
    mg_trainer_generate_labeled(t, e->z, e->labels, n, e->x);
    int rc = mg_parzen_ll(e->ll, e->valid.x, e->valid.n, e->x, n, e->valid.dim, data_sigmas,
                          EVAL_SIGMAS, &s->err);
    if (rc == 0) {
        mg_parzen_ll_to_pixels(e->ll, (size_t)e->valid.n * EVAL_SIGMAS, e->valid.dim, span);
        const int best = mg_parzen_select(e->ll, e->valid.n, EVAL_SIGMAS, mean);
        mg_report_parzen(&s->report, e->valid.n, best >= 0 ? mean[best] : NAN,
                         best >= 0 ? sigmas[best] : NAN);
    }
    if (rc == 0 && e->measuring) {
        /* The samples in the classifier's values (the Parzen window is done with them). */
        mg_classifier_model_input(&e->model, &s->cfg, e->x, (size_t)n * e->valid.dim, &s->err);
        mg_classifier_apply(&e->model.net, e->x, n, e->prob, e->feat);
        mg_quality_record q = {.classes = e->model.classes, .features = e->model.features};
        rc = mg_quality_measure(&q, e->histogram, e->prob, e->feat, n, e->real_feat, e->valid.n,
                                e->labels, &s->err);
        if (rc == 0)
            mg_report_quality(&s->report, q.fid, q.score, q.coverage, q.classes, q.accuracy);
    }
    mg_trainer_charge(t, MG_TIMER_EVAL, t0);
    return rc;
}

/* ---- checkpoints ---- */

static int save_checkpoint(mg_session *s)
{
    s->window = s->report.window;
    s->elapsed_s = mg_report_elapsed(&s->report);
    mg_checkpoint_state st = state_of(s);
    /* The records up to this step reach the disk before the checkpoint says the run got here. */
    if (mg_report_sync(&s->report, &s->err))
        return -1;
    return mg_checkpoint_save(&st, s->yaml, s->dir, s->cfg.checkpoint.keep, s->saved,
                              sizeof s->saved, &s->err);
}

static int load_checkpoint(mg_session *s)
{
    mg_checkpoint_state st = state_of(s);
    return mg_checkpoint_load(&st, s->ckpt, &s->err);
}

/* Collective: a checkpoint written by rank 0, with the optimizers' whole state gathered there
 * first when each rank keeps only its part (train.sharded_update). */
static int checkpoint(mg_session *s)
{
    const double t0 = mg_comm_wtime();
    mg_trainer_whole_optims(&s->t, 0, &s->g_whole, &s->d_whole);
    mg_trainer_charge(&s->t, MG_TIMER_IO, t0);
    const int ok = on_rank0(s, save_checkpoint, "the checkpoint");
    mg_trainer_whole_optims_end(&s->t);
    s->g_whole = s->d_whole = NULL;
    return ok;
}

/* ---- opening ---- */

/* Rank 0: the configuration of the run: the file given, or the checkpoint's own. */
static int read_config(mg_session *s)
{
    const mg_train_opts *o = &s->opts;
    mg_error *err = &s->err;
    if (o->resume && mg_checkpoint_resolve(s->ckpt, sizeof s->ckpt, o->resume, o->out, err))
        return -1;
    int rc;
    if (o->config || !o->resume) {
        rc = mg_config_load(&s->cfg, o->config, o->overrides, o->n_overrides, err);
    } else {
        mg_checkpoint_info info;
        if (mg_checkpoint_read_info(&info, s->ckpt, err))
            return -1;
        rc = mg_config_parse(&s->cfg, info.config_yaml, s->ckpt, o->overrides, o->n_overrides,
                             err);
        mg_checkpoint_info_free(&info);
    }
    if (rc == 0 && mg_config_is_classifier(&s->cfg))
        rc = mg_fail(err, "%s: a classifier configuration (it has a classifier section): train "
                          "it with mpigan classifier train",
                     s->cfg.source);
    return rc;
}

/* Rank 0: the run directory locked and checked, and everything the run needs of it and of its
 * data checked, before anything in it is created, trimmed, moved or deleted; then the directory
 * made ready and the report open. */
static int prepare_dir(mg_session *s)
{
    const mg_train_opts *o = &s->opts;
    const mg_config *cfg = &s->cfg;
    mg_error *err = &s->err;
    if (mg_rundir_open(&s->rundir, s->dir, err) ||
        mg_rundir_check_start(&s->rundir, o->resume != NULL, o->force, s->t.step, err))
        return -1;
    s->yaml = mg_config_text(cfg);
    if ((cfg->samples.every > 0 && snapshots_init(&s->snap, cfg, &s->data, err)) ||
        (cfg->eval.every > 0 && evaluator_init(&s->eval, s, err)))
        return -1;

    /* Everything is checked: from here on the directory changes. */
    s->started = 1;
    if (mg_rundir_start(&s->rundir, cfg, o->resume != NULL, s->t.step, err) ||
        mg_report_open(&s->report, s->dir, cfg, &s->t, s->threads, o->quiet, o->progress,
                       o->resume ? &s->window : NULL, o->resume ? s->elapsed_s : 0, err))
        return -1;
    s->reporting = 1;
    return 0;
}

static void banner(const mg_session *s)
{
    const mg_trainer *t = &s->t;
    const mg_dataset *data = &s->data;
    printf("mpigan %s: %s, %d rank%s x %d thread%s (OpenBLAS %s kernels), global batch %d "
           "(%d per rank), %d training examples of %zu values\nG %zu parameters, D %zu "
           "parameters; ",
           MPIGAN_VERSION, s->cfg.source, t->nranks, t->nranks == 1 ? "" : "s", s->threads,
           s->threads == 1 ? "" : "s", mg_blas_kernels(), t->batch, t->rows, data->n, data->dim,
           t->g.n_params, t->d.n_params);
    if (s->opts.resume)
        printf("resuming %s at step %lld of %lld", s->ckpt, (long long)t->step,
               (long long)s->total);
    else
        printf("%lld steps", (long long)s->total);
    printf("; run directory %s\n", s->dir);
    printf("training set %.0f MB (%s), %s; gradient sums: %s",
           (double)data->n * data->dim * (data->bytes ? 1 : sizeof(mg_real)) / (1 << 20),
           data->bytes ? "pixel bytes" : "float values",
           data->shared ? "one copy per node in shared memory" : "one copy per rank",
           mg_trainer_sums(t));
    if (t->bucketed)
        printf(", in buckets of %g MB", t->bucket_mb);
    printf("; update: %s\n", mg_trainer_update_kind(t));
    fflush(stdout);
}

/* Everything a session holds, freed on every path (what was never made is zero). Collective:
 * the shared windows' frees wait for every rank. */
static void session_free(mg_session *s)
{
    mg_comm_waiting_for(s->comm, "the end of the run");
    if (s->reporting && s->report.metrics >= 0)
        close(s->report.metrics);
    /* A directory this run made goes again if the run never started (a failed check, or a full
     * disk at its first write); any other is only unlocked. */
    if (s->opened)
        mg_rundir_close(&s->rundir);
    else
        mg_rundir_abandon(&s->rundir);
    free(s->yaml);
    evaluator_free(&s->eval);
    snapshots_free(&s->snap);
    mg_trainer_free(&s->t);
    mg_dataset_unload(&s->data);
    free(s);
}

/* Frees what open made and returns `status`, rank 0 printing the error first. */
static int open_failed(mg_session *s, int status)
{
    fail(s, status);
    session_free(s);
    return status;
}

int mg_session_open(mg_session **out, const mg_train_opts *o, const mg_comm *comm)
{
    *out = NULL;
    mg_session *s = mg_xcalloc(1, sizeof *s);
    s->rundir.lock = -1;
    s->comm = comm;
    s->rank = mg_comm_rank(comm);
    s->opts = *o;
    s->saved_at = -1;

    /* Waits are watched with the configuration's stall setting from the moment a rank knows it:
     * rank 0 once it has read it, the others once it has come. */
    mg_comm_waiting_for(comm, "reading the configuration");
    const int ok = s->rank != 0 || read_config(s) == 0;
    if (s->rank == 0 && ok)
        mg_comm_watch(comm, s->cfg.train.stall_seconds);
    if (!mg_comm_all_ok(comm, ok))
        return open_failed(s, MG_EXIT_INPUT);
    mg_comm_bcast(comm, &s->cfg, sizeof s->cfg, 0);
    mg_comm_bcast(comm, s->ckpt, sizeof s->ckpt, 0);
    mg_comm_watch(comm, s->cfg.train.stall_seconds);

    if (mg_split_load_train(&s->data, &s->cfg, comm, &s->err))
        return open_failed(s, MG_EXIT_INPUT);
    s->threads = mg_blas_threads_choose(mg_comm_node_size(comm));
    const mg_gan_spec spec = mg_config_gan(&s->cfg);
    mg_error why;
    if (mg_trainer_init(&s->t, &spec, &s->data, comm, &why)) {
        mg_fail(&s->err, "%s: %s", s->cfg.source, why.msg);
        return open_failed(s, MG_EXIT_INPUT);
    }
    if (o->resume) {
        mg_comm_waiting_for(comm, "loading the checkpoint %s", s->ckpt);
        mg_trainer_whole_optims(&s->t, 1, &s->g_whole, &s->d_whole);
        const int loaded = mg_comm_all_ok(comm, s->rank != 0 || load_checkpoint(s) == 0);
        if (loaded)
            mg_trainer_broadcast_state(&s->t);
        mg_trainer_whole_optims_end(&s->t);
        s->g_whole = s->d_whole = NULL;
        if (!loaded)
            return open_failed(s, MG_EXIT_INPUT);
    }
    s->saved_at = o->resume ? s->t.step : -1;
    if (o->resume)
        snprintf(s->saved, sizeof s->saved, "%s", s->ckpt);
    s->total = mg_trainer_total_steps(&s->t);
    if (s->cfg.eval.every > 0) {
        const double every = s->cfg.eval.every;
        s->next_eval = (floor(mg_trainer_epoch(&s->t) / every + 1e-9) + 1) * every;
    }
    mg_rundir_choose(s->dir, sizeof s->dir, o->out, o->resume ? s->ckpt : NULL, s->cfg.output.dir,
                     o->config);
    mg_comm_waiting_for(comm, "the set-up of the run directory %s", s->dir);
    if (!mg_comm_all_ok(comm, s->rank != 0 || prepare_dir(s) == 0))
        return open_failed(s, MG_EXIT_INPUT);
    if (s->rank == 0 && !o->quiet)
        banner(s);
    mg_signals_install();
    s->opened = 1;
    *out = s;
    return MG_EXIT_OK;
}

/* ---- the loop ---- */

int mg_session_done(const mg_session *s)
{
    return s->stopped || s->t.step >= s->total;
}

/* Rank 0: a file named STOP in the run directory asks the run to stop like SIGUSR1 (what a job
 * script uses when its signal may come before the ranks can take one). Looked for at most once a
 * second, since a stat on a parallel file system is not free; taken away when honoured. */
static int stop_file(mg_session *s)
{
    const double now = mg_comm_wtime();
    /* The first step always looks (MPI_Wtime's origin is arbitrary: it may be near 0 at start). */
    if (s->rank != 0 || (s->stop_looked && now - s->stop_checked < 1.0))
        return 0;
    s->stop_looked = 1;
    s->stop_checked = now;
    char path[MG_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/STOP", s->dir);
    if (access(path, F_OK) != 0)
        return 0;
    unlink(path);
    fprintf(stderr, "mpigan: %s found: stopping at the end of this step\n", path);
    s->stop_by_file = 1;
    return 1;
}

/* Where a run that must stop can continue from: its newest checkpoint, if it has one. */
static const char *last_good(mg_session *s)
{
    static char text[MG_PATH_MAX + 160];
    if (s->saved_at < 0)
        return "No checkpoint was written before it: start again";
    snprintf(text, sizeof text, "The newest checkpoint, %s (step %lld), holds the last good state: "
                                "resume from it",
             s->saved, (long long)s->saved_at);
    return text;
}

int mg_session_step(mg_session *s)
{
    mg_trainer *t = &s->t;
    const mg_config *cfg = &s->cfg;
    mg_step_stats stats;
    t->stop_request = mg_signals_pending() != 0 || stop_file(s);
    mg_trainer_step(t, &stats);
    /* Every rank knows when rank 0 estimates and writes a record, so that only those steps
     * agree on whether the writing worked. */
    const int estimate = cfg->eval.every > 0 && mg_trainer_epoch(t) >= s->next_eval - 1e-9;
    const int record = estimate || t->step % cfg->train.log_every == 0 || t->step == s->total;
    /* G's updated parameters may still travel (train.h, mg_trainer_settle): only the next step
     * may find them so; whatever else comes now reads whole parameters. */
    const int check = cfg->train.check_every > 0 && t->step % cfg->train.check_every == 0;
    const int snapshot = cfg->samples.every > 0 && t->step % cfg->samples.every == 0;
    const int save = cfg->checkpoint.every > 0 && t->step % cfg->checkpoint.every == 0;
    if (record || check || snapshot || save || stats.stop || stats.bad_params || stats.nonfinite ||
        t->step >= s->total)
        mg_trainer_settle(t);
    if (estimate) {
        s->next_eval += cfg->eval.every;
        if (s->rank == 0 && evaluate(s))
            fprintf(stderr, "mpigan: %s\n", s->err.msg); /* a lost estimate, not a lost run */
    }
    const int reported = s->rank != 0 || mg_report_step(&s->report, t, &stats, &s->err) == 0;
    if (record) {
        mg_comm_waiting_for(s->comm, estimate ? "the Parzen estimate of step %lld"
                                              : "the metrics record of step %lld",
                            (long long)t->step);
        if (!mg_comm_all_ok(s->comm, reported))
            return fail(s, MG_EXIT_RUNTIME);
    }
    if (stats.bad_params) {
        /* Every rank made the same update: all stop here, and nothing of it is ever saved. */
        mg_fail(&s->err,
                "step %lld: the %s update made its parameters NaN or Inf (finite gradients, too "
                "large a learning rate?); stopped without a checkpoint. %s",
                (long long)t->step,
                stats.bad_params == (MG_NET_D | MG_NET_G) ? "discriminator's and generator's"
                : stats.bad_params == MG_NET_D            ? "discriminator's"
                                                          : "generator's",
                last_good(s));
        return fail(s, MG_EXIT_RUNTIME);
    }
    if (stats.nonfinite && cfg->train.nonfinite == MG_NONFINITE_STOP) {
        /* Every rank saw the same allreduced gradients: all stop here, no checkpoint of it. */
        mg_fail(&s->err,
                "step %lld: NaN or Inf in the %s gradients, not applied; stopped. %s (with a "
                "lower learning rate, say), or set train.nonfinite: skip",
                (long long)t->step,
                stats.nonfinite == (MG_NET_D | MG_NET_G) ? "discriminator's and generator's"
                : stats.nonfinite == MG_NET_D            ? "discriminator's"
                                                         : "generator's",
                last_good(s));
        return fail(s, MG_EXIT_RUNTIME);
    }
    if (check && mg_trainer_check_replicas(t, &s->err))
        return fail(s, MG_EXIT_RUNTIME);
    if (snapshot && !on_rank0(s, take_snapshot, "the samples"))
        return fail(s, MG_EXIT_RUNTIME);
    s->stopped = stats.stop;
    if (s->stopped || save) {
        if (!checkpoint(s))
            return fail(s, MG_EXIT_RUNTIME);
        s->saved_at = t->step;
    }
    return s->stopped ? MG_EXIT_STOPPED : MG_EXIT_OK;
}

/* ---- closing ---- */

int mg_session_close(mg_session *s, int status)
{
    mg_trainer *t = &s->t;
    const mg_config *cfg = &s->cfg;
    mg_trainer_settle(t); /* nothing in flight after a step that ended the run (no messages) */
    /* The end of a run is a checkpoint too, and its last snapshot. */
    if (status == MG_EXIT_OK && s->saved_at != t->step) {
        if (cfg->samples.every > 0 && t->step % cfg->samples.every != 0 &&
            !on_rank0(s, take_snapshot, "the samples"))
            status = fail(s, MG_EXIT_RUNTIME);
        if (status == MG_EXIT_OK && !checkpoint(s))
            status = fail(s, MG_EXIT_RUNTIME);
    }
    mg_run_timers timers;
    mg_trainer_timers(t, timers.min, timers.mean, timers.max);
    mg_trainer_steady_timers(t, timers.steady_min, timers.steady_mean, timers.steady_max,
                             &timers.steady_steps);
    /* Resident memory per rank at the end, when training has touched the data: RSS, and PSS,
     * which counts the node's shared copy of the training set once per node. */
    mg_memory mem;
    mg_comm_waiting_for(s->comm, "the memory figures of step %lld", (long long)t->step);
    mg_memory_over_ranks(&mem, s->comm);
    double sum;
    mg_comm_minmaxsum(s->comm, (double)mg_trainer_optim_values(t), &mem.optim_values_min,
                      &mem.optim_values_max, &sum);
    mem.optim_values_whole = (double)mg_trainer_optim_values_whole(t);
    if (s->rank == 0) {
        if (mg_report_close(&s->report, t, &timers, &mem, &s->err)) {
            fprintf(stderr, "mpigan: %s\n", s->err.msg);
            if (status == MG_EXIT_OK || status == MG_EXIT_STOPPED)
                status = MG_EXIT_RUNTIME;
        }
        if (status == MG_EXIT_STOPPED)
            fprintf(stderr,
                    "mpigan: stopped by %s at step %lld; checkpoint %s written; continue "
                    "with: mpigan train --resume %s\n",
                    s->stop_by_file ? "a STOP file" : "a signal", (long long)t->step, s->saved,
                    s->dir);
    }
    session_free(s);
    return status;
}
