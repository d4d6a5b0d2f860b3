/* Winograd's minimal filtering for strided convolutions. See include/mpigan/winograd.h.
 *
 * The maps of a DCGAN are small (a 4x4 output is one F(4x4, 2x2) tile per image), so no vector
 * runs along a tile's row. The passes therefore turn each group of G images around first, to
 * (channel, y, x, image): every value of a tile is then a vector of G values, one per image, and
 * each transform is a few dozen axpys of G values (tf2), whatever the map's size. The GEMMs take
 * their columns in (tile, image) order. Each transform is separable: alpha (or m) rows combined
 * into a temporary, then its columns. The weights' transform gathers each kernel's r x r taps per
 * phase into planes first, so that it too runs along contiguous vectors, in double. */
#include "mpigan/winograd.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mpigan/conv.h"
#include "simd.h"

enum { M_MAX = 4, R_MAX = 3, ALPHA_MAX = 6 };
/* Channels per call of tf2: its temporary, alpha^2 CHANNELS G values, stays in L1 and L2. */
enum { CHANNELS = 8 };
/* Rows of U per block of mg_wino_gemm (half of them on CPUs without AVX-512). */
enum { MR = 12 };

/* F(m x m, r x r) from interpolation at 0, 1, -1 (and 1/2 or 2, -2) and infinity, with the rows
 * of B^T scaled to small integers and their inverse scales moved into G: printed by
 * docs/winograd_tables.py, a Toom-Cook derivation in exact rationals, which also checks them
 * against the direct sum (to 5e-14 in double). */
typedef struct {
    int m, r;
    double at[M_MAX][ALPHA_MAX];     /* A^T (m, alpha) */
    double g[ALPHA_MAX][R_MAX];      /* G (alpha, r) */
    double bt[ALPHA_MAX][ALPHA_MAX]; /* B^T (alpha, alpha) */
} table;

static const table tables[] = {
    {2, 2, {{1, 1, 0}, {0, 1, 1}}, {{1, 0}, {1, 1}, {0, 1}}, {{1, -1, 0}, {0, 1, 0}, {0, -1, 1}}},
    {4, 2,
     {{1, 1, 1, 1, 0}, {0, 1, -1, 1.0 / 2, 0}, {0, 1, 1, 1.0 / 4, 0}, {0, 1, -1, 1.0 / 8, 1}},
     {{1, 0}, {1.0 / 2, 1.0 / 2}, {1.0 / 6, -1.0 / 6}, {8.0 / 3, 4.0 / 3}, {0, 1.0 / 2}},
     {{1, -2, -1, 2, 0}, {0, -1, 1, 2, 0}, {0, -1, 3, -2, 0}, {0, 1, 0, -1, 0}, {0, 1, -2, -1, 2}}},
    {2, 3, {{1, 1, 1, 0}, {0, 1, -1, 1}},
     {{1, 0, 0}, {1.0 / 2, 1.0 / 2, 1.0 / 2}, {1.0 / 2, -1.0 / 2, 1.0 / 2}, {0, 0, 1}},
     {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, -1, 0, 1}}},
    {4, 3,
     {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}},
     {{1.0 / 4, 0, 0},
      {1.0 / 6, 1.0 / 6, 1.0 / 6},
      {1.0 / 6, -1.0 / 6, 1.0 / 6},
      {1.0 / 24, 1.0 / 12, 1.0 / 6},
      {1.0 / 24, -1.0 / 12, 1.0 / 6},
      {0, 0, 1}},
     {{4, 0, -5, 0, 1, 0},
      {0, 4, 4, -1, -1, 0},
      {0, -4, 4, 1, -1, 0},
      {0, -2, -1, 2, 1, 0},
      {0, 2, -1, -2, 1, 0},
      {0, 4, 0, -5, 0, 1}}},
};
enum { N_TABLES = sizeof tables / sizeof *tables };

/* ---- plan ---- */

static int table_of(int m, int r)
{
    for (int t = 0; t < N_TABLES; t++)
        if (tables[t].m == m && tables[t].r == r)
            return t;
    return -1;
}

int mg_wino_plan(mg_wino *w, int CA, int HA, int WA, int CB, int HB, int WB, int KH, int KW,
                 int SH, int SW, int PH, int PW, int m, int group)
{
    *w = (mg_wino){0};
    if (SH < 1 || SW < 1 || KH % SH || KW % SW || KH / SH != KW / SW || group < 0)
        return -1;
    const int r = KH / SH;
    if (m == 0)
        return mg_wino_plan(w, CA, HA, WA, CB, HB, WB, KH, KW, SH, SW, PH, PW, 4, group) == 0
                   ? 0
                   : mg_wino_plan(w, CA, HA, WA, CB, HB, WB, KH, KW, SH, SW, PH, PW, 2, group);
    const int t = table_of(m, r);
    if (t < 0 || HB % m || WB % m)
        return -1;
    const int alpha = m + r - 1;
    /* Every size below is a product of these; the work space's, in size_t, is not bounded here. */
    const long long Cp = (long long)CA * SH * SW, Q = (long long)(HB / m) * (WB / m);
    const long long span = (long long)alpha * SH * alpha * SW;
    if (Cp > INT_MAX || (long long)CA * span > INT_MAX || (long long)CB * m * m > INT_MAX ||
        (long long)alpha * alpha * CB * Cp > INT_MAX)
        return -1;
    long long g = group ? group : (MG_CONV_GROUP_COLUMNS + Q - 1) / Q;
    if (g * Q > INT_MAX)
        return -1;
    *w = (mg_wino){.m = m, .r = r, .alpha = alpha, .CA = CA, .HA = HA, .WA = WA, .CB = CB,
                   .HB = HB, .WB = WB, .KH = KH, .KW = KW, .SH = SH, .SW = SW, .PH = PH,
                   .PW = PW, .TH = HB / m, .TW = WB / m, .Cp = (int)Cp, .group = (int)g,
                   .table = t};
    /* The tiles must be exactly the im2col's windows: true of any conv from A to B, since the
     * last tile ends at (HB - 1) SH + KH <= HA + 2 PH; checked, not assumed. */
    if (mg_conv_out_size(HA, alpha * SH, m * SH, PH) != w->TH ||
        mg_conv_out_size(WA, alpha * SW, m * SW, PW) != w->TW) {
        *w = (mg_wino){0};
        return -1;
    }
    return 0;
}

