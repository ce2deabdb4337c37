// See reduction.h. Blocks of 16 floats: each block is summed over the sources in a local array (which the
// compiler keeps in vector registers), checked and stored to every target, so aliasing between
// targets and sources never matters and the whole pass is one read per source and one write per target.
#include "reduction.h"
#include "clones.h"

DISTRAIN_CLONES
int distrain_sum_spread(const float *const *sources, size_t source_count, float *const *targets,
                        size_t target_count, size_t begin, size_t end) {
    float nonfinite[16] = {0};  // v - v: 0 for finite v, NaN otherwise; a sum keeps any NaN
    size_t i = begin;
    for (; i + 16 <= end; i += 16) {
        float block[16];
        for (int l = 0; l < 16; l++) block[l] = sources[0][i + l];
        for (size_t s = 1; s < source_count; s++) {
            const float *source = sources[s] + i;
            for (int l = 0; l < 16; l++) block[l] += source[l];
        }
        for (int l = 0; l < 16; l++) nonfinite[l] += block[l] - block[l];
        for (size_t t = 0; t < target_count; t++) {
            float *target = targets[t] + i;
            for (int l = 0; l < 16; l++) target[l] = block[l];
        }
    }
    float tail = 0;
    for (; i < end; i++) {
        float v = sources[0][i];
        for (size_t s = 1; s < source_count; s++) v += sources[s][i];
        tail += v - v;
        for (size_t t = 0; t < target_count; t++) targets[t][i] = v;
    }
    for (int l = 0; l < 16; l++) tail += nonfinite[l];
    return tail == 0.0f;
}

DISTRAIN_CLONES
double distrain_sum_of_squares(const float *x, size_t n) {
    double total = 0;
    for (size_t start = 0; start < n; start += 4096) {
        const size_t end = start + 4096 < n ? start + 4096 : n;
        float lanes[16] = {0};
        size_t i = start;
        for (; i + 16 <= end; i += 16) {
            for (int l = 0; l < 16; l++) lanes[l] += x[i + l] * x[i + l];
        }
        float block = 0;
        for (; i < end; i++) block += x[i] * x[i];
        for (int l = 0; l < 16; l++) block += lanes[l];
        total += block;
    }
    return total;
}

DISTRAIN_CLONES
void distrain_scale(float *x, size_t n, float factor) {
    for (size_t i = 0; i < n; i++) x[i] *= factor;
}
