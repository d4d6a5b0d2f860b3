#define _GNU_SOURCE
#include "testlib.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[4096];

static void remove_tmpdir(void)
{
    if (tmpdir[0] == '\0' || getenv("MG_TEST_KEEP"))
        return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
}

const char *mg_test_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/mpigan-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

const char *mg_test_path(const char *name)
{
    static char paths[16][4200];
    static int slot;
    char *path = paths[slot++ % 16];
    snprintf(path, 4200, "%s/%s", mg_test_tmpdir(), name);
    return path;
}

const char *mg_test_write_file(const char *name, const void *bytes, size_t n)
{
    const char *path = mg_test_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
    return path;
}

static int saved_stderr = -1;

void mg_test_stderr_begin(void)
{
    const char *path = mg_test_path("stderr");
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    FILE *f = fopen(path, "w");
    if (saved_stderr < 0 || !f || dup2(fileno(f), STDERR_FILENO) < 0) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

const char *mg_test_stderr_end(char *buf, size_t n)
{
    fflush(stderr);
    if (saved_stderr < 0 || dup2(saved_stderr, STDERR_FILENO) < 0) {
        perror("mg_test_stderr_end");
        exit(2);
    }
    close(saved_stderr);
    saved_stderr = -1;
    FILE *f = fopen(mg_test_path("stderr"), "r");
    size_t len = f ? fread(buf, 1, n - 1, f) : 0;
    buf[len] = '\0';
    if (f)
        fclose(f);
    return buf;
}

int mg_test_stall_report(const char *text, int rank, const char *what, int late, int exact)
{
    char head[4200];
    snprintf(head, sizeof head, "mpigan: stall: rank %d has waited ", rank);
    const char *p = text;
    int ok = strncmp(p, head, strlen(head)) == 0, named = 0, others = 0;
    if (ok) {
        p += strlen(head);
        const char *digits = p;
        while (*p >= '0' && *p <= '9')
            p++;
        snprintf(head, sizeof head, " s in %s; rank", what);
        ok = p > digits && strncmp(p, head, strlen(head)) == 0;
        p += ok ? strlen(head) : 0;
    }
    if (ok) { /* "s 2, 3 have" or " 3 has" */
        const int plural = *p == 's';
        p += plural;
        for (;;) {
            char *end;
            long r = strtol(p, &end, 10);
            if (end == p)
                break;
            named += r == late;
            others += r != late;
            p = *end == ',' ? end + 1 : end;
        }
        ok = named == 1 && !(exact && others) &&
             strcmp(p, plural ? " have not reached it\n" : " has not reached it\n") == 0;
    }
    if (!ok)
        printf("\n  rank %d wrote: [%s], not one stall report in %s naming rank %d%s", rank, text,
               what, late, exact ? " alone" : "");
    return ok;
}

void mg_test_sleep(double seconds)
{
    struct timespec t = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&t, &t) != 0)
        ;
}

int mg_test_main(const char *suite_name, const mg_test *tests, int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 2;
    }
    CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
    int added = 0;
    for (const mg_test *t = tests; t->name; t++) {
        int wanted = argc < 2;
        for (int i = 1; i < argc; i++)
            wanted |= strcmp(argv[i], t->name) == 0;
        if (wanted) {
            CU_add_test(suite, t->name, t->fn);
            added++;
        }
    }
    if (added == 0) {
        fprintf(stderr, "%s: no test named", argv[0]);
        for (int i = 1; i < argc; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0)
        return 2;
    return failed ? 1 : 0;
}