double mg_wino_growth(const mg_wino *w)
{
    const table *tb = &tables[w->table];
    const int a = w->alpha, m = w->m, r = w->r;
    double gs[ALPHA_MAX], bs[ALPHA_MAX], worst = 0;
    for (int x = 0; x < a; x++) {
        gs[x] = bs[x] = 0;
        for (int i = 0; i < r; i++)
            gs[x] += fabs(tb->g[x][i]);
        for (int i = 0; i < a; i++)
            bs[x] += fabs(tb->bt[x][i]);
    }
    for (int i = 0; i < m; i++) {
        double s = 0; // one dimension; the 2-D growth is its square
        for (int x = 0; x < a; x++)
            s += fabs(tb->at[i][x]) * gs[x] * bs[x];
        worst = fmax(worst, s * s);
    }
    return worst / (r * r);
}

/* Rounded up to 64 bytes, so that every buffer after it is aligned too. */
static size_t lines(size_t n)
{
    const size_t line = 64 / sizeof(mg_real);
    return (n + line - 1) / line * line;
}

/* The work space of a group of G images (T = G TH TW columns):
 *   at (CA HA WA, G), bt (CB HB WB, G)  the group's A and B images with the image index last
 *                                       (CHWN), so that every value of a tile is a vector over
 *                                       the G images: the transforms run G at a time
 *   v (alpha^2, Cp, T), mb (alpha^2, CB, T)  the transformed tiles; column (ty TW + tx) G + g
 *   u, du (alpha^2, CB, Cp)              transformed weights and their gradient
 *   tmp (alpha^2, G), zero (G), sink (G)  the transforms' temporary, a vector of zeros for the
 *                                       padding, and one that receives the padding's adjoint
 *   pk (max(CB, Cp), MR)                 mg_wino_gemm's strips of a transposed U (K = CB in the
 *                                       passes: max for any caller of the same plan) */
typedef struct {
    mg_real *at, *bt, *v, *mb, *u, *du, *tmp, *zero, *sink, *pk;
} buffers;

static size_t carve(const mg_wino *w, int N, mg_real *work, buffers *b)
{
    const size_t G = (size_t)(N < w->group ? N : w->group), T = G * w->TH * w->TW;
    const size_t a2 = (size_t)w->alpha * w->alpha;
    const size_t sizes[] = {
        lines((size_t)w->CA * w->HA * w->WA * G), // at
        lines((size_t)w->CB * w->HB * w->WB * G), // bt
        lines(a2 * w->Cp * T),                    // v
        lines(a2 * w->CB * T),                    // mb
        /* u; with keeps_u only the weight gradient's scratch (r^2 CB Cp), which must not be du,
         * its source */
        lines((w->keeps_u ? (size_t)w->r * w->r : a2) * w->CB * w->Cp),
        lines(a2 * w->CB * w->Cp),                // du
        lines(a2 * CHANNELS * G),                 // tmp
        lines(G),                                 // zero
        lines(G),                                 // sink
        lines((size_t)MR * (w->CB > w->Cp ? w->CB : w->Cp)), // pk
    };
    mg_real **at[] = {&b->at, &b->bt, &b->v,    &b->mb,  &b->u,
                      &b->du, &b->tmp, &b->zero, &b->sink, &b->pk};
    size_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        if (work)
            *at[i] = work + off;
        off += sizes[i];
    }
    return off;
}

static size_t weight_count(const mg_wino *w)
{
    return (size_t)w->CB * w->CA * w->KH * w->KW;
}

size_t mg_wino_cache_bytes(const mg_wino *w)
{
    const size_t line = 64;
    const size_t u = (size_t)w->alpha * w->alpha * w->CB * w->Cp * sizeof(mg_real);
    return line + (u + line - 1) / line * line + weight_count(w) * sizeof(mg_real);
}

void mg_wino_cache_init(mg_wino *w, void *block)
{
    mg_wino_cache *c = block;
    const size_t u = (size_t)w->alpha * w->alpha * w->CB * w->Cp * sizeof(mg_real);
    c->valid = 0;
    c->u = (mg_real *)((char *)block + 64);
    c->wt = (mg_real *)((char *)c->u + (u + 63) / 64 * 64);
    w->cache = c;
}

