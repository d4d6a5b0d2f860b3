/* What a run tells its user (report.h): the progress line, metrics.jsonl and run.json, written by
 * rank 0 through jansson, every write checked. */
#define _POSIX_C_SOURCE 200809L /* fileno, fsync */
#include "mpigan/report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mpigan/blas.h"
#include "mpigan/record.h"

/* Digits of the reals in the records: more than a float holds, fewer than 17 noisy ones. */
#define RECORD_PRECISION 9

void mg_memory_mb(double *rss, double *pss)
{
    *rss = *pss = -1;
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        double kb;
        if (sscanf(line, "Rss: %lf kB", &kb) == 1)
            *rss = kb / 1024;
        else if (sscanf(line, "Pss: %lf kB", &kb) == 1)
            *pss = kb / 1024;
    }
    fclose(f);
}

double mg_peak_rss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : -1; /* Linux: kB */
}

void mg_memory_over_ranks(mg_memory *m, const mg_comm *comm)
{
    double rss, pss, sum;
    mg_memory_mb(&rss, &pss);
    mg_comm_minmaxsum(comm, rss, &m->rss_min, &m->rss_max, &sum);
    mg_comm_minmaxsum(comm, pss, &m->pss_min, &m->pss_max, &m->pss_sum);
    mg_comm_minmaxsum(comm, mg_peak_rss_mb(), &m->peak_rss_min, &m->peak_rss_max, &sum);
    m->optim_values_min = m->optim_values_max = m->optim_values_whole = 0;
}

/* A batch job's output goes to a file even when mpirun hands the ranks a terminal; an
 * interactive srun (--pty) sets SLURM_PTY_PORT. */
static int want_redraw(enum mg_progress mode, FILE *out)
{
    if (mode != MG_PROGRESS_AUTO)
        return mode == MG_PROGRESS_REDRAW;
    if (getenv("SLURM_JOB_ID") && !getenv("SLURM_PTY_PORT"))
        return 0;
    return isatty(fileno(out));
}

int mg_report_open(mg_report *r, const char *dir, const mg_config *cfg, const mg_trainer *t,
                   int threads, int quiet, enum mg_progress progress,
                   const mg_metrics_window *window, double elapsed_s, mg_error *err)
{
    memset(r, 0, sizeof *r);
    r->metrics = -1;
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    snprintf(r->source, sizeof r->source, "%s", cfg->source);
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    mg_error what;
    if (mg_file_open_append(&r->metrics, path, &what))
        return mg_fail(err, "%s: cannot write: %s", path, what.msg);
    r->out = stdout;
    r->tty = want_redraw(progress, stdout);
    r->quiet = quiet;
    r->threads = threads;
    r->log_every = cfg->train.log_every;
    r->eval_samples = cfg->eval.samples;
    r->t_start = r->t_mark = r->t_drawn = mg_comm_wtime();
    r->elapsed_before = elapsed_s;
    r->step_mark = r->step_start = t->step;
    r->total_steps = mg_trainer_total_steps(t);
    if (window)
        r->window = *window;
    return 0;
}

double mg_report_elapsed(const mg_report *r)
{
    return r->elapsed_before + (mg_comm_wtime() - r->t_start);
}

void mg_report_parzen(mg_report *r, int points, double ll, double sigma)
{
    r->parzen_pending = 1;
    r->parzen_points = points;
    r->parzen_ll = ll;
    r->parzen_sigma = sigma;
}

void mg_report_quality(mg_report *r, double fid, double score, int coverage, int classes,
                       double accuracy)
{
    r->quality_pending = 1;
    r->fid = fid;
    r->score = score;
    r->coverage = coverage;
    r->classes = classes;
    r->accuracy = accuracy;
}

