/* Plots: training curves and the Parzen curve drawn by the real gnuplot, each PNG checked for its
 * exact size in the IHDR chunk and decoded whole with libpng; the data handed to gnuplot checked
 * row by row; every bad input's message; and, with stand-ins for gnuplot (missing, failing,
 * killed, writing nothing), what a failure leaves behind. */
#define _GNU_SOURCE /* setenv, unsetenv */
#include "mpigan/plot.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpigan/evaluate.h"
#include "testlib.h"

static const char *const PNGS[4] = {"losses.png", "d_outputs.png", "throughput.png",
                                    "parzen_training.png"};

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* mg_test_path and path_in hand out a few rotating slots: a path held across many calls is kept
 * in a buffer of its own. */
typedef struct {
    char s[4200];
} path_buf;

static path_buf keep(const char *path)
{
    path_buf b;
    if (snprintf(b.s, sizeof b.s, "%s", path) >= (int)sizeof b.s)
        abort();
    return b;
}

static char *path_in(const char *dir, const char *name)
{
    static char paths[8][4200];
    static int slot;
    char *p = paths[slot++ % 8];
    if (snprintf(p, sizeof paths[0], "%s/%s", dir, name) >= (int)sizeof paths[0])
        abort(); // a test's own paths are short
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fputs(text, f) >= 0, 1);
    CU_ASSERT_EQUAL(fclose(f), 0);
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *n = fread(buf, 1, (1 << 20) - 1, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

/* A valid PNG of exactly width x height: the signature, IHDR first with the sides big-endian at
 * bytes 16..23, the whole file decoded by libpng (so it is complete), and something drawn on it:
 * a plot with axes, text and curves differs from its background in well over 1% of its pixels
 * (about 5% at 640 x 480), an empty or failed one in none. */
static void assert_png(const char *path, int width, int height)
{
    unsigned char h[24];
    FILE *f = fopen(path, "rb");
    if (!f)
        fprintf(stderr, "\n  %s: missing", path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(n, sizeof h);
    CU_ASSERT(memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0);
    CU_ASSERT(memcmp(h + 12, "IHDR", 4) == 0);
    const uint32_t w = (uint32_t)h[16] << 24 | h[17] << 16 | h[18] << 8 | h[19];
    const uint32_t ht = (uint32_t)h[20] << 24 | h[21] << 16 | h[22] << 8 | h[23];
    if (w != (uint32_t)width || ht != (uint32_t)height)
        fprintf(stderr, "\n  %s: %u x %u, want %d x %d", path, w, ht, width, height);
    CU_ASSERT_EQUAL(w, (uint32_t)width);
    CU_ASSERT_EQUAL(ht, (uint32_t)height);

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    CU_ASSERT_FATAL(png_image_begin_read_from_file(&img, path));
    img.format = PNG_FORMAT_RGB;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
    const int ok = png_image_finish_read(&img, NULL, px, 0, NULL);
    if (!ok)
        fprintf(stderr, "\n  %s: %s", path, img.message);
    CU_ASSERT(ok);
    long drawn = 0;
    for (size_t i = 0; ok && i < (size_t)img.width * img.height; i++)
        drawn += memcmp(px + 3 * i, px, 3) != 0;
    if (drawn * 100 <= (long)img.width * img.height)
        fprintf(stderr, "\n  %s: only %ld pixels drawn", path, drawn);
    CU_ASSERT(drawn * 100 > (long)img.width * img.height);
    free(px);
    png_image_free(&img);
}

/* Nothing of a plot's making but its files: no temporary text file ("NAME.tmp-XXXXXX"), no
 * private directory of gnuplot's pictures (".plot-XXXXXX"), nor a picture at an old fixed
 * temporary name ("NAME.tmp"). */
static void assert_no_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return; // never created: nothing left either
    for (struct dirent *e; (e = readdir(d));) {
        const int left = strstr(e->d_name, ".tmp") || !strncmp(e->d_name, ".plot-", 6);
        if (left)
            fprintf(stderr, "\n  %s: left behind", path_in(dir, e->d_name));
        CU_ASSERT_FALSE(left);
    }
    closedir(d);
}

/* None of the pictures nor any temporary. */
static void assert_no_png(const char *dir)
{
    for (int i = 0; i < 4; i++) {
        if (file_exists(path_in(dir, PNGS[i])))
            fprintf(stderr, "\n  %s: left behind", path_in(dir, PNGS[i]));
        CU_ASSERT_FALSE(file_exists(path_in(dir, PNGS[i])));
    }
    assert_no_temporaries(dir);
}

/* Record i (step 100 (i + 1)): the values as mg_report prints them (%.6g); every 10th record
 * carries parzen_ll = -200 + i when `parzen`. */
static double d_loss_of(int i)
{
    char s[32];
    snprintf(s, sizeof s, "%.6g", 1.386 - 0.3 * i / 50.0 + 0.01 * (i % 3));
    return strtod(s, NULL);
}

static int has_parzen(int i, int parzen)
{
    return parzen && (i + 1) % 10 == 0;
}

/* RUN_DIR/metrics.jsonl with n records as mg_report writes them, but every 7th with its keys in
 * reverse order; returns its path. */
static const char *write_metrics(const char *run, int n, int parzen)
{
    CU_ASSERT_EQUAL(mkdir(mg_test_path(run), 0700), 0);
    const char *path = path_in(mg_test_path(run), "metrics.jsonl");
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < n; i++) {
        const long step = 100L * (i + 1);
        char p[96] = "";
        if (has_parzen(i, parzen))
            snprintf(p, sizeof p, ", \"parzen_ll\": %d, \"parzen_sigma\": 0.2", -200 + i);
        if (i % 7 == 6)
            fprintf(f,
                    "{\"elapsed_s\": %.3f, \"samples_per_s\": %.1f, \"d_fake\": %.6g, "
                    "\"d_real\": %.6g, \"g_loss\": %.6g, \"d_loss\": %.6g%s, \"step\": %ld}\n",
                    0.5 * i, 2600.0 + i, 0.5 - 0.002 * i, 0.5 + 0.003 * i, 0.69 + 0.01 * i,
                    d_loss_of(i), p, step);
        else
            fprintf(f,
                    "{\"step\": %ld, \"epoch\": %.6f, \"d_loss\": %.6g, \"g_loss\": %.6g, "
                    "\"d_real\": %.6g, \"d_fake\": %.6g, \"lr_d\": 0.09996, \"lr_g\": 0.09996, "
                    "\"momentum_d\": 0.5, \"momentum_g\": 0.5, \"samples_per_s\": %.1f, "
                    "\"elapsed_s\": %.3f%s}\n",
                    step, 0.2 * (i + 1), d_loss_of(i), 0.69 + 0.01 * i, 0.5 + 0.003 * i,
                    0.5 - 0.002 * i, 2600.0 + i, 0.5 * i, p);
    }
    CU_ASSERT_EQUAL(fclose(f), 0);
    return path;
}

