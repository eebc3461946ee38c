// The per-op profiler. While attached to an engine, it timestamps the stream at every op boundary:
// when an op is recorded on the tape (its forward starts; the previous op's forward ends), before
// each tape entry's backward, and at the ends of both passes. A boundary is a backend event (a
// cudaEvent on the GPU, so nothing waits per op) or, for backends without events, the host clock
// after a synchronize (exact for the CPU, whose backend is synchronous). After a step,
// profiler_collect turns the timestamps into per-op forward and backward milliseconds, summed over
// the profiled steps; the cost model (multiply-adds, bytes) comes from each op's shapes.
#ifndef NN_PROFILE_H
#define NN_PROFILE_H

#include "engine.h"

typedef struct OpProfile {
    char name[64], kind[24];
    int n, c, h, w;            // output shape
    double fwd_ms, bwd_ms;     // summed over the profiled steps
    double macs_fwd, macs_bwd; // multiply-adds executed per step (DR: g times the depthwise ones)
    double macs_true;          // depthwise layers: the depthwise multiply-adds themselves (forward)
    double bytes_fwd, bytes_bwd; // least bytes each pass must move: every input read once, every output written once
    int g;                     // depthwise layers: channels per block-diagonal group
    int bf16_products;         // the op's OpDef.bf16_products: bf16 operands under bf16 mixed precision
} OpProfile;

typedef struct Profiler {
    const Backend* be;
    int capacity;              // tape entries it can time
    void** fwd_ev;             // (capacity + 1) forward boundaries: fwd_ev[i] before entry i, then the end
    void** bwd_ev;             // (capacity + 1) backward boundaries: bwd_ev[i] before entry i's backward,
                               // bwd_ev[capacity] at the end of the pass
    double* fwd_host;          // the same as host times, when the backend has no events
    double* bwd_host;
    int* ran_bwd;              // (capacity) whether entry i ran its backward this step
    int entries;               // forward ops marked this step
    int in_range;              // a named range is open
    OpProfile* ops;            // (capacity)
    int steps;                 // profiled steps summed into ops
    int active;                // marks are taken only while active
} Profiler;

// One training step's cost over the tape of the last step the engine recorded: multiply-adds as
// executed (DR: g times the depthwise ones), as the model defines them (what another framework
// executes), and the least bytes the layers must move in both passes.
typedef struct StepCost {
    double macs_executed, macs_model, bytes;
} StepCost;
void op_cost(const TapeEntry* t, OpCost* c);
void profile_op_cost(OpProfile* o, const TapeEntry* t); // op_cost into the profile's row
StepCost profile_step_cost(const Engine* e);

Profiler* profiler_create(const Backend* be, int capacity);
void profiler_destroy(Profiler* p);
// Called by the engine (no-ops unless the profiler is attached and active). A mark ends what the
// previous mark began: entry's forward (or backward) starts; entry = -1: the pass has ended.
void profiler_mark_forward(Profiler* p, int entry, const char* name);
void profiler_mark_backward(Profiler* p, int entry, const char* name);
// After a step: waits for its timestamps and adds them to the per-op sums.
void profiler_collect(Profiler* p, const Engine* e);

// A standalone timer on the backend's stream (for whole steps and regions such as the optimizer).
typedef struct StreamTimer {
    const Backend* be;
    void *start, *end;
    double host_start, host_end;
} StreamTimer;
void stream_timer_init(StreamTimer* t, const Backend* be);
void stream_timer_start(StreamTimer* t);
void stream_timer_stop(StreamTimer* t);
double stream_timer_ms(StreamTimer* t); // waits for the stop
void stream_timer_free(StreamTimer* t);

#endif
