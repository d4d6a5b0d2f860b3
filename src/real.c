/* The floating-point type of every tensor (real.h). */
#include "mpigan/real.h"

#include "simd.h"

MG_HOT int mg_all_finite(const mg_real *x, size_t n)
{
    return mg_finite_bits(x, n);
}
