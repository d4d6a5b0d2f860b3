/* `mpigan classifier train` and classifiers loaded for evaluation (classify.h). Rank 0 reads,
 * prints and writes; every decision that ends the run is agreed by all ranks. */
#define _GNU_SOURCE /* open_memstream */
#include "mpigan/classify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpigan/blas.h"
#include "mpigan/checkpoint.h"
#include "mpigan/classifier.h"
#include "mpigan/files.h"
#include "mpigan/record.h"
#include "mpigan/rundir.h"
#include "mpigan/signals.h"
#include "mpigan/splits.h"

typedef struct {
    const mg_comm *comm;
    int rank;
    mg_train_opts opts;
    mg_config cfg;
    mg_error err;
    char ckpt[MG_PATH_MAX];      /* resumed from, or "" */
    char dir[MG_PATH_MAX];       /* the run directory */
    int threads;
    mg_dataset data;             /* the training split with its labels, one copy per node */
    mg_dataset valid, test;      /* every rank's copy; n 0 when there is none */
    mg_classifier c;
    int built;                   /* c was made */
    int64_t total;
    int64_t minibatch;           /* for checkpoints: one minibatch per step, the step count */
    int64_t saved_at;            /* step of the newest checkpoint, -1 if none */
    char saved[MG_PATH_MAX + 64];
    /* rank 0 */
    mg_rundir rundir;
    int opened;                  /* the run started: its directory stays */
    char *yaml;                  /* the effective configuration, as checkpoints keep it */
    int metrics;                 /* metrics.jsonl, or -1 */
    double t_start, t_mark;
    int64_t step_start, step_mark;
    double loss_sum, acc_sum;    /* over the steps since the last record */
    int64_t window;
} run;

static int fail(const run *r, int status)
{
    if (r->rank == 0)
        fprintf(stderr, "mpigan: %s\n", r->err.msg);
    return status;
}

static mg_checkpoint_state state_of(run *r)
{
    r->minibatch = r->c.step;
    return (mg_checkpoint_state){
        .c = &r->c.net, .c_opt = &r->c.opt, .classes = r->cfg.data.classes,
        .step = &r->c.step, .minibatch = &r->minibatch, .skipped = &r->c.skipped,
        .batches_per_epoch = r->c.batches_per_epoch, .seed = r->cfg.seed, .ranks = r->c.nranks,
        .batch_size = r->c.batch, .channels = r->data.channels, .height = r->data.height,
        .width = r->data.width};
}

/* Rank 0's examples (with their labels) to every rank. */
static void share(mg_dataset *ds, const mg_comm *comm)
{
    int shape[6] = {ds->n, ds->channels, ds->height, ds->width, ds->labels != NULL, ds->classes};
    mg_comm_bcast(comm, shape, sizeof shape, 0);
    if (mg_comm_rank(comm) != 0 && shape[0] > 0) {
        mg_error err;
        if (mg_dataset_alloc(ds, shape[0], shape[1], shape[2], shape[3], &err))
            mg_comm_abort(comm, 1); /* out of memory on one rank alone */
        ds->labels = shape[4] ? mg_xmalloc((size_t)shape[0] * sizeof *ds->labels) : NULL;
        ds->classes = shape[5];
    }
    if (shape[0] == 0)
        return;
    mg_comm_bcast(comm, ds->x, (size_t)ds->n * ds->dim * sizeof *ds->x, 0);
    if (shape[4])
        mg_comm_bcast(comm, ds->labels, (size_t)ds->n * sizeof *ds->labels, 0);
}

/* ---- opening (rank 0 reads and checks) ---- */

