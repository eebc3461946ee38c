// What makes a training step cheap for the host: batches built on the GPU from dataset records
// uploaded once (augmentation from the definition the CPU loader uses, nn/augment.h), CUDA graph
// capture and replay of the step, and the counters a test reads to prove that a steady-state step
// allocates nothing and never waits for the device.
#include <stdio.h>

#include "cuda_internal.h"

extern "C" {
#include "../../nn/augment.h"
}

#define AUG_PLANE (AUGMENT_SIDE * AUGMENT_SIDE) // 1024
#define AUG_IMAGE (3 * AUG_PLANE)               // 3072 floats per image
#define AUG_RECORD (AUG_IMAGE + 1)              // label byte, then the pixels

// ---------------------------------------------------------------------------------------------
// Batches on the GPU

// One thread per output float: images (n, 3, 32, 32), labels (n). Thread (j, c, y, x) draws image
// j's augmentation itself (a few integer multiplies: cheaper than a second kernel and a buffer),
// finds its source pixel and normalizes it exactly as the CPU does. Indices within one image are
// 32-bit; only the image offset is size_t.
static __global__ void augment_kernel(float* images, int* labels, const uint8_t* records, int count,
                                      const int* indices, int n, uint64_t seed, int epoch, int augment) {
    const size_t total = (size_t)n * AUG_IMAGE;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int j = (int)(i / AUG_IMAGE);
        const int r = (int)(i - (size_t)j * AUG_IMAGE);
        const int c = r / AUG_PLANE, y = (r / AUGMENT_SIDE) % AUGMENT_SIDE, x = r % AUGMENT_SIDE;
        const int idx = indices[j];
        if (idx < 0 || idx >= count) {
            if (r == 0) {
                printf("error: augment_batch: dataset index %d of batch row %d is outside 0..%d\n", idx, j, count - 1);
                labels[j] = -1; // the cross-entropy kernel reports it and makes the loss NaN
            }
            images[i] = NAN;
            continue;
        }
        const uint8_t* record = records + (size_t)idx * AUG_RECORD;
        int dx = 0, dy = 0, flip = 0;
        if (augment) augment_draw(seed, epoch, idx, &dx, &dy, &flip);
        int sy, sx;
        const int in = augment_source(y, x, dx, dy, flip, &sy, &sx);
        const int v = in ? record[1 + (c * AUGMENT_SIDE + sy) * AUGMENT_SIDE + sx] : 0;
        images[i] = augment_normalize(c, v);
        if (r == 0) labels[j] = record[0];
    }
}

void cuda_augment_batch(float* images, int* labels, const uint8_t* records, int count, const int* indices,
                        int n, uint64_t seed, int epoch, int augment) {
    if (n <= 0) return;
    const size_t total = (size_t)n * AUG_IMAGE;
    augment_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(images, labels, records, count,
                                                                                  indices, n, seed, epoch, augment);
    KERNEL_CHECK("augment_kernel");
}

// ---------------------------------------------------------------------------------------------
// Graphs. Capture mode "global" by default: while this thread captures, any potentially unsafe call
// from any thread (cudaMalloc, a synchronization) fails instead of silently breaking the graph; the
// backend also refuses its own uploads, downloads, syncs and allocations with a message
// (cuda_refuse_in_capture), in every mode. DRNET_CUDA_CAPTURE_MODE=thread-local|relaxed selects the
// others at run time (cuda_backend.cu says why).
static const char* capture_mode_name(int mode) {
    return mode == cudaStreamCaptureModeThreadLocal ? "thread-local"
           : mode == cudaStreamCaptureModeRelaxed   ? "relaxed"
                                                    : "global";
}

int cuda_graph_capture_begin(char* err, size_t errlen) {
    if (g_cuda.capturing) {
        snprintf(err, errlen, "a CUDA graph capture is already in progress");
        return 1;
    }
    cudaError_t e = cudaStreamBeginCapture(g_cuda.stream, (cudaStreamCaptureMode)g_cuda.capture_mode);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(err, errlen, "cudaStreamBeginCapture (capture mode %s) failed: %s (%s); "
                 "DRNET_CUDA_CAPTURE_MODE=global|thread-local|relaxed selects the mode",
                 capture_mode_name(g_cuda.capture_mode), cudaGetErrorString(e), cudaGetErrorName(e));
        return 1;
    }
    g_cuda.capturing = 1;
    return 0;
}

void* cuda_graph_capture_end(void) {
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    g_cuda.capturing = 0;
    // Fails (cudaErrorStreamCaptureInvalidated, ...) if a call during the capture could not be
    // captured: say which step of the program it was and what to do, not only the CUDA name.
    cudaError_t e = cudaStreamEndCapture(g_cuda.stream, &graph);
    if (e != cudaSuccess) {
        char detail[400];
        snprintf(detail, sizeof(detail), "%s: a call made while capturing in mode %s could not be captured (an "
                 "earlier error, if any, names it); DRNET_CUDA_CAPTURE_MODE=thread-local or relaxed retries with "
                 "another capture mode, --cuda-graph off runs the step without a graph", cudaGetErrorName(e),
                 capture_mode_name(g_cuda.capture_mode));
        cuda_fail(__FILE__, __LINE__, "CUDA", "cudaStreamEndCapture (the end of the captured training step)",
                  cudaGetErrorString(e), detail);
    }
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaGraphDestroy(graph)); // the executable graph keeps what it needs
    return (void*)exec;
}

void cuda_graph_launch(void* graph) {
    CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, g_cuda.stream));
    LIBRARY_DONE("cudaGraphLaunch"); // DRNET_CUDA_SYNC=1: wait for the whole replay
}

void cuda_graph_destroy(void* graph) {
    if (!graph) return;
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream)); // a replay may still be running
    g_cuda.counters.syncs++;
    CUDA_CHECK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

void cuda_read_counters(BackendCounters* out) { *out = g_cuda.counters; }