/* metrics.dat: a header, then per record 12 columns: step, d_loss, ..., parzen_ll (7th) '?'
 * exactly where the record had none, so it is skipped rather than drawn at zero. */
static void assert_dat(const char *dir, int n, int parzen)
{
    size_t len;
    char *text = read_all(path_in(dir, "metrics.dat"), &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int rows = 0, bad = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char col[12][32];
        const int k = sscanf(line, "%31s %31s %31s %31s %31s %31s %31s %31s %31s %31s %31s %31s",
                             col[0], col[1], col[2], col[3], col[4], col[5], col[6], col[7],
                             col[8], col[9], col[10], col[11]);
        const int i = rows++;
        char want_ll[32] = "?";
        if (has_parzen(i, parzen))
            snprintf(want_ll, sizeof want_ll, "%d", -200 + i);
        const int ok = k == 12 && strtod(col[0], NULL) == 100.0 * (i + 1) &&
                       strtod(col[1], NULL) == d_loss_of(i) && strcmp(col[6], want_ll) == 0;
        if (!ok && bad++ < 3)
            fprintf(stderr, "\n  metrics.dat row %d: %s (want step %d, d_loss %.6g, parzen %s)",
                    i, line, 100 * (i + 1), d_loss_of(i), want_ll);
    }
    CU_ASSERT_EQUAL(rows, n);
    CU_ASSERT_EQUAL(bad, 0);
    free(text);
}

static void test_metrics_with_parzen(void)
{
    const path_buf metrics = keep(write_metrics("run-parzen", 50, 1));
    const path_buf out_b = keep(mg_test_path("run-parzen/plots/deeper")); // created, parents too
    const char *out = out_b.s;
    mg_error err = {""};
    const int rc = mg_plot_metrics(metrics.s, out, 640, 480, &err);
    if (rc < 0)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 4);
    for (int i = 0; i < 4; i++)
        assert_png(path_in(out, PNGS[i]), 640, 480);
    assert_dat(out, 50, 1);
    size_t len;
    char *gp = read_all(path_in(out, "plots.gp"), &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gp);
    CU_ASSERT_PTR_NOT_NULL(strstr(gp, "set datafile missing '?'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(gp, "set title 'run-parzen: ")); // the run's name
    free(gp);
    assert_no_temporaries(out);
}

/* Without Parzen fields: three plots, no parzen_training.png, another size. */
static void test_metrics_without_parzen(void)
{
    const char *metrics = write_metrics("run-plain", 50, 0);
    const path_buf out_b = keep(path_in(mg_test_path("run-plain"), "plots"));
    const char *out = out_b.s;
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_plot_metrics(metrics, out, 800, 300, &err), 3);
    for (int i = 0; i < 3; i++)
        assert_png(path_in(out, PNGS[i]), 800, 300);
    CU_ASSERT_FALSE(file_exists(path_in(out, PNGS[3])));
    assert_dat(out, 50, 0);
}

/* One record, as right after a run starts: an x range of one point, which gnuplot widens with a
 * warning that is no failure. */
static void test_metrics_one_record(void)
{
    const path_buf metrics = keep(write_metrics("run-one", 1, 0));
    const path_buf out = keep(path_in(mg_test_path("run-one"), "plots"));
    mg_error err = {""};
    const int rc = mg_plot_metrics(metrics.s, out.s, 400, 300, &err);
    if (rc < 0)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 3);
    for (int i = 0; i < 3; i++)
        assert_png(path_in(out.s, PNGS[i]), 400, 300);
    assert_dat(out.s, 1, 0);
}

/* The script kept beside the pictures runs as it is in its directory, as a user would rerun it,
 * and writes the final names; plotting again into the same directory replaces the pictures. */
static void test_metrics_rerun(void)
{
    const char *metrics = write_metrics("run-again", 20, 1);
    const path_buf out_b = keep(path_in(mg_test_path("run-again"), "plots"));
    const char *out = out_b.s;
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_plot_metrics(metrics, out, 640, 480, &err), 4);
    CU_ASSERT_EQUAL_FATAL(mg_plot_metrics(metrics, out, 500, 400, &err), 4);
    for (int i = 0; i < 4; i++)
        assert_png(path_in(out, PNGS[i]), 500, 400);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(remove(path_in(out, PNGS[i])), 0);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot plots.gp", out);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    for (int i = 0; i < 4; i++)
        assert_png(path_in(out, PNGS[i]), 500, 400);
}

/* A diverged run as mpigan writes it (here with discriminator.optimizer.lr 1000 and
 * train.nonfinite skip): a loss that is not finite is null, named with what it was in the record's
 * "not_finite" object. Each such point is NaN in metrics.dat, which gnuplot leaves out of its
 * curve (a gap), and the run is plotted; so is one whose losses were never finite at all. */
