#ifndef DISTRAIN_LIBRARY_SCOPE_H
#define DISTRAIN_LIBRARY_SCOPE_H

// Whether the calling thread is inside the BLAS library right now. The GEMM wrapper marks every BLAS
// call, so the allocation counter can tell an allocation made by the library (OpenBLAS 0.3.21's AVX-512
// small-matrix kernels call malloc on every call) from one made by distrain's own step code.

/// Marks the start of a BLAS call on this thread.
void distrain_enter_blas(void);

/// Marks the end of a BLAS call on this thread.
void distrain_leave_blas(void);

/// 1 while this thread is inside a BLAS call, else 0. Never allocates (callable from malloc).
int distrain_inside_blas(void);

#endif