static int read_config(run *r)
{
    const mg_train_opts *o = &r->opts;
    if (o->resume && mg_checkpoint_resolve(r->ckpt, sizeof r->ckpt, o->resume, o->out, &r->err))
        return -1;
    int rc;
    if (o->config || !o->resume) {
        rc = mg_config_load(&r->cfg, o->config, o->overrides, o->n_overrides, &r->err);
    } else {
        mg_checkpoint_info info;
        if (mg_checkpoint_read_info(&info, r->ckpt, &r->err))
            return -1;
        rc = mg_config_parse(&r->cfg, info.config_yaml, r->ckpt, o->overrides, o->n_overrides,
                             &r->err);
        mg_checkpoint_info_free(&info);
    }
    if (rc == 0 && !mg_config_is_classifier(&r->cfg))
        rc = mg_fail(&r->err, "%s: not a classifier configuration (it has no classifier "
                              "section): mpigan train trains a GAN",
                     r->cfg.source);
    return rc;
}

/* The validation and test splits with their labels, where the configuration has them; a test
 * set without labels (an IDX test_images without test_labels) is none for a classifier. */
static int read_eval_sets(run *r)
{
    const mg_config *cfg = &r->cfg;
    const int have_valid = cfg->data.valid_count > 0 || !strcmp(cfg->data.format, "tfd");
    if (have_valid && mg_split_read(&r->valid, cfg, MG_SPLIT_VALID, 0, &r->err))
        return -1;
    const int have_test = strcmp(cfg->data.format, "idx") == 0 ? cfg->data.test_labels[0] != 0
                          : strcmp(cfg->data.format, "hdf5") == 0 ? cfg->data.test_path[0] != 0
                                                                  : 1;
    if (have_test && mg_split_read(&r->test, cfg, MG_SPLIT_TEST, 0, &r->err))
        return -1;
    const mg_dataset *sets[2] = {&r->valid, &r->test};
    const char *names[2] = {"validation", "test"};
    for (int i = 0; i < 2; i++) {
        if (sets[i]->n > 0 && !sets[i]->labels)
            return mg_fail(&r->err, "%s: the %s examples have no labels", cfg->source, names[i]);
        if (sets[i]->n > 0 && sets[i]->dim != r->data.dim)
            return mg_fail(&r->err, "%s: the %s examples have %zu values, the training examples "
                                    "%zu",
                           cfg->source, names[i], sets[i]->dim, r->data.dim);
    }
    return 0;
}

static int load_checkpoint(run *r)
{
    mg_checkpoint_state st = state_of(r);
    return mg_checkpoint_load(&st, r->ckpt, &r->err);
}

/* Rank 0: the run directory locked and checked before anything in it changes; then made ready. */
static int prepare_dir(run *r)
{
    const mg_train_opts *o = &r->opts;
    if (mg_rundir_open(&r->rundir, r->dir, &r->err) ||
        mg_rundir_check_start(&r->rundir, o->resume != NULL, o->force, r->c.step, &r->err))
        return -1;
    r->yaml = mg_config_text(&r->cfg);
    r->opened = 1;
    if (mg_rundir_start(&r->rundir, &r->cfg, o->resume != NULL, r->c.step, &r->err))
        return -1;
    char path[MG_PATH_MAX + 64];
    mg_error what;
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    if (mg_file_open_append(&r->metrics, path, &what))
        return mg_fail(&r->err, "%s: cannot write: %s", path, what.msg);
    return 0;
}

/* ---- records (rank 0) ---- */

/* One line of metrics.jsonl: the training figures of the steps since the last record (unless
 * `final`, the record of the end, which holds the evaluations alone); valid and test accuracies
 * < 0 are left out. */