static void test_metrics_diverged(void)
{
    CU_ASSERT_EQUAL(mkdir(mg_test_path("run-diverged"), 0700), 0);
    const path_buf metrics = keep(path_in(mg_test_path("run-diverged"), "metrics.jsonl"));
    write_text(metrics.s,
               "{\"step\": 7, \"epoch\": 0.14, \"d_loss\": 7.9101382e32, \"g_loss\": 6.17708078e26, "
               "\"d_real\": 1.0, \"d_fake\": 1.0, \"lr_d\": 1000.0, \"lr_g\": 0.0999972, "
               "\"momentum_d\": 0.5, \"momentum_g\": 0.5, \"samples_per_s\": 22128.2754, "
               "\"elapsed_s\": 0.015566566}\n"
               "{\"step\": 8, \"epoch\": 0.16, \"d_loss\": 8.23359565e34, \"g_loss\": null, "
               "\"d_real\": 0.0250000004, \"d_fake\": 0.800000012, \"lr_d\": 1000.0, "
               "\"lr_g\": 0.0999972, \"momentum_d\": 0.5, \"momentum_g\": 0.5, "
               "\"samples_per_s\": 21640.3727, \"elapsed_s\": 0.017414873, \"skipped\": 1, "
               "\"not_finite\": {\"g_loss\": \"inf\"}}\n"
               "{\"step\": 9, \"epoch\": 0.18, \"d_loss\": null, \"g_loss\": null, \"d_real\": 1.0, "
               "\"d_fake\": 0.649999976, \"lr_d\": 1000.0, \"lr_g\": 0.0999972, \"momentum_d\": 0.5, "
               "\"momentum_g\": 0.5, \"samples_per_s\": 20618.461, \"elapsed_s\": 0.019354902, "
               "\"skipped\": 3, \"not_finite\": {\"d_loss\": \"inf\", \"g_loss\": \"inf\"}}\n"
               "{\"step\": 10, \"epoch\": 0.2, \"d_loss\": null, \"g_loss\": null, \"d_real\": 1.0, "
               "\"d_fake\": 0.625, \"lr_d\": 1000.0, \"lr_g\": 0.0999972, \"momentum_d\": 0.5, "
               "\"momentum_g\": 0.5, \"samples_per_s\": 22084.2204, \"elapsed_s\": 0.02116614, "
               "\"parzen_ll\": null, \"parzen_sigma\": 0.1, \"skipped\": 5, "
               "\"not_finite\": {\"d_loss\": \"inf\", \"g_loss\": \"-inf\", \"parzen_ll\": \"nan\"}}\n");
    const path_buf out = keep(path_in(mg_test_path("run-diverged"), "plots"));
    mg_error err = {""};
    int rc = mg_plot_metrics(metrics.s, out.s, 640, 480, &err);
    if (rc < 0)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 3); // a parzen_ll that is not finite is no Parzen curve
    for (int i = 0; i < 3; i++)
        assert_png(path_in(out.s, PNGS[i]), 640, 480);
    size_t len;
    char *dat = read_all(path_in(out.s, "metrics.dat"), &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dat);
    CU_ASSERT_STRING_EQUAL(strchr(dat, '\n') + 1,
                           "7 7.9101382e+32 6.17708078e+26 1 1 22128.2754 ? ? 0.14 0.015566566 1000 "
                           "0.0999972\n"
                           "8 8.23359565e+34 NaN 0.0250000004 0.800000012 21640.3727 ? ? 0.16 "
                           "0.017414873 1000 0.0999972\n"
                           "9 NaN NaN 1 0.649999976 20618.461 ? ? 0.18 0.019354902 1000 0.0999972\n"
                           "10 NaN NaN 1 0.625 22084.2204 NaN 0.1 0.2 0.02116614 1000 0.0999972\n");
    free(dat);

    // nothing but the steps ever finite: each plot has no point of data, and is drawn all the same
    write_text(metrics.s,
               "{\"step\": 1, \"d_loss\": null, \"g_loss\": null, \"d_real\": null, \"d_fake\": null, "
               "\"samples_per_s\": null}\n"
               "{\"step\": 2, \"d_loss\": null, \"g_loss\": null, \"d_real\": null, \"d_fake\": null, "
               "\"samples_per_s\": null, \"not_finite\": {\"d_loss\": \"nan\", \"g_loss\": \"nan\"}}\n");
    rc = mg_plot_metrics(metrics.s, out.s, 640, 480, &err);
    if (rc < 0)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 3);
    for (int i = 0; i < 3; i++)
        assert_png(path_in(out.s, PNGS[i]), 640, 480);
    assert_no_temporaries(out.s);
}

/* Records of mpigan before jansson wrote them (printf's %.6g: bare nan, -nan, inf and -inf, which
 * are not JSON) are still read: those values are NaN in metrics.dat, like null. Also keys in any
 * order, unknown keys of any type, blank lines, and "nan" inside a string left alone. */
static void test_metrics_order_and_nan(void)
{
    CU_ASSERT_EQUAL(mkdir(mg_test_path("run-nan"), 0700), 0);
    const path_buf metrics_b = keep(path_in(mg_test_path("run-nan"), "metrics.jsonl"));
    const char *metrics = metrics_b.s;
    write_text(metrics,
               "{\"step\": 1, \"d_loss\": 1.4, \"g_loss\": 0.7, \"d_real\": 0.5, \"d_fake\": 0.5, "
               "\"samples_per_s\": 100}\n"
               "\n   \t\n"
               "{ \"future_field\" : -1.5e-3 , \"samples_per_s\":110,\"d_fake\":0.4,"
               "\"note\": \"inf: \\\"nan\\\", -nan\", \"more\": {\"a\": [true, null, -inf]},"
               "\"d_real\":0.6,\"g_loss\":0.8,\"d_loss\":1.3,\"step\":2 }\r\n"
               "{\"step\": 3, \"d_loss\": nan, \"g_loss\": -inf, \"d_real\": 0.7, "
               "\"d_fake\": -nan, \"samples_per_s\": 120, \"parzen_ll\": nan}\n"
               "{\"step\": 4, \"d_loss\": 1.2, \"g_loss\": 0.9, \"d_real\": 0.7, \"d_fake\": 0.3, "
               "\"samples_per_s\": 1.3E+2}\n");
    const path_buf out_b = keep(path_in(mg_test_path("run-nan"), "plots"));
    const char *out = out_b.s;
    mg_error err = {""};
    const int rc = mg_plot_metrics(metrics, out, 640, 480, &err);
    if (rc < 0)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 3); // a parzen_ll of nan is no Parzen curve
    size_t len;
    char *dat = read_all(path_in(out, "metrics.dat"), &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dat);
    const char *rows = strchr(dat, '\n') + 1;
    CU_ASSERT_STRING_EQUAL(rows, "1 1.4 0.7 0.5 0.5 100 ? ? ? ? ? ?\n"
                                 "2 1.3 0.8 0.6 0.4 110 ? ? ? ? ? ?\n"
                                 "3 NaN NaN 0.7 NaN 120 NaN ? ? ? ? ?\n"
                                 "4 1.2 0.9 0.7 0.3 130 ? ? ? ? ? ?\n");
    free(dat);
}

static const char EVAL[] = "{\n"
                           "  \"checkpoint\": \"/path/ckpt-00001000.h5\",\n"
                           "  \"step\": 1000,\n"
                           "  \"real\": false,\n"
                           "  \"samples\": 10000,\n"
                           "  \"valid_points\": 1000,\n"
                           "  \"test_points\": 10000,\n"
                           "  \"sigmas\": [0.1, 0.129155, 0.16681, 0.215443, 0.278256, 0.359381, "
                           "0.464159, 0.599484, 0.774264, 1],\n"
                           "  \"valid_ll\": [-500.1, -100.2, 20.3, 120.4, 150.5, 140.6, 110.7, "
                           "80.8, 50.9, 20.1],\n"
                           "  \"sigma\": 0.278256,\n"
                           "  \"test_ll\": 150.2,\n"
                           "  \"test_se\": 2.1,\n"
                           "  \"seconds\": 12.5\n"
                           "}\n";

