#include "mpigan/error.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

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

/* 2 MiB: an x86-64 huge page. */
#define HUGE_PAGE ((size_t)2 << 20)

void *mg_big_alloc(size_t bytes)
{
    const size_t len = (bytes + HUGE_PAGE - 1 + !bytes) & ~(HUGE_PAGE - 1);
    /* Map one huge page more than needed and trim both ends to a 2 MiB boundary. */
    char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *p = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    munmap(p + len, HUGE_PAGE - (size_t)(p - raw));
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE); /* advice only: without THP the pages stay 4 KiB */
#endif
    return p;
}

void mg_big_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, (bytes + HUGE_PAGE - 1 + !bytes) & ~(HUGE_PAGE - 1));
}