static void format_eta(char *buf, size_t n, double s)
{
    long v = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
    if (v >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else
        snprintf(buf, n, "%ld:%02ld", v / 60, v % 60);
}

static double examples_per_step(const mg_trainer *t)
{
    int k = t->spec.train.mode == MG_MODE_SIMULTANEOUS ? 1 : t->spec.train.k;
    return (double)t->batch * k;
}

static void draw(mg_report *r, const mg_trainer *t, const mg_step_stats *m, double rate,
                 int newline)
{
    double elapsed = mg_comm_wtime() - r->t_start;
    int64_t done = t->step - r->step_start;
    double per_step = elapsed / (double)(done > 0 ? done : 1);
    char eta[32];
    format_eta(eta, sizeof eta, per_step * (double)(r->total_steps - t->step));
    fprintf(r->out,
            "%sepoch %6.2f  step %lld/%lld  D loss %.4f  G loss %.4f  D(x) %.3f  D(G(z)) %.3f  "
            "%.0f samples/s  ETA %s%s",
            r->tty ? "\r\033[K" : "", mg_trainer_epoch(t), (long long)t->step,
            (long long)r->total_steps, m->d_loss, m->g_loss, m->d_real, m->d_fake, rate, eta,
            newline ? "\n" : "");
    fflush(r->out);
}

/* The record of the interval that ends at this step; its JSON text (malloc'd) or NULL. */
static char *record(const mg_report *r, const mg_trainer *t, const mg_step_stats *m, double rate,
                    double elapsed)
{
    json_t *o = json_object(), *bad = json_object();
    const int64_t epochs = t->minibatch / t->batches_per_epoch;
    json_object_set_new(o, "step", json_integer(t->step));
    mg_record_real(o, bad, "epoch", mg_trainer_epoch(t));
    mg_record_real(o, bad, "d_loss", m->d_loss);
    mg_record_real(o, bad, "g_loss", m->g_loss);
    mg_record_real(o, bad, "d_real", m->d_real);
    mg_record_real(o, bad, "d_fake", m->d_fake);
    mg_record_real(o, bad, "lr_d", mg_optim_lr(&t->d_opt.spec, t->d_opt.t));
    mg_record_real(o, bad, "lr_g", mg_optim_lr(&t->g_opt.spec, t->g_opt.t));
    mg_record_real(o, bad, "momentum_d", mg_optim_momentum(&t->d_opt.spec, epochs));
    mg_record_real(o, bad, "momentum_g", mg_optim_momentum(&t->g_opt.spec, epochs));
    mg_record_real(o, bad, "samples_per_s", rate);
    mg_record_real(o, bad, "elapsed_s", elapsed);
    if (r->parzen_pending) {
        mg_record_real(o, bad, "parzen_ll", r->parzen_ll);
        mg_record_real(o, bad, "parzen_sigma", r->parzen_sigma);
    }
    if (r->quality_pending) {
        mg_record_real(o, bad, "fid", r->fid);
        mg_record_real(o, bad, "classifier_score", r->score);
        json_object_set_new(o, "coverage", json_integer(r->coverage));
        if (!isnan(r->accuracy))
            mg_record_real(o, bad, "cond_accuracy", r->accuracy);
    }
    if (t->skipped)
        json_object_set_new(o, "skipped", json_integer(t->skipped));
    mg_record_finish(o, bad);
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(RECORD_PRECISION));
    json_decref(o);
    return text;
}

int mg_report_step(mg_report *r, const mg_trainer *t, const mg_step_stats *s, mg_error *err)
{
    r->window.steps++;
    r->window.d_loss += s->d_loss;
    r->window.g_loss += s->g_loss;
    r->window.d_real += s->d_real;
    r->window.d_fake += s->d_fake;
    double tnow = mg_comm_wtime();
    int boundary = t->step % r->log_every == 0 || t->step == r->total_steps || r->parzen_pending;
    if (!boundary) {
        /* On a terminal the line follows every step, a few times a second at most. */
        if (r->tty && !r->quiet && tnow - r->t_drawn > 0.2) {
            double rate =
                examples_per_step(t) * (double)(t->step - r->step_mark) / (tnow - r->t_mark);
            draw(r, t, s, rate, 0);
            r->t_drawn = tnow;
        }
        return 0;
    }
    const double n = (double)r->window.steps;
    mg_step_stats m = {.d_loss = r->window.d_loss / n, .g_loss = r->window.g_loss / n,
                       .d_real = r->window.d_real / n, .d_fake = r->window.d_fake / n};
    double dt = tnow - r->t_mark;
    double rate = dt > 0 ? examples_per_step(t) * (double)(t->step - r->step_mark) / dt : 0;
    char *text = record(r, t, &m, rate, mg_report_elapsed(r));
    mg_error what;
    int rc = 0;
    if (!text) {
        rc = mg_fail(err, "%s/metrics.jsonl: cannot write the record of step %lld: out of memory",
                     r->dir, (long long)t->step);
    } else {
        const size_t len = strlen(text);
        text[len] = '\n'; /* over the terminator: the record and its newline in one write */
        if (mg_file_append(r->metrics, text, len + 1, &what))
            rc = mg_fail(err, "%s/metrics.jsonl: cannot write the record of step %lld: %s",
                         r->dir, (long long)t->step, what.msg);
        free(text);
    }
    if (!r->quiet)
        draw(r, t, &m, rate, 1);
    if (!r->quiet && r->parzen_pending)
        fprintf(r->out, "Parzen log-likelihood of %d validation examples: %.2f (sigma %.4g, %d "
                        "samples)\n",
                r->parzen_points, r->parzen_ll, r->parzen_sigma, r->eval_samples);
    if (!r->quiet && r->quality_pending) {
        fprintf(r->out, "classifier: Frechet distance %.3f, score %.3f, coverage %d of %d",
                r->fid, r->score, r->coverage, r->classes);
        if (!isnan(r->accuracy))
            fprintf(r->out, ", conditional accuracy %.4f", r->accuracy);
        fputc('\n', r->out);
    }
    r->parzen_pending = r->quality_pending = 0;
    memset(&r->window, 0, sizeof r->window);
    r->t_mark = r->t_drawn = tnow;
    r->step_mark = t->step;
    return rc;
}

int mg_report_sync(mg_report *r, mg_error *err)
{
    if (fsync(r->metrics) != 0)
        return mg_fail(err, "%s/metrics.jsonl: cannot sync: %s", r->dir, strerror(errno));
    return 0;
}

