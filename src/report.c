#include "mpigan/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpigan/blas.h"
#include "mpigan/comm.h"

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

static int mkdir_p(const char *dir, mg_error *err)
{
    char path[MG_PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return mg_fail(err, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return mg_fail(err, "%s: cannot create directory: %s", path, strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mg_fail(err, "%s: not a directory", dir);
    return 0;
}

/* Writes through a temporary name and renames, so a reader never sees half a file. */
static FILE *open_tmp(char *tmp, size_t n, const char *dir, const char *name, mg_error *err)
{
    snprintf(tmp, n, "%s/.%s.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f)
        mg_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
    return f;
}

static int close_rename(FILE *f, const char *tmp, const char *dir, const char *name, mg_error *err)
{
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return mg_fail(err, "%s: write failed: %s", path, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return mg_fail(err, "%s: cannot rename into place: %s", path, strerror(errno));
    }
    return 0;
}

int mg_run_dir_create(const char *dir, const mg_config *cfg, int force, mg_error *err)
{
    if (mkdir_p(dir, err))
        return -1;
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (!force && access(path, F_OK) == 0)
        return mg_fail(err,
                       "%s: already holds a run (metrics.jsonl): choose another directory with "
                       "--out, or pass --force to overwrite it",
                       dir);
    char tmp[MG_PATH_MAX + 64];
    FILE *f = open_tmp(tmp, sizeof tmp, dir, "config.yaml", err);
    if (!f)
        return -1;
    mg_config_write(cfg, f);
    return close_rename(f, tmp, dir, "config.yaml", err);
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

int mg_metrics_trim(const char *dir, int64_t step, mg_error *err)
{
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *in = fopen(path, "r");
    if (!in)
        return errno == ENOENT ? 0 : mg_fail(err, "%s: cannot read: %s", path, strerror(errno));
    char tmp[MG_PATH_MAX + 64];
    FILE *out = open_tmp(tmp, sizeof tmp, dir, "metrics.jsonl", err);
    if (!out) {
        fclose(in);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        long long s;
        if (sscanf(line, "{\"step\": %lld", &s) == 1 && s > step)
            break; /* records are in step order */
        fputs(line, out);
    }
    free(line);
    fclose(in);
    return close_rename(out, tmp, dir, "metrics.jsonl", err);
}

int mg_report_open(mg_report *r, const char *dir, const mg_trainer *t, int threads, int quiet,
                   enum mg_progress progress, mg_error *err)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    char path[MG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    r->metrics = fopen(path, "a");
    if (!r->metrics)
        return mg_fail(err, "%s: cannot write: %s", path, strerror(errno));
    r->out = stdout;
    r->tty = want_redraw(progress, stdout);
    r->quiet = quiet;
    r->threads = threads;
    r->t_start = r->t_mark = r->t_drawn = mg_comm_wtime();
    r->step_mark = r->step_start = t->step;
    r->total_steps = mg_trainer_total_steps(t);
    return 0;
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
    int k = t->cfg.train.mode == MG_MODE_SIMULTANEOUS ? 1 : t->cfg.train.k;
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

void mg_report_step(mg_report *r, const mg_trainer *t, const mg_step_stats *s)
{
    r->sum.d_loss += s->d_loss;
    r->sum.g_loss += s->g_loss;
    r->sum.d_real += s->d_real;
    r->sum.d_fake += s->d_fake;
    r->n++;
    double tnow = mg_comm_wtime();
    int boundary = t->step % t->cfg.train.log_every == 0 || t->step == r->total_steps ||
                   r->parzen_pending;
    if (!boundary) {
        /* On a terminal the line follows every step, a few times a second at most. */
        if (r->tty && !r->quiet && tnow - r->t_drawn > 0.2) {
            double rate = examples_per_step(t) * (double)(t->step - r->step_mark) / (tnow - r->t_mark);
            draw(r, t, s, rate, 0);
            r->t_drawn = tnow;
        }
        return;
    }
    const double n = r->n;
    mg_step_stats m = {.d_loss = r->sum.d_loss / n, .g_loss = r->sum.g_loss / n,
                       .d_real = r->sum.d_real / n, .d_fake = r->sum.d_fake / n};
    double dt = tnow - r->t_mark;
    double rate = dt > 0 ? examples_per_step(t) * (double)(t->step - r->step_mark) / dt : 0;
    fprintf(r->metrics,
            "{\"step\": %lld, \"epoch\": %.6f, \"d_loss\": %.6g, \"g_loss\": %.6g, \"d_real\": "
            "%.6g, \"d_fake\": %.6g, \"lr_d\": %.6g, \"lr_g\": %.6g, \"momentum_d\": %.6g, "
            "\"momentum_g\": %.6g, \"samples_per_s\": %.1f, \"elapsed_s\": %.3f",
            (long long)t->step, mg_trainer_epoch(t), m.d_loss, m.g_loss, m.d_real, m.d_fake,
            mg_optim_lr(&t->d_opt.spec, t->d_opt.t), mg_optim_lr(&t->g_opt.spec, t->g_opt.t),
            mg_optim_momentum(&t->d_opt.spec, t->minibatch / t->batches_per_epoch),
            mg_optim_momentum(&t->g_opt.spec, t->minibatch / t->batches_per_epoch), rate,
            tnow - r->t_start);
    if (r->parzen_pending)
        fprintf(r->metrics, ", \"parzen_ll\": %.6g, \"parzen_sigma\": %.6g", r->parzen_ll,
                r->parzen_sigma);
    if (t->skipped)
        fprintf(r->metrics, ", \"skipped\": %lld", (long long)t->skipped);
    fprintf(r->metrics, "}\n");
    fflush(r->metrics);
    if (!r->quiet)
        draw(r, t, &m, rate, 1);
    if (!r->quiet && r->parzen_pending)
        fprintf(r->out, "Parzen log-likelihood of %d validation examples: %.2f (sigma %.4g, %d "
                        "samples)\n",
                r->parzen_points, r->parzen_ll, r->parzen_sigma, t->cfg.eval.samples);
    r->parzen_pending = 0;
    memset(&r->sum, 0, sizeof r->sum);
    r->n = 0;
    r->t_mark = r->t_drawn = tnow;
    r->step_mark = t->step;
}

int mg_report_close(mg_report *r, const mg_trainer *t, const double *tmin, const double *tmean,
                    const double *tmax, mg_error *err)
{
    double seconds = mg_comm_wtime() - r->t_start;
    double rate =
        seconds > 0 ? examples_per_step(t) * (double)(t->step - r->step_start) / seconds : 0;
    int bad = fclose(r->metrics) != 0;
    r->metrics = NULL;
    if (bad)
        return mg_fail(err, "%s/metrics.jsonl: write failed: %s", r->dir, strerror(errno));

    char tmp[MG_PATH_MAX + 64];
    FILE *f = open_tmp(tmp, sizeof tmp, r->dir, "run.json", err);
    if (!f)
        return -1;
    fprintf(f,
            "{\n  \"mpigan_version\": \"%s\",\n  \"config\": \"%s\",\n  \"ranks\": %d,\n"
            "  \"threads_per_rank\": %d,\n  \"blas_kernels\": \"%s\",\n"
            "  \"gradient_sums\": \"%s\",\n"
            "  \"global_batch\": %d,\n  \"steps\": %lld,\n"
            "  \"epochs\": %.6f,\n  \"seconds\": %.3f,\n  \"samples_per_s\": %.1f,\n"
            "  \"memory_mb\": {\"rss_min\": %.1f, \"rss_max\": %.1f, \"pss_min\": %.1f, "
            "\"pss_max\": %.1f, \"pss_sum\": %.1f, \"peak_rss_max\": %.1f},\n"
            "  \"timers\": {",
            MPIGAN_VERSION, t->cfg.source, t->nranks, r->threads, mg_blas_kernels(),
            mg_trainer_sums(t),
            t->batch, (long long)t->step,
            mg_trainer_epoch(t), seconds, rate, r->mem[0], r->mem[1], r->mem[2], r->mem[3], r->mem[4], r->mem[5]);
    for (int i = 0; i < MG_TIMER_COUNT; i++)
        fprintf(f, "%s\n    \"%s\": {\"min\": %.4f, \"mean\": %.4f, \"max\": %.4f}",
                i ? "," : "", mg_timer_names[i], tmin[i], tmean[i], tmax[i]);
    fprintf(f, "\n  }\n}\n");
    if (close_rename(f, tmp, r->dir, "run.json", err))
        return -1;

    if (!r->quiet) {
        fprintf(r->out, "done: step %lld, epoch %.2f; %lld steps in %.1f s, %.0f samples/s on %d rank%s x "
                        "%d thread%s\n",
                (long long)t->step, mg_trainer_epoch(t), (long long)(t->step - r->step_start), seconds,
                rate, t->nranks,
                t->nranks == 1 ? "" : "s", r->threads, r->threads == 1 ? "" : "s");
        fprintf(r->out, "time per rank (s, min/mean/max):");
        for (int i = 0; i < MG_TIMER_COUNT; i++)
            fprintf(r->out, "  %s %.2f/%.2f/%.2f", mg_timer_names[i], tmin[i], tmean[i], tmax[i]);
        fprintf(r->out, "\nmemory per rank (MB, min-max): RSS %.0f-%.0f, PSS %.0f-%.0f; PSS of all ranks %.0f; "
                        "peak RSS %.0f\n",
                r->mem[0], r->mem[1], r->mem[2], r->mem[3], r->mem[4], r->mem[5]);
        fprintf(r->out, "run directory: %s\n", r->dir);
    }
    return 0;
}
