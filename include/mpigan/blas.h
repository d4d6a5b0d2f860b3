/* The BLAS under mpigan. */
#ifndef MPIGAN_BLAS_H
#define MPIGAN_BLAS_H

/* OpenBLAS's kernel family, e.g. "Haswell" or "Cooperlake": OpenBLAS picks it by CPU when it
 * loads, unless OPENBLAS_CORETYPE names one (on this project's AMD EPYC, Cooperlake's sgemm runs
 * the paper's MNIST GEMMs at 207 GFLOP/s, Haswell's at 116). Run records keep it, since speeds
 * and the last bits of results depend on it. */
const char *mg_blas_kernels(void);

#endif
