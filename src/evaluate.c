/* mpigan eval: the paper's Parzen window log-likelihood of a checkpoint's generator.
 *
 * Rank 0 reads the checkpoint, its configuration and the validation and test examples; the
 * samples are drawn over all ranks (mg_generate) and every rank gets all of them. Points are
 * split over the ranks in whole blocks of MG_PARZEN_ROWS, and rank 0 sums their log-likelihoods
 * in point order, so the printed figures do not depend on the rank count. */
#include "mpigan/evaluate.h"

#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/blas.h"
#include "mpigan/checkpoint.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/files.h"
#include "mpigan/generate.h"
#include "mpigan/splits.h"
#include "mpigan/parzen.h"
#include "mpigan/record.h"
#include "mpigan/train.h"

#define MAX_SIGMAS 1000

static int fail_all(const mg_comm *comm, const mg_error *err, int code)
{
    if (mg_comm_rank(comm) == 0)
        fprintf(stderr, "mpigan: %s\n", err->msg);
    return code;
}

/* Rank 0's examples to every rank: shape first, then the values. */
static void share(mg_dataset *ds, const mg_comm *comm)
{
    int shape[4] = {ds->n, ds->channels, ds->height, ds->width};
    mg_comm_bcast(comm, shape, sizeof shape, 0);
    if (mg_comm_rank(comm) != 0) {
        mg_error err;
        if (mg_dataset_alloc(ds, shape[0], shape[1], shape[2], shape[3], &err))
            mg_comm_abort(comm, 1); /* out of memory on one rank alone */
    }
    mg_comm_bcast(comm, ds->x, (size_t)ds->n * ds->dim * sizeof *ds->x, 0);
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

/* Rank 0: the samples the window is centred on, into mu: the first n training examples (--real)
 * or nothing (the generator's are drawn collectively afterwards). */
static int real_samples(mg_dataset *mu, const mg_config *cfg, int64_t n, mg_error *err)
{
    if (mg_split_read_train(mu, cfg, err))
        return -1;
    if (mu->n < n) {
        int have = mu->n;
        mg_dataset_free(mu);
        return mg_fail(err, "%s: --real: the training split has %d examples, fewer than -n %lld",
                       cfg->source, have, (long long)n);
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
    printf("record: %s\n", out);
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
    if (mg_split_read(valid, cfg, MG_SPLIT_VALID, o->valid_points, err) ||
        mg_split_read(test, cfg, MG_SPLIT_TEST, o->test_points, err) ||
        (o->real && real_samples(mu, cfg, o->samples, err)))
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
        snprintf(out, out_n, "%s/eval-%08lld%s.json", dirname(tmp), (long long)step,
                 o->real ? "-real" : "");
    }
    return 0;
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

    /* The window's centres: the generator's samples, or the training examples. */
    if (!o->real) {
        mg_net g;
        if (mg_generator_load(&g, &cfg, MG_GENERATE_CHUNK, ckpt, comm, &err)) {
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
        mg_generate(mu.x, z, &g, &cfg, o->samples, o->set, comm, 0);
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
    if (rank == 0) {
        mg_eval_record r = {.checkpoint = ckpt, .step = step, .real = o->real,
                    .ranks = mg_comm_size(comm), .samples = o->samples,
                    .valid_points = valid.n, .test_points = test.n, .n_sigma = ns,
                    .chosen = chosen, .sigmas = sigmas, .valid_ll = valid_mean,
                    .seconds = {t1 - t0, t2 - t1, t3 - t2, t3 - t0}};
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
    mg_dataset_free(&valid);
    mg_dataset_free(&test);
    mg_dataset_free(&mu);
    return status;
}
