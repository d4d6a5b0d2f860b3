/* mpigan eval: the paper's Parzen window log-likelihood of a checkpoint's generator.
 *
 * Rank 0 reads the checkpoint, its configuration and the validation and test examples; the
 * samples are drawn over all ranks (mg_generate) and every rank gets all of them. Points are
 * split over the ranks in whole blocks of MG_PARZEN_ROWS, and rank 0 sums their log-likelihoods
 * in point order, so the printed figures do not depend on the rank count.
 *
 * With a classifier, every rank computes its probabilities and features of whole chunks of the
 * samples and the test examples (mg_classifier_outputs), rank 0 gathers them and measures
 * (quality.h): the same figures on any number of ranks, too. */
#include "mpigan/evaluate.h"

#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/blas.h"
#include "mpigan/checkpoint.h"
#include "mpigan/classifier.h"
#include "mpigan/classify.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/files.h"
#include "mpigan/generate.h"
#include "mpigan/rundir.h"
#include "mpigan/splits.h"
#include "mpigan/parzen.h"
#include "mpigan/quality.h"
#include "mpigan/record.h"
#include "mpigan/train.h"

#define MAX_SIGMAS 1000

static int fail_all(const mg_comm *comm, const mg_error *err, int code)
{
    if (mg_comm_rank(comm) == 0)
        fprintf(stderr, "mpigan: %s\n", err->msg);
    return code;
}

/* Rank 0's examples (and labels) to every rank: shape first, then the values. */
static void share(mg_dataset *ds, const mg_comm *comm)
{
    int shape[6] = {ds->n, ds->channels, ds->height, ds->width, ds->labels != NULL, ds->classes};
    mg_comm_bcast(comm, shape, sizeof shape, 0);
    if (mg_comm_rank(comm) != 0) {
        mg_error err;
        if (mg_dataset_alloc(ds, shape[0], shape[1], shape[2], shape[3], &err))
            mg_comm_abort(comm, 1); /* out of memory on one rank alone */
        ds->labels = shape[4] ? mg_xmalloc(((size_t)shape[0] + 1) * sizeof *ds->labels) : NULL;
        ds->classes = shape[5];
    }
    mg_comm_bcast(comm, ds->x, (size_t)ds->n * ds->dim * sizeof *ds->x, 0);
    if (shape[4])
        mg_comm_bcast(comm, ds->labels, (size_t)ds->n * sizeof *ds->labels, 0);
}

/* Collective: the log-likelihoods of points (n, dim) under the window on mu at each sigma,
 * gathered on rank 0 into ll (n, n_sigma) in point order. */
static int parzen_over_ranks(double *ll, const mg_dataset *points, const mg_dataset *mu,
                             const double *sigmas, int n_sigma, const mg_comm *comm, mg_error *err)
{
    const int rank = mg_comm_rank(comm), size = mg_comm_size(comm);
    const int blocks = (points->n + MG_PARZEN_ROWS - 1) / MG_PARZEN_ROWS;
    const int lo = blocks * rank / size * MG_PARZEN_ROWS;
    const int end = blocks * (rank + 1) / size * MG_PARZEN_ROWS;
    const int hi = end < points->n ? end : points->n;
    double *mine = malloc(((size_t)(hi - lo) * n_sigma + 1) * sizeof *mine);
    int ok = mine && mg_parzen_ll(mine, points->x + (size_t)lo * points->dim, hi - lo, mu->x, mu->n,
                                  mu->dim, sigmas, n_sigma, err) == 0;
    if (!mine)
        mg_fail(err, "parzen: out of memory for %d points", hi - lo);
    if (!mg_comm_all_ok(comm, ok)) {
        free(mine);
        return -1;
    }
    mg_comm_gather(comm, mine, (size_t)(hi - lo) * n_sigma * sizeof *mine, ll, 0);
    free(mine);
    return 0;
}

/* Rank 0: the samples the window is centred on, into mu: the first n training examples (--real;
 * with --class K the first n of class K) or nothing (the generator's are drawn collectively
 * afterwards). */
