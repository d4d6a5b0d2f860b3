/* Plots of a run as PNG files, drawn by gnuplot (the pngcairo terminal): `gnuplot` on PATH, or
 * the binary named by the environment variable MPIGAN_GNUPLOT. The records are read with jansson.
 * The data and scripts are written through files.h; gnuplot writes its pictures into a fresh
 * private directory beside them, from which they are moved into place once gnuplot has succeeded,
 * so a failure never leaves a half-written or partial set of pictures, and nothing is written
 * through a link planted at a temporary name. The gnuplot scripts are kept beside the pictures, so
 * a user can restyle them and rerun `gnuplot SCRIPT` in that directory. */
#ifndef MPIGAN_PLOT_H
#define MPIGAN_PLOT_H

#include "mpigan/error.h"

/* Sides of a picture, in pixels. */
#define MG_PLOT_MIN_SIDE 64
#define MG_PLOT_MAX_SIDE 10000

/* Training curves from metrics.jsonl (one JSON record per line, as mg_report writes them: a value
 * that is not finite is null and leaves a gap in its curve; older versions' records, with bare
 * nan and inf, are read too), as PNG files of width x height pixels in out_dir (created if
 * missing): losses.png (D and G loss against step), d_outputs.png (mean D(x) and D(G(z)) against
 * step), throughput.png (samples/s against step) and, when any record carries a finite parzen_ll,
 * parzen_training.png (the Parzen log-likelihood measured during training against step). The data
 * and the script stay beside them as metrics.dat and plots.gp. Returns the number of PNG files
 * written, or -1. */
int mg_plot_metrics(const char *metrics_path, const char *out_dir, int width, int height,
                    mg_error *err);

/* The Parzen validation curve of an eval record (eval.json from `mpigan eval`, read as
 * metrics.jsonl is: null for a value that was not finite, its "not_finite" entry saying which;
 * older records' bare nan and inf): mean validation log-likelihood against sigma on a log axis,
 * the chosen sigma marked, the test LL +- standard error in the title. The script, with the data
 * inline, is kept beside the picture: png_path with ".png" replaced by ".gp". Returns 0 or -1. */
int mg_plot_parzen(const char *eval_json, const char *png_path, int width, int height,
                   mg_error *err);

/* `mpigan plot RUN_DIR`, serial (README "Evaluating and plotting"): the training curves, a Parzen
 * curve per eval record and a sample grid of the newest checkpoint, into out (NULL: RUN_DIR/plots).
 * Returns the process exit status (MG_EXIT_*). */
typedef struct {
    const char *run_dir;
    const char *out;                 /* NULL: RUN_DIR/plots */
    int width, height;               /* of each curve, in pixels */
} mg_plot_opts;

int mg_plot_run_dir(const mg_plot_opts *o);

#endif