static int write_record(run *r, double rate, double valid_acc, double test_acc, int final)
{
    json_t *o = json_object(), *bad = json_object();
    const double n = r->window > 0 ? (double)r->window : 1;
    json_object_set_new(o, "step", json_integer(r->c.step));
    mg_record_real(o, bad, "epoch", mg_classifier_epoch(&r->c));
    if (!final) {
        mg_record_real(o, bad, "loss", r->loss_sum / n);
        mg_record_real(o, bad, "accuracy", r->acc_sum / n);
        mg_record_real(o, bad, "lr", mg_optim_lr(&r->c.opt.spec, r->c.opt.t));
        mg_record_real(o, bad, "samples_per_s", rate);
    }
    mg_record_real(o, bad, "elapsed_s", mg_comm_wtime() - r->t_start);
    if (valid_acc >= 0)
        mg_record_real(o, bad, "valid_accuracy", valid_acc);
    if (test_acc >= 0)
        mg_record_real(o, bad, "test_accuracy", test_acc);
    if (r->c.skipped)
        json_object_set_new(o, "skipped", json_integer(r->c.skipped));
    mg_record_finish(o, bad);
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    mg_error what;
    int rc = 0;
    if (!text)
        return mg_fail(&r->err, "%s/metrics.jsonl: cannot write the record of step %lld: out of "
                                "memory",
                       r->dir, (long long)r->c.step);
    const size_t len = strlen(text);
    text[len] = '\n';
    if (mg_file_append(r->metrics, text, len + 1, &what))
        rc = mg_fail(&r->err, "%s/metrics.jsonl: cannot write the record of step %lld: %s",
                     r->dir, (long long)r->c.step, what.msg);
    free(text);
    return rc;
}

/* The record of the steps since the last one, and its progress line. */
static int report(run *r, double valid_acc, double test_acc)
{
    const double now = mg_comm_wtime();
    const double rate =
        now > r->t_mark ? (double)r->c.batch * (double)(r->c.step - r->step_mark) / (now - r->t_mark)
                        : 0;
    const double n = r->window > 0 ? (double)r->window : 1;
    const int rc = write_record(r, rate, valid_acc, test_acc, 0);
    if (!r->opts.quiet) {
        printf("epoch %6.2f  step %lld/%lld  loss %.4f  accuracy %.4f",
               mg_classifier_epoch(&r->c), (long long)r->c.step, (long long)r->total,
               r->loss_sum / n, r->acc_sum / n);
        if (valid_acc >= 0)
            printf("  validation accuracy %.4f", valid_acc);
        printf("  %.0f samples/s\n", rate);
        fflush(stdout);
    }
    r->loss_sum = r->acc_sum = 0;
    r->window = 0;
    r->t_mark = now;
    r->step_mark = r->c.step;
    return rc;
}

static int save_checkpoint(run *r)
{
    mg_checkpoint_state st = state_of(r);
    if (r->metrics >= 0 && fsync(r->metrics) != 0)
        return mg_fail(&r->err, "%s/metrics.jsonl: cannot sync: %m", r->dir);
    return mg_checkpoint_save(&st, r->yaml, r->dir, r->cfg.checkpoint.keep, r->saved,
                              sizeof r->saved, &r->err);
}

static int write_run_json(run *r, double valid_acc, double test_acc, const double *tmin,
                          const double *tmean, const double *tmax)
{
    const double seconds = mg_comm_wtime() - r->t_start;
    json_t *timers = json_object();
    for (int i = 0; i < MG_CTIMER_COUNT; i++)
        json_object_set_new(timers, mg_classifier_timer_names[i],
                            json_pack("{s:f, s:f, s:f}", "min", tmin[i], "mean", tmean[i], "max",
                                      tmax[i]));
    json_t *o = json_object(), *bad = json_object();
    json_object_set_new(o, "mpigan_version", json_string(MPIGAN_VERSION));
    json_object_set_new(o, "config", mg_record_path(r->cfg.source));
    json_object_set_new(o, "ranks", json_integer(r->c.nranks));
    json_object_set_new(o, "threads_per_rank", json_integer(r->threads));
    json_object_set_new(o, "global_batch", json_integer(r->c.batch));
    json_object_set_new(o, "steps", json_integer(r->c.step));
    mg_record_real(o, bad, "epochs", mg_classifier_epoch(&r->c));
    mg_record_real(o, bad, "seconds", seconds);
    mg_record_real(o, bad, "samples_per_s",
                   seconds > 0 ? (double)r->c.batch * (double)(r->c.step - r->step_start) / seconds
                               : 0);
    json_object_set_new(o, "classes", json_integer(r->cfg.data.classes));
    json_object_set_new(o, "valid_examples", json_integer(r->valid.n));
    if (valid_acc >= 0)
        mg_record_real(o, bad, "valid_accuracy", valid_acc);
    json_object_set_new(o, "test_examples", json_integer(r->test.n));
    if (test_acc >= 0)
        mg_record_real(o, bad, "test_accuracy", test_acc);
    json_object_set_new(o, "checkpoint", mg_record_path(r->saved));
    json_object_set_new(o, "timers", timers);
    mg_record_finish(o, bad);
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(o);
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/run.json", r->dir);
    if (!text)
        return mg_fail(&r->err, "%s: cannot write: out of memory", path);
    const size_t len = strlen(text);
    text[len] = '\n';
    mg_error what;
    const int rc = mg_file_write(path, text, len + 1, &what);
    free(text);
    return rc ? mg_fail(&r->err, "%s: cannot write: %s", path, what.msg) : 0;
}

