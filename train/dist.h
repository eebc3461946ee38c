// Data parallelism across processes, on the engines people already run: MPI launches the processes
// (mpirun -np N ./train ...) and sums on the host; with the CUDA backend NCCL sums the device arena,
// its communicator bootstrapped through MPI, one GPU per process. Rank r computes micro-batches
// r*K .. r*K+K-1 of every global batch (K = --accum-steps), so N processes compute what one process
// computes with --accum-steps N*K. Without MPI (a build without it, or a run without a launcher)
// there is one process of rank 0 and every call below does nothing.
//
// Every function after dist_init is collective where it says so: all ranks call it at the same point
// of the run, in the same order, or the run hangs.
#ifndef TRAIN_DIST_H
#define TRAIN_DIST_H

#include "../nn/engine.h"

// First thing in main: joins the MPI job when a launcher started this process; rank > 0 sends its
// stdout to /dev/null (rank 0 prints progress). `device` (--device) lets it pick the GPU of the
// local rank before the backend opens. Exits with a message when launched as several processes by
// a build without MPI.
void dist_init(int* argc, char*** argv, const char* device);
int dist_rank(void);
int dist_size(void);
// After the backend is open: chooses how gradients are summed (NCCL on the device, MPI on the host)
// and, on rank 0, says so on stdout. DRNET_DIST_NCCL=1 makes a single process without MPI use a
// one-rank NCCL communicator too (the GPU test runs the NCCL path so).
void dist_attach(Engine* e);

// Collective. The gradient arena summed over ranks, in place (each rank's loss already carries its
// share of the global batch, so the sum is the global mean gradient).
void dist_allreduce_grads(Engine* e);
// Collective. Host values summed over ranks, in place.
void dist_sum(double* x, int n);
// Collective. Rank 0's `bytes` at p copied to every rank (choices made by timing, e.g. --dw-group auto).
void dist_broadcast(void* p, size_t bytes);
// Collective. Whether any rank passes a non-zero flag (Ctrl-C on one rank stops all at one step).
int dist_any(int flag);

// Batch-norm running statistics. Each rank updates them from its own micro-batches; these two calls
// around a step's micro-batches make every rank hold what one process running all the step's
// micro-batches in order would (up to rounding): running = (1-m)^total * before + sum over ranks of
// (1-m)^(micro-batches after the rank's last) * (the rank's own change). `first`: the global index
// of this rank's first micro-batch; `local`: how many it ran; `total`: how many the step had.
// Collective when dist_size() > 1; nothing otherwise.
void dist_stats_begin(Engine* e);
void dist_stats_end(Engine* e, float momentum, int first, int local, int total);

// DRNET_CHECK_REPLICAS=1: after every step, rank 0 prints "check: step S weights HASH" (a hash of
// the parameters and momentum) and every rank compares the hash of its parameters, momentum and
// running statistics with rank 0's, exiting with a message if any differs. Collective.
void dist_check_step(Engine* e, long step);

// Leaves the MPI job (normal exits only: an error exit makes the launcher stop the other ranks).
void dist_finalize(void);

#endif
