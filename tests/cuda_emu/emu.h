// The CUDA emulator's internal interface (tests/cuda_emu/): what the fake cuDNN and cuBLAS need from
// the emulated runtime. Device memory is host memory that is readable only while emulated device
// work runs, so every computation must go through submit(). Like the backend (one stream, one host
// thread), the emulator is single-threaded: nothing in it takes a lock.
#ifndef TESTS_CUDA_EMU_EMU_H
#define TESTS_CUDA_EMU_EMU_H

#include <stddef.h>

#include <functional>

#include <cuda_runtime.h>

namespace emu {

// Queues `work` on `stream` (0 = the legacy default stream). It runs later, in stream order, when
// the host synchronizes (like a GPU, as late as allowed, so that a missing synchronization shows);
// while the stream captures a graph it is recorded instead and runs at each graph launch. `what`
// names the work in error messages. The closure must capture by value everything it reads
// (descriptors may be destroyed before it runs).
void submit(cudaStream_t stream, const char* what, std::function<void()> work);

// Runs everything queued on every stream now (what a synchronizing library call does first).
void flush_all(void);

// 1 when [p, p + bytes) lies inside one live cudaMalloc allocation.
bool is_device_range(const void* p, size_t bytes);

// 1 while `stream` (or, with 0, any stream) is capturing a graph.
bool is_capturing(cudaStream_t stream);

// Prints "cuda-emu: <message>" and a backtrace, then aborts: for misuse a real GPU library would
// reject or that would be undefined behaviour there.
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Rounds a float to TensorFloat-32 (10 mantissa bits, round to nearest even), as tensor cores read
// FP32 inputs when TF32 is allowed.
float round_tf32(float x);

} // namespace emu

#endif
