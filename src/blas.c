#include "mpigan/blas.h"

#include <cblas.h>

const char *mg_blas_kernels(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}
