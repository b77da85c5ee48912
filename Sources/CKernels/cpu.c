#include "CKernels.h"

int prune_cpu_features(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    int f = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) f |= 1;
    if (__builtin_cpu_supports("avx512f")) f |= 2;
    if (__builtin_cpu_supports("f16c")) f |= 4;
    return f;
#else
    return 0;
#endif
}