static int real_samples(mg_dataset *mu, const mg_config *cfg, int64_t n, int cls, mg_error *err)
{
    if (mg_split_read_train(mu, cfg, err))
        return -1;
    if (cls != MG_ALL_CLASSES) {
        if (!mu->labels || cls >= mu->classes) {
            const int classes = mu->labels ? mu->classes : 0;
            mg_dataset_free(mu);
            return classes ? mg_fail(err, "%s: --real --class %d: the data's classes are 0 to %d",
                                     cfg->source, cls, classes - 1)
                           : mg_fail(err, "%s: --real --class %d: the training split has no "
                                          "labels",
                                     cfg->source, cls);
        }
        /* The examples of class cls, in order, to the front (rows as bytes or values). */
        const size_t dim = mu->dim, width = mu->bytes ? 1 : sizeof(mg_real);
        char *base = mu->bytes ? (char *)mu->bytes : (char *)mu->x;
        int kept = 0;
        for (int i = 0; i < mu->n; i++)
            if (mu->labels[i] == cls) {
                memmove(base + (size_t)kept * dim * width, base + (size_t)i * dim * width,
                        dim * width);
                mu->labels[kept++] = cls;
            }
        mu->n = kept;
    }
    if (mu->n < n) {
        int have = mu->n;
        mg_dataset_free(mu);
        return mg_fail(err, "%s: --real: the training split has %d examples%s, fewer than -n %lld",
                       cfg->source, have, cls != MG_ALL_CLASSES ? " of that class" : "",
                       (long long)n);
    }
    mu->n = (int)n;
    return mg_dataset_widen(mu, err);
}

/* Seconds to the millisecond: more digits would be noise. */
static json_t *seconds(double s)
{
    return json_real(round(s * 1000) / 1000);
}

int mg_eval_write_record(const char *path, const mg_eval_record *r, mg_error *err)
{
    json_t *o = json_object(), *bad = json_object();
    json_object_set_new(o, "checkpoint", mg_record_path(r->checkpoint));
    json_object_set_new(o, "step", json_integer(r->step));
    json_object_set_new(o, "real", json_boolean(r->real));
    json_object_set_new(o, "ranks", json_integer(r->ranks));
    json_object_set_new(o, "samples", json_integer(r->samples));
    json_object_set_new(o, "valid_points", json_integer(r->valid_points));
    json_object_set_new(o, "test_points", json_integer(r->test_points));
    mg_record_reals(o, bad, "sigmas", r->sigmas, r->n_sigma);
    mg_record_reals(o, bad, "valid_ll", r->valid_ll, r->n_sigma);
    mg_record_real(o, bad, "sigma", r->sigmas[r->chosen]);
    mg_record_real(o, bad, "test_ll", r->test_ll);
    mg_record_real(o, bad, "test_se", r->test_se);
    json_object_set_new(o, "seconds", seconds(r->seconds[3]));
    json_object_set_new(o, "timers",
                        json_pack("{s:o, s:o, s:o}", "samples", seconds(r->seconds[0]),
                                  "validation", seconds(r->seconds[1]), "test",
                                  seconds(r->seconds[2])));
    if (r->quality)
        json_object_set_new(o, "classifier", mg_quality_json(r->quality));
    mg_record_finish(o, bad);
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!text)
        return mg_fail(err, "%s: cannot write: out of memory", path);
    const size_t len = strlen(text);
    text[len] = '\n'; /* over the terminator: the record ends its line */
    mg_error what;
    const int rc = mg_file_write(path, text, len + 1, &what);
    free(text);
    if (rc)
        return mg_fail(err, "%s: cannot write: %s", path, what.msg);
    return 0;
}

json_t *mg_quality_json(const mg_quality_record *q)
{
    json_t *o = json_object(), *bad = json_object(), *hist = json_array();
    json_object_set_new(o, "checkpoint", mg_record_path(q->classifier));
    json_object_set_new(o, "classes", json_integer(q->classes));
    json_object_set_new(o, "features", json_integer(q->features));
    json_object_set_new(o, "samples", json_integer(q->samples));
    json_object_set_new(o, "real_points", json_integer(q->real_points));
    if (q->cls >= 0)
        json_object_set_new(o, "class", json_integer(q->cls));
    mg_record_real(o, bad, "fid", q->fid);
    mg_record_real(o, bad, "score", q->score);
    mg_record_real(o, bad, "score_sd", q->score_sd);
    json_object_set_new(o, "splits", json_integer(q->splits));
    for (int k = 0; k < q->classes; k++)
        json_array_append_new(hist, json_integer(q->histogram[k]));
    json_object_set_new(o, "histogram", hist);
    json_object_set_new(o, "coverage", json_integer(q->coverage));
    if (!isnan(q->accuracy))
        mg_record_real(o, bad, "accuracy", q->accuracy);
    if (!isnan(q->test_accuracy))
        mg_record_real(o, bad, "test_accuracy", q->test_accuracy);
    json_object_set_new(o, "seconds", seconds(q->seconds));
    mg_record_finish(o, bad);
    return o;
}