static json_t *minmeanmax(double min, double mean, double max)
{
    return json_pack("{s:f, s:f, s:f}", "min", min, "mean", mean, "max", max);
}

static json_t *timers_object(const double *min, const double *mean, const double *max)
{
    json_t *timers = json_object();
    for (int i = 0; i < MG_TIMER_COUNT; i++)
        json_object_set_new(timers, mg_timer_names[i], minmeanmax(min[i], mean[i], max[i]));
    return timers;
}

int mg_report_close(mg_report *r, const mg_trainer *t, const mg_run_timers *tm,
                    const mg_memory *mem, mg_error *err)
{
    const double *tmin = tm->min, *tmean = tm->mean, *tmax = tm->max;
    double seconds = mg_comm_wtime() - r->t_start;
    double rate =
        seconds > 0 ? examples_per_step(t) * (double)(t->step - r->step_start) / seconds : 0;
    int rc = 0;
    if (fsync(r->metrics) != 0 || close(r->metrics) != 0)
        rc = mg_fail(err, "%s/metrics.jsonl: write failed: %s", r->dir, strerror(errno));
    r->metrics = -1;
    if (rc)
        return -1;

    json_t *timers = timers_object(tmin, tmean, tmax);
    json_t *steady = timers_object(tm->steady_min, tm->steady_mean, tm->steady_max);
    json_t *o = json_pack(
        "{s:s, s:o, s:i, s:i, s:s, s:s, s:f, s:s, s:i, s:I, s:f, s:f, s:f, s:f,"
        " s:{s:f, s:f, s:f, s:f, s:f, s:f, s:f}, s:{s:f, s:f, s:f, s:f}, s:o,"
        " s:{s:I, s:o}}",
        "mpigan_version", MPIGAN_VERSION, "config", mg_record_path(r->source), "ranks", t->nranks,
        "threads_per_rank", r->threads, "blas_kernels", mg_blas_kernels(), "gradient_sums",
        mg_trainer_sums(t), "bucket_mb", t->bucket_mb, "update", mg_trainer_update_kind(t),
        "global_batch", t->batch, "steps",
        (json_int_t)t->step, "epochs", mg_trainer_epoch(t), "seconds", seconds, "elapsed_s",
        mg_report_elapsed(r),
        "samples_per_s", rate, "memory_mb", "rss_min", mem->rss_min, "rss_max", mem->rss_max,
        "pss_min", mem->pss_min, "pss_max", mem->pss_max, "pss_sum", mem->pss_sum,
        "peak_rss_min", mem->peak_rss_min, "peak_rss_max", mem->peak_rss_max,
        "optimizer_state", "values_min", mem->optim_values_min, "values_max",
        mem->optim_values_max, "values_whole", mem->optim_values_whole, "mb_max",
        mem->optim_values_max * sizeof(mg_real) / 1e6, "timers", timers, "steady_state", "steps",
        (json_int_t)tm->steady_steps, "timers", steady);
    char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2) |
                                       JSON_REAL_PRECISION(RECORD_PRECISION))
                   : NULL;
    json_decref(o);
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/run.json", r->dir);
    mg_error what;
    if (!text)
        return mg_fail(err, "%s: cannot write: out of memory", path);
    const size_t len = strlen(text);
    text[len] = '\n';
    rc = mg_file_write(path, text, len + 1, &what);
    free(text);
    if (rc)
        return mg_fail(err, "%s: cannot write: %s", path, what.msg);

    if (!r->quiet) {
        fprintf(r->out, "done: step %lld, epoch %.2f; %lld steps in %.1f s, %.0f samples/s on %d "
                        "rank%s x %d thread%s\n",
                (long long)t->step, mg_trainer_epoch(t), (long long)(t->step - r->step_start),
                seconds, rate, t->nranks, t->nranks == 1 ? "" : "s", r->threads,
                r->threads == 1 ? "" : "s");
        fprintf(r->out, "time per rank (s, min/mean/max):");
        for (int i = 0; i < MG_TIMER_COUNT; i++)
            fprintf(r->out, "  %s %.2f/%.2f/%.2f", mg_timer_names[i], tmin[i], tmean[i], tmax[i]);
        fprintf(r->out,
                "\nmemory per rank (MB, min-max): RSS %.0f-%.0f, PSS %.0f-%.0f; PSS of all ranks "
                "%.0f; peak RSS %.0f-%.0f; optimizer state %.0f-%.0f (%.2f of every "
                "parameter's)\n",
                mem->rss_min, mem->rss_max, mem->pss_min, mem->pss_max, mem->pss_sum,
                mem->peak_rss_min, mem->peak_rss_max,
                mem->optim_values_min * sizeof(mg_real) / 1e6,
                mem->optim_values_max * sizeof(mg_real) / 1e6,
                mem->optim_values_whole > 0 ? mem->optim_values_max / mem->optim_values_whole
                                            : 0);
        fprintf(r->out, "run directory: %s\n", r->dir);
    }
    return 0;
}
