// Private to CKernels: how a kernel is compiled for several x86-64 levels in one binary.
#ifndef DISTRAIN_CLONES_H
#define DISTRAIN_CLONES_H

// target_clones compiles the function for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline,
// and picks one at load time (ifunc), so one binary runs on any x86-64 and uses the wide units where they
// exist. The architecture levels matter: a bare "avx2" clone has no FMA, and every a*b+c then costs a
// multiply and an add (measured: the direct convolution ran at half speed).
#if defined(__x86_64__) && defined(__clang__)
#define DISTRAIN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DISTRAIN_CLONES
#endif

#endif