static void test_parzen(void)
{
    const char *eval = mg_test_write_file("eval.json", EVAL, sizeof EVAL - 1);
    const char *png = mg_test_path("parzen.png");
    mg_error err = {""};
    int rc = mg_plot_parzen(eval, png, 700, 500, &err);
    if (rc < 0)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    assert_png(png, 700, 500);
    CU_ASSERT(file_exists(mg_test_path("parzen.gp")));
    assert_no_temporaries(mg_test_tmpdir());

    // one line, other key order, values of other types to skip, a name without .png
    static const char compact[] =
        "{\"extra\": {\"a\": [1, {\"b\": null}, true], \"s\": \"x\\\"y\"}, \"test_se\": 0.5, "
        "\"valid_ll\": [1, 2.5, -inf], \"sigmas\": [0.2, 0.3, 0.4], \"real\": true, "
        "\"samples\": 5, \"sigma\": 0.3, \"test_ll\": 2}";
    eval = mg_test_write_file("eval-compact.json", compact, sizeof compact - 1);
    png = mg_test_path("curve");
    CU_ASSERT_EQUAL_FATAL(mg_plot_parzen(eval, png, 320, 240, &err), 0);
    assert_png(png, 320, 240);
    CU_ASSERT(file_exists(mg_test_path("curve.gp")));

    // no finite validation log-likelihood at all: a curve with no point, drawn all the same
    static const char none[] = "{\"sigmas\": [0.2, 0.3], \"valid_ll\": [null, null], \"sigma\": 0.2, "
                               "\"test_ll\": null, \"test_se\": null, \"real\": false, "
                               "\"samples\": 5}";
    eval = mg_test_write_file("eval-none.json", none, sizeof none - 1);
    png = mg_test_path("none.png");
    rc = mg_plot_parzen(eval, png, 320, 240, &err);
    if (rc < 0)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    assert_png(png, 320, 240);
}

/* The record `mpigan eval` writes, exactly, and read back by the plot: a checkpoint path with a
 * quote, a backslash and a newline is a JSON string like any other; values that are not finite
 * are null, and "not_finite" says what they were. */
static void test_eval_record(void)
{
    const double sigmas[3] = {0.1, 0.316227766, 1}, valid_ll[3] = {-12.5, -INFINITY, NAN};
    mg_eval_record r = {.checkpoint = "/runs/a \"quoted\" \\ dir\nx/ckpt-00000050.h5",
                        .step = 50, .real = 0, .ranks = 2, .samples = 700, .valid_points = 300,
                        .test_points = 600, .n_sigma = 3, .chosen = 0, .sigmas = sigmas,
                        .valid_ll = valid_ll, .test_ll = -INFINITY, .test_se = NAN,
                        .seconds = {0.25, 1.0004, 2.0006, 3.2514}};
    const path_buf eval = keep(mg_test_path("eval-00000050.json"));
    mg_error err = {""};
    CU_ASSERT_EQUAL_FATAL(mg_eval_write_record(eval.s, &r, &err), 0);
    size_t n;
    char *text = read_all(eval.s, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(text, "{\n"
                                 "  \"checkpoint\": \"/runs/a \\\"quoted\\\" \\\\ dir\\nx/ckpt-00000050.h5\",\n"
                                 "  \"step\": 50,\n"
                                 "  \"real\": false,\n"
                                 "  \"ranks\": 2,\n"
                                 "  \"samples\": 700,\n"
                                 "  \"valid_points\": 300,\n"
                                 "  \"test_points\": 600,\n"
                                 "  \"sigmas\": [\n    0.1,\n    0.316227766,\n    1.0\n  ],\n"
                                 "  \"valid_ll\": [\n    -12.5,\n    null,\n    null\n  ],\n"
                                 "  \"sigma\": 0.1,\n"
                                 "  \"test_ll\": null,\n"
                                 "  \"test_se\": null,\n"
                                 "  \"seconds\": 3.251,\n"
                                 "  \"timers\": {\n"
                                 "    \"samples\": 0.25,\n"
                                 "    \"validation\": 1.0,\n"
                                 "    \"test\": 2.001\n"
                                 "  },\n"
                                 "  \"not_finite\": {\n"
                                 "    \"valid_ll\": [\n      null,\n      \"-inf\",\n      \"nan\"\n    ],\n"
                                 "    \"test_ll\": \"-inf\",\n"
                                 "    \"test_se\": \"nan\"\n"
                                 "  }\n"
                                 "}\n");
    free(text);
    json_error_t je;
    json_t *o = json_load_file(eval.s, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "checkpoint")), r.checkpoint);
    json_decref(o);

    // the plot draws it: the points that are not finite are NaN (left out), the title says -inf
    const path_buf png = keep(mg_test_path("eval-record.png"));
    const int rc = mg_plot_parzen(eval.s, png.s, 640, 480, &err);
    if (rc)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    assert_png(png.s, 640, 480);
    char *gp = read_all(mg_test_path("eval-record.gp"), &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gp);
    CU_ASSERT_PTR_NOT_NULL(strstr(gp, "0.1 -12.5\n0.316227766 NaN\n1 NaN\nEOD\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(gp, "test LL -inf ± nan nats at σ = 0.1"));
    free(gp);

    // a path that is not UTF-8, which a JSON string cannot hold
    r.checkpoint = "/runs/caf\xe9/ckpt.h5";
    CU_ASSERT_EQUAL_FATAL(mg_eval_write_record(eval.s, &r, &err), 0);
    o = json_load_file(eval.s, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "checkpoint")),
                           "/runs/caf\xef\xbf\xbd/ckpt.h5");
    json_decref(o);

    // written whole or not at all, through files.h, and the message names the file
    const char *nowhere = mg_test_path("no-such-dir/eval.json");
    MG_ASSERT_FAILS(mg_eval_write_record(nowhere, &r, &err), err, nowhere,
                    "cannot write: No such file or directory");
    assert_no_temporaries(mg_test_tmpdir());
}

/* Each bad metrics file: its exact message, and nothing written (the output directory is not
 * even created). */
