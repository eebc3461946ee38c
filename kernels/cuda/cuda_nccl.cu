// NCCL for train/dist.c: one communicator, one GPU per process, all-reduce on the backend's stream
// (so it follows the backward and precedes the optimizer without a host wait). Compiled only when
// CMake finds NCCL (WITH_NCCL).
#include <nccl.h>
#include <stdio.h>
#include <string.h>

#include "cuda_check.h"
#include "cuda_nccl.h"
#include "cuda_stream.h"

static_assert(CUDA_NCCL_ID_BYTES == NCCL_UNIQUE_ID_BYTES, "NCCL's id size changed");

static ncclComm_t g_comm = NULL;

#define NCCL_CHECK(call)                                                                          \
    do {                                                                                          \
        ncclResult_t r_ = (call);                                                                 \
        if (r_ != ncclSuccess)                                                                    \
            cuda_fail(__FILE__, __LINE__, "NCCL", #call, ncclGetErrorString(r_), ncclGetLastError(g_comm)); \
    } while (0)

extern "C" void cuda_nccl_select_device(int local_rank) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        (void)cudaGetLastError();
        return;
    }
    if (cudaSetDevice(local_rank % count) != cudaSuccess) (void)cudaGetLastError();
}

extern "C" int cuda_nccl_unique_id(void* id, char* err, size_t errlen) {
    ncclUniqueId u;
    ncclResult_t r = ncclGetUniqueId(&u);
    if (r != ncclSuccess) {
        snprintf(err, errlen, "ncclGetUniqueId failed: %s", ncclGetErrorString(r));
        return 1;
    }
    memcpy(id, &u, sizeof(u));
    return 0;
}

extern "C" int cuda_nccl_init(const void* id, int rank, int size, char* err, size_t errlen) {
    ncclUniqueId u;
    memcpy(&u, id, sizeof(u));
    int dev = -1; // for the message only
    if (cudaGetDevice(&dev) != cudaSuccess) dev = -1, (void)cudaGetLastError();
    ncclResult_t r = ncclCommInitRank(&g_comm, size, u, rank);
    if (r != ncclSuccess) {
        snprintf(err, errlen, "ncclCommInitRank (rank %d of %d, GPU %d) failed: %s %s", rank, size, dev,
                 ncclGetErrorString(r), ncclGetLastError(NULL));
        g_comm = NULL;
        return 1;
    }
    return 0;
}

extern "C" void cuda_nccl_allreduce_sum(float* x, size_t count) {
    NCCL_CHECK(ncclAllReduce(x, x, count, ncclFloat, ncclSum, g_comm, drnet_cuda_stream()));
}

extern "C" void cuda_nccl_finalize(void) {
    if (!g_comm) return;
    CUDA_CHECK(cudaStreamSynchronize(drnet_cuda_stream()));
    NCCL_CHECK(ncclCommDestroy(g_comm));
    g_comm = NULL;
}