/* Score splits: 10 (the Inception score's convention), fewer for fewer than 20 samples. */
static int score_splits(int64_t n)
{
    return n >= 20 ? 10 : n >= 2 ? (int)(n / 2) : 1;
}

int mg_quality_measure(mg_quality_record *q, int *histogram, const mg_real *prob,
                       const mg_real *feat, int64_t n, const mg_real *real_feat, int n_real,
                       const int32_t *labels, mg_error *err)
{
    const int c = q->classes, d = q->features;
    if (n < 2 || n > 0x7fffffff || n_real < 2)
        return mg_fail(err, "classifier: %lld samples and %d real examples: the Frechet distance "
                            "needs at least 2 of each",
                       (long long)n, n_real);
    mg_gauss gs, gr;
    int rc = mg_gauss_alloc(&gs, d, err);
    if (rc == 0 && (rc = mg_gauss_alloc(&gr, d, err)) != 0)
        mg_gauss_free(&gs);
    if (rc)
        return -1;
    int *pred = mg_xmalloc((size_t)n * sizeof *pred);
    q->splits = score_splits(n);
    q->histogram = histogram;
    q->accuracy = NAN;
    rc = mg_gauss_fit(&gs, feat, (int)n, d, err) || mg_gauss_fit(&gr, real_feat, n_real, d, err) ||
                 mg_frechet(&q->fid, &gr, &gs, err) ||
                 mg_classifier_score(&q->score, &q->score_sd, prob, (int)n, c, q->splits, err) ||
                 mg_argmax_rows(pred, prob, (int)n, c, err) ||
                 mg_class_histogram(histogram, pred, (int)n, c, err)
             ? -1
             : 0;
    if (rc == 0) {
        q->coverage = mg_mode_coverage(histogram, c);
        if (labels) {
            int *want = mg_xmalloc((size_t)n * sizeof *want);
            for (int64_t i = 0; i < n; i++)
                want[i] = labels[i];
            rc = mg_accuracy(&q->accuracy, pred, want, (int)n, c, err);
            free(want);
        }
    }
    free(pred);
    mg_gauss_free(&gs);
    mg_gauss_free(&gr);
    return rc;
}

static void print_quality(const mg_quality_record *q)
{
    printf("classifier %s (%d classes, %d features):\n", q->classifier, q->classes, q->features);
    printf("  Frechet distance of its features, %lld %s vs %d test examples: %.3f\n",
           (long long)q->samples, q->cls >= 0 ? "samples of one class" : "samples", q->real_points,
           q->fid);
    printf("  classifier score (%d splits): %.3f +- %.3f\n", q->splits, q->score, q->score_sd);
    printf("  class histogram:");
    for (int k = 0; k < q->classes; k++)
        printf(" %d", q->histogram[k]);
    printf("\n  mode coverage: %d of %d classes hold at least half their share\n", q->coverage,
           q->classes);
    if (!isnan(q->accuracy))
        printf("  conditional accuracy: %.4f (the classifier's class of G(z, c) is c)\n",
               q->accuracy);
    if (!isnan(q->test_accuracy))
        printf("  the classifier's accuracy on the test examples: %.4f\n", q->test_accuracy);
}

static void print_table(const mg_eval_record *r, const char *out)
{
    printf("Parzen window log-likelihood of %s (step %lld), on %d rank%s\n", r->checkpoint,
           (long long)r->step, r->ranks, r->ranks == 1 ? "" : "s");
    printf("window: %lld %s; sigma chosen on %d validation examples\n", (long long)r->samples,
           r->real ? "training examples (--real)" : "generated samples", r->valid_points);
    printf("  %-10s %s\n", "sigma", "mean validation log-likelihood");
    for (int s = 0; s < r->n_sigma; s++)
        printf("  %-10.4g %12.2f%s\n", r->sigmas[s], r->valid_ll[s], s == r->chosen ? "  <- chosen" : "");
    printf("test log-likelihood (%d examples): %.2f +- %.2f (standard error), sigma %.4g\n",
           r->test_points, r->test_ll, r->test_se, r->sigmas[r->chosen]);
    printf("time: samples %.1f s, validation %.1f s, test %.1f s, total %.1f s\n", r->seconds[0],
           r->seconds[1], r->seconds[2], r->seconds[3]);
    if (r->quality)
        print_quality(r->quality);
    printf("record: %s\n", out);
}

