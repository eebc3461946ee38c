// NCCL all-reduce of device memory for data-parallel training (train/dist.c), ordered on the CUDA
// backend's stream. Plain C declarations: callers include no CUDA or NCCL header.
#ifndef KERNELS_CUDA_CUDA_NCCL_H
#define KERNELS_CUDA_CUDA_NCCL_H

#include <stddef.h>

#define CUDA_NCCL_ID_BYTES 128 // NCCL_UNIQUE_ID_BYTES

#ifdef __cplusplus
extern "C" {
#endif
// Before the backend opens: the calling process uses GPU local_rank modulo the GPUs present (the
// backend opens whichever device is current). Does nothing without a GPU.
void cuda_nccl_select_device(int local_rank);
// Rank 0 makes the communicator's id (id: CUDA_NCCL_ID_BYTES) and sends it to the others (via MPI);
// then every rank joins. Return 0, or non-zero with a message in err.
int cuda_nccl_unique_id(void* id, char* err, size_t errlen);
int cuda_nccl_init(const void* id, int rank, int size, char* err, size_t errlen);
// In place: x (count floats of device memory) = its sum over the ranks. Stream-ordered (returns
// before the sum is done; the next kernel on the stream sees it).
void cuda_nccl_allreduce_sum(float* x, size_t count);
void cuda_nccl_finalize(void);
#ifdef __cplusplus
}
#endif

#endif
