// The backend registry: picks and initialises a backend by name.
#include <stdio.h>
#include <string.h>

#include "../nn/backend.h"

extern const Backend cpu_backend;
#ifdef WITH_CUDA
extern const Backend cuda_backend;
#endif

int backend_cuda_compiled(void) {
#ifdef WITH_CUDA
    return 1;
#else
    return 0;
#endif
}

const Backend* backend_open(const char* name, const BackendOptions* opt, char* err, size_t errlen) {
    if (strcmp(name, "cpu") == 0) {
        if (cpu_backend.init(opt, err, errlen) != 0) return NULL;
        return &cpu_backend;
    }
    if (strcmp(name, "cuda") == 0 || strcmp(name, "auto") == 0) {
#ifdef WITH_CUDA
        char why[256] = "";
        if (cuda_backend.init(opt, why, sizeof(why)) == 0) return &cuda_backend;
        if (strcmp(name, "cuda") == 0) {
            snprintf(err, errlen, "--device cuda: %s", why);
            return NULL;
        }
        // auto falls back to the CPU; err tells the caller why (it is not an error).
        if (cpu_backend.init(opt, err, errlen) != 0) return NULL;
        snprintf(err, errlen, "GPU not used: %s", why);
        return &cpu_backend;
#else
        if (strcmp(name, "cuda") == 0) {
            snprintf(err, errlen, "--device cuda: this build has no CUDA backend (configure with the "
                                  "CUDA toolkit, cuDNN and cuBLAS installed, and -DWITH_CUDA=ON)");
            return NULL;
        }
#endif
        if (cpu_backend.init(opt, err, errlen) != 0) return NULL;
        return &cpu_backend;
    }
    snprintf(err, errlen, "unknown device '%s' (expected auto, cpu or cuda)", name);
    return NULL;
}
