// --gpu-data and --cuda-graph: the state the fast training step keeps (train/speed.c). Both flags
// off (the CPU's default) leave Trainer.speed NULL and the step exactly as it was.
#ifndef TRAIN_SPEED_H
#define TRAIN_SPEED_H

#include "trainer.h"

typedef struct Speed {
    int gpu_data, use_graph; // the flags
    // --gpu-data: the data sets as records in backend memory, uploaded once (184 MB for CIFAR-10)
    uint8_t* train_records; // (train_count, 3073)
    uint8_t* test_records;  // (test_count, 3073)
    int train_count, test_count;
    int* indices;           // (batch) dataset indices of the current batch, backend memory
    // --cuda-graph: the captured training step and the fixed addresses it reads
    float* lr;              // (1) backend memory: the step's learning rate (sgd_step_device_lr)
    float* one;             // (1) backend memory: 1.0, the loss gradient seed
    void* graph;            // NULL until captured
    float* x;               // (graph_n, 3, 32, 32) in the activation arena: the captured step's input
    int* labels;            // (graph_n) in the activation arena
    int graph_n;            // batch size of the capture; other sizes (an epoch's short last batch) run eagerly
    long eager_full_steps;  // eager steps with a full batch so far: capture waits for the first (searches)
    size_t allocs_at_capture; // the backend's allocation count when captured: if it moved (a cuDNN
                              // workspace grew for a new shape), the graph may hold a freed pointer
    long replays, captures;
} Speed;

// Allocates and uploads what the flags need (once, lazily from the first step or evaluation);
// exits with a message when a flag cannot work with the backend (exit 2: --cuda-graph on the CPU).
Speed* speed_get(Trainer* t);
// A training step through the graph; returns 0 when this step must run eagerly instead (before the
// capture, or a batch of another size).
int speed_graph_step(Trainer* t, const Batch* b, StepTimers* timers);
// The inputs of an eager step built on the backend from resident records: x (n, 3, 32, 32) and
// labels (n) in the activation arena.
void speed_inputs(Trainer* t, const Batch* b, int train, Tensor** x, int** labels);
void speed_destroy(Trainer* t);
// Exits 2 naming the flag when --gpu-data or --cuda-graph asks for what the backend lacks (called at
// start-up, before the run directory exists, and again by speed_get).
void speed_check(const Trainer* t);
// Turns --gpu-data / --cuda-graph "auto" (the default) into on or off for the backend t->be: on for
// CUDA in one process without --accum-steps (and, for graphs, without --profile's per-op timing).
// Called once the backend is open, before anything reads the two flags.
void speed_resolve(Trainer* t);

// step.c: the model's loss on inputs already in the activation arena, x (n, 3, 32, 32), labels (n).
Tensor* forward_loss_from(Trainer* t, Tensor* x, int* labels);

#endif
