// Block-wide sum in double, for the kernels whose per-channel or per-batch statistics must match
// the CPU backend's double accumulation (batch norm, cross-entropy, metrics).
#ifndef KERNELS_CUDA_CUDA_REDUCE_H
#define KERNELS_CUDA_CUDA_REDUCE_H

// The sum of v over the block, returned to every thread. Every thread of the block must call it
// (no early returns before it); blockDim.x must be a multiple of 32, at most 1024. `shared` is 32
// doubles of __shared__ memory; a block may call this several times with the same buffer.
static __device__ __forceinline__ double block_sum(double v, double* shared) {
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads(); // a previous call may still be reading shared[0]
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    return shared[0];
}

#endif
