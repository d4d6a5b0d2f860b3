/* Hot loops at the vector width of the machine that runs them, from one portable build.
 *
 * MG_HOT compiles a function three times, for x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA) and the
 * baseline (SSE2), and the loader picks one by CPU (GCC's target_clones, an ifunc). mpigan is
 * built for the baseline so that one binary runs on every node of a cluster; the loops it spends
 * time in outside BLAS (the optimizer, the finite check, activations, maxout, dropout masks, the
 * shared-memory gradient sums) then still run 8 or 16 floats at a time. Paper MNIST model, 1
 * rank: about 0.5 ms of the 3 ms per iteration outside the GEMMs.
 *
 * The clones give the same bits: the library is compiled with -ffp-contract=off (no a * b + c
 * fused into an FMA in one clone and not another), and these loops do elementwise IEEE
 * operations or integer reductions only, whose results do not depend on the vector width. Ranks
 * on CPUs of different generations stay exact replicas (tests/same_bits.sh compares this build
 * with a -march=native one and with one without clones, -DMPIGAN_SIMD_CLONES=OFF, which is what a
 * CPU without AVX2 runs). Off (plain functions) with other compilers, off x86-64, and in builds
 * for AVX2 or more (-march=native, MPIGAN_NATIVE), which need no clones. The one exception is a
 * GEMM kernel, mg_wino_gemm (winograd.c): like OpenBLAS's kernels it fuses multiply-adds and is
 * taken only with AVX-512, so a Winograd layer's last bits depend on the build and CPU as the
 * BLAS's do, while the update and every loop above stay the same everywhere. */
#ifndef MPIGAN_SIMD_H
#define MPIGAN_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) &&      \
    !defined(__AVX2__) && !defined(MPIGAN_NO_CLONES)
#define MG_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define MG_HOT_CLONES 1 /* the x86-64-v4 clone runs where the CPU has its features */
#else
#define MG_HOT
#endif

#include <stdint.h>
#include <string.h>

#include "mpigan/real.h"

/* The one finite check (mg_all_finite, the optimizer's check of the parameters it writes, and
 * the shared gradient sums' check of each block they sum, comm.c). An IEEE value is NaN or +-Inf
 * exactly when its exponent bits are all ones. Adding one to the exponent field (bits & EXP) +
 * EXP_ONE carries into the sign bit for those alone, so the OR of that over all values has its
 * sign bit set iff one of them is not finite: integer AND, ADD and OR, which the compiler
 * vectorises (memcpy of one value compiles to a plain load), and no floating-point exception. */
#ifdef MG_REAL_DOUBLE
typedef uint64_t mg_bits;
#define MG_BITS_EXP 0x7ff0000000000000u
#define MG_BITS_EXP_ONE 0x0010000000000000u
#define MG_BITS_SIGN ((mg_bits)1 << 63)
#else
typedef uint32_t mg_bits;
#define MG_BITS_EXP 0x7f800000u
#define MG_BITS_EXP_ONE 0x00800000u
#define MG_BITS_SIGN ((mg_bits)1 << 31)
#endif
_Static_assert(sizeof(mg_bits) == sizeof(mg_real), "mg_real is an IEEE binary32 or binary64");

/* x's mark: its sign bit is set iff x is NaN or +-Inf. OR the marks of many values together and
 * test the sign bit once (mg_marks_finite). */
static inline mg_bits mg_nonfinite_mark(mg_real x)
{
    mg_bits b;
    memcpy(&b, &x, sizeof b);
    return (b & MG_BITS_EXP) + MG_BITS_EXP_ONE;
}

static inline int mg_marks_finite(mg_bits marks)
{
    return !(marks & MG_BITS_SIGN);
}

/* Non-zero iff none of x[0..n) is NaN or +-Inf. */
static inline int mg_finite_bits(const mg_real *restrict x, size_t n)
{
    mg_bits acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= mg_nonfinite_mark(x[i]);
    return mg_marks_finite(acc);
}

#endif
