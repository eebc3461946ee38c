// Force-included (g++ -include) into every CUDA source the emulator compiles as C++: what a kernel
// body sees on a GPU (threadIdx, __syncthreads, warp shuffles, __shared__, the _rn intrinsics) and
// the launch that replaces `kernel<<<grid, block, shared, stream>>>(args)` (tests/cuda_emu/convert.cmake
// rewrites it to `EMU_LAUNCH(kernel, grid, block, shared, stream)(args)`).
//
// A block's threads run as fibers on one host thread, one block after another, so a __shared__
// array can be a function-local static and an atomic is a plain read-modify-write. A kernel that
// never reaches a barrier runs its threads as a plain loop after its first launch (see emu_runtime.cpp).
#ifndef TESTS_CUDA_EMU_EMU_KERNEL_H
#define TESTS_CUDA_EMU_EMU_KERNEL_H

// Before the CUDA headers: they define __shared__ only when it is not defined yet.
#define __shared__ static

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cuda_runtime.h>

#include <functional>
#include <utility>

namespace emu {

// The coordinates of the emulated thread that is running.
struct ThreadState {
    uint3 thread_idx, block_idx;
    dim3 block_dim, grid_dim;
};
extern ThreadState* current;

void syncthreads(void);
// Exchanges 8 bytes among the lanes of the running thread's warp (all lanes in `mask` must call).
uint64_t warp_exchange(unsigned mask, uint64_t mine, int src_lane);

// Runs (or queues, or records into a graph being captured) body() for every thread of the grid.
void launch(const char* name, const void* key, dim3 grid, dim3 block, size_t shared_bytes,
            cudaStream_t stream, std::function<void()> body);

// `EMU_LAUNCH(k, cfg...)(args...)`: the arguments are copied at the launch, as CUDA copies them.
template <class F> struct Launcher {
    const char* name;
    F* kernel;
    dim3 grid, block;
    size_t shared_bytes;
    cudaStream_t stream;
    template <class... A> void operator()(A... args) const {
        F* k = kernel;
        launch(name, (const void*)k, grid, block, shared_bytes, stream, [k, args...]() { k(args...); });
    }
};
template <class F>
Launcher<F> make_launcher(const char* name, F* kernel, dim3 grid, dim3 block, size_t shared_bytes = 0,
                          cudaStream_t stream = 0) {
    return Launcher<F>{name, kernel, grid, block, shared_bytes, stream};
}

} // namespace emu

#define EMU_LAUNCH(kernel, ...) ::emu::make_launcher(#kernel, kernel, __VA_ARGS__)

#define threadIdx (::emu::current->thread_idx)
#define blockIdx (::emu::current->block_idx)
#define blockDim (::emu::current->block_dim)
#define gridDim (::emu::current->grid_dim)

static inline void __syncthreads(void) { ::emu::syncthreads(); }

template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    static_assert(sizeof(T) <= 8, "emulated shuffles move at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    const int lane = (int)(threadIdx.x & 31u);
    // CUDA: the lane reads from lane + delta when that lane is in its width-wide segment, else keeps v.
    const int src = (lane % width) + (int)delta < width ? lane + (int)delta : lane;
    bits = ::emu::warp_exchange(mask, bits, src);
    memcpy(&v, &bits, sizeof(T));
    return v;
}

// With -ffp-contract=off these are exactly the IEEE single-precision operations the _rn intrinsics
// guarantee (no fused multiply-add).
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }

static inline float atomicAdd(float* p, float v) { float old = *p; *p = old + v; return old; }
static inline double atomicAdd(double* p, double v) { double old = *p; *p = old + v; return old; }
static inline int atomicAdd(int* p, int v) { int old = *p; *p = old + v; return old; }
static inline unsigned atomicAdd(unsigned* p, unsigned v) { unsigned old = *p; *p = old + v; return old; }

#endif
