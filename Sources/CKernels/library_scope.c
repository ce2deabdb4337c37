#include "library_scope.h"

// Thread-local with the initial-exec model: reading it from inside malloc never allocates
// (no __tls_get_addr on first use).
static __thread int blas_depth __attribute__((tls_model("initial-exec"))) = 0;

void distrain_enter_blas(void) { blas_depth += 1; }

void distrain_leave_blas(void) { blas_depth -= 1; }

int distrain_inside_blas(void) { return blas_depth > 0; }
