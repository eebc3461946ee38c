// The backend registry: picks and initialises a backend by name (a new backend is added here).
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../nn/backend.h"

extern const Backend cpu_backend;
extern const Backend ref_backend;
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
    if (strcmp(name, "ref") == 0) { // the reference: plain loops, never chosen by auto
        if (ref_backend.init(opt, err, errlen) != 0) return NULL;
        return &ref_backend;
    }
    if (strcmp(name, "cuda") == 0 || strcmp(name, "auto") == 0) {
#ifdef WITH_CUDA
        char why[256] = "";
        if (cuda_backend.init(opt, why, sizeof(why)) == 0) return &cuda_backend;
        if (strcmp(name, "cuda") == 0) {
            snprintf(err, errlen, "--device cuda: %s", why);
            return NULL;
        }
        // auto falls back to the CPU; err tells the caller why (it is not an error). A machine without
        // a GPU is normal: the runtime then reports no device, or (no NVIDIA driver at all) an
        // "insufficient driver"; only a GPU that is there but unusable deserves the details.
        if (cpu_backend.init(opt, err, errlen) != 0) return NULL;
        int no_gpu = strstr(why, "cudaErrorNoDevice") || strstr(why, "no CUDA device found") ||
                     (strstr(why, "cudaErrorInsufficientDriver") && access("/dev/nvidiactl", F_OK) != 0);
        if (no_gpu) snprintf(err, errlen, "no GPU found, using the CPU");
        else snprintf(err, errlen, "a GPU is present but not usable, using the CPU: %s", why);
        return &cpu_backend;
#else
        if (strcmp(name, "cuda") == 0) {
            snprintf(err, errlen, "--device cuda: this build has no CUDA backend (configure with the "
                                  "CUDA toolkit, cuDNN and cuBLAS installed, and -DWITH_CUDA=ON)");
            return NULL;
        }
#endif
        if (cpu_backend.init(opt, err, errlen) != 0) return NULL;
        snprintf(err, errlen, "this build has no CUDA backend, using the CPU");
        return &cpu_backend;
    }
    snprintf(err, errlen, "unknown device '%s' (expected auto, cpu, cuda or ref)", name);
    return NULL;
}