/* Collective: the classifier's figures of the samples mu against the test examples (both in the
 * classifier's values first: they are not needed as they were after the Parzen estimate), into q
 * on rank 0 (its histogram malloc'd into *histogram). */
static int measure(mg_quality_record *q, int **histogram, mg_classifier_model *m,
                   const mg_config *cfg, mg_dataset *mu, mg_dataset *test, const mg_eval_opts *o,
                   const mg_comm *comm, mg_error *err)
{
    const int rank = mg_comm_rank(comm), c = m->classes, d = m->features;
    const int gan_classes = mg_config_gan_classes(cfg);
    mg_classifier_model_input(m, cfg, mu->x, (size_t)mu->n * mu->dim, err);
    mg_classifier_model_input(m, cfg, test->x, (size_t)test->n * test->dim, err);
    mg_real *prob = NULL, *feat = NULL, *tprob = NULL, *tfeat = NULL;
    if (rank == 0) {
        prob = mg_xmalloc((size_t)mu->n * c * sizeof *prob);
        feat = mg_xmalloc((size_t)mu->n * d * sizeof *feat);
        tprob = mg_xmalloc((size_t)test->n * c * sizeof *tprob);
        tfeat = mg_xmalloc((size_t)test->n * d * sizeof *tfeat);
    }
    mg_classifier_outputs(prob, feat, &m->net, mu->x, mu->n, comm, 0);
    mg_classifier_outputs(tprob, tfeat, &m->net, test->x, test->n, comm, 0);
    int rc = 0;
    if (rank == 0) {
        q->classifier = m->path;
        q->classes = c;
        q->features = d;
        q->samples = mu->n;
        q->real_points = test->n;
        q->test_accuracy = NAN;
        /* The classes the samples were drawn for: a conditional G's, not --real's. */
        int32_t *labels = NULL;
        if (gan_classes && !o->real) {
            labels = mg_xmalloc((size_t)mu->n * sizeof *labels);
            for (int i = 0; i < mu->n; i++)
                labels[i] = (int32_t)(mg_sample_row(i, gan_classes, o->cls) % gan_classes);
        }
        *histogram = mg_xcalloc((size_t)c, sizeof **histogram);
        rc = mg_quality_measure(q, *histogram, prob, feat, mu->n, tfeat, test->n, labels, err);
        if (rc == 0 && test->labels) {
            int right;
            mg_loss_softmax(NULL, tprob, test->labels, test->n, c, 1, &right);
            q->test_accuracy = test->n ? (double)right / test->n : NAN;
        }
        free(labels);
    }
    free(prob);
    free(feat);
    free(tprob);
    free(tfeat);
    return mg_comm_all_ok(comm, rc == 0) ? 0 : -1;
}

/* Rank 0: the checkpoint, its configuration (with overrides), its step and the values of one
 * sample. */
static int read_checkpoint(const mg_eval_opts *o, char *ckpt, mg_config *cfg, int64_t *step,
                           size_t *dim, mg_error *err)
{
    mg_checkpoint_info info;
    if (mg_checkpoint_resolve(ckpt, MG_PATH_MAX, o->checkpoint, NULL, err) ||
        mg_checkpoint_read_info(&info, ckpt, err))
        return -1;
    int rc = mg_config_parse(cfg, info.config_yaml, ckpt, o->overrides, o->n_overrides, err);
    *dim = (size_t)info.channels * info.height * info.width;
    *step = info.step;
    mg_checkpoint_info_free(&info);
    return rc;
}

