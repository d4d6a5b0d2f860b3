/* Errors: every fallible library call takes an `mg_error *` and returns 0 on success or -1 with
 * one line in `err->msg` that names the file (or option) and the problem. Nothing here prints or
 * exits: the front end decides, so that tests can assert the exact message. */
#ifndef MPIGAN_ERROR_H
#define MPIGAN_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define MG_ERROR_LEN 1024

/* What the mpigan program exits with; every command returns one. */
enum {
    MG_EXIT_OK = 0,
    MG_EXIT_RUNTIME = 1, /* failed while running: a write failed, replicas drifted apart */
    MG_EXIT_INPUT = 2,   /* bad input found before any work: command line, config, data, files */
    MG_EXIT_STOPPED = 3, /* stopped by a signal after writing a checkpoint: resume, or requeue */
};

typedef struct {
    char msg[MG_ERROR_LEN];
} mg_error;

/* Formats the message into err (if err is non-NULL) and returns -1, so that a failing path
 * reads `return mg_fail(err, "%s: truncated", path);`. */
int mg_fail(mg_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mg_vfail(mg_error *err, const char *fmt, va_list ap);

/* Allocation that cannot fail quietly: on failure it prints file and line and exits 1. Used only
 * at set-up, never in a hot loop. */
void *mg_xmalloc_at(size_t bytes, const char *file, int line);
void *mg_xcalloc_at(size_t n, size_t size, const char *file, int line);
#define mg_xmalloc(bytes) mg_xmalloc_at((bytes), __FILE__, __LINE__)
#define mg_xcalloc(n, size) mg_xcalloc_at((n), (size), __FILE__, __LINE__)

/* Large zeroed buffers (parameters, gradients, activations, optimizer state) on their own
 * mapping, 2 MiB aligned and advised for transparent huge pages (Debian's default THP mode is
 * madvise). A GEMM walking a 1200 x 1200 weight matrix row by row touches a new 4 KiB page every
 * row; with 2 MiB pages the TLB covers a whole layer. Measured on the paper's MNIST model, 1 rank,
 * 4 alternating pairs: 35.5-36.8 ms per iteration with 4 KiB pages, 34.5-35.1 ms advised. Pages
 * are backed when first touched, so untouched parts cost no memory. NULL when out of memory;
 * free with the same size. */
void *mg_big_alloc(size_t bytes);
void mg_big_free(void *p, size_t bytes);

#endif
