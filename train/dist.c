// See dist.h. MPI and NCCL appear only here and in kernels/cuda/cuda_nccl.cu; the trainer calls the
// small interface of dist.h, which does nothing in a single process.
#include "dist.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/util.h"

#ifdef WITH_MPI
#include <mpi.h>
#endif
#if defined(WITH_CUDA) && defined(WITH_NCCL)
#include "../kernels/cuda/cuda_nccl.h"
#endif

static struct {
    int rank, size, local_rank;
    int mpi;        // MPI_Init was called (launched by mpirun/mpiexec)
    int nccl;       // gradients are summed by NCCL on the device
    int host_stage; // gradients live on a device but are summed by MPI on the host (no NCCL)
    float* host;    // (num_param_floats or num_buffer_floats, the larger) staging / scratch
    float* before;  // (num_buffer_floats) running statistics at the start of the step
    size_t host_len;
} g = {0, 1, 0, 0, 0, 0, NULL, NULL, 0};

// The environment a launcher gives each process it starts (Open MPI, then PMI/PMIx launchers such as
// MPICH's hydra or Slurm's srun): how many processes the job has, or 0 without a launcher.
static int launcher_size(void) {
    static const char* VARS[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", NULL};
    for (int i = 0; VARS[i]; i++) {
        const char* v = getenv(VARS[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

#ifdef WITH_MPI
static void mpi_check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "error: %s failed on rank %d: %s\n", call, g.rank, msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}
#define MPI_CHECK(call) mpi_check((call), #call)
#endif

void dist_init(int* argc, char*** argv, const char* device) {
    int launched = launcher_size();
#ifdef WITH_MPI
    if (launched) {
        MPI_CHECK(MPI_Init(argc, argv));
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g.rank));
        MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g.size));
        // The local rank (this process's index among those on its machine) picks its GPU.
        MPI_Comm node;
        MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &node));
        MPI_CHECK(MPI_Comm_rank(node, &g.local_rank));
        MPI_Comm_free(&node);
        g.mpi = 1;
        // Rank 0 alone prints progress; the others keep stderr for errors.
        if (g.rank > 0 && !freopen("/dev/null", "w", stdout))
            fprintf(stderr, "warning: rank %d could not silence its stdout\n", g.rank);
    }
#else
    (void)argc, (void)argv;
    if (launched > 1)
        nn_fatal("this ./train was built without MPI but was launched as %d processes (by mpirun or "
                 "a similar launcher): each would train alone and they would overwrite each other's "
                 "files. Install MPI (e.g. apt-get install libopenmpi-dev) and rebuild, or run one "
                 "process.", launched);
#endif
#if defined(WITH_CUDA) && defined(WITH_NCCL)
    // One GPU per process: local rank r takes GPU r (modulo the GPUs present) before the CUDA backend
    // opens; with --device auto and no GPU this fails quietly and the CPU is used.
    if (g.mpi && (!strcmp(device, "cuda") || !strcmp(device, "auto"))) cuda_nccl_select_device(g.local_rank);
#else
    (void)device;
#endif
}

int dist_rank(void) { return g.rank; }
int dist_size(void) { return g.size; }

static void ensure_host(size_t floats) {
    if (floats <= g.host_len) return;
    free(g.host);
    g.host = NN_MALLOC(floats * sizeof(float));
    g.host_len = floats;
}

void dist_attach(Engine* e) {
    const char* force = getenv("DRNET_DIST_NCCL");
    int on_device = strcmp(e->be->name, "cuda") == 0; // NCCL sums CUDA memory; the others are host memory
#if defined(WITH_CUDA) && defined(WITH_NCCL)
    if (on_device && (g.mpi || (force && !strcmp(force, "1")))) {
        unsigned char id[CUDA_NCCL_ID_BYTES];
        char err[512] = "";
        if (g.rank == 0 && cuda_nccl_unique_id(id, err, sizeof(err)) != 0) nn_fatal("NCCL: %s", err);
#ifdef WITH_MPI
        if (g.mpi) MPI_CHECK(MPI_Bcast(id, CUDA_NCCL_ID_BYTES, MPI_BYTE, 0, MPI_COMM_WORLD));
#endif
        if (cuda_nccl_init(id, g.rank, g.size, err, sizeof(err)) != 0)
            nn_fatal("NCCL on rank %d of %d: %s", g.rank, g.size, err);
        g.nccl = 1;
    }
#endif
    if (force && !strcmp(force, "1") && !g.nccl)
        nn_fatal("DRNET_DIST_NCCL=1 needs the CUDA backend (--device cuda) and a build with NCCL");
    if (g.mpi && on_device && !g.nccl) g.host_stage = 1;
    if (g.mpi || g.nccl)
        printf("parallel: %d process%s (rank 0 prints and saves); gradients summed by %s once per step\n",
               g.size, g.size > 1 ? "es" : "",
               g.nccl ? "NCCL on the GPUs (one GPU per process, not overlapped with the backward)"
               : g.host_stage ? "MPI through host memory (this build has no NCCL)" : "MPI");
}

