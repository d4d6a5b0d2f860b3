/* Errors: every fallible library call takes an `mg_error *` and returns 0 on success or -1 with
 * one line in `err->msg` that names the file (or option) and the problem. Nothing here prints or
 * exits: the front end decides, so that tests can assert the exact message. */
#ifndef MPIGAN_ERROR_H
#define MPIGAN_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define MG_ERROR_LEN 1024

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

#endif