size_t mg_wino_work_size(const mg_wino *w, int N)
{
    if (w->m == 0 || N <= 0)
        return 0;
    buffers b;
    return carve(w, N, NULL, &b);
}

/* One vector of 64 bytes (GCC's vector extension: 16 floats, 8 doubles; split in halves or
 * quarters where the clone's registers are narrower), loaded and stored unaligned. Macros, not
 * functions: a function taking or returning it has another ABI in the AVX-512 clone than in the
 * baseline, and an unoptimised build (no inlining) then passes it wrongly. */
typedef mg_real vec __attribute__((vector_size(64)));
enum { W = 64 / sizeof(mg_real) };
#define VLOAD(p)                                                                                \
    ({                                                                                          \
        vec v_;                                                                                 \
        memcpy(&v_, (p), sizeof v_);                                                            \
        v_;                                                                                     \
    })
#define VSTORE(p, v)                                                                            \
    do {                                                                                        \
        const vec v_ = (v);                                                                     \
        memcpy((p), &v_, sizeof v_);                                                            \
    } while (0)

/* ---- layouts ---- */

/* W rows of W values transposed in registers: log2 W stages, each swapping the off-diagonal
 * blocks of h x h values within every 2h x 2h block (h = W / 2, ..., 1), two shuffles per pair of
 * rows (__builtin_shufflevector, GCC 12 and clang, constant lanes: vpermt2ps with AVX-512). */
#ifdef MG_REAL_DOUBLE
#define LANES(F, h) F(h, 0), F(h, 1), F(h, 2), F(h, 3), F(h, 4), F(h, 5), F(h, 6), F(h, 7)
#else
#define LANES(F, h)                                                                             \
    F(h, 0), F(h, 1), F(h, 2), F(h, 3), F(h, 4), F(h, 5), F(h, 6), F(h, 7), F(h, 8), F(h, 9),    \
        F(h, 10), F(h, 11), F(h, 12), F(h, 13), F(h, 14), F(h, 15)
#endif
#define LOW(h, j) (((j) & (h)) ? W + (j) - (h) : (j))  /* row i: its own, then row i + h's */
#define HIGH(h, j) (((j) & (h)) ? W + (j) : (j) + (h)) /* row i + h: row i's, then its own */
#define STAGE(r, h)                                                                             \
    for (int i_ = 0; i_ < W; i_++)                                                              \
        if (!(i_ & (h))) {                                                                      \
            const vec a_ = r[i_], b_ = r[i_ + (h)];                                             \
            r[i_] = __builtin_shufflevector(a_, b_, LANES(LOW, h));                             \
            r[i_ + (h)] = __builtin_shufflevector(a_, b_, LANES(HIGH, h));                      \
        }
#ifdef MG_REAL_DOUBLE
#define TRANSPOSE(r) STAGE(r, 4) STAGE(r, 2) STAGE(r, 1)
#else
#define TRANSPOSE(r) STAGE(r, 8) STAGE(r, 4) STAGE(r, 2) STAGE(r, 1)
#endif

/* dst (cols, ldd) = src (rows, lds) transposed, for rows x cols at the given corners: W x W
 * blocks in registers, the edges one value at a time. */
MG_HOT static void transpose(mg_real *restrict dst, size_t ldd, const mg_real *restrict src,
                             size_t lds, size_t rows, size_t cols)
{
    const size_t rw = rows / W * W, cw = cols / W * W;
    for (size_t r0 = 0; r0 < rw; r0 += W)
        for (size_t c0 = 0; c0 < cw; c0 += W) {
            vec r[W];
            for (int i = 0; i < W; i++)
                r[i] = VLOAD(src + (r0 + i) * lds + c0);
            TRANSPOSE(r)
            for (int i = 0; i < W; i++)
                VSTORE(dst + (c0 + i) * ldd + r0, r[i]);
        }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = i < rw ? cw : 0; j < cols; j++)
            dst[j * ldd + i] = src[i * lds + j];
}

/* dst (X, G) = src (G, X) transposed. */
static void to_chwn(mg_real *dst, const mg_real *src, int G, size_t X)
{
    transpose(dst, (size_t)G, src, X, (size_t)G, X);
}

/* dst (G, X) = src (X, G) transposed. */
static void from_chwn(mg_real *dst, const mg_real *src, int G, size_t X)
{
    transpose(dst, X, src, (size_t)G, X, (size_t)G);
}

/* ---- the products by U ---- */

/* C (M, N; ldc) = A (M, K) B (K, N; ldb), A[i][k] = a[i ars + k acs]: the GEMMs of U (or U^T) by
 * the tiles, MR rows by NV vectors of columns in registers, summed over k in order.
 *
 * Why not the BLAS: it packs both operands on every call, and at DCGAN's sizes (tiles of 32 to
 * 256 columns against U up to 256 x 512) the packing costs a third of the multiply-adds. With
 * one rank of 32 images on an AVX-512 EPYC, OpenBLAS ran U V at 73 GFLOP/s and this loop at 88
 * to 93; U^T Mb at 77 and 75 to 82, whose rows of A are strided: each block of them is copied
 * side by side first (MR K values), since broadcasting from K lines 2 KB apart stalled.
 *
 * Only for AVX-512 (mg_wino_products_fast): blocks of 12 rows by 2 vectors of 64 bytes, 24
 * accumulators in its 32 registers. With AVX2 the same 64-byte vectors spill (a 6 by 1 block ran
 * at 11 GFLOP/s against OpenBLAS's 54 in the x86-64-v3 clone), so there the passes keep calling
 * the BLAS; blocks = 1 (6 by 1) stays for the tests, and is correct on any CPU. The vector blocks'
 * multiply-adds are fused where the clone has FMA (the one place in the library that allows
 * it, as a BLAS kernel does), so their last bits depend on the build and the CPU as OpenBLAS's
 * do; replicas stay identical, since every rank applies the same summed gradients. */
