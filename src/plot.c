/* Plots through gnuplot: the inputs are read with jansson and checked here, written out as a
 * plain data file and a gnuplot script (through files.h), and gnuplot is run on the script in the
 * output directory as
 *
 *   gnuplot -e "prefix='.plot-XXXXXX/'" SCRIPT
 *
 * The script names each picture prefix.NAME, with prefix '' unless set, so the same script writes
 * into a fresh private directory for us (whose pictures are moved into place only when gnuplot
 * succeeded and wrote every one) and the final names when a user reruns `gnuplot SCRIPT` after
 * restyling it. */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addchdir_np, strcasestr */
#include "mpigan/plot.h"

#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "mpigan/checkpoint.h"
#include "mpigan/config.h"
#include "mpigan/files.h"
#include "mpigan/generate.h"
#include "mpigan/image.h"
#include "mpigan/labels.h"
#include "mpigan/nn.h"
#include "mpigan/splits.h"
#include "mpigan/train.h"

extern char **environ;

/* ---- files ---- */

static char *xjoin(const char *a, const char *b, const char *c)
{
    const size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *s = mg_xmalloc(na + nb + nc + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
    return s;
}

/* dir and its missing parents (as report.c makes a run directory, without its length limit). */
static int mkdir_p(const char *dir, mg_error *err)
{
    if (*dir == '\0')
        return mg_fail(err, "plot: empty output directory name");
    char *path = xjoin(dir, "", "");
    int rc = 0;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        const char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            rc = mg_fail(err, "%s: cannot create directory: %s", path, strerror(errno));
            break;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    free(path);
    struct stat st;
    if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = mg_fail(err, "%s: not a directory", dir);
    return rc;
}

/* A text file (metrics.dat, a gnuplot script) through files.h: a fresh exclusive temporary beside
 * DIR/NAME, renamed over it by text_commit, so that neither gnuplot nor a reader sees half of it
 * and nothing is written through a link planted at a temporary name. */
static int text_create(mg_file *o, const char *dir, const char *name, mg_error *err)
{
    char *path = xjoin(dir, "/", name);
    mg_error what;
    int rc = mg_file_create(o, path, &what);
    if (rc)
        mg_fail(err, "%s: cannot write: %s", path, what.msg);
    free(path);
    return rc;
}

static int text_commit(mg_file *o, mg_error *err)
{
    mg_error what;
    if (mg_file_commit(o, &what))
        return mg_fail(err, "%s: cannot write: %s", o->path, what.msg);
    return 0;
}

/* ---- reading records ---- */

/* path opened for reading through files.h, which refuses what is not a regular file (a FIFO would
 * block, a directory is no record); NULL with "PATH: cannot read: ..." in err. */
static FILE *open_record(const char *path, mg_error *err)
{
    int fd;
    mg_error what;
    if (mg_file_open_read(&fd, path, &what)) {
        mg_fail(err, "%s: cannot read: %s", path, what.msg);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        mg_fail(err, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

static int is_word_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_' || c == '.' || c == '+' || c == '-';
}

/* Records of mpigan before its JSON went through jansson were printed with %g, which writes a
 * value that is not finite as a bare nan, -nan, inf or -inf: not JSON. Outside strings, each such
 * token becomes null, which is how mpigan writes one now, so jansson reads those records too.
 * Everything else is left as it is (newlines included: jansson's line numbers are the file's).
 * text: n bytes without a NUL; returns a new string of at most n + n / 3 + 1 bytes. */
static char *null_for_bare_nonfinite(const char *text, size_t n)
{
    char *out = mg_xmalloc(n + n / 3 + 1), *o = out;
    int in_string = 0;
    for (size_t i = 0; i < n;) {
        if (in_string) {
            if (text[i] == '"')
                in_string = 0;
            else if (text[i] == '\\' && i + 1 < n)
                *o++ = text[i++]; // the escaped character is copied next, whatever it is
            *o++ = text[i++];
            continue;
        }
        const size_t sign = text[i] == '-', end = i + sign + 3;
        if (end <= n && (!memcmp(text + i + sign, "nan", 3) || !memcmp(text + i + sign, "inf", 3)) &&
            (i == 0 || !is_word_char(text[i - 1])) && (end == n || !is_word_char(text[end]))) {
            memcpy(o, "null", 4);
            o += 4;
            i = end;
            continue;
        }
        in_string = text[i] == '"';
        *o++ = text[i++];
    }
    *o = '\0';
    return out;
}

/* text (n bytes, no NUL) as JSON, older records' bare non-finite tokens read as null; NULL with
 * jansson's error in *e. Keys must not repeat: which of two values would be meant? */
static json_t *load_json(const char *text, size_t n, json_error_t *e)
{
    char *clean = null_for_bare_nonfinite(text, n);
    json_t *j = json_loads(clean, JSON_REJECT_DUPLICATES, e);
    free(clean);
    return j;
}

/* A number of a record into *v: a JSON number, or null, which stands for a value that was not
 * finite (JSON has none): NaN, or what the record's "not_finite" entry for it says ("inf",
 * "-inf", "nan"). -1 for any other type. */
static int number_of(const json_t *x, const json_t *not_finite, double *v)
{
    if (json_is_number(x)) {
        *v = json_number_value(x);
        return 0;
    }
    if (!json_is_null(x))
        return -1;
    const char *what = json_string_value(not_finite);
    *v = !what ? NAN : !strcmp(what, "inf") ? INFINITY : !strcmp(what, "-inf") ? -INFINITY : NAN;
    return 0;
}

/* ---- gnuplot ---- */

/* s as a gnuplot string in single quotes, inside which only a quote is special (doubled). A
 * control character would end the command, and is drawn as '?': these are titles, not names. */
static void gp_string(FILE *f, const char *s)
{
    putc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("''", f);
        else
            putc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
    }
    putc('\'', f);
}

/* A number for a data file: undefined (NaN) for inf or NaN, so that a diverged loss ends its
 * curve rather than stretching the axis to infinity. */
static void gp_number(FILE *f, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("NaN", f);
}

/* What a script begins with. noenhanced: run names and paths are shown as written, not as
 * enhanced text (where '_' makes a subscript). */
static void gp_preamble(FILE *f, const char *script, int width, int height)
{
    fprintf(f,
            "# Rerun in this directory after restyling: gnuplot %s\n"
            "# (mpigan plot runs it as gnuplot -e \"prefix='.plot-XXXXXX/'\" %s: the pictures go\n"
            "# into a fresh private directory, and mpigan moves them into place.)\n"
            "if (!exists(\"prefix\")) prefix = ''\n"
            "set encoding utf8\n"
            "set terminal pngcairo size %d,%d noenhanced font ',10'\n"
            "set grid\n",
            script, script, width, height);
}

static int check_size(const char *path, int width, int height, mg_error *err)
{
    if (width < MG_PLOT_MIN_SIDE || width > MG_PLOT_MAX_SIDE || height < MG_PLOT_MIN_SIDE ||
        height > MG_PLOT_MAX_SIDE)
        return mg_fail(err, "%s: plot size %d x %d out of range (%d to %d pixels a side)", path,
                       width, height, MG_PLOT_MIN_SIDE, MG_PLOT_MAX_SIDE);
    return 0;
}

/* The error gnuplot reported in `out` (its stderr and stdout), as one message. gnuplot writes
 * `"SCRIPT" line N: what` after an echo of the command and a caret, and warnings in the same
 * form, which are not the error. */
static int gnuplot_error(const char *script_path, char *out, int status, mg_error *err)
{
    const char *last = NULL;
    for (char *line = out, *next; *line; line = next) {
        next = line + strcspn(line, "\n");
        if (*next)
            *next++ = '\0';
        if (*line == '\0' || strcasestr(line, "warning:"))
            continue;
        const char *close = line[0] == '"' ? strchr(line + 1, '"') : NULL;
        if (close && strncmp(close, "\" line ", 7) == 0) {
            char *end;
            const long n = strtol(close + 7, &end, 10);
            if (end > close + 7 && end[0] == ':' && end[1] == ' ')
                return mg_fail(err, "%s:%ld: gnuplot: %s", script_path, n, end + 2);
        }
        if (line[strspn(line, " ^")] != '\0') // not the caret under an echoed command
            last = line;
    }
    // not in gnuplot's form (a message from the shell, or from another binary): its last line,
    // as gnuplot would put the error after an echo of the command
    if (last)
        return mg_fail(err, "%s: gnuplot: %s", script_path, last);
    if (WIFSIGNALED(status))
        return mg_fail(err, "%s: gnuplot killed by signal %d", script_path, WTERMSIG(status));
    return mg_fail(err, "%s: gnuplot failed (exit status %d)", script_path, WEXITSTATUS(status));
}

/* A file exec would run; errno says why not. */
static int is_program(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (!S_ISREG(st.st_mode)) {
        errno = EACCES; // what exec says of a directory
        return 0;
    }
    return access(path, X_OK) == 0;
}

/* The gnuplot to run, as an absolute path (gnuplot starts in the output directory, where a
 * relative one would mean something else): MPIGAN_GNUPLOT or `gnuplot`, a name without '/'
 * searched on PATH as execvp would. Looked up here rather than left to posix_spawnp, because a
 * failed exec shows there as exit status 127 under some implementations (and valgrind). */
static char *find_gnuplot(mg_error *err)
{
    const char *env = getenv("MPIGAN_GNUPLOT");
    const char *bin = env && *env ? env : NULL;
    if (bin && strchr(bin, '/')) {
        char *abs = realpath(bin, NULL);
        if (abs && is_program(abs))
            return abs;
        mg_fail(err, "%s: cannot run gnuplot (MPIGAN_GNUPLOT): %s", bin, strerror(errno));
        free(abs);
        return NULL;
    }
    const char *name = bin ? bin : "gnuplot";
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/bin:/usr/bin";; p++) {
        const size_t len = strcspn(p, ":");
        char *candidate = mg_xmalloc(len + strlen(name) + 3);
        // an empty entry is the current directory
        sprintf(candidate, "%.*s/%s", (int)len, len ? p : ".", name);
        char *abs = realpath(candidate, NULL);
        free(candidate);
        if (abs && is_program(abs))
            return abs;
        free(abs);
        p += len;
        if (*p == '\0')
            break;
    }
    if (bin)
        mg_fail(err, "%s: not found on PATH (MPIGAN_GNUPLOT)", bin);
    else
        mg_fail(err, "gnuplot: not found on PATH (install gnuplot-nox, or set MPIGAN_GNUPLOT)");
    return NULL;
}

/* Runs `gnuplot -e SETTING script` in dir, its output collected for the error message.
 * posix_spawn starts gnuplot in dir without a fork of this (possibly large, possibly MPI)
 * process. */
static int run_gnuplot(const char *dir, const char *setting, const char *script, mg_error *err)
{
    char *bin = find_gnuplot(err);
    if (!bin)
        return -1;
    char *script_path = xjoin(dir, "/", script);
    char out[4096]; // gnuplot's first messages; the rest is read and dropped
    size_t n_out = 0;
    int pipe_fd[2] = {-1, -1}, rc = -1, status = 0;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    char *argv[] = {bin, "-e", (char *)setting, (char *)script, NULL};
    if (pipe2(pipe_fd, O_CLOEXEC) != 0) {
        mg_fail(err, "%s: cannot run gnuplot: %s", script_path, strerror(errno));
        goto done;
    }
    int e = posix_spawn_file_actions_init(&fa);
    if (e == 0) {
        // gnuplot must not wait for a terminal: its standard input is empty
        e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (!e)
            e = posix_spawn_file_actions_adddup2(&fa, pipe_fd[1], 1);
        if (!e)
            e = posix_spawn_file_actions_adddup2(&fa, pipe_fd[1], 2);
        if (!e)
            e = posix_spawn_file_actions_addchdir_np(&fa, dir);
        if (!e)
            e = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    close(pipe_fd[1]);
    if (e) {
        mg_fail(err, "%s: cannot run gnuplot: %s", bin, strerror(e));
        goto done;
    }

    for (;;) {
        char chunk[4096];
        const ssize_t k = read(pipe_fd[0], chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        const size_t keep = (size_t)k < sizeof out - 1 - n_out ? (size_t)k : sizeof out - 1 - n_out;
        memcpy(out + n_out, chunk, keep);
        n_out += keep;
    }
    out[n_out] = '\0';
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            mg_fail(err, "%s: cannot wait for gnuplot: %s", script_path, strerror(errno));
            goto done;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = 0;
    else
        gnuplot_error(script_path, out, status, err);
done:
    if (pipe_fd[0] >= 0)
        close(pipe_fd[0]);
    free(script_path);
    free(bin);
    return rc;
}

/* Removes the private directory of a gnuplot run and whatever is in it (the pictures of a failed
 * run, or something a stand-in for gnuplot made): only this process writes there. */
static void remove_private(const char *priv)
{
    DIR *d = opendir(priv);
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(priv);
}

/* Runs `script` in dir, which writes each of names[0..n) as prefix.NAME, and moves them into place
 * once gnuplot succeeded and wrote them all. prefix is a fresh private directory in dir (mkdtemp:
 * mode 0700, a name nobody could have planted a link at), so gnuplot, which opens its output by
 * name and follows links, never writes through one. On any failure the private directory goes and
 * the pictures of an earlier run stay as they were. */
static int draw(const char *dir, const char *script, const char *const *names, int n,
                mg_error *err)
{
    char *priv = xjoin(dir, "/.plot-XXXXXX", "");
    if (!mkdtemp(priv)) {
        mg_fail(err, "%s: cannot create directory: %s", priv, strerror(errno));
        free(priv);
        return -1;
    }
    // relative to dir, where gnuplot runs; mkdtemp's letters need no quoting
    char *setting = xjoin("prefix='", strrchr(priv, '/') + 1, "/'");
    int rc = run_gnuplot(dir, setting, script, err);
    free(setting);
    char *tmp[4];
    for (int i = 0; i < n; i++) {
        tmp[i] = xjoin(priv, "/", names[i]);
        struct stat st;
        if (rc == 0 && (lstat(tmp[i], &st) != 0 || !S_ISREG(st.st_mode)))
            rc = mg_fail(err, "%s/%s: gnuplot wrote no %s", dir, script, names[i]);
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            char *path = xjoin(dir, "/", names[i]);
            mg_error what;
            if (mg_file_commit_name(tmp[i], path, &what))
                rc = mg_fail(err, "%s: cannot write: %s", path, what.msg);
            free(path);
        }
        free(tmp[i]);
    }
    remove_private(priv);
    free(priv);
    return rc;
}

/* set title 'RUN: what' */
static void gp_title(FILE *f, const char *run, const char *what)
{
    char *title = *run ? xjoin(run, ": ", what) : xjoin(what, "", "");
    fputs("set title ", f);
    gp_string(f, title);
    putc('\n', f);
    free(title);
}

/* ---- training curves ---- */

/* metrics.dat's columns (gnuplot counts from 1): the fields the plots use, then a few more for a
 * user's own plots. */
enum {
    COL_STEP, COL_D_LOSS, COL_G_LOSS, COL_D_REAL, COL_D_FAKE, COL_RATE, // every plot needs these
    COL_PARZEN_LL, COL_PARZEN_SIGMA, COL_EPOCH, COL_ELAPSED, COL_LR_D, COL_LR_G, N_COLUMNS
};
static const char *const column_names[N_COLUMNS] = {
    "step", "d_loss", "g_loss", "d_real", "d_fake", "samples_per_s",
    "parzen_ll", "parzen_sigma", "epoch", "elapsed_s", "lr_d", "lr_g"};
#define REQUIRED_COLUMNS ((1u << COL_PARZEN_LL) - 1)

/* One metrics record (one line of n bytes, no NUL): a JSON object whose columns hold numbers, or
 * null for a value that was not finite (a diverged loss: drawn as a gap, not an error). v[c] is
 * set for each column c in *seen. Other keys may hold anything: later versions add fields, and
 * mpigan itself adds "skipped" and "not_finite". */
static int parse_record(const char *line, size_t n, double *v, unsigned *seen)
{
    *seen = 0;
    json_error_t e;
    json_t *o = load_json(line, n, &e);
    const json_t *not_finite = json_object_get(o, "not_finite");
    int rc = json_is_object(o) ? 0 : -1;
    for (int c = 0; c < N_COLUMNS && rc == 0; c++) {
        const json_t *x = json_object_get(o, column_names[c]);
        if (!x)
            continue;
        // a step is a count, always written as one: never null
        rc = c == COL_STEP && !json_is_number(x)
                 ? -1
                 : number_of(x, json_object_get(not_finite, column_names[c]), &v[c]);
        *seen |= 1u << c;
    }
    json_decref(o);
    return rc;
}

/* Checks (out NULL) or converts to columns (out a data file) at most max_lines lines of
 * metrics.jsonl; blank lines are skipped. Returns the number of records or -1; *lines is the
 * number of lines read; *finite gets bit c set if a record holds a finite value in column c
 * (a curve with none has nothing to scale its axis to). */
static int convert_metrics(FILE *in, const char *path, FILE *out, long max_lines, long *lines,
                           unsigned *finite, mg_error *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int records = 0, rc = 0;
    *lines = 0;
    while (*lines < max_lines && (len = getline(&line, &cap, in)) >= 0) {
        ++*lines;
        const int text = strlen(line) == (size_t)len; // no NUL inside
        if (text && line[strspn(line, " \t\r\n")] == '\0')
            continue;
        double v[N_COLUMNS];
        unsigned seen;
        if (!text || parse_record(line, (size_t)len, v, &seen) != 0) {
            rc = mg_fail(err, "%s:%ld: not a metrics record", path, *lines);
            break;
        }
        if ((seen & REQUIRED_COLUMNS) != REQUIRED_COLUMNS) {
            int c = 0;
            while (seen & 1u << c)
                c++;
            rc = mg_fail(err, "%s:%ld: no \"%s\"", path, *lines, column_names[c]);
            break;
        }
        records++;
        for (int c = 0; c < N_COLUMNS; c++)
            if (seen & 1u << c && isfinite(v[c]))
                *finite |= 1u << c;
        if (!out)
            continue;
        for (int c = 0; c < N_COLUMNS; c++) {
            if (c)
                putc(' ', out);
            if (seen & 1u << c)
                gp_number(out, c == COL_STEP ? "%.17g" : "%.9g", v[c]);
            else
                putc('?', out);
        }
        putc('\n', out);
    }
    if (rc == 0 && ferror(in))
        rc = mg_fail(err, "%s: cannot read: %s", path, strerror(errno));
    free(line);
    return rc ? -1 : records;
}

/* The name of the directory that holds path (the run directory), or "". */
static char *run_name(const char *path)
{
    char *full = realpath(path, NULL);
    if (!full)
        return xjoin("", "", "");
    *strrchr(full, '/') = '\0'; // absolute: there is a '/'
    const char *slash = strrchr(full, '/');
    char *name = xjoin(slash ? slash + 1 : full, "", "");
    free(full);
    return name;
}

/* Curves are lines, with a point at each record while there are few: a line through one record
 * shows nothing. */
enum { FEW_RECORDS = 100 };

/* finite: convert_metrics's columns with a finite value. */
static void write_metrics_script(FILE *f, const char *run, int width, int height, int records,
                                 unsigned finite)
{
    fputs("# Training curves of a run from metrics.dat, written by mpigan plot.\n", f);
    gp_preamble(f, "plots.gp", width, height);
    fprintf(f,
            "# metrics.dat: one row per record of metrics.jsonl; '?' is a field the record did "
            "not\n"
            "# carry (skipped, not drawn as zero), NaN a value that was not finite (a gap)\n"
            "set datafile missing '?'\n"
            "file = 'metrics.dat'\n"
            "curve = '%s'\n"
            "set key below\n"
            "set xlabel 'training step'\n\n",
            records <= FEW_RECORDS ? "linespoints pt 7 ps 0.6" : "lines");

    fputs("set output prefix.'losses.png'\n", f);
    gp_title(f, run, "D and G loss, mean over each log interval");
    fprintf(f,
            "set ylabel 'loss (nats)'\n"
            "# D's loss -log D(x) - log(1 - D(G(z))) is 2 log 2 where D = 1/2 everywhere\n"
            "plot file using %d:%d with @curve lw 2 title 'D loss', \\\n"
            "     file using %d:%d with @curve lw 2 title 'G loss', \\\n"
            "     2 * log(2) with lines dt 3 lw 2 lc 'black' "
            "title 'D loss at equilibrium, 2 log 2 = 1.386'\n"
            "unset output\n\n",
            COL_STEP + 1, COL_D_LOSS + 1, COL_STEP + 1, COL_G_LOSS + 1);

    fputs("set output prefix.'d_outputs.png'\n", f);
    gp_title(f, run, "D output, mean over each log interval");
    fprintf(f,
            "set ylabel 'D output (probability of real)'\n"
            "set yrange [0:1]\n"
            "plot file using %d:%d with @curve lw 2 title 'D(x), training examples', \\\n"
            "     file using %d:%d with @curve lw 2 title 'D(G(z)), generated samples', \\\n"
            "     0.5 with lines dt 3 lw 2 lc 'black' title 'D = 1/2 at equilibrium'\n"
            "unset output\n"
            "set autoscale y\n\n",
            COL_STEP + 1, COL_D_REAL + 1, COL_STEP + 1, COL_D_FAKE + 1);

    fputs("set output prefix.'throughput.png'\n", f);
    gp_title(f, run, "training throughput, mean over each log interval");
    fprintf(f,
            "set ylabel 'samples/s (training examples per second)'\n"
            "%s"
            "plot file using %d:%d with @curve lw 2 notitle\n"
            "unset output\n"
            "set autoscale y\n",
            finite & 1u << COL_RATE ? "set yrange [0:*]\n"
                                    : "set yrange [0:1] # no finite value to scale it to\n",
            COL_STEP + 1, COL_RATE + 1);
    if (!(finite & 1u << COL_PARZEN_LL))
        return;

    fputs("\nset output prefix.'parzen_training.png'\n", f);
    gp_title(f, run, "Parzen window log-likelihood during training");
    fprintf(f,
            "set ylabel 'mean log-likelihood (nats)'\n"
            "plot file using %d:%d with linespoints lw 2 pt 7 title 'parzen_ll'\n"
            "unset output\n",
            COL_STEP + 1, COL_PARZEN_LL + 1);
}

int mg_plot_metrics(const char *metrics_path, const char *out_dir, int width, int height,
                    mg_error *err)
{
    static const char *const pngs[] = {"losses.png", "d_outputs.png", "throughput.png",
                                       "parzen_training.png"};
    if (check_size(out_dir, width, height, err))
        return -1;
    FILE *in = open_record(metrics_path, err);
    if (!in)
        return -1;

    // checked whole before anything is written, so a bad file leaves no trace; the conversion
    // then reads the same lines, though a running training may append more meanwhile
    long lines;
    unsigned finite = 0;
    int records = convert_metrics(in, metrics_path, NULL, LONG_MAX, &lines, &finite, err);
    if (records == 0)
        records = mg_fail(err, "%s: no records to plot", metrics_path);
    mg_file dat;
    if (records < 0 || mkdir_p(out_dir, err) || text_create(&dat, out_dir, "metrics.dat", err)) {
        fclose(in);
        return -1;
    }
    fputs("#", dat.f);
    for (int c = 0; c < N_COLUMNS; c++)
        fprintf(dat.f, " %s", column_names[c]);
    putc('\n', dat.f);
    rewind(in);
    records = convert_metrics(in, metrics_path, dat.f, lines, &lines, &finite, err);
    fclose(in);
    if (records < 0) {
        mg_file_discard(&dat);
        return -1;
    }
    mg_file gp;
    if (text_commit(&dat, err) || text_create(&gp, out_dir, "plots.gp", err))
        return -1;
    char *run = run_name(metrics_path);
    write_metrics_script(gp.f, run, width, height, records, finite);
    free(run);
    if (text_commit(&gp, err))
        return -1;
    const int n = finite & 1u << COL_PARZEN_LL ? 4 : 3;
    return draw(out_dir, "plots.gp", pngs, n, err) ? -1 : n;
}

/* ---- the Parzen validation curve ---- */

/* An eval record with 1000 sigmas is about 30 KB: a file over 1 MiB is something else. */
enum { EVAL_MAX_SIGMAS = 1000, EVAL_MAX_BYTES = 1 << 20 };

/* The fields of an eval record that the plot uses; all but step must be there. */
enum { E_SIGMAS, E_VALID_LL, E_SIGMA, E_TEST_LL, E_TEST_SE, E_REAL, E_SAMPLES, E_STEP, E_FIELDS };
static const char *const eval_keys[E_FIELDS] = {"sigmas", "valid_ll", "sigma", "test_ll",
                                                "test_se", "real", "samples", "step"};
static const char *const eval_kinds[E_FIELDS] = {
    "array of numbers", "array of numbers", "number", "number", "number", "boolean", "number",
    "number"};

typedef struct {
    double sigmas[EVAL_MAX_SIGMAS], valid_ll[EVAL_MAX_SIGMAS]; // (n_sigmas), (n_ll)
    int n_sigmas, n_ll;
    double sigma, test_ll, test_se, samples, step;
    int real, has_step;
} eval_record;

/* An array of at most EVAL_MAX_SIGMAS numbers (null: not finite, as number_of), not_finite its
 * entry in the record's "not_finite" object (an array as long, or NULL): 0, -1 if it is not such
 * an array, -2 if it is longer. */
static int array_of(const json_t *a, const json_t *not_finite, double *x, int *n)
{
    *n = 0;
    if (!json_is_array(a))
        return -1;
    if (json_array_size(a) > EVAL_MAX_SIGMAS)
        return -2;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (number_of(json_array_get(a, i), json_array_get(not_finite, i), &x[i]))
            return -1;
    *n = (int)json_array_size(a);
    return 0;
}

/* The field f of the record o into e: 0, -1 if it has another type, -2 for an array that is too
 * long. */
static int field_of(const json_t *o, eval_record *e, int f)
{
    double *num[E_FIELDS] = {[E_SIGMA] = &e->sigma, [E_TEST_LL] = &e->test_ll,
                             [E_TEST_SE] = &e->test_se, [E_SAMPLES] = &e->samples,
                             [E_STEP] = &e->step};
    const json_t *x = json_object_get(o, eval_keys[f]);
    const json_t *not_finite = json_object_get(json_object_get(o, "not_finite"), eval_keys[f]);
    switch (f) {
    case E_SIGMAS:
        return array_of(x, not_finite, e->sigmas, &e->n_sigmas);
    case E_VALID_LL:
        return array_of(x, not_finite, e->valid_ll, &e->n_ll);
    case E_REAL:
        e->real = json_is_true(x);
        return json_is_boolean(x) ? 0 : -1;
    case E_STEP: // optional, and only for the title: a step that is not a number is none
        e->has_step = json_is_number(x);
        e->step = json_number_value(x);
        return x && !json_is_number(x) && !json_is_null(x) ? -1 : 0;
    default:
        return number_of(x, not_finite, num[f]);
    }
}

/* text: the n bytes of the file path, without a NUL. */
static int parse_eval(const char *path, const char *text, size_t n, eval_record *e, mg_error *err)
{
    json_error_t je;
    json_t *o = load_json(text, n, &je);
    if (!o) {
        // jansson names a repeated key only by the text around it
        if (json_error_code(&je) == json_error_duplicate_key)
            return mg_fail(err, "%s:%d: %s", path, je.line, je.text);
        return mg_fail(err, "%s:%d: malformed JSON", path, je.line > 0 ? je.line : 1);
    }
    int rc = 0;
    if (!json_is_object(o))
        rc = mg_fail(err, "%s: not a JSON object", path);
    for (int f = 0; f < E_FIELDS && rc == 0; f++) {
        const int r = field_of(o, e, f);
        if (r == -2)
            rc = mg_fail(err, "%s: \"%s\" has more than %d entries", path, eval_keys[f],
                         EVAL_MAX_SIGMAS);
        else if (r)
            rc = mg_fail(err, "%s: no \"%s\" %s", path, eval_keys[f], eval_kinds[f]);
    }
    json_decref(o);
    return rc;
}

/* What the plot needs beyond the types: matching arrays, and positive widths for the log axis. */
static int check_eval(const char *path, const eval_record *e, mg_error *err)
{
    if (e->n_sigmas == 0)
        return mg_fail(err, "%s: \"sigmas\" is empty", path);
    if (e->n_ll != e->n_sigmas)
        return mg_fail(err, "%s: \"sigmas\" has %d entries but \"valid_ll\" has %d", path,
                       e->n_sigmas, e->n_ll);
    for (int i = 0; i < e->n_sigmas; i++)
        if (!(e->sigmas[i] > 0 && isfinite(e->sigmas[i])))
            return mg_fail(err, "%s: sigmas[%d] = %g is not a positive width", path, i,
                           e->sigmas[i]);
    if (!(e->sigma > 0 && isfinite(e->sigma)))
        return mg_fail(err, "%s: \"sigma\" = %g is not a positive width", path, e->sigma);
    if (!(e->samples >= 0 && e->samples <= 1e15 && e->samples == floor(e->samples)))
        return mg_fail(err, "%s: \"samples\" = %g is not a count", path, e->samples);
    return 0;
}

/* The whole file (*n bytes, NUL-terminated), or NULL. */
static char *read_text(const char *path, size_t *n, mg_error *err)
{
    FILE *f = open_record(path, err);
    if (!f)
        return NULL;
    char *text = mg_xmalloc(EVAL_MAX_BYTES + 1);
    *n = fread(text, 1, EVAL_MAX_BYTES + 1, f);
    const int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e)
        mg_fail(err, "%s: cannot read: %s", path, strerror(e));
    else if (*n > EVAL_MAX_BYTES)
        mg_fail(err, "%s: larger than %d bytes: not an eval record", path, EVAL_MAX_BYTES);
    else if (memchr(text, '\0', *n))
        mg_fail(err, "%s: not a text file", path);
    if (e || *n > EVAL_MAX_BYTES || memchr(text, '\0', *n)) {
        free(text);
        return NULL;
    }
    text[*n] = '\0';
    return text;
}

static void write_parzen_script(FILE *f, const eval_record *e, const char *script,
                                const char *png, int width, int height)
{
    fputs("# The Parzen window validation curve of an eval record, written by mpigan plot.\n", f);
    gp_preamble(f, script, width, height);
    fputs("$valid << EOD\n# sigma, mean validation log-likelihood (NaN: not finite)\n", f);
    int finite = 0;
    for (int i = 0; i < e->n_sigmas; i++) {
        finite += isfinite(e->valid_ll[i]) != 0;
        gp_number(f, "%.9g", e->sigmas[i]);
        putc(' ', f);
        gp_number(f, "%.9g", e->valid_ll[i]);
        putc('\n', f);
    }
    fputs("EOD\n\nset output prefix.", f);
    gp_string(f, png);
    putc('\n', f);

    // two lines: the result, then what it was measured on
    char result[256], source[128];
    snprintf(result, sizeof result, "Parzen window: test LL %.2f ± %.2f nats at σ = %g",
             e->test_ll, e->test_se, e->sigma);
    const int n = snprintf(source, sizeof source, "validation curve of %.0f %s", e->samples,
                           e->real ? "real examples" : "generated samples");
    if (e->has_step && !e->real)
        snprintf(source + n, sizeof source - n, " at step %.0f", e->step);
    fputs("set title ", f);
    gp_string(f, result);
    fputs(".\"\\n\".", f); // a newline: only a double-quoted string has escapes
    gp_string(f, source);
    fprintf(f,
            "\nset logscale x\n"
            "set xlabel 'window width σ (data units, log scale)'\n"
            "set ylabel 'mean validation log-likelihood (nats)'\n"
            "set key below\n"
            "%s"
            "chosen = %.9g\n"
            "set arrow from chosen, graph 0 to chosen, graph 1 nohead dt 2 lw 2 lc 'red'\n"
            "plot $valid using 1:2 with linespoints lw 2 pt 7 title 'validation set', \\\n"
            "     NaN with lines dt 2 lw 2 lc 'red' title sprintf('chosen σ = %%g', chosen)\n"
            "unset output\n",
            finite ? "" : "set yrange [-1:1] # no finite value to scale it to\n", e->sigma);
}

int mg_plot_parzen(const char *eval_json, const char *png_path, int width, int height,
                   mg_error *err)
{
    if (check_size(png_path, width, height, err))
        return -1;
    const char *slash = strrchr(png_path, '/');
    const char *png = slash ? slash + 1 : png_path;
    if (*png == '\0')
        return mg_fail(err, "%s: not a file name", png_path);
    for (const char *c = png; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) // would end a line of the script
            return mg_fail(err, "%s: control character in the file name", png_path);

    eval_record *e = mg_xmalloc(sizeof *e);
    size_t n_text;
    char *text = read_text(eval_json, &n_text, err);
    int rc = text ? parse_eval(eval_json, text, n_text, e, err) : -1;
    free(text);
    if (rc == 0)
        rc = check_eval(eval_json, e, err);

    char *dir = NULL, *script = NULL;
    mg_file gp;
    if (rc == 0) {
        // dir of png_path, and its name with .png replaced by .gp
        dir = slash ? xjoin(png_path, "", "") : xjoin(".", "", "");
        if (slash)
            dir[slash == png_path ? 1 : slash - png_path] = '\0';
        const size_t n = strlen(png);
        script = xjoin(png, ".gp", "");
        if (n > 4 && strcmp(png + n - 4, ".png") == 0)
            strcpy(script + n - 4, ".gp");
        rc = text_create(&gp, dir, script, err);
    }
    if (rc == 0) {
        write_parzen_script(gp.f, e, script, png, width, height);
        rc = text_commit(&gp, err);
    }
    if (rc == 0)
        rc = draw(dir, script, &png, 1, err);
    free(e);
    free(dir);
    free(script);
    return rc;
}

/* ---- the class histogram of an eval record's classifier figures ---- */

/* The "classifier" object of an eval record (mg_quality_json), what the bar chart needs. */
typedef struct {
    int classes, coverage, cls;
    int64_t samples;
    int64_t *histogram;           // (classes)
    double fid, score, accuracy; // accuracy NaN when absent
    double step;
    int has_step, real;
} classes_record;

/* 1 with the record's figures in q (histogram malloc'd), 0 if it has no "classifier" object,
 * -1 (err) if it has a malformed one. */
static int parse_classes(const char *path, const char *text, size_t n, classes_record *q,
                         mg_error *err)
{
    json_error_t je;
    json_t *o = load_json(text, n, &je);
    if (!o)
        return mg_fail(err, "%s:%d: malformed JSON", path, je.line > 0 ? je.line : 1);
    const json_t *c = json_object_get(o, "classifier");
    int rc = c ? 1 : 0;
    memset(q, 0, sizeof *q);
    q->accuracy = NAN;
    q->cls = -1;
    const json_t *h = json_object_get(c, "histogram"), *bad = json_object_get(c, "not_finite");
    const json_t *step = json_object_get(o, "step");
    q->has_step = json_is_integer(step);
    q->step = q->has_step ? (double)json_integer_value(step) : 0;
    q->real = json_is_true(json_object_get(o, "real"));
    if (c && (!json_is_object(c) || !json_is_integer(json_object_get(c, "classes")) ||
              !json_is_integer(json_object_get(c, "coverage")) || !json_is_array(h))) {
        rc = mg_fail(err, "%s: \"classifier\" is not an object with classes, coverage and a "
                          "histogram",
                     path);
    } else if (c) {
        const json_int_t k = json_integer_value(json_object_get(c, "classes"));
        if (k < 1 || k > MG_MAX_CLASSES || json_array_size(h) != (size_t)k)
            rc = mg_fail(err, "%s: the classifier's histogram has %zu entries for %lld classes",
                         path, json_array_size(h), (long long)k);
        else {
            q->classes = (int)k;
            q->coverage = (int)json_integer_value(json_object_get(c, "coverage"));
            q->histogram = mg_xmalloc((size_t)k * sizeof *q->histogram);
            for (int i = 0; i < q->classes && rc == 1; i++) {
                const json_t *v = json_array_get(h, (size_t)i);
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                    rc = mg_fail(err, "%s: histogram[%d] is not a count", path, i);
                else
                    q->samples += (q->histogram[i] = json_integer_value(v));
            }
            if (rc == 1 && (number_of(json_object_get(c, "fid"), json_object_get(bad, "fid"),
                                      &q->fid) ||
                            number_of(json_object_get(c, "score"), json_object_get(bad, "score"),
                                      &q->score)))
                rc = mg_fail(err, "%s: the classifier's \"fid\" or \"score\" is not a number",
                             path);
            const json_t *acc = json_object_get(c, "accuracy"), *cls = json_object_get(c, "class");
            if (rc == 1 && acc && number_of(acc, json_object_get(bad, "accuracy"), &q->accuracy))
                rc = mg_fail(err, "%s: the classifier's \"accuracy\" is not a number", path);
            if (json_is_integer(cls))
                q->cls = (int)json_integer_value(cls);
        }
    }
    if (rc < 0) {
        free(q->histogram);
        q->histogram = NULL;
    }
    json_decref(o);
    return rc;
}

static void write_classes_script(FILE *f, const classes_record *q, const char *script,
                                 const char *png, int width, int height)
{
    fputs("# The class histogram of an eval record's samples, written by mpigan plot.\n", f);
    gp_preamble(f, script, width, height);
    fputs("$counts << EOD\n# class, samples the classifier puts in it\n", f);
    for (int k = 0; k < q->classes; k++)
        fprintf(f, "%d %lld\n", k, (long long)q->histogram[k]);
    fputs("EOD\n\nset output prefix.", f);
    gp_string(f, png);
    putc('\n', f);
    char result[256], source[160];
    int at = snprintf(result, sizeof result, "classes of %lld %s: %d of %d covered; FID %.3g, "
                      "score %.3g", (long long)q->samples,
                      q->real ? "real examples" : "generated samples", q->coverage, q->classes,
                      q->fid, q->score);
    if (!isnan(q->accuracy))
        snprintf(result + at, sizeof result - at, ", conditional accuracy %.3f", q->accuracy);
    at = snprintf(source, sizeof source, "the fair share and half of it (coverage) dashed");
    if (q->has_step && !q->real)
        at += snprintf(source + at, sizeof source - at, "; step %.0f", q->step);
    if (q->cls >= 0)
        snprintf(source + at, sizeof source - at, "; all drawn for class %d", q->cls);
    fputs("set title ", f);
    gp_string(f, result);
    fputs(".\"\\n\".", f); // a newline: only a double-quoted string has escapes
    gp_string(f, source);
    const double fair = (double)q->samples / q->classes;
    fprintf(f,
            "\nset style fill solid 0.6 border\n"
            "set boxwidth 0.8\n"
            "set xlabel 'class (the classifier''s argmax)'\n"
            "set ylabel 'samples'\n"
            "set xrange [-0.6:%d.4]\n"
            "set yrange [0:*]\n"
            "set xtics 1\n"
            "set key off\n"
            "fair = %.9g\n"
            "set arrow from graph 0, first fair to graph 1, first fair nohead dt 2 lc 'black'\n"
            "set arrow from graph 0, first fair / 2 to graph 1, first fair / 2 nohead dt 3 "
            "lc 'red'\n"
            "plot $counts using 1:2 with boxes lc 'steelblue'\n"
            "unset output\n",
            q->classes - 1, fair);
}

/* classes-<step>.png of an eval record with classifier figures; 1 if drawn, 0 if it has none. */
static int plot_classes(const char *eval_json, const char *dir, const char *png, int width,
                        int height, mg_error *err)
{
    size_t n_text;
    char *text = read_text(eval_json, &n_text, err);
    if (!text)
        return -1;
    classes_record q;
    int rc = parse_classes(eval_json, text, n_text, &q, err);
    free(text);
    if (rc <= 0)
        return rc;
    char *script = xjoin(png, ".gp", "");
    strcpy(script + strlen(png) - 4, ".gp");
    mg_file gp;
    rc = text_create(&gp, dir, script, err);
    if (rc == 0) {
        write_classes_script(gp.f, &q, script, png, width, height);
        rc = text_commit(&gp, err);
    }
    if (rc == 0)
        rc = draw(dir, script, &png, 1, err);
    free(script);
    free(q.histogram);
    return rc ? -1 : 1;
}

/* ---- mpigan plot RUN_DIR: every picture of a run, serially (no MPI): the training curves, a
 * Parzen curve per eval record, and a sample grid of the newest checkpoint with nearest
 * neighbours ---- */

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
        char bars[MG_PATH_MAX + 300];
        snprintf(bars, sizeof bars, "classes-%.*s.png", (int)strlen(names[i]) - 10,
                 names[i] + 5);
        const int drawn = rc == 0 ? plot_classes(json, out_dir, bars, w, h, err) : 0;
        if (drawn < 0)
            rc = -1;
        else if (drawn)
            printf("  %s/%s\n", out_dir, bars);
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
    if (mg_checkpoint_find_current(ckpt, sizeof ckpt, run_dir, &none))
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
    const mg_pixel_scale scale = mg_pixel_scale_of(&cfg);
    const int n = cfg.samples.count, nz = cfg.generator.noise_dim;
    /* A conditional G: sample i of class i mod classes, as the snapshots, one row per class. */
    const int classes = mg_config_gan_classes(&cfg);
    int cols = cfg.samples.columns;
    if (cols <= 0)
        while (cols * cols < n)
            cols++;
    if (classes)
        cols = (n + classes - 1) / classes;
    const int rows = classes ? classes : (n + cols - 1) / cols;
    const size_t dim = (size_t)C * H * W;
    mg_net g;
    if (mg_net_init(&g, &cfg.generator.net, nz + classes, n, err))
        return -1;
    mg_real *zin = mg_xmalloc((size_t)n * (nz + classes) * sizeof *zin);
    int32_t *labels = mg_xmalloc((size_t)n * sizeof *labels);
    mg_real *z = mg_xmalloc((size_t)n * nz * sizeof *z);
    mg_real *x = mg_xmalloc((size_t)n * dim * sizeof *x);
    mg_real *q = mg_xmalloc((size_t)rows * dim * sizeof *q);
    int *idx = mg_xmalloc((size_t)rows * sizeof *idx);
    mg_dataset data = {0};
    rc = mg_checkpoint_load_generator(&g, mg_config_gan_classes(&cfg), ckpt, err);
    if (rc == 0) {
        mg_sample_noise(z, &cfg, 0, n, 0);
        for (int i = 0; i < n; i++)
            labels[i] = classes ? i % classes : 0;
        if (classes)
            mg_label_join(zin, z, n, (size_t)nz, labels, classes, 1);
        memcpy(x, mg_net_forward(&g, classes ? zin : z, n, NULL), (size_t)n * dim * sizeof *x);
        for (int r = 0; r < rows; r++) {
            int last = (r + 1) * cols < n ? (r + 1) * cols - 1 : n - 1;
            if (classes)
                last = r < n ? mg_class_grid_last(n, classes, r) : 0;
            memcpy(q + (size_t)r * dim, x + (size_t)last * dim, dim * sizeof *q);
        }
        const int nearest = cfg.samples.nearest;
        rc = nearest ? mg_split_read_train(&data, &cfg, err) : 0;
        if (rc == 0 && nearest)
            rc = mg_nearest_in(idx, q, rows, &data, mg_gemm_blas, err);
        for (int r = 0; rc == 0 && nearest && r < rows; r++)
            mg_dataset_row(&data, (size_t)idx[r], q + (size_t)r * dim);
        char png[MG_PATH_MAX + 32];
        snprintf(png, sizeof png, "%s/samples.png", out_dir);
        if (rc == 0)
            rc = classes ? mg_png_class_grid(png, x, n, classes, C, H, W, nearest ? q : NULL,
                                             &scale, err)
                         : mg_png_grid(png, x, n, cols, C, H, W, nearest ? q : NULL, &scale, err);
        if (rc == 0)
            printf("  %s (%s)\n", png, ckpt);
    }
    mg_dataset_free(&data);
    free(idx);
    free(q);
    free(x);
    free(z);
    free(zin);
    free(labels);
    mg_net_free(&g);
    return rc == 0 ? 1 : -1;
}

int mg_plot_run_dir(const mg_plot_opts *o)
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