/* ---- the run ---- */

static void run_free(run *r)
{
    if (r->metrics >= 0)
        close(r->metrics);
    if (r->rank == 0) {
        if (r->opened)
            mg_rundir_close(&r->rundir);
        else
            mg_rundir_abandon(&r->rundir);
    }
    free(r->yaml);
    if (r->built)
        mg_classifier_free(&r->c);
    mg_dataset_free(&r->valid);
    mg_dataset_free(&r->test);
    mg_dataset_unload(&r->data);
}

/* Rank 0 does `what`; every rank learns whether it worked, waiting for it in `name`. */
static int on_rank0(run *r, int (*what)(run *), const char *name)
{
    mg_comm_waiting_for(r->comm, "%s", name);
    return mg_comm_all_ok(r->comm, r->rank != 0 || what(r) == 0);
}

static int open_run(run *r)
{
    const mg_comm *comm = r->comm;
    /* Waits are watched with the configuration's stall setting from the moment a rank knows it:
     * rank 0 once it has read it, the others once it has come. */
    mg_comm_waiting_for(comm, "reading the configuration");
    const int ok = r->rank != 0 || read_config(r) == 0;
    if (r->rank == 0 && ok)
        mg_comm_watch(comm, r->cfg.train.stall_seconds);
    if (!mg_comm_all_ok(comm, ok))
        return MG_EXIT_INPUT;
    mg_comm_bcast(comm, &r->cfg, sizeof r->cfg, 0);
    mg_comm_watch(comm, r->cfg.train.stall_seconds);
    if (mg_split_load_train(&r->data, &r->cfg, comm, &r->err))
        return MG_EXIT_INPUT;
    if (!on_rank0(r, read_eval_sets, "reading the validation and test examples"))
        return MG_EXIT_INPUT;
    mg_comm_waiting_for(comm, "sharing the validation and test examples");
    share(&r->valid, comm);
    share(&r->test, comm);
    r->threads = mg_blas_threads_choose(mg_comm_node_size(comm));
    const mg_classifier_spec spec = {.seed = r->cfg.seed, .net = r->cfg.classifier.net,
                                     .optim = r->cfg.classifier.optim, .train = r->cfg.train,
                                     .classes = r->cfg.data.classes};
    mg_error why;
    if (mg_classifier_init(&r->c, &spec, &r->data, comm, &why)) {
        mg_fail(&r->err, "%s: %s", r->cfg.source, why.msg);
        return MG_EXIT_INPUT;
    }
    r->built = 1;
    if (r->opts.resume) {
        if (!on_rank0(r, load_checkpoint, "loading the checkpoint"))
            return MG_EXIT_INPUT;
        mg_classifier_broadcast_state(&r->c);
        r->saved_at = r->c.step;
        snprintf(r->saved, sizeof r->saved, "%s", r->ckpt);
    }
    r->total = mg_classifier_total_steps(&r->c);
    mg_rundir_choose(r->dir, sizeof r->dir, r->opts.out, r->opts.resume ? r->ckpt : NULL,
                     r->cfg.output.dir, r->opts.config);
    if (!on_rank0(r, prepare_dir, "the set-up of the run directory"))
        return MG_EXIT_INPUT;
    r->t_start = r->t_mark = mg_comm_wtime();
    r->step_start = r->step_mark = r->c.step;
    if (r->rank == 0 && !r->opts.quiet) {
        printf("mpigan %s: classifier %s, %d rank%s x %d thread%s, global batch %d, %d training "
               "examples of %zu values in %d classes, %zu parameters; %d validation, %d test "
               "examples; ",
               MPIGAN_VERSION, r->cfg.source, r->c.nranks, r->c.nranks == 1 ? "" : "s",
               r->threads, r->threads == 1 ? "" : "s", r->c.batch, r->data.n, r->data.dim,
               r->cfg.data.classes, r->c.net.n_params, r->valid.n, r->test.n);
        if (r->opts.resume)
            printf("resuming %s at step %lld of %lld", r->ckpt, (long long)r->c.step,
                   (long long)r->total);
        else
            printf("%lld steps", (long long)r->total);
        printf("; run directory %s\n", r->dir);
        fflush(stdout);
    }
    return MG_EXIT_OK;
}

