// The AMX bf16 kernel with its tile instructions emulated in C (cpu_gemm_amx.c says why): runs on
// any CPU, slowly; only the tests choose it (gemm_bf16_set_isa("amx-emulated")).
#define AMX_EMULATE 1
#include "cpu_gemm_amx.c"
