#ifndef DISTRAIN_CDNNL_SHIM_H
#define DISTRAIN_CDNNL_SHIM_H
// oneDNN's BLAS-like int8 GEMM (dnnl_gemm_u8s8s32), the kernel of int8 inference.
#include <dnnl.h>
// Debian's oneDNN runs its kernels on OpenMP (libgomp); this sets how many threads they use.
void omp_set_num_threads(int count);
#endif