int mg_run_classifier_train(const mg_train_opts *o, const mg_comm *comm)
{
    run *r = mg_xcalloc(1, sizeof *r);
    r->comm = comm;
    r->rank = mg_comm_rank(comm);
    r->opts = *o;
    r->metrics = -1;
    r->rundir.lock = -1;
    r->saved_at = -1;
    mg_signals_install();
    int status = open_run(r);
    if (status != MG_EXIT_OK) {
        fail(r, status);
        run_free(r);
        free(r);
        return status;
    }
    const mg_config *cfg = &r->cfg;
    mg_classifier *c = &r->c;
    int stopped = 0;
    while (status == MG_EXIT_OK && !stopped && c->step < r->total) {
        mg_classifier_stats s;
        c->stop_request = mg_signals_pending() != 0;
        mg_classifier_step(c, &s);
        r->loss_sum += s.loss;
        r->acc_sum += s.accuracy;
        r->window++;
        if (s.bad_params || (s.nonfinite && cfg->train.nonfinite == MG_NONFINITE_STOP)) {
            mg_fail(&r->err, "step %lld: %s; stopped without a checkpoint of it (a lower learning "
                             "rate?)",
                    (long long)c->step,
                    s.bad_params ? "the update made the classifier's parameters NaN or Inf"
                                 : "NaN or Inf in the classifier's gradients, not applied");
            status = fail(r, MG_EXIT_RUNTIME);
            break;
        }
        /* The validation accuracy at the end of each epoch (collective), into that record. */
        const int epoch_end = c->step % c->batches_per_epoch == 0;
        const double valid_acc =
            epoch_end && r->valid.n > 0 ? mg_classifier_accuracy(&c->net, &r->valid, comm) : -1;
        const int record = epoch_end || c->step % cfg->train.log_every == 0 || c->step == r->total;
        if (record)
            mg_comm_waiting_for(comm, "the record of step %lld", (long long)c->step);
        if (record && !mg_comm_all_ok(comm, r->rank != 0 || report(r, valid_acc, -1) == 0)) {
            status = fail(r, MG_EXIT_RUNTIME);
            break;
        }
        if (cfg->train.check_every > 0 && c->step % cfg->train.check_every == 0 &&
            mg_classifier_check_replicas(c, &r->err)) {
            status = fail(r, MG_EXIT_RUNTIME);
            break;
        }
        stopped = s.stop;
        if (stopped || (cfg->checkpoint.every > 0 && c->step % cfg->checkpoint.every == 0)) {
            if (!on_rank0(r, save_checkpoint, "the checkpoint")) {
                status = fail(r, MG_EXIT_RUNTIME);
                break;
            }
            r->saved_at = c->step;
        }
    }
    if (status == MG_EXIT_OK && r->saved_at != c->step) {
        if (on_rank0(r, save_checkpoint, "the last checkpoint"))
            r->saved_at = c->step;
        else
            status = fail(r, MG_EXIT_RUNTIME);
    }
    /* The figures of the classifier as it ends: validation and test accuracy, every rank. */
    double valid_acc = -1, test_acc = -1;
    if (status == MG_EXIT_OK && !stopped) {
        valid_acc = r->valid.n > 0 ? mg_classifier_accuracy(&c->net, &r->valid, comm) : -1;
        test_acc = r->test.n > 0 ? mg_classifier_accuracy(&c->net, &r->test, comm) : -1;
    }
    double tmin[MG_CTIMER_COUNT], tmean[MG_CTIMER_COUNT], tmax[MG_CTIMER_COUNT];
    mg_comm_waiting_for(comm, "the timers of the run");
    for (int i = 0; i < MG_CTIMER_COUNT; i++) {
        double sum;
        mg_comm_minmaxsum(comm, c->timer[i], &tmin[i], &tmax[i], &sum);
        tmean[i] = sum / c->nranks;
    }
    if (r->rank == 0 && (status == MG_EXIT_OK || stopped)) {
        if ((test_acc >= 0 && write_record(r, 0, valid_acc, test_acc, 1)) ||
            write_run_json(r, valid_acc, test_acc, tmin, tmean, tmax)) {
            fprintf(stderr, "mpigan: %s\n", r->err.msg);
            status = MG_EXIT_RUNTIME;
        } else if (!o->quiet) {
            if (test_acc >= 0)
                printf("test accuracy %.4f (%d examples)", test_acc, r->test.n);
            else if (valid_acc >= 0)
                printf("validation accuracy %.4f (%d examples; no test set with labels)",
                       valid_acc, r->valid.n);
            printf("%scheckpoint %s; step %lld, epoch %.2f, %.1f s\n",
                   test_acc >= 0 || valid_acc >= 0 ? "; " : "", r->saved, (long long)c->step,
                   mg_classifier_epoch(c), mg_comm_wtime() - r->t_start);
        }
    }
    if (stopped && status == MG_EXIT_OK) {
        status = MG_EXIT_STOPPED;
        if (r->rank == 0)
            fprintf(stderr, "mpigan: stopped by a signal at step %lld; checkpoint %s written; "
                            "continue with: mpigan classifier train --resume %s\n",
                    (long long)c->step, r->saved, r->dir);
    }
    run_free(r);
    free(r);
    return status;
}