#if defined(__GNUC__) && !defined(__clang__)
#define MG_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define MG_CONTRACT
#endif

static inline __attribute__((always_inline)) void ublock(int mr, int nv, int K,
                                                         const mg_real *a, size_t ars,
                                                         size_t acs, const mg_real *b,
                                                         size_t ldb, mg_real *c, size_t ldc)
{
#ifdef __clang__
#pragma clang fp contract(fast)
#endif
    vec acc[MR][2];
    _Pragma("GCC unroll 12") for (int i = 0; i < mr; i++)
        _Pragma("GCC unroll 2") for (int j = 0; j < nv; j++) acc[i][j] = (vec){0};
    for (int k = 0; k < K; k++) {
        vec bk[2];
        _Pragma("GCC unroll 2") for (int j = 0; j < nv; j++) bk[j] = VLOAD(b + k * ldb + j * W);
        _Pragma("GCC unroll 12") for (int i = 0; i < mr; i++) {
            const mg_real s = a[i * ars + k * acs];
            _Pragma("GCC unroll 2") for (int j = 0; j < nv; j++) acc[i][j] += s * bk[j];
        }
    }
    _Pragma("GCC unroll 12") for (int i = 0; i < mr; i++)
        _Pragma("GCC unroll 2") for (int j = 0; j < nv; j++)
            VSTORE(c + i * ldc + j * W, acc[i][j]);
}

/* Columns [0, N) of rows [0, mr): blocks of NV vectors, then of one, then single columns. */
static inline __attribute__((always_inline)) void urows(int mr, int nv, int N, int K,
                                                        const mg_real *a, size_t ars, size_t acs,
                                                        const mg_real *b, size_t ldb, mg_real *c,
                                                        size_t ldc)
{
#ifdef __clang__
#pragma clang fp contract(fast)
#endif
    int j = 0;
    for (; j + nv * W <= N; j += nv * W)
        ublock(mr, nv, K, a, ars, acs, b + j, ldb, c + j, ldc);
    for (; j + W <= N; j += W)
        ublock(mr, 1, K, a, ars, acs, b + j, ldb, c + j, ldc);
    for (int i = 0; i < mr; i++)
        for (int jj = j; jj < N; jj++) {
            mg_real s = 0;
            for (int k = 0; k < K; k++)
                s += a[i * ars + k * acs] * b[k * ldb + jj];
            c[i * ldc + jj] = s;
        }
}

/* 1 where mg_wino_gemm is the faster way to the products by U: the code that runs was compiled
 * for AVX-512, as a build for such a CPU is or as the x86-64-v4 clone of MG_HOT runs where the
 * CPU has that clone's features. Elsewhere the passes call the BLAS. */
int mg_wino_products_fast(void)
{
#if defined(__AVX512F__)
    return 1;
#elif defined(MG_HOT_CLONES)
    static int fast = -1;
    if (fast < 0)
        fast = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
    return fast;
#else
    return 0;
#endif
}

/* pack (K, rows) = the rows' strip of a transposed A, rows side by side. */
static inline __attribute__((always_inline)) void strip(mg_real *restrict pack,
                                                        const mg_real *restrict a, size_t acs,
                                                        int rows, int K)
{
    for (int k = 0; k < K; k++)
        memcpy(pack + (size_t)k * rows, a + (size_t)k * acs, (size_t)rows * sizeof *pack);
}

MG_HOT MG_CONTRACT void mg_wino_gemm(int M, int N, int K, const mg_real *a, size_t ars,
                                     size_t acs, const mg_real *b, size_t ldb, mg_real *c,
                                     size_t ldc, mg_real *pack, int blocks)
{
#ifdef __clang__
#pragma clang fp contract(fast)
#endif
    const int wide = blocks ? blocks == 2 : mg_wino_products_fast(), mr = wide ? MR : MR / 2;
    for (int i = 0; i < M; i += mr) {
        const int rows = M - i < mr ? M - i : mr;
        const mg_real *ai = a + (size_t)i * ars;
        size_t pr = ars, pc = acs;
        if (acs != 1) {
            if (ars == 1 && rows == MR)
                strip(pack, ai, acs, MR, K);
            else if (ars == 1 && rows == MR / 2)
                strip(pack, ai, acs, MR / 2, K);
            else
                for (int k = 0; k < K; k++)
                    for (int r = 0; r < rows; r++)
                        pack[(size_t)k * rows + r] = ai[r * ars + k * acs];
            ai = pack;
            pr = 1;
            pc = (size_t)rows;
        }
        mg_real *ci = c + (size_t)i * ldc;
        if (rows == mr && wide)
            urows(MR, 2, N, K, ai, pr, pc, b, ldb, ci, ldc);
        else if (rows == mr)
            urows(MR / 2, 1, N, K, ai, pr, pc, b, ldb, ci, ldc);
        else
            switch (rows) {
#define UTAIL(n)                                                                                \
    case n:                                                                                     \
        urows(n, 1, N, K, ai, pr, pc, b, ldb, ci, ldc);                                         \
        break;
                UTAIL(1) UTAIL(2) UTAIL(3) UTAIL(4) UTAIL(5) UTAIL(6) UTAIL(7) UTAIL(8) UTAIL(9)
                UTAIL(10) UTAIL(11)
#undef UTAIL
            default:
                break;
            }
    }
}

