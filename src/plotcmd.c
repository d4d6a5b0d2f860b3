/* mpigan plot RUN_DIR: every picture of a run, serially (no MPI): the training curves, a Parzen
 * curve per eval record, and a sample grid of the newest checkpoint with nearest neighbours. */
#include "mpigan/run.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mpigan/checkpoint.h"
#include "mpigan/config.h"
#include "mpigan/data.h"
#include "mpigan/image.h"
#include "mpigan/nn.h"
#include "mpigan/plot.h"
#include "mpigan/train.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One Parzen curve per eval-*.json of the run directory, in name (step) order. Returns the
 * number drawn, or -1. */
static int plot_evals(const char *run_dir, const char *out_dir, int w, int h, mg_error *err)
{
    DIR *d = opendir(run_dir);
    if (!d)
        return mg_fail(err, "%s: cannot open: %s", run_dir, strerror(errno));
    char *names[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;) {
        size_t len = strlen(e->d_name);
        if (!strncmp(e->d_name, "eval-", 5) && len > 5 && !strcmp(e->d_name + len - 5, ".json"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char json[MG_PATH_MAX + 300], png[MG_PATH_MAX + 300];
        snprintf(json, sizeof json, "%s/%s", run_dir, names[i]);
        snprintf(png, sizeof png, "%s/parzen-%.*s.png", out_dir, (int)strlen(names[i]) - 10,
                 names[i] + 5);
        rc = mg_plot_parzen(json, png, w, h, err);
        if (rc == 0)
            printf("  %s\n", png);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    return rc == 0 ? n : -1;
}

/* samples.png: the snapshots' fixed noise through the newest checkpoint's generator, with the
 * training example nearest each row's last sample in an extra column. 1 if drawn, 0 if the run
 * has no checkpoint or its samples are not pictures (GCN), -1 on error. */
static int plot_samples(const char *run_dir, const char *out_dir, mg_error *err)
{
    char ckpt[MG_PATH_MAX];
    mg_error none;
    if (mg_checkpoint_find_latest(ckpt, sizeof ckpt, run_dir, &none))
        return 0;
    mg_checkpoint_info info;
    if (mg_checkpoint_read_info(&info, ckpt, err))
        return -1;
    mg_config cfg;
    int rc = mg_config_parse(&cfg, info.config_yaml, ckpt, NULL, 0, err);
    const int C = info.channels, H = info.height, W = info.width;
    mg_checkpoint_info_free(&info);
    if (rc)
        return -1;
    if (cfg.data.preprocess != MG_PREPROCESS_SCALE) {
        printf("  (no samples.png: %s's samples are GCN'd values, not pictures)\n", ckpt);
        return 0;
    }
    const int n = cfg.samples.count, nz = cfg.generator.noise_dim;
    int cols = cfg.samples.columns;
    if (cols <= 0)
        while (cols * cols < n)
            cols++;
    const int rows = (n + cols - 1) / cols;
    const size_t dim = (size_t)C * H * W;
    mg_net g;
    if (mg_net_init(&g, &cfg.generator.net, nz, n, err))
        return -1;
    mg_real *z = mg_xmalloc((size_t)n * nz * sizeof *z);
    mg_real *x = mg_xmalloc((size_t)n * dim * sizeof *x);
    mg_real *q = mg_xmalloc((size_t)rows * dim * sizeof *q);
    int *idx = mg_xmalloc((size_t)rows * sizeof *idx);
    mg_dataset data = {0};
    rc = mg_checkpoint_load_generator(&g, ckpt, err);
    if (rc == 0) {
        mg_sample_noise(z, &cfg, 0, n, 0);
        memcpy(x, mg_net_forward(&g, z, n, NULL), (size_t)n * dim * sizeof *x);
        for (int r = 0; r < rows; r++) {
            const int last = (r + 1) * cols < n ? (r + 1) * cols - 1 : n - 1;
            memcpy(q + (size_t)r * dim, x + (size_t)last * dim, dim * sizeof *q);
        }
        const int nearest = cfg.samples.nearest;
        rc = nearest ? mg_dataset_read_train(&data, &cfg, err) : 0;
        if (rc == 0 && nearest)
            rc = mg_nearest_in(idx, q, rows, &data, mg_gemm_blas, err);
        for (int r = 0; rc == 0 && nearest && r < rows; r++)
            mg_dataset_row(&data, (size_t)idx[r], q + (size_t)r * dim);
        char png[MG_PATH_MAX + 32];
        snprintf(png, sizeof png, "%s/samples.png", out_dir);
        if (rc == 0)
            rc = mg_png_grid(png, x, n, cols, C, H, W, nearest ? q : NULL, err);
        if (rc == 0)
            printf("  %s (%s)\n", png, ckpt);
    }
    mg_dataset_free(&data);
    free(idx);
    free(q);
    free(x);
    free(z);
    mg_net_free(&g);
    return rc == 0 ? 1 : -1;
}

int mg_run_plot(const mg_plot_opts *o)
{
    mg_error err;
    char out[MG_PATH_MAX + 16], metrics[MG_PATH_MAX + 32];
    snprintf(out, sizeof out, "%s", o->out ? o->out : "");
    if (!o->out)
        snprintf(out, sizeof out, "%s/plots", o->run_dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", o->run_dir);
    struct stat st;
    const int found = stat(o->run_dir, &st) == 0;
    if (!found || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mpigan: %s: not a run directory: %s\n", o->run_dir,
                found ? "not a directory" : strerror(errno));
        return MG_EXIT_INPUT;
    }
    printf("plots of %s in %s:\n", o->run_dir, out);
    int curves = mg_plot_metrics(metrics, out, o->width, o->height, &err);
    if (curves >= 0)
        printf("  %d training curve%s (losses.png, d_outputs.png, throughput.png%s)\n", curves,
               curves == 1 ? "" : "s", curves > 3 ? ", parzen_training.png" : "");
    if (curves < 0 || plot_evals(o->run_dir, out, o->width, o->height, &err) < 0 ||
        plot_samples(o->run_dir, out, &err) < 0) {
        fprintf(stderr, "mpigan: %s\n", err.msg);
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}
