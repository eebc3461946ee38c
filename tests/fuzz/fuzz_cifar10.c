// libFuzzer harness for the CIFAR-10 reader (data/cifar10.c). The first byte picks the reader: even,
// the tar.gz reader on the rest of the input held in memory; odd, the extracted-directory reader on
// the rest split into the six .bin files. Members hold 1 record (cifar10_load_small), so a valid
// input is small and every check is reachable. Any input must end in 0 or a message naming the
// source; a crash, hang, leak or sanitizer report is a finding. Built by run_fuzz.sh with clang
// -fsanitize=fuzzer, or with replay_main.c to replay the corpus with any compiler.
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../data/cifar10.h"

#define RECORDS 1

static void check_result(int rc, const Cifar10* ds, const char* err, const char* source) {
    if (rc == 0) {
        // a success is a complete dataset: every label a class
        if (ds->n_train != 5 * RECORDS || ds->n_test != RECORDS || !ds->train || !ds->test) __builtin_trap();
        for (int r = 0; r < ds->n_train; r++)
            if (ds->train[(size_t)r * CIFAR10_RECORD] >= CIFAR10_CLASSES) __builtin_trap();
        for (int r = 0; r < ds->n_test; r++)
            if (ds->test[(size_t)r * CIFAR10_RECORD] >= CIFAR10_CLASSES) __builtin_trap();
    } else {
        // a failure says where, and leaves nothing allocated
        if (!strstr(err, source) || ds->train || ds->test) __builtin_trap();
    }
}

static char dir[64];
static const char* const names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                     "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

// At exit (libFuzzer ends with exit()): the scratch directory goes.
static void remove_dir(void) {
    char path[128];
    for (int k = 0; k < 6; k++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
        unlink(path);
    }
    rmdir(dir);
}

static void write_file(const char* name, const uint8_t* data, size_t len) {
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE* f = fopen(path, "wb");
    if (!f) abort();
    if (len && fwrite(data, 1, len, f) != len) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    Cifar10 ds;
    char err[2048] = "";
    if ((data[0] & 1) == 0) {
        int rc = cifar10_load_targz_memory(&ds, data + 1, size - 1, RECORDS, err, sizeof(err));
        check_result(rc, &ds, err, "(memory)");
        cifar10_free(&ds);
        return 0;
    }
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/drnet-fuzz-dir-XXXXXX");
        if (!mkdtemp(dir)) abort();
        atexit(remove_dir);
    }
    // the rest in six slices; byte 0's upper bits drop one file (a missing member)
    size_t n = size - 1, missing = (data[0] >> 1) % 8;
    for (int k = 0; k < 6; k++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
        unlink(path);
        if ((size_t)k != missing) write_file(names[k], data + 1 + n * k / 6, n * (k + 1) / 6 - n * k / 6);
    }
    int rc = cifar10_load_small(&ds, dir, RECORDS, err, sizeof(err));
    check_result(rc, &ds, err, dir);
    cifar10_free(&ds);
    return 0;
}