/* ---- transforms ---- */

/* dst[a][b] (=, or += with acc) sum over i, j of L(a, i) L(b, j) src[i][j] for a, b < lo and
 * i, j < li, each element `count` vectors of n values: vector q of dst[a][b] at dst[a lo + b] +
 * q ds[a lo + b], of src[i][j] at src[i li + j] + q ss[i li + j] (row pointers and strides, lo lo
 * and li li of them; a stride 0 reads one vector of zeros, or sums into one sink, count times).
 * L(a, i) = L[a rs + i cs], so that swapping rs and cs applies the transpose. tmp: lo li count n
 * values. The coefficients of B and A are dyadic, so each product is exact and the order of the
 * additions (i, then j, ascending) is the only rounding choice: the same on every vector width. */
MG_HOT static void tf2(mg_real *const *dst, const mg_real *const *src, const double *L, int rs,
                       int cs, int lo, int li, mg_real *restrict tmp, size_t n, int count,
                       const size_t *ds, const size_t *ss, int acc)
{
    const size_t cn = (size_t)count * n;
    for (int a = 0; a < lo; a++)
        for (int j = 0; j < li; j++) {
            mg_real *restrict t = tmp + ((size_t)a * li + j) * cn;
            int first = 1;
            for (int i = 0; i < li; i++) {
                const mg_real c = (mg_real)L[a * rs + i * cs];
                if (c == 0)
                    continue;
                for (int q = 0; q < count; q++) {
                    const mg_real *restrict s = src[i * li + j] + q * ss[i * li + j];
                    mg_real *restrict tq = t + q * n;
                    if (first)
                        for (size_t k = 0; k < n; k++)
                            tq[k] = c * s[k];
                    else
                        for (size_t k = 0; k < n; k++)
                            tq[k] += c * s[k];
                }
                first = 0;
            }
            if (first)
                memset(t, 0, cn * sizeof *t);
        }
    /* The second pass sums each output in a register, one vector of W values at a time, and
     * writes it once: dst's vectors lie far apart in large arrays, and adding into them term by
     * term read each back from memory (the loads of dst were half of this function's time in
     * `perf`). */
    for (int a = 0; a < lo; a++)
        for (int b = 0; b < lo; b++) {
            mg_real cj[ALPHA_MAX];
            const mg_real *tj[ALPHA_MAX];
            int nt = 0;
            for (int j = 0; j < li; j++) {
                const mg_real c = (mg_real)L[b * rs + j * cs];
                if (c != 0) {
                    cj[nt] = c;
                    tj[nt++] = tmp + ((size_t)a * li + j) * cn;
                }
            }
            for (int q = 0; q < count; q++) {
                mg_real *d = dst[a * lo + b] + q * ds[a * lo + b];
                const size_t off = (size_t)q * n;
                size_t k = 0;
                for (; k + W <= n; k += W) {
                    vec sum = acc ? VLOAD(d + k) : (vec){0};
                    for (int t = 0; t < nt; t++)
                        sum += cj[t] * VLOAD(tj[t] + off + k);
                    VSTORE(d + k, sum);
                }
                for (; k < n; k++) {
                    mg_real sum = acc ? d[k] : 0;
                    for (int t = 0; t < nt; t++)
                        sum += cj[t] * tj[t][off + k];
                    d[k] = sum;
                }
            }
        }
}

/* V = B^T d B of every phase channel's tiles from at; or (back) at += B dV B^T, each tile's
 * values added where tiles overlap and the padding's sent to the sink (whose vectors then hold
 * nonsense, never read). Phase channel c' = (ry SW + rx) CA + c: the rows of one phase's
 * channels are consecutive in V, so a call of tf2 takes CHANNELS of them. */
