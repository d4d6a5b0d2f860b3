/* What a run tells its user, written by rank 0 alone: the progress line (redrawn in place on a
 * terminal, plain periodic lines in a batch log), metrics.jsonl (one JSON record per log
 * interval, means over the interval) and run.json (the run record at the end). Every write is
 * checked: a record that cannot be written whole stops the run (mg_report_step fails), and
 * metrics.jsonl never holds half a record. */
#ifndef MPIGAN_REPORT_H
#define MPIGAN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "mpigan/checkpoint.h"
#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/error.h"
#include "mpigan/files.h"
#include "mpigan/train.h"

enum mg_progress {
    MG_PROGRESS_AUTO,   /* lines in a SLURM batch job, else redraw on a terminal */
    MG_PROGRESS_REDRAW, /* one line updated in place */
    MG_PROGRESS_LINES,  /* a plain line every train.log_every steps */
};

/* Resident memory over the ranks, in MB, at the end of a run. */
typedef struct {
    double rss_min, rss_max; /* resident set */
    double pss_min, pss_max; /* proportional set: a page shared by k processes counts 1/k */
    double pss_sum;          /* all ranks: the node's shared copy of the data counts once */
    double peak_rss_min, peak_rss_max; /* the lowest and highest peak RSS of any rank */
    /* Optimizer state per rank, in values (mg_trainer_optim_values; set by the caller): the
     * fewest and most any rank keeps, and what a rank of the replicated update keeps. */
    double optim_values_min, optim_values_max, optim_values_whole;
} mg_memory;

/* Each timer's min, mean and max over the ranks (mg_trainer_timers), for the whole run and for
 * its steady state (mg_trainer_steady_timers: every step after this process's first). */
typedef struct {
    double min[MG_TIMER_COUNT], mean[MG_TIMER_COUNT], max[MG_TIMER_COUNT];
    double steady_min[MG_TIMER_COUNT], steady_mean[MG_TIMER_COUNT], steady_max[MG_TIMER_COUNT];
    int64_t steady_steps;
} mg_run_timers;

/* Collective over comm: every rank's figures, reduced (the result on every rank). */
void mg_memory_over_ranks(mg_memory *m, const mg_comm *comm);

/* This process's resident memory in MB: RSS, and PSS (from /proc/self/smaps_rollup; -1 where
 * unavailable). */
void mg_memory_mb(double *rss, double *pss);
/* This process's peak resident memory so far, in MB (getrusage). */
double mg_peak_rss_mb(void);

typedef struct {
    char dir[MG_PATH_MAX];
    char source[MG_PATH_MAX]; /* the configuration file, for run.json */
    int metrics;         /* metrics.jsonl, open for appending */
    FILE *out;           /* where progress goes (stdout) */
    int tty;             /* redraw one line in place */
    int quiet;
    int threads;
    int log_every;       /* train.log_every */
    int eval_samples;    /* eval.samples, for the progress line of an estimate */
    double t_start;      /* wall clock at the first step of this process */
    double t_mark;       /* wall clock at the start of the current interval */
    double t_drawn;      /* last terminal redraw */
    double elapsed_before; /* training seconds of the run before this process (a resumed run) */
    int64_t step_mark;   /* step at the start of the current interval, in this process */
    int64_t step_start;  /* step at the start of this process's run (a resumed run's) */
    int64_t total_steps;
    mg_metrics_window window; /* sums over the current interval (a checkpoint carries them) */
    int parzen_pending;  /* a Parzen estimate for this step: its record is written now */
    int parzen_points;
    double parzen_ll, parzen_sigma;
    int quality_pending; /* eval.classifier's figures for this step too */
    double fid, score, accuracy; /* accuracy: NaN unless conditional */
    int coverage, classes;
} mg_report;

/* Opens metrics.jsonl in dir for appending (never through a link). A resumed run passes the
 * window and the training seconds its checkpoint carried (else NULL and 0), so that its records
 * are those of an uninterrupted run. */
int mg_report_open(mg_report *r, const char *dir, const mg_config *cfg, const mg_trainer *t,
                   int threads, int quiet, enum mg_progress progress,
                   const mg_metrics_window *window, double elapsed_s, mg_error *err);
/* After every step with its stats: the progress line, and at the end of an interval the metrics
 * record. -1 (err set) if the record could not be written: the run must stop. */
int mg_report_step(mg_report *r, const mg_trainer *t, const mg_step_stats *s, mg_error *err);
/* A Parzen estimate of this step, for its record and progress line. */
void mg_report_parzen(mg_report *r, int points, double ll, double sigma);
/* The classifier's figures of the same estimate (eval.classifier): Frechet distance, classifier
 * score, mode coverage of `classes`, a conditional G's accuracy (NaN: none). */
void mg_report_quality(mg_report *r, double fid, double score, int coverage, int classes,
                       double accuracy);
/* Training seconds of the run so far, resumed parts included. */
double mg_report_elapsed(const mg_report *r);
/* metrics.jsonl to disk (fsync), before a checkpoint says the run got this far. */
int mg_report_sync(mg_report *r, mg_error *err);
/* The final line, run.json; closes metrics.jsonl. */
int mg_report_close(mg_report *r, const mg_trainer *t, const mg_run_timers *timers,
                    const mg_memory *mem, mg_error *err);

#endif