/* ---- a classifier for evaluation ---- */

/* Rank 0: the checkpoint's configuration and shape, checked against the examples. */
static int model_info(mg_classifier_model *m, mg_config *cfg, const char *path, int channels,
                      int height, int width, mg_error *err)
{
    mg_checkpoint_info info;
    if (mg_checkpoint_resolve(m->path, sizeof m->path, path, NULL, err) ||
        mg_checkpoint_read_info(&info, m->path, err))
        return -1;
    int rc = 0;
    if (strcmp(info.kind, MG_CHECKPOINT_CLASSIFIER) != 0)
        rc = mg_fail(err, "%s: holds a GAN (mpigan train), not a classifier", m->path);
    else if (mg_config_parse_networks(cfg, info.config_yaml, m->path, err))
        rc = -1;
    else if (info.channels != channels || info.height != height || info.width != width)
        rc = mg_fail(err, "%s: the classifier takes examples of %dx%dx%d, these are %dx%dx%d",
                     m->path, info.channels, info.height, info.width, channels, height, width);
    m->classes = info.classes;
    m->step = info.step;
    m->gcn = cfg->data.preprocess == MG_PREPROCESS_GCN;
    m->gcn_scale = cfg->data.gcn_scale;
    m->lo = cfg->data.range[0];
    m->hi = cfg->data.range[1];
    mg_checkpoint_info_free(&info);
    return rc;
}