static void input_tf(mg_real *v, mg_real *at, int back, const mg_wino *w, const buffers *bf,
                     int G)
{
    const table *tb = &tables[w->table];
    const int a = w->alpha, m = w->m;
    const size_t T = (size_t)G * w->TH * w->TW, plane = (size_t)w->HA * w->WA * G;
    mg_real *rows[ALPHA_MAX * ALPHA_MAX], *planes[ALPHA_MAX * ALPHA_MAX];
    for (int ry = 0; ry < w->SH; ry++)
        for (int rx = 0; rx < w->SW; rx++)
            for (int c0 = 0; c0 < w->CA; c0 += CHANNELS) {
                const int nc = w->CA - c0 < CHANNELS ? w->CA - c0 : CHANNELS;
                const int cp = (ry * w->SW + rx) * w->CA + c0;
                for (int ty = 0; ty < w->TH; ty++)
                    for (int tx = 0; tx < w->TW; tx++) {
                        size_t rs_[ALPHA_MAX * ALPHA_MAX], ps_[ALPHA_MAX * ALPHA_MAX];
                        for (int i = 0; i < a; i++)
                            for (int j = 0; j < a; j++) {
                                const int y = (ty * m + i) * w->SH + ry - w->PH;
                                const int x = (tx * m + j) * w->SW + rx - w->PW;
                                const int in = y >= 0 && y < w->HA && x >= 0 && x < w->WA;
                                const size_t at_yx = (size_t)c0 * w->HA * w->WA +
                                                     (size_t)y * w->WA + x;
                                rows[i * a + j] = in     ? at + at_yx * G
                                                  : back ? bf->sink
                                                         : bf->zero;
                                rs_[i * a + j] = in ? plane : 0;
                            }
                        for (int x = 0; x < a * a; x++) {
                            planes[x] = v + ((size_t)x * w->Cp + cp) * T +
                                        ((size_t)ty * w->TW + tx) * G;
                            ps_[x] = T;
                        }
                        if (!back)
                            tf2(planes, (const mg_real *const *)rows, &tb->bt[0][0], ALPHA_MAX, 1,
                                a, a, bf->tmp, (size_t)G, nc, ps_, rs_, 0);
                        else
                            tf2(rows, (const mg_real *const *)planes, &tb->bt[0][0], 1, ALPHA_MAX,
                                a, a, bf->tmp, (size_t)G, nc, rs_, ps_, 1);
                    }
            }
}

/* bt = A^T M A of every out channel's tiles, or (back) M = A dY A^T from bt. Tiles do not
 * overlap: every value of bt is written once. */
static void output_tf(mg_real *mb, mg_real *bt, int back, const mg_wino *w, const buffers *bf,
                      int G)
{
    const table *tb = &tables[w->table];
    const int a = w->alpha, m = w->m;
    const size_t T = (size_t)G * w->TH * w->TW, plane = (size_t)w->HB * w->WB * G;
    mg_real *rows[M_MAX * M_MAX], *planes[ALPHA_MAX * ALPHA_MAX];
    size_t rs_[M_MAX * M_MAX], ps_[ALPHA_MAX * ALPHA_MAX];
    for (int x = 0; x < m * m; x++)
        rs_[x] = plane;
    for (int x = 0; x < a * a; x++)
        ps_[x] = T;
    for (int o0 = 0; o0 < w->CB; o0 += CHANNELS) {
        const int no = w->CB - o0 < CHANNELS ? w->CB - o0 : CHANNELS;
        for (int ty = 0; ty < w->TH; ty++)
            for (int tx = 0; tx < w->TW; tx++) {
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < m; j++)
                        rows[i * m + j] =
                            bt + (((size_t)o0 * w->HB + ty * m + i) * w->WB + tx * m + j) * G;
                for (int x = 0; x < a * a; x++)
                    planes[x] =
                        mb + ((size_t)x * w->CB + o0) * T + ((size_t)ty * w->TW + tx) * G;
                if (!back)
                    tf2(rows, (const mg_real *const *)planes, &tb->at[0][0], ALPHA_MAX, 1, m, a,
                        bf->tmp, (size_t)G, no, rs_, ps_, 0);
                else
                    tf2(planes, (const mg_real *const *)rows, &tb->at[0][0], 1, ALPHA_MAX, a, m,
                        bf->tmp, (size_t)G, no, ps_, rs_, 0);
            }
    }
}

/* The r^2 taps of every (out channel, phase channel) pair: p (r^2, CB, Cp), tap (i, j) of pair
 * (o, c') = wt[o][c][i SH + ry][j SW + rx], c' = (ry SW + rx) CA + c; or (back) wt (+)= p. */
static void phase_taps(mg_real *p, mg_real *wt, int back, int add, const mg_wino *w)
{
    const int r = w->r;
    const size_t plane = (size_t)w->CB * w->Cp;
    for (int o = 0; o < w->CB; o++)
        for (int ry = 0; ry < w->SH; ry++)
            for (int rx = 0; rx < w->SW; rx++)
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        mg_real *pv = p + (size_t)(i * r + j) * plane + (size_t)o * w->Cp +
                                      (size_t)(ry * w->SW + rx) * w->CA;
                        mg_real *k = wt + (size_t)o * w->CA * w->KH * w->KW +
                                     (size_t)(i * w->SH + ry) * w->KW + j * w->SW + rx;
                        const size_t ks = (size_t)w->KH * w->KW; // from channel to channel
                        if (!back)
                            for (int c = 0; c < w->CA; c++)
                                pv[c] = k[c * ks];
                        else if (add)
                            for (int c = 0; c < w->CA; c++)
                                k[c * ks] += pv[c];
                        else
                            for (int c = 0; c < w->CA; c++)
                                k[c * ks] = pv[c];
                    }
}

/* 8 values in double, and 8 of mg_real to convert from and to. */
typedef double vd __attribute__((vector_size(64)));
typedef mg_real vr8 __attribute__((vector_size(8 * sizeof(mg_real))));
#define VD_LOAD(p)                                                                              \
    ({                                                                                          \
        vr8 r_;                                                                                 \
        memcpy(&r_, (p), sizeof r_);                                                            \
        __builtin_convertvector(r_, vd);                                                        \
    })