static void test_metrics_errors(void)
{
    const path_buf out_b = keep(mg_test_path("never")), metrics_b = keep(mg_test_path("bad.jsonl"));
    const char *out = out_b.s, *metrics = metrics_b.s;
    mg_error err = {""};
    char where[4300];

    const char *missing = mg_test_path("no-such-run/metrics.jsonl");
    MG_ASSERT_FAILS(mg_plot_metrics(missing, out, 640, 480, &err), err, missing,
                    "cannot read: No such file or directory");

    static const char good[] = "{\"step\": 1, \"d_loss\": 1.4, \"g_loss\": 0.7, \"d_real\": 0.5, "
                               "\"d_fake\": 0.5, \"samples_per_s\": 100}\n";
    static const char *const bad_lines[] = {
        "{\"step\": 2, \"d_loss\": 1.4, \"g_loss\": 0.7, \"d_real\": 0.5, \"d_fake\": 0.5, "
        "\"samples_per_s\": 100} trailing",
        "{\"step\" 2}",
        "{\"step\": \"2\"}",
        "{\"step\": 2,}",
        "{\"step\": 0x10}",
        "{\"step\": .5}",
        "{\"step\": 1.}",
        "{\"step\": 01}",
        "{\"step\": +1}",
        "{\"step\": 2, \"step\": 3, \"d_loss\": 1.4, \"g_loss\": 0.7, \"d_real\": 0.5, "
        "\"d_fake\": 0.5, \"samples_per_s\": 100}",
        "{\"step\": 2, \"d_loss\": 1.4", // cut short, as by a crash mid-write
        "{'step': 2}",
        "[1, 2]",
        "{\"step\": true}",
        // a step is a count, which mpigan always writes as a number
        "{\"step\": null, \"d_loss\": 1.4, \"g_loss\": 0.7, \"d_real\": 0.5, \"d_fake\": 0.5, "
        "\"samples_per_s\": 100}",
        "{\"step\": [2]}",
        // a value that is not finite is null, or a bare nan of an older record, never a string
        "{\"step\": 2, \"d_loss\": \"nan\", \"g_loss\": 0.7, \"d_real\": 0.5, \"d_fake\": 0.5, "
        "\"samples_per_s\": 100}",
        "{\"step\": 2, \"d_loss\": NaN, \"g_loss\": 0.7, \"d_real\": 0.5, \"d_fake\": 0.5, "
        "\"samples_per_s\": 100}",
        "{\"step\": 2, \"d_loss\": --inf, \"g_loss\": 0.7, \"d_real\": 0.5, \"d_fake\": 0.5, "
        "\"samples_per_s\": 100}",
        "{\"st\\u0065p\": 2, \"d_loss\": nanx}",
    };
    for (size_t k = 0; k < sizeof bad_lines / sizeof *bad_lines; k++) {
        char text[1024];
        snprintf(text, sizeof text, "%s\n%s\n%s\n", good, bad_lines[k], good);
        write_text(metrics, text);
        snprintf(where, sizeof where, "%s:3", metrics); // the blank line 2 counts
        MG_ASSERT_FAILS(mg_plot_metrics(metrics, out, 640, 480, &err), err, where,
                        "not a metrics record");
    }
    // a NUL inside a line
    static const char nul[] = "{\"step\": 1, \"d_loss\": 1\0}\n";
    mg_test_write_file("bad.jsonl", nul, sizeof nul - 1);
    snprintf(where, sizeof where, "%s:1", metrics);
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, out, 640, 480, &err), err, where,
                    "not a metrics record");

    write_text(metrics, "{\"step\": 1, \"d_loss\": 1.4, \"g_loss\": 0.7, \"d_real\": 0.5, "
                        "\"samples_per_s\": 100}\n");
    snprintf(where, sizeof where, "%s:1", metrics);
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, out, 640, 480, &err), err, where, "no \"d_fake\"");
    write_text(metrics, "{}\n");
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, out, 640, 480, &err), err, where, "no \"step\"");

    write_text(metrics, "");
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, out, 640, 480, &err), err, metrics,
                    "no records to plot");
    write_text(metrics, "\n  \n\n");
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, out, 640, 480, &err), err, metrics,
                    "no records to plot");
    MG_ASSERT_FAILS(mg_plot_metrics(mg_test_tmpdir(), out, 640, 480, &err), err,
                    mg_test_tmpdir(), "cannot read: Is a directory");

    write_text(metrics, good);
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, out, 63, 480, &err), err, out,
                    "plot size 63 x 480 out of range (64 to 10000 pixels a side)");
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, out, 640, 10001, &err), err, out,
                    "plot size 640 x 10001 out of range (64 to 10000 pixels a side)");
    CU_ASSERT_FALSE(file_exists(out));

    MG_ASSERT_FAILS(mg_plot_metrics(metrics, "", 640, 480, &err), err, "plot",
                    "empty output directory name");
    // an output directory that cannot be made: a file stands in its way
    const char *in_way = path_in(metrics, "plots");
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, in_way, 640, 480, &err), err, in_way,
                    "cannot create directory: Not a directory");
}

