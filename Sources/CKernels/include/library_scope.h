#ifndef DISTRAIN_LIBRARY_SCOPE_H
#define DISTRAIN_LIBRARY_SCOPE_H

// Which library the calling thread is inside right now. The GEMM wrapper marks every BLAS call and the
// communicator every MPI reduction in the step, so the allocation counter can tell the libraries'
// allocations (OpenBLAS 0.3.21's AVX-512 small-matrix kernels and Open MPI's reductions call malloc)
// from those of distrain's own step code.

/// The libraries that are told apart.
enum distrain_library { DISTRAIN_LIBRARY_BLAS = 0, DISTRAIN_LIBRARY_MPI = 1 };

/// Marks the start of a call into `library` on this thread.
void distrain_enter_library(int library);

/// Marks the end of a call into `library` on this thread.
void distrain_leave_library(int library);

/// The library this thread is inside (BLAS inside an MPI call counts as BLAS), or -1 in distrain's own
/// code. Never allocates (callable from malloc).
int distrain_inside_library(void);

#endif