#define VD_STORE(p, v)                                                                          \
    do {                                                                                        \
        const vr8 r_ = __builtin_convertvector((v), vr8);                                       \
        memcpy((p), &r_, sizeof r_);                                                            \
    } while (0)

/* 8 kernels of weight_tf_table, each row of dst and src dn and sn values after the last. */
static inline __attribute__((always_inline)) void weight_tf_block(int t, mg_real *restrict dst,
                                                                  size_t dn,
                                                                  const mg_real *restrict src,
                                                                  size_t sn, int back)
{
    const table *tb = &tables[t];
    const int a = tb->m + tb->r - 1, r = tb->r;
    vd h[ALPHA_MAX][R_MAX]; // G g: (alpha, r); or u G: (alpha, r)
    if (!back) {
        vd g[R_MAX][R_MAX];
        _Pragma("GCC unroll 3") for (int i = 0; i < r; i++)
            _Pragma("GCC unroll 3") for (int j = 0; j < r; j++)
                g[i][j] = VD_LOAD(src + (size_t)(i * r + j) * sn);
        _Pragma("GCC unroll 6") for (int x = 0; x < a; x++)
            _Pragma("GCC unroll 3") for (int j = 0; j < r; j++) {
                h[x][j] = (vd){0};
                _Pragma("GCC unroll 3") for (int i = 0; i < r; i++)
                    if (tb->g[x][i] != 0)
                        h[x][j] += tb->g[x][i] * g[i][j];
            }
        _Pragma("GCC unroll 6") for (int x = 0; x < a; x++)
            _Pragma("GCC unroll 6") for (int y = 0; y < a; y++) {
                vd sum = {0};
                _Pragma("GCC unroll 3") for (int j = 0; j < r; j++)
                    if (tb->g[y][j] != 0)
                        sum += tb->g[y][j] * h[x][j];
                VD_STORE(dst + (size_t)(x * a + y) * dn, sum);
            }
    } else {
        vd g[R_MAX][R_MAX] = {{{0}}};
        _Pragma("GCC unroll 6") for (int x = 0; x < a; x++) {
            vd ux[ALPHA_MAX];
            _Pragma("GCC unroll 6") for (int y = 0; y < a; y++)
                ux[y] = VD_LOAD(src + (size_t)(x * a + y) * sn);
            _Pragma("GCC unroll 3") for (int j = 0; j < r; j++) {
                h[x][j] = (vd){0};
                _Pragma("GCC unroll 6") for (int y = 0; y < a; y++)
                    if (tb->g[y][j] != 0)
                        h[x][j] += tb->g[y][j] * ux[y];
            }
            _Pragma("GCC unroll 3") for (int i = 0; i < r; i++)
                _Pragma("GCC unroll 3") for (int j = 0; j < r; j++)
                    if (tb->g[x][i] != 0)
                        g[i][j] += tb->g[x][i] * h[x][j];
        }
        _Pragma("GCC unroll 3") for (int i = 0; i < r; i++)
            _Pragma("GCC unroll 3") for (int j = 0; j < r; j++)
                VD_STORE(dst + (size_t)(i * r + j) * dn, g[i][j]);
    }
}

/* u (alpha^2, n) = G g G^T of the n kernels g (r^2, n) (u's or g's (x, y) at row x alpha + y),
 * or (back) g = G^T u G: in double, rounded once, separably (G along the kernel's rows, then its
 * columns) with the table t a constant, so that G's zeros drop out: F(4x4, 2x2) takes 56 products
 * per kernel where the r^2 alpha^2 products take 100. */
static inline __attribute__((always_inline)) void weight_tf_table(int t, mg_real *restrict dst,
                                                                  const mg_real *restrict src,
                                                                  size_t n, int back)
{
    size_t e = 0;
    for (; e + 8 <= n; e += 8)
        weight_tf_block(t, dst + e, n, src + e, n, back);
    if (e < n) { // the last n - e kernels through 8 columns of zeros: the same sums
        enum { ROWS = ALPHA_MAX * ALPHA_MAX };
        mg_real in[ROWS][8] = {{0}}, out[ROWS][8];
        const int a = tables[t].m + tables[t].r - 1, r2 = tables[t].r * tables[t].r;
        const int rows_in = back ? a * a : r2, rows_out = back ? r2 : a * a;
        for (int q = 0; q < rows_in; q++)
            memcpy(in[q], src + (size_t)q * n + e, (n - e) * sizeof *src);
        weight_tf_block(t, &out[0][0], 8, &in[0][0], 8, back);
        for (int q = 0; q < rows_out; q++)
            memcpy(dst + (size_t)q * n + e, out[q], (n - e) * sizeof *dst);
    }
}

/* weight_tf_table for w's table, each table's sums compiled apart. */
MG_HOT static void weight_transform(const mg_wino *w, mg_real *restrict dst,
                                    const mg_real *restrict src, int back)
{
    const size_t n = (size_t)w->CB * w->Cp;
    _Static_assert(N_TABLES == 4, "one case per table");
    switch (w->table) {
    case 0:
        weight_tf_table(0, dst, src, n, back);
        break;
    case 1:
        weight_tf_table(1, dst, src, n, back);
        break;
    case 2:
        weight_tf_table(2, dst, src, n, back);
        break;
    default:
        weight_tf_table(3, dst, src, n, back);
        break;
    }
}

