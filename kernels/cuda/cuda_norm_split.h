// Batch-norm training statistics split over many blocks per channel (cuda_norm_split.cu), used by
// cuda_norm.cu unless DRNET_CUDA_BN_SPLIT=0. Same semantics and argument conventions as there.
#ifndef KERNELS_CUDA_CUDA_NORM_SPLIT_H
#define KERNELS_CUDA_CUDA_NORM_SPLIT_H

// Whether the split kernels take this shape: their element indices are 32-bit.
int bn_split_fits(int n, int c, int hw);
void bn_split_forward_train(float* y, float* mean, float* invstd, float* running_mean, float* running_var,
                            const float* x, const float* gamma, const float* beta, int n, int c, int hw,
                            float momentum, float eps, int relu);
void bn_split_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* y,
                       const float* mean, const float* invstd, const float* gamma, int n, int c, int hw,
                       int relu, int accumulate);

#endif