/* Each bad eval record: its exact message, and no picture, script or temporary file. */
static void test_parzen_errors(void)
{
    const path_buf png_b = keep(mg_test_path("bad-parzen.png")),
                   eval_b = keep(mg_test_path("bad-eval.json"));
    const char *png = png_b.s, *eval = eval_b.s;
    mg_error err = {""};
    const char *missing = mg_test_path("no-eval.json");
    MG_ASSERT_FAILS(mg_plot_parzen(missing, png, 640, 480, &err), err, missing,
                    "cannot read: No such file or directory");

    static const char *const tail = "\"sigma\": 0.2, \"test_ll\": 1, \"test_se\": 0.1, "
                                    "\"real\": false, \"samples\": 10}";
    static const struct {
        const char *head, *what;
    } cases[] = {
        {"{\"valid_ll\": [1, 2], ", "no \"sigmas\" array of numbers"},
        {"{\"sigmas\": \"0.1 0.2\", \"valid_ll\": [1, 2], ", "no \"sigmas\" array of numbers"},
        {"{\"sigmas\": [0.1, \"0.2\"], \"valid_ll\": [1, 2], ", "no \"sigmas\" array of numbers"},
        {"{\"sigmas\": [0.1, null, true], \"valid_ll\": [1, 2, 3], ",
         "no \"sigmas\" array of numbers"},
        {"{\"sigmas\": {\"0\": 0.1}, \"valid_ll\": [1], ", "no \"sigmas\" array of numbers"},
        {"{\"sigmas\": [0.1, 0.2], ", "no \"valid_ll\" array of numbers"},
        {"{\"sigmas\": [0.1, 0.2], \"valid_ll\": [1], ",
         "\"sigmas\" has 2 entries but \"valid_ll\" has 1"},
        {"{\"sigmas\": [0.1, 0.2, 0.3], \"valid_ll\": [1, 2, 3, 4], ",
         "\"sigmas\" has 3 entries but \"valid_ll\" has 4"},
        {"{\"sigmas\": [], \"valid_ll\": [], ", "\"sigmas\" is empty"},
        {"{\"sigmas\": [0.1, 0, 0.3], \"valid_ll\": [1, 2, 3], ",
         "sigmas[1] = 0 is not a positive width"},
        {"{\"sigmas\": [0.1, -0.2], \"valid_ll\": [1, 2], ",
         "sigmas[1] = -0.2 is not a positive width"},
        // null: a value that was not finite, what it was in "not_finite" if the record says
        {"{\"sigmas\": [0.1, null], \"valid_ll\": [1, 2], ", "sigmas[1] = nan is not a positive width"},
        {"{\"sigmas\": [0.1, null], \"valid_ll\": [1, 2], \"not_finite\": {\"sigmas\": [null, "
         "\"inf\"]}, ",
         "sigmas[1] = inf is not a positive width"},
    };
    char text[30000];
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        snprintf(text, sizeof text, "%s%s", cases[k].head, tail);
        write_text(eval, text);
        MG_ASSERT_FAILS(mg_plot_parzen(eval, png, 640, 480, &err), err, eval, "%s",
                        cases[k].what);
    }

    static const struct {
        const char *text, *what;
    } whole[] = {
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": 1, \"test_ll\": 1, \"test_se\": 1, "
         "\"samples\": 10}",
         "no \"real\" boolean"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": 1, \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": \"no\", \"samples\": 10}",
         "no \"real\" boolean"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": 1, \"test_ll\": 1, \"real\": true, "
         "\"samples\": 10}",
         "no \"test_se\" number"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": \"1\", \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": true, \"samples\": 10}",
         "no \"sigma\" number"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": null, \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": true, \"samples\": 10}",
         "\"sigma\" = nan is not a positive width"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": null, \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": true, \"samples\": 10, \"not_finite\": {\"sigma\": \"inf\"}}",
         "\"sigma\" = inf is not a positive width"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": 1, \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": true, \"samples\": 10, \"step\": \"1000\"}",
         "no \"step\" number"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": 1, \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": true, \"samples\": null}",
         "\"samples\" = nan is not a count"},
        {"[1, 2]", "not a JSON object"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": -1, \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": true, \"samples\": 10}",
         "\"sigma\" = -1 is not a positive width"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": 1, \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": true, \"samples\": 2.5}",
         "\"samples\" = 2.5 is not a count"},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": 1, \"test_ll\": 1, \"test_se\": 1, "
         "\"real\": true, \"samples\": 10, \"bytes\": \"\0\"}",
         "not a text file"},
    };
    for (size_t k = 0; k < sizeof whole / sizeof *whole; k++) {
        // the NUL case is written whole, the others up to their end
        const int nul = strcmp(whole[k].what, "not a text file") == 0;
        const size_t n = nul ? strlen(whole[k].text) + 3 : strlen(whole[k].text);
        mg_test_write_file("bad-eval.json", whole[k].text, n);
        MG_ASSERT_FAILS(mg_plot_parzen(eval, png, 640, 480, &err), err, eval, "%s",
                        whole[k].what);
    }

    // 1001 sigmas
    size_t n = (size_t)snprintf(text, sizeof text, "{\"sigmas\": [1");
    for (int i = 1; i < 1001; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, ", %d", i + 1);
    snprintf(text + n, sizeof text - n, "], \"valid_ll\": [1], %s", tail);
    write_text(eval, text);
    MG_ASSERT_FAILS(mg_plot_parzen(eval, png, 640, 480, &err), err, eval,
                    "\"sigmas\" has more than 1000 entries");

    // malformed JSON, by line (jansson's): a missing comma on line 4, a bad value of an unknown
    // key on line 2, text after the object on line 3, an empty file
    static char deep[3010] = "{\"a\": ";
    char where[4300];
    static const struct {
        const char *text;
        int line;
        const char *what; // NULL: malformed JSON
    } syntax[] = {
        {"{\n  \"sigmas\": [1],\n  \"valid_ll\": [1]\n  \"sigma\": 1\n}", 4, NULL},
        {"{\n  \"checkpoint\": /path,\n  \"sigmas\": [1]\n}", 2, NULL},
        {"{\"sigmas\": [1], \"valid_ll\": [1], \"sigma\": 1, \"test_ll\": 1, \"test_se\": 1,\n"
         "\"real\": true, \"samples\": 10}\n"
         "{}",
         3, NULL},
        {"{\"a\": [1, 2,]}", 1, NULL},
        {"{\"a\": {\"b\" 1}}", 1, NULL},
        {"{\"a\": tru}", 1, NULL},
        {"{\"a\": \"unterminated\n\"}", 1, NULL},
        {"", 1, NULL},
        {"{\"sigmas\": [0.1, 0.2,], \"valid_ll\": [1, 2]}", 1, NULL},
        {"{\"a\": {\"b\": 1},\n \"c\": [{\"d\": 2, \"d\": 3}]}", 2, // a repeated key, however deep
         "duplicate object key near '\"d\"'"},
        {"{\"a\": nan1}", 1, NULL}, // not a bare nan of an older record
        {deep, 1, NULL},
    };
    // deeper than jansson's limit (2048 levels): refused, not a crash
    for (int i = 0; i < 3000; i++)
        deep[6 + i] = '[';
    for (size_t k = 0; k < sizeof syntax / sizeof *syntax; k++) {
        write_text(eval, syntax[k].text);
        snprintf(where, sizeof where, "%s:%d", eval, syntax[k].line);
        MG_ASSERT_FAILS(mg_plot_parzen(eval, png, 640, 480, &err), err, where, "%s",
                        syntax[k].what ? syntax[k].what : "malformed JSON");
    }
    // a key twice: jansson names it by the text around it
    write_text(eval, "{\"sigmas\": [0.1, 0.2], \"sigma\": 0.1, \"valid_ll\": [1, 2],\n"
                     "\"sigma\": 0.2, \"test_ll\": 1, \"test_se\": 0.1, \"real\": false, \"samples\": 10}");
    snprintf(where, sizeof where, "%s:2", eval);
    MG_ASSERT_FAILS(mg_plot_parzen(eval, png, 640, 480, &err), err, where,
                    "duplicate object key near '\"sigma\"'");

    const char *good = mg_test_write_file("good-eval.json", EVAL, sizeof EVAL - 1);
    MG_ASSERT_FAILS(mg_plot_parzen(good, png, 640, 20, &err), err, png,
                    "plot size 640 x 20 out of range (64 to 10000 pixels a side)");
    const char *dir_name = mg_test_path("");
    MG_ASSERT_FAILS(mg_plot_parzen(good, dir_name, 640, 480, &err), err, dir_name,
                    "not a file name");
    const char *no_dir = mg_test_path("no-such-dir/parzen.png");
    MG_ASSERT_FAILS(mg_plot_parzen(good, no_dir, 640, 480, &err), err,
                    mg_test_path("no-such-dir/parzen.gp"),
                    "cannot write: No such file or directory");

    CU_ASSERT_FALSE(file_exists(png));
    CU_ASSERT_FALSE(file_exists(mg_test_path("bad-parzen.gp")));
    assert_no_temporaries(mg_test_tmpdir());
}

