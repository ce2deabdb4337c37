#ifndef DISTRAIN_COPENBLAS_SHIM_H
#define DISTRAIN_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