void dist_allreduce_grads(Engine* e) {
    size_t n = e->num_param_floats;
#if defined(WITH_CUDA) && defined(WITH_NCCL)
    if (g.nccl) {
        cuda_nccl_allreduce_sum(e->param_grad, n);
        return;
    }
#endif
#ifdef WITH_MPI
    if (!g.mpi || g.size == 1) return;
    if (g.host_stage) {
        ensure_host(n);
        e->be->download(g.host, e->param_grad, n * sizeof(float));
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, g.host, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
        e->be->upload(e->param_grad, g.host, n * sizeof(float));
    } else {
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, e->param_grad, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
#else
    (void)n;
#endif
}

void dist_sum(double* x, int n) {
#ifdef WITH_MPI
    if (g.mpi && g.size > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
#else
    (void)x, (void)n;
#endif
}

void dist_broadcast(void* p, size_t bytes) {
#ifdef WITH_MPI
    if (g.mpi && g.size > 1) MPI_CHECK(MPI_Bcast(p, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD));
#else
    (void)p, (void)bytes;
#endif
}

int dist_any(int flag) {
    int any = flag != 0;
#ifdef WITH_MPI
    if (g.mpi && g.size > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
#endif
    return any;
}

void dist_stats_begin(Engine* e) {
    if (g.size == 1) return;
    size_t n = e->num_buffer_floats;
    if (!g.before) g.before = NN_MALLOC(n * sizeof(float));
    e->be->download(g.before, e->buffer_data, n * sizeof(float));
}

// running = (1-m) * running + m * batch_statistic per micro-batch, so after `total` micro-batches
// run in order from r0: (1-m)^total r0 + sum_i (1-m)^(total-1-i) m s_i. A rank that ran micro-batches
// first .. first+local-1 from r0 holds (1-m)^local r0 + its part of that sum, scaled by
// (1-m)^(total-first-local) less than in the full sum.
void dist_stats_end(Engine* e, float momentum, int first, int local, int total) {
    if (g.size == 1) return;
    size_t n = e->num_buffer_floats;
    ensure_host(n);
    e->be->download(g.host, e->buffer_data, n * sizeof(float));
    double keep = 1.0 - (double)momentum;
    int after = total - first - local;
    double scale = 1.0, own = 1.0, all = 1.0;
    for (int i = 0; i < (after > 0 ? after : 0); i++) scale *= keep;
    for (int i = 0; i < local; i++) own *= keep;
    for (int i = 0; i < total; i++) all *= keep;
    double* part = NN_MALLOC(n * sizeof(double));
    for (size_t i = 0; i < n; i++) part[i] = local ? scale * ((double)g.host[i] - own * g.before[i]) : 0.0;
    dist_sum(part, (int)n);
    for (size_t i = 0; i < n; i++) g.host[i] = (float)(all * g.before[i] + part[i]);
    free(part);
    e->be->upload(e->buffer_data, g.host, n * sizeof(float));
}

static uint64_t fnv1a(uint64_t h, const void* p, size_t bytes) {
    const unsigned char* b = p;
    for (size_t i = 0; i < bytes; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t hash_arena(Engine* e, const float* arena, size_t n, uint64_t h) {
    ensure_host(n);
    e->be->download(g.host, arena, n * sizeof(float));
    return fnv1a(h, g.host, n * sizeof(float));
}

void dist_check_step(Engine* e, long step) {
    const char* on = getenv("DRNET_CHECK_REPLICAS");
    if (!on || strcmp(on, "1") != 0) return;
    uint64_t weights = hash_arena(e, e->param_data, e->num_param_floats, 0xcbf29ce484222325ULL);
    weights = hash_arena(e, e->param_momentum, e->num_param_floats, weights);
    uint64_t all = hash_arena(e, e->buffer_data, e->num_buffer_floats, weights);
    printf("check: step %ld weights %016llx\n", step, (unsigned long long)weights);
#ifdef WITH_MPI
    if (g.mpi && g.size > 1) {
        uint64_t first = all;
        MPI_CHECK(MPI_Bcast(&first, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
        int differs = first != all;
        if (dist_any(differs)) {
            if (differs)
                fprintf(stderr, "error: after step %ld the weights, momentum or running statistics of rank %d "
                        "differ from rank 0's (hash %016llx vs %016llx): the replicas diverged\n", step,
                        g.rank, (unsigned long long)all, (unsigned long long)first);
            fflush(stderr);
            MPI_Barrier(MPI_COMM_WORLD);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (g.rank == 0) printf("check: step %ld replicas identical on %d ranks\n", step, g.size);
    }
#else
    (void)all;
#endif
}

void dist_finalize(void) {
#if defined(WITH_CUDA) && defined(WITH_NCCL)
    if (g.nccl) cuda_nccl_finalize(), g.nccl = 0;
#endif
#ifdef WITH_MPI
    if (g.mpi) MPI_Finalize(), g.mpi = 0;
#endif
    free(g.host), free(g.before);
    g.host = g.before = NULL, g.host_len = 0;
}
