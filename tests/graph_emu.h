// A CPU stand-in for CUDA graph capture and replay, for tests (tests/graph_emu.c): the given CPU
// backend's table plus graph entries that record ops while capturing and run them again on launch.
#ifndef TESTS_GRAPH_EMU_H
#define TESTS_GRAPH_EMU_H

#include "../nn/backend.h"

const Backend* graph_emu_backend(const Backend* cpu);

#endif