/* U = G g G^T of every kernel; the taps are gathered into scratch (r^2 CB Cp values) first. */
static void weight_tf(mg_real *u, const mg_real *wt, const mg_wino *w, mg_real *scratch)
{
    phase_taps(scratch, (mg_real *)wt, 0, 0, w); // reads wt only
    weight_transform(w, u, scratch, 0);
}

/* dwt (+)= G^T dU G at each kernel's taps, through scratch (r^2 CB Cp values). */
static void weight_grad_tf(mg_real *dwt, const mg_real *du, const mg_wino *w, int add,
                           mg_real *scratch)
{
    weight_transform(w, scratch, du, 1);
    phase_taps(scratch, dwt, 1, add, w);
}

/* U for wt: the cache's when it was made from these weights, else transformed into the cache
 * (kept for the next call) or, without one, into the work space's u. */
static const mg_real *weights_u(const mg_wino *w, const mg_real *wt, const buffers *bf)
{
    mg_wino_cache *c = w->cache;
    const size_t bytes = weight_count(w) * sizeof *wt;
    if (c && c->valid && memcmp(c->wt, wt, bytes) == 0)
        return c->u;
    mg_real *u = c ? c->u : bf->u;
    weight_tf(u, wt, w, bf->du); // du is free until the first weight-gradient GEMM
    if (c) {
        memcpy(c->wt, wt, bytes);
        c->valid = 1;
    }
    return u;
}

/* ---- passes ---- */

void mg_wino_run(mg_real *a_out, mg_real *b_out, mg_real *dwt, const mg_real *a_in,
                 const mg_real *b_in, const mg_real *wt, int N, const mg_wino *w, int add,
                 mg_real *work, mg_gemm_fn gemm)
{
    assert(w->m > 0 && !(a_out && b_out) && (!w->keeps_u || w->cache));
    assert((!b_out && !dwt) || a_in);
    assert((!a_out && !dwt) || b_in);
    if (dwt && !add && N <= 0)
        memset(dwt, 0, weight_count(w) * sizeof *dwt);
    if (N <= 0)
        return;
    buffers bf;
    carve(w, N, work, &bf);
    const int a2 = w->alpha * w->alpha, CB = w->CB, Cp = w->Cp, Q = w->TH * w->TW;
    const size_t a_size = (size_t)w->CA * w->HA * w->WA, b_size = (size_t)CB * w->HB * w->WB;
    const int Gmax = N < w->group ? N : w->group;
    memset(bf.zero, 0, (size_t)Gmax * sizeof *bf.zero);
    const mg_real *u = a_out || b_out ? weights_u(w, wt, &bf) : NULL;
    const mg_wino_gemm_fn products = w->products ? w->products
                                     : mg_wino_products_fast() ? mg_wino_gemm
                                                       : NULL; // NULL: the BLAS's gemm
    for (int n0 = 0; n0 < N; n0 += w->group) {
        const int G = N - n0 < w->group ? N - n0 : w->group, T = G * Q;
        const size_t vs = (size_t)Cp * T, ms = (size_t)CB * T, us = (size_t)CB * Cp;
        if (b_out || dwt) { // V from A's tiles
            to_chwn(bf.at, a_in + n0 * a_size, G, a_size);
            input_tf(bf.v, bf.at, 0, w, &bf, G);
        }
        if (a_out || dwt) { // Mb from B's tiles
            to_chwn(bf.bt, b_in + n0 * b_size, G, b_size);
            output_tf(bf.mb, bf.bt, 1, w, &bf, G);
        }
        if (dwt)
            for (int x = 0; x < a2; x++)
                gemm(0, 1, CB, Cp, T, 1, bf.mb + x * ms, T, bf.v + x * vs, T, n0 > 0 ? 1 : 0,
                     bf.du + x * us, Cp);
        if (b_out) { // Mb = U V, then B's tiles
            for (int x = 0; x < a2; x++)
                if (products)
                    products(CB, T, Cp, u + x * us, Cp, 1, bf.v + x * vs, T, bf.mb + x * ms, T,
                             bf.pk, 0);
                else
                    gemm(0, 0, CB, T, Cp, 1, u + x * us, Cp, bf.v + x * vs, T, 0,
                         bf.mb + x * ms, T);
            output_tf(bf.mb, bf.bt, 0, w, &bf, G);
            from_chwn(b_out + n0 * b_size, bf.bt, G, b_size);
        }
        if (a_out) { // V = U^T Mb, then A's tiles, summed where they overlap
            for (int x = 0; x < a2; x++)
                if (products)
                    products(Cp, T, CB, u + x * us, 1, Cp, bf.mb + x * ms, T, bf.v + x * vs, T,
                             bf.pk, 0);
                else
                    gemm(1, 0, Cp, T, CB, 1, u + x * us, Cp, bf.mb + x * ms, T, 0,
                         bf.v + x * vs, T);
            memset(bf.at, 0, a_size * G * sizeof *bf.at);
            memset(bf.sink, 0, (size_t)G * sizeof *bf.sink);
            input_tf(bf.v, bf.at, 1, w, &bf, G);
            from_chwn(a_out + n0 * a_size, bf.at, G, a_size);
        }
    }
    if (dwt)
        weight_grad_tf(dwt, bf.du, w, add, bf.u);
}
