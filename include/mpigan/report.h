/* What a run tells its user, written by rank 0 alone: the progress line (redrawn in place on a
 * terminal, plain periodic lines in a batch log), metrics.jsonl (one JSON record per log
 * interval, means over the interval) and run.json (the run record at the end). */
#ifndef MPIGAN_REPORT_H
#define MPIGAN_REPORT_H

#include <stdio.h>

#include "mpigan/error.h"
#include "mpigan/train.h"

enum mg_progress {
    MG_PROGRESS_AUTO,   /* lines in a SLURM batch job, else redraw on a terminal */
    MG_PROGRESS_REDRAW, /* one line updated in place */
    MG_PROGRESS_LINES,  /* a plain line every train.log_every steps */
};

typedef struct {
    char dir[MG_PATH_MAX];
    FILE *metrics;
    FILE *out;           /* where progress goes (stdout) */
    int tty;             /* redraw one line in place */
    int quiet;
    int threads;
    double t_start;      /* wall clock at the first step */
    double t_mark;       /* wall clock at the start of the current interval */
    double t_drawn;      /* last terminal redraw */
    int64_t step_mark;   /* step at the start of the current interval */
    int64_t step_start;  /* step at the start of this process's run (a resumed run's) */
    int64_t total_steps;
    double mem[6];       /* MB over ranks at the end: RSS min, max; PSS min, max, sum; peak RSS max */
    mg_step_stats sum;   /* sums over the current interval */
    int n;               /* steps in the current interval */
    int parzen_pending;  /* a Parzen estimate for this step: its record is written now */
    int parzen_points;
    double parzen_ll, parzen_sigma;
} mg_report;

/* This process's resident memory in MB: RSS, and PSS, which counts a page shared by k processes
 * as 1/k (so a node's shared data set shows once per node, not once per rank). From
 * /proc/self/smaps_rollup; -1 where unavailable. */
void mg_memory_mb(double *rss, double *pss);
/* This process's peak resident memory so far, in MB (getrusage). */
double mg_peak_rss_mb(void);

/* Creates the run directory (parents too) and writes config.yaml. A directory that already
 * holds a run (metrics.jsonl) is refused unless `force`. */
int mg_run_dir_create(const char *dir, const mg_config *cfg, int force, mg_error *err);

/* For a resumed run: drops the records of metrics.jsonl after `step` (written after the
 * checkpoint the run resumes from, and about to be written again). Missing file: nothing to do. */
int mg_metrics_trim(const char *dir, int64_t step, mg_error *err);

/* Opens metrics.jsonl in dir for appending. */
int mg_report_open(mg_report *r, const char *dir, const mg_trainer *t, int threads, int quiet,
                   enum mg_progress progress, mg_error *err);
/* Called after every step with its stats. */
void mg_report_step(mg_report *r, const mg_trainer *t, const mg_step_stats *s);
/* Final line, run.json; timers are mg_trainer_timers' output. */
int mg_report_close(mg_report *r, const mg_trainer *t, const double *tmin, const double *tmean,
                    const double *tmax, mg_error *err);

#endif
