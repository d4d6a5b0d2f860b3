#include "mpigan/error.h"

#include <stdio.h>
#include <stdlib.h>

int mg_vfail(mg_error *err, const char *fmt, va_list ap)
{
    if (err)
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return -1;
}

int mg_fail(mg_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mg_vfail(err, fmt, ap);
    va_end(ap);
    return -1;
}

void *mg_xmalloc_at(size_t bytes, const char *file, int line)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "mpigan: out of memory allocating %zu bytes (%s:%d)\n", bytes, file, line);
        exit(1);
    }
    return p;
}

void *mg_xcalloc_at(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "mpigan: out of memory allocating %zu x %zu bytes (%s:%d)\n", n, size,
                file, line);
        exit(1);
    }
    return p;
}
