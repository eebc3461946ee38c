// The CUDA backend's table, in C: designated initializers match every entry to its field of
// nn/backend.h by name, so a field added or moved there cannot shift the others (the table was
// positional while it was written in a .cu file, nvcc compiling C++17, which has no C99 designated
// initializers). The functions are the .cu files', declared with C linkage in cuda_table.h.
#include "cuda_table.h"

const Backend cuda_backend = {
    .name = "cuda",
    .init = cuda_init,
    .describe = cuda_describe,
    .alloc = cuda_alloc,
    .free = cuda_device_free,
    .zero = cuda_zero,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .synchronize = cuda_synchronize,
    .conv2d_forward = cuda_conv2d_forward,
    .conv2d_backward_data = cuda_conv2d_backward_data,
    .conv2d_backward_filter = cuda_conv2d_backward_filter,
    .dr_scatter = cuda_dr_scatter,
    .dr_gather = cuda_dr_gather,
    .batchnorm_forward_train = cuda_batchnorm_forward_train,
    .batchnorm_forward_eval = cuda_batchnorm_forward_eval,
    .batchnorm_backward = cuda_batchnorm_backward,
    .relu_forward = cuda_relu_forward,
    .relu_backward = cuda_relu_backward,
    .add_forward = cuda_add_forward,
    .add_backward = cuda_add_backward,
    .avgpool_forward = cuda_avgpool_forward,
    .avgpool_backward = cuda_avgpool_backward,
    .maxpool_forward = cuda_maxpool_forward,
    .maxpool_backward = cuda_maxpool_backward,
    .linear_forward = cuda_linear_forward,
    .linear_backward = cuda_linear_backward,
    .cross_entropy_forward = cuda_cross_entropy_forward,
    .cross_entropy_backward = cuda_cross_entropy_backward,
    .metrics_accumulate = cuda_metrics_accumulate,
    .sgd_step = cuda_sgd_step,
    .event_create = cuda_event_create,
    .event_destroy = cuda_event_destroy,
    .event_record = cuda_event_record,
    .event_elapsed_ms = cuda_event_elapsed_ms,
    .range_push = cuda_range_push, // NVTX ranges (no-ops in a build without NVTX)
    .range_pop = cuda_range_pop,
    // Measured on an H200 (cuDNN 9.19, TF32 on, batch 128): g = 1 is the fastest DR group size on all
    // 13 MobileNet-CIFAR depthwise shapes, 1.95 ms per step against the paper's g = 32 at 3.80 ms
    // (docs/results/gpu-h200-2026-12-04/bench.log). --dw-group 32 restores it.
    .default_dw_group = 1,
    .augment_batch = cuda_augment_batch,
    .sgd_step_device_lr = cuda_sgd_step_device_lr,
    .graph_capture_begin = cuda_graph_capture_begin,
    .graph_capture_end = cuda_graph_capture_end,
    .graph_launch = cuda_graph_launch,
    .graph_destroy = cuda_graph_destroy,
    .read_counters = cuda_read_counters,
};
