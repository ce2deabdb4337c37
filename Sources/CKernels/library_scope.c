#include "library_scope.h"

// Thread-local with the initial-exec model: reading it from inside malloc never allocates
// (no __tls_get_addr on first use).
static __thread int depth[2] __attribute__((tls_model("initial-exec")));

void distrain_enter_library(int library) { depth[library] += 1; }

void distrain_leave_library(int library) { depth[library] -= 1; }

int distrain_inside_library(void) {
    if (depth[DISTRAIN_LIBRARY_BLAS] > 0) return DISTRAIN_LIBRARY_BLAS;
    if (depth[DISTRAIN_LIBRARY_MPI] > 0) return DISTRAIN_LIBRARY_MPI;
    return -1;
}