int mg_classifier_model_load(mg_classifier_model *m, const char *path, int channels, int height,
                             int width, const mg_comm *comm, mg_error *err)
{
    memset(m, 0, sizeof *m);
    const int rank = mg_comm_rank(comm);
    mg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mg_comm_waiting_for(comm, "loading the classifier %s", path);
    if (!mg_comm_all_ok(comm,
                        rank != 0 || model_info(m, &cfg, path, channels, height, width, err) == 0))
        return -1;
    mg_comm_bcast(comm, &cfg, sizeof cfg, 0);
    mg_comm_bcast(comm, m->path, sizeof m->path, 0);
    mg_comm_bcast(comm, &m->step, sizeof m->step, 0);
    double space[4] = {m->gcn, m->gcn_scale, m->lo, m->hi};
    mg_comm_bcast(comm, space, sizeof space, 0);
    m->gcn = (int)space[0], m->gcn_scale = space[1], m->lo = space[2], m->hi = space[3];
    int ok = mg_net_init_shape(&m->net, &cfg.classifier.net, channels, height, width,
                               MG_CLASSIFIER_CHUNK, 1, err) == 0;
    if (!mg_comm_all_ok(comm, ok)) {
        if (ok)
            mg_net_free(&m->net);
        return -1;
    }
    if (!mg_comm_all_ok(comm, rank != 0 || mg_checkpoint_load_classifier(&m->net, m->path, err) ==
                                              0)) {
        mg_net_free(&m->net);
        return -1;
    }
    mg_comm_bcast(comm, m->net.params, m->net.n_params * sizeof(mg_real), 0);
    if (m->net.n_state)
        mg_comm_bcast(comm, m->net.state, m->net.n_state * sizeof(mg_real), 0);
    m->classes = m->net.out_dim;
    m->features = m->net.layer[m->net.n_layers - 1].in;
    m->channels = channels;
    m->height = height;
    m->width = width;
    return 0;
}

int mg_classifier_model_input(const mg_classifier_model *m, const mg_config *cfg, mg_real *x,
                              size_t n, mg_error *err)
{
    const int gcn = cfg->data.preprocess == MG_PREPROCESS_GCN;
    if (gcn || m->gcn) {
        if (gcn && m->gcn && cfg->data.gcn_scale == m->gcn_scale)
            return 0;
        return mg_fail(err, "%s: the classifier was trained on %s, the generator's data is %s: "
                            "train one on the generator's data",
                       m->path, m->gcn ? "GCN'd values" : "pixels",
                       gcn ? "GCN'd values" : "pixels");
    }
    const double lo = cfg->data.range[0], hi = cfg->data.range[1];
    if (lo == m->lo && hi == m->hi)
        return 0;
    /* The same pixel p is lo + (hi - lo) p in the generator's data, m->lo + (m->hi - m->lo) p in
     * the classifier's. */
    const double scale = (m->hi - m->lo) / (hi - lo);
    for (size_t i = 0; i < n; i++)
        x[i] = (mg_real)(m->lo + scale * ((double)x[i] - lo));
    return 0;
}

int mg_classifier_model_read(mg_classifier_model *m, const char *path, int channels, int height,
                             int width, mg_error *err)
{
    memset(m, 0, sizeof *m);
    mg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (model_info(m, &cfg, path, channels, height, width, err) ||
        mg_net_init_shape(&m->net, &cfg.classifier.net, channels, height, width,
                          MG_CLASSIFIER_CHUNK, 1, err))
        return -1;
    if (mg_checkpoint_load_classifier(&m->net, m->path, err)) {
        mg_net_free(&m->net);
        return -1;
    }
    m->classes = m->net.out_dim;
    m->features = m->net.layer[m->net.n_layers - 1].in;
    m->channels = channels;
    m->height = height;
    m->width = width;
    return 0;
}

void mg_classifier_model_free(mg_classifier_model *m)
{
    mg_net_free(&m->net);
    memset(m, 0, sizeof *m);
}