/* Rank 0: the examples, the output path. */
static int setup(const mg_eval_opts *o, const char *ckpt, const mg_config *cfg, int64_t step,
                 size_t dim, mg_dataset *valid, mg_dataset *test, mg_dataset *mu, char *out,
                 size_t out_n, mg_error *err)
{
    const int classes = mg_config_gan_classes(cfg);
    if (o->cls != MG_ALL_CLASSES && !o->real && !classes)
        return mg_fail(err, "%s: --class %d: the checkpoint's generator is unconditional", ckpt,
                       o->cls);
    if (o->cls != MG_ALL_CLASSES && !o->real && o->cls >= classes)
        return mg_fail(err, "%s: --class %d: the generator's classes are 0 to %d", ckpt, o->cls,
                       classes - 1);
    if (mg_split_read(valid, cfg, MG_SPLIT_VALID, o->valid_points, err) ||
        mg_split_read(test, cfg, MG_SPLIT_TEST, o->test_points, err) ||
        (o->real && real_samples(mu, cfg, o->samples, o->cls, err)))
        return -1;
    const mg_dataset *sets[3] = {valid, test, o->real ? mu : NULL};
    const char *names[3] = {"validation", "test", "training"};
    for (int i = 0; i < 3; i++)
        if (sets[i] && sets[i]->dim != dim)
            return mg_fail(err, "%s: the %s examples have %zu values, the generator makes %zu",
                           ckpt, names[i], sets[i]->dim, dim);
    if (o->out) {
        snprintf(out, out_n, "%s", o->out);
    } else {
        char tmp[MG_PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", ckpt);
        char cls[32] = "";
        if (o->cls != MG_ALL_CLASSES)
            snprintf(cls, sizeof cls, "-class%d", o->cls);
        snprintf(out, out_n, "%s/eval-%08lld%s%s.json", dirname(tmp), (long long)step,
                 o->real ? "-real" : "", cls);
    }
    return mg_rundir_check_output(out, ckpt, 1, err);
}

int mg_evaluate(const mg_eval_opts *o, const mg_comm *comm)
{
    const int rank = mg_comm_rank(comm);
    const double t0 = mg_comm_wtime();
    mg_error err = {{0}};
    char ckpt[MG_PATH_MAX] = "", out[MG_PATH_MAX + 64] = "";
    mg_config cfg;
    int64_t step = 0;
    mg_dataset valid = {0}, test = {0}, mu = {0};
    size_t dim = 0;
    mg_comm_waiting_for(comm, "reading the checkpoint");
    int ok = rank != 0 || read_checkpoint(o, ckpt, &cfg, &step, &dim, &err) == 0;
    if (!mg_comm_all_ok(comm, ok))
        return fail_all(comm, &err, MG_EXIT_INPUT);
    mg_comm_bcast(comm, &cfg, sizeof cfg, 0);
    /* Every rank waits for the examples, seconds of reading, with the checkpoint's setting. */
    mg_comm_watch(comm, cfg.train.stall_seconds);
    mg_comm_waiting_for(comm, "reading the validation and test examples");
    ok = rank != 0 ||
         setup(o, ckpt, &cfg, step, dim, &valid, &test, &mu, out, sizeof out, &err) == 0;
    if (!mg_comm_all_ok(comm, ok)) {
        mg_dataset_free(&valid);
        mg_dataset_free(&test);
        mg_dataset_free(&mu);
        return fail_all(comm, &err, MG_EXIT_INPUT);
    }
    mg_comm_waiting_for(comm, "sharing the validation and test examples");
    share(&valid, comm);
    share(&test, comm);

    /* The classifier, checked against the data before any work. */
    mg_classifier_model model = {0};
    const int gan_classes = mg_config_gan_classes(&cfg);
    if (o->classifier) {
        mg_comm_waiting_for(comm, "loading the classifier");
        ok = mg_classifier_model_load(&model, o->classifier, test.channels, test.height,
                                      test.width, comm, &err) == 0;
        if (ok && rank == 0 && mg_classifier_model_input(&model, &cfg, NULL, 0, &err))
            ok = 0;
        else if (ok && rank == 0 && gan_classes && model.classes != gan_classes)
            ok = mg_fail(&err, "%s: the classifier has %d classes, the conditional generator %d",
                         model.path, model.classes, gan_classes) == 0;
        if (!mg_comm_all_ok(comm, ok)) {
            if (model.net.params)
                mg_classifier_model_free(&model);
            mg_dataset_free(&valid);
            mg_dataset_free(&test);
            mg_dataset_free(&mu);
            return fail_all(comm, &err, MG_EXIT_INPUT);
        }
    }

    /* The window's centres: the generator's samples, or the training examples. */
    if (!o->real) {
        mg_net g;
        if (mg_generator_load(&g, &cfg, MG_GENERATE_CHUNK, ckpt, comm, &err)) {
            if (o->classifier)
                mg_classifier_model_free(&model);
            mg_dataset_free(&valid);
            mg_dataset_free(&test);
            return fail_all(comm, &err, MG_EXIT_INPUT);
        }
        if (rank == 0 && mg_dataset_alloc(&mu, (int)o->samples, valid.channels, valid.height,
                                          valid.width, &err))
            mg_comm_abort(comm, 1);
        mg_real *z = rank == 0 ? mg_xmalloc((size_t)o->samples * cfg.generator.noise_dim *
                                            sizeof *z)
                               : NULL;
        mg_generate_labeled(mu.x, z, NULL, &g, &cfg, o->samples, o->set, o->cls, comm, 0);
        free(z);
        mg_net_free(&g);
    }
    mg_comm_waiting_for(comm, "sharing the window's centres");
    share(&mu, comm);
    mg_blas_threads_choose(mg_comm_node_size(comm)); /* after sampling, which ran on one thread */
    const double t1 = mg_comm_wtime();

    /* sigma: the grid value with the best mean validation log-likelihood. The grid and the
     * figures are in [0, 1] pixel units whatever data.range is (parzen.h). */
    const int ns = o->n_sigmas;
    const double span = mg_config_pixel_span(&cfg);
    double sigmas[MAX_SIGMAS], data_sigmas[MAX_SIGMAS], valid_mean[MAX_SIGMAS];
    mg_parzen_grid(sigmas, ns, o->sigma_lo, o->sigma_hi);
    memcpy(data_sigmas, sigmas, sizeof sigmas);
    mg_parzen_grid_to_data(data_sigmas, ns, span);
    double *ll = rank == 0 ? mg_xmalloc(((size_t)valid.n * ns + (size_t)test.n) * sizeof *ll) : NULL;
    int status = MG_EXIT_OK, chosen = 0;
    int *histogram = NULL; /* rank 0, with a classifier */
    mg_comm_waiting_for(comm, "the validation log-likelihoods");
    if (parzen_over_ranks(ll, &valid, &mu, data_sigmas, ns, comm, &err)) {
        status = fail_all(comm, &err, MG_EXIT_RUNTIME);
        goto done;
    }
    if (rank == 0) {
        mg_parzen_ll_to_pixels(ll, (size_t)valid.n * ns, valid.dim, span);
        chosen = mg_parzen_select(ll, valid.n, ns, valid_mean);
    }
    mg_comm_bcast(comm, &chosen, sizeof chosen, 0);
    if (chosen < 0) {
        mg_fail(&err, "%s: every validation log-likelihood is NaN (the samples hold NaN?)", ckpt);
        status = fail_all(comm, &err, MG_EXIT_RUNTIME);
        goto done;
    }
    const double t2 = mg_comm_wtime();
    mg_comm_waiting_for(comm, "the test log-likelihoods");
    if (parzen_over_ranks(ll, &test, &mu, &data_sigmas[chosen], 1, comm, &err)) {
        status = fail_all(comm, &err, MG_EXIT_RUNTIME);
        goto done;
    }
    if (rank == 0)
        mg_parzen_ll_to_pixels(ll, (size_t)test.n, test.dim, span);
    const double t3 = mg_comm_wtime();
    mg_quality_record q = {.cls = o->cls};
    if (o->classifier) {
        mg_comm_waiting_for(comm, "the classifier's outputs");
        if (measure(&q, &histogram, &model, &cfg, &mu, &test, o, comm, &err)) {
            status = fail_all(comm, &err, MG_EXIT_RUNTIME);
            goto done;
        }
    }
    const double t4 = mg_comm_wtime();
    q.seconds = t4 - t3;
    if (rank == 0) {
        mg_eval_record r = {.checkpoint = ckpt, .step = step, .real = o->real,
                    .ranks = mg_comm_size(comm), .samples = o->samples,
                    .valid_points = valid.n, .test_points = test.n, .n_sigma = ns,
                    .chosen = chosen, .sigmas = sigmas, .valid_ll = valid_mean,
                    .seconds = {t1 - t0, t2 - t1, t3 - t2, t4 - t0},
                    .quality = o->classifier ? &q : NULL};
        mg_parzen_mean_se(ll, test.n, 1, 0, &r.test_ll, &r.test_se);
        if (mg_eval_write_record(out, &r, &err)) {
            fprintf(stderr, "mpigan: %s\n", err.msg);
            status = MG_EXIT_RUNTIME;
        } else if (!o->quiet) {
            print_table(&r, out);
        }
    }
done:
    free(ll);
    free(histogram);
    if (o->classifier)
        mg_classifier_model_free(&model);
    mg_dataset_free(&valid);
    mg_dataset_free(&test);
    mg_dataset_free(&mu);
    return status;
}