static int is_link_to(const char *path, const char *target)
{
    char buf[4200];
    struct stat st;
    const ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0 || lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
        return 0;
    buf[n] = '\0';
    return strcmp(buf, target) == 0;
}

static int is_regular(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void assert_victim(const char *victim)
{
    size_t n;
    char *text = read_all(victim, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(text, "precious\n");
    free(text);
}

/* Links planted where an older mpigan put its temporaries (NAME.tmp, opened by name by fopen and
 * by gnuplot, which follow links) and at the final names: nothing is written through any of them.
 * The planted temporaries are not mpigan's and stay; a link at a final name is replaced by the new
 * file, as rename replaces it. */
static void test_planted_links(void)
{
    static const char *const planted[] = {"losses.png.tmp", "d_outputs.png.tmp",
                                          "throughput.png.tmp", "parzen_training.png.tmp",
                                          "metrics.dat.tmp", "plots.gp.tmp"};
    const path_buf metrics = keep(write_metrics("run-links", 20, 1)),
                   out = keep(path_in(mg_test_path("run-links"), "plots")),
                   victim = keep(mg_test_write_file("victim", "precious\n", 9));
    CU_ASSERT_EQUAL_FATAL(mkdir(out.s, 0700), 0);
    for (size_t i = 0; i < sizeof planted / sizeof *planted; i++)
        CU_ASSERT_EQUAL_FATAL(symlink(victim.s, path_in(out.s, planted[i])), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(victim.s, path_in(out.s, "losses.png")), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(victim.s, path_in(out.s, "metrics.dat")), 0);
    mg_error err = {""};
    const int rc = mg_plot_metrics(metrics.s, out.s, 640, 480, &err);
    if (rc < 0)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 4);
    assert_victim(victim.s);
    for (size_t i = 0; i < sizeof planted / sizeof *planted; i++)
        CU_ASSERT(is_link_to(path_in(out.s, planted[i]), victim.s));
    CU_ASSERT(is_regular(path_in(out.s, "losses.png")));
    CU_ASSERT(is_regular(path_in(out.s, "metrics.dat")));
    assert_png(path_in(out.s, "losses.png"), 640, 480);
    assert_dat(out.s, 20, 1);

    // the Parzen curve, its script and picture
    const path_buf dir = keep(mg_test_path("parzen-links")),
                   eval = keep(mg_test_write_file("links-eval.json", EVAL, sizeof EVAL - 1));
    CU_ASSERT_EQUAL_FATAL(mkdir(dir.s, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(victim.s, path_in(dir.s, "curve.png.tmp")), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(victim.s, path_in(dir.s, "curve.gp.tmp")), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(victim.s, path_in(dir.s, "curve.png")), 0);
    CU_ASSERT_EQUAL_FATAL(mg_plot_parzen(eval.s, path_in(dir.s, "curve.png"), 640, 480, &err), 0);
    assert_victim(victim.s);
    CU_ASSERT(is_link_to(path_in(dir.s, "curve.png.tmp"), victim.s));
    CU_ASSERT(is_link_to(path_in(dir.s, "curve.gp.tmp"), victim.s));
    assert_png(path_in(dir.s, "curve.png"), 640, 480);
    CU_ASSERT(is_regular(path_in(dir.s, "curve.png")));
}

/* An executable shell script standing in for gnuplot. */
static const char *fake_gnuplot(const char *name, const char *body)
{
    char text[2048];
    snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
    const char *path = mg_test_write_file(name, text, strlen(text));
    CU_ASSERT_EQUAL(chmod(path, 0755), 0);
    return path;
}

/* gnuplot missing, failing, killed or writing nothing: the message names the script and
 * gnuplot's error, no picture or temporary file is left, and pictures of an earlier run stay
 * byte for byte. */
static void test_gnuplot_errors(void)
{
    const path_buf metrics_b = keep(write_metrics("run-gp", 20, 1)),
                   eval_b = keep(mg_test_write_file("gp-eval.json", EVAL, sizeof EVAL - 1)),
                   png_b = keep(mg_test_path("gp-parzen.png")),
                   fresh_b = keep(mg_test_path("run-gp/fresh")),
                   out_b = keep(mg_test_path("run-gp/plots"));
    const char *metrics = metrics_b.s, *eval = eval_b.s, *png = png_b.s, *fresh = fresh_b.s,
               *out = out_b.s;
    mg_error err = {""};

    CU_ASSERT_EQUAL_FATAL(setenv("MPIGAN_GNUPLOT", "/nonexistent/gnuplot", 1), 0);
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, fresh, 640, 480, &err), err, "/nonexistent/gnuplot",
                    "cannot run gnuplot (MPIGAN_GNUPLOT): No such file or directory");
    assert_no_png(fresh);
    MG_ASSERT_FAILS(mg_plot_parzen(eval, png, 640, 480, &err), err, "/nonexistent/gnuplot",
                    "cannot run gnuplot (MPIGAN_GNUPLOT): No such file or directory");
    CU_ASSERT_FALSE(file_exists(png));
    assert_no_temporaries(mg_test_tmpdir());
    CU_ASSERT_EQUAL_FATAL(setenv("MPIGAN_GNUPLOT", eval, 1), 0);
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, fresh, 640, 480, &err), err, eval,
                    "cannot run gnuplot (MPIGAN_GNUPLOT): Permission denied");
    CU_ASSERT_EQUAL_FATAL(setenv("MPIGAN_GNUPLOT", mg_test_tmpdir(), 1), 0);
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, fresh, 640, 480, &err), err, mg_test_tmpdir(),
                    "cannot run gnuplot (MPIGAN_GNUPLOT): Permission denied");
    CU_ASSERT_EQUAL_FATAL(setenv("MPIGAN_GNUPLOT", "no-such-gnuplot", 1), 0);
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, fresh, 640, 480, &err), err, "no-such-gnuplot",
                    "not found on PATH (MPIGAN_GNUPLOT)");
    assert_no_png(fresh);
    // a relative path is taken from the current directory, not the output directory
    CU_ASSERT_EQUAL_FATAL(setenv("MPIGAN_GNUPLOT", "./no-such-gnuplot", 1), 0);
    MG_ASSERT_FAILS(mg_plot_metrics(metrics, fresh, 640, 480, &err), err, "./no-such-gnuplot",
                    "cannot run gnuplot (MPIGAN_GNUPLOT): No such file or directory");
    char cwd[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    fake_gnuplot("wrap.sh", "exec gnuplot \"$@\"");
    CU_ASSERT_EQUAL_FATAL(chdir(mg_test_tmpdir()), 0);
    CU_ASSERT_EQUAL_FATAL(setenv("MPIGAN_GNUPLOT", "./wrap.sh", 1), 0);
    const int rc_wrapped = mg_plot_metrics(metrics, fresh, 640, 480, &err);
    CU_ASSERT_EQUAL_FATAL(chdir(cwd), 0);
    CU_ASSERT_EQUAL(rc_wrapped, 4);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(remove(path_in(fresh, PNGS[i])), 0);

    // not on PATH
    char *path = strdup(getenv("PATH"));
    CU_ASSERT_EQUAL_FATAL(unsetenv("MPIGAN_GNUPLOT"), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(mg_test_path("empty-bin"), 0700), 0);
    CU_ASSERT_EQUAL_FATAL(setenv("PATH", mg_test_path("empty-bin"), 1), 0);
    const int rc_path = mg_plot_metrics(metrics, fresh, 640, 480, &err);
    const mg_error err_path = err;
    CU_ASSERT_EQUAL_FATAL(setenv("PATH", path, 1), 0);
    free(path);
    MG_ASSERT_FAILS(rc_path, err_path, "gnuplot",
                    "not found on PATH (install gnuplot-nox, or set MPIGAN_GNUPLOT)");
    assert_no_png(fresh);

    // an earlier run's pictures, to be kept through every failure below
    CU_ASSERT_EQUAL_FATAL(mg_plot_metrics(metrics, out, 640, 480, &err), 4);
    size_t n_before = 0, n_after = 0;
    char *before = read_all(path_in(out, "losses.png"), &n_before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    const path_buf script = keep(path_in(out, "plots.gp"));

    // gnuplot's own form, after a warning and an echo of the command; one picture already made.
    // The stand-ins write where mpigan tells gnuplot to, its argument 2: prefix='DIR/'.
    fake_gnuplot("fail.sh", "eval \"$2\"; echo junk > \"${prefix}losses.png\"\n"
                            "echo '\"plots.gp\" line 3: warning: Skipping data file' >&2\n"
                            "echo 'plot file using 1:5' >&2\n"
                            "echo '                   ^' >&2\n"
                            "echo '\"plots.gp\" line 7: x range is invalid' >&2\n"
                            "exit 1");
    static const struct {
        const char *fake, *body, *what;
    } fails[] = {
        {"fail.sh", NULL, "x range is invalid"},
        {"other.sh",
         "echo 'something else went wrong' >&2; eval \"$2\"; echo junk > ${prefix}d_outputs.png; "
         "exit 3",
         "gnuplot: something else went wrong"},
        {"quiet.sh", "exit 2", "gnuplot failed (exit status 2)"},
        {"killed.sh", "eval \"$2\"; echo junk > ${prefix}losses.png; kill -9 $$",
         "gnuplot killed by signal 9"},
        {"lazy.sh", "eval \"$2\"; echo junk > ${prefix}losses.png; exit 0",
         "gnuplot wrote no d_outputs.png"},
    };
    for (size_t k = 0; k < sizeof fails / sizeof *fails; k++) {
        const char *fake = fails[k].body ? fake_gnuplot(fails[k].fake, fails[k].body)
                                         : mg_test_path(fails[k].fake);
        CU_ASSERT_EQUAL_FATAL(setenv("MPIGAN_GNUPLOT", fake, 1), 0);
        const int rc = mg_plot_metrics(metrics, out, 640, 480, &err);
        if (k == 0) {
            char where[4300];
            snprintf(where, sizeof where, "%s:7", script.s);
            MG_ASSERT_FAILS(rc, err, where, "gnuplot: %s", fails[k].what);
        } else {
            MG_ASSERT_FAILS(rc, err, script.s, "%s", fails[k].what);
        }
        char *after = read_all(path_in(out, "losses.png"), &n_after);
        CU_ASSERT_PTR_NOT_NULL_FATAL(after);
        CU_ASSERT(n_after == n_before && memcmp(before, after, n_before) == 0);
        free(after);
        assert_no_temporaries(out);
    }
    CU_ASSERT_EQUAL(setenv("MPIGAN_GNUPLOT", mg_test_path("fail.sh"), 1), 0);
    char where[4300];
    snprintf(where, sizeof where, "%s:7", mg_test_path("gp-parzen.gp"));
    MG_ASSERT_FAILS(mg_plot_parzen(eval, png, 640, 480, &err), err, where,
                    "gnuplot: x range is invalid");
    CU_ASSERT_FALSE(file_exists(png));
    free(before);
    CU_ASSERT_EQUAL(unsetenv("MPIGAN_GNUPLOT"), 0);
}

static const mg_test tests[] = {
    {"metrics_with_parzen", test_metrics_with_parzen},
    {"metrics_without_parzen", test_metrics_without_parzen},
    {"metrics_one_record", test_metrics_one_record},
    {"metrics_rerun", test_metrics_rerun},
    {"metrics_diverged", test_metrics_diverged},
    {"metrics_order_and_nan", test_metrics_order_and_nan},
    {"parzen", test_parzen},
    {"eval_record", test_eval_record},
    {"metrics_errors", test_metrics_errors},
    {"parzen_errors", test_parzen_errors},
    {"gnuplot_errors", test_gnuplot_errors},
    {"planted_links", test_planted_links},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return mg_test_main("plot", tests, argc, argv);
}
