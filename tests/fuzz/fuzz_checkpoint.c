// libFuzzer harness for the checkpoint reader (nn/checkpoint.c, through ckpt_parse on the input in
// memory). Any input must be refused with a message naming the file, or parse into records whose
// sizes agree with their dimensions and types; the typed getters must then be safe on every record.
// A crash, hang, leak or sanitizer report is a finding. Built by run_fuzz.sh with clang
// -fsanitize=fuzzer, or with replay_main.c to replay the corpus with any compiler.
#include <stdint.h>
#include <string.h>

#include "../../nn/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Checkpoint c;
    char err[1200] = "";
    if (ckpt_parse(&c, data, size, "fuzz.ckpt", err, sizeof(err)) != 0) {
        if (!strstr(err, "fuzz.ckpt") || c.records || c.count) __builtin_trap();
        return 0;
    }
    for (int i = 0; i < c.count; i++) {
        const CkptRecord* r = &c.records[i];
        size_t elem = r->dtype == CKPT_F32 ? 4 : r->dtype == CKPT_I64 ? 8 : 1;
        uint64_t numel = 1;
        for (int d = 0; d < r->ndim; d++) numel *= (uint64_t)r->dims[d];
        if (r->ndim > 4 || numel * elem != r->nbytes || !r->name[0]) __builtin_trap();
        if (ckpt_find(&c, r->name) == NULL) __builtin_trap();
        int64_t i64;
        float f32;
        char text[64];
        ckpt_get_i64(&c, r->name, &i64);
        ckpt_get_f32(&c, r->name, &f32);
        ckpt_get_str(&c, r->name, text, sizeof(text));
    }
    ckpt_free(&c);
    return 0;
}
