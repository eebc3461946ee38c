// The checkpoint format: a round trip of typed records and of an engine's tensors, and every kind of
// damage refused with a message naming the file and what is wrong (CRC, truncation, magic,
// version, trailing bytes, a tensor of the wrong shape). Files live in a temporary directory.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "../nn/checkpoint.h"
#include "../nn/ops.h"
#include "../nn/util.h"
#include "test_util.h"

static char dir[256];

static long file_size(const char* path) {
    FILE* f = NN_FOPEN(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void copy_damaged(const char* src, const char* dst, long keep, long flip_at) {
    FILE* in = NN_FOPEN(src, "rb");
    FILE* out = NN_FOPEN(dst, "wb");
    int ch;
    long i = 0;
    while ((ch = fgetc(in)) != EOF && (keep < 0 || i < keep)) {
        fputc(i == flip_at ? ch ^ 0x5A : ch, out);
        i++;
    }
    fclose(in);
    fclose(out);
}

static void expect_refused(const char* path, const char* what, const char* needle) {
    Checkpoint c;
    char err[1200] = "";
    int rc = ckpt_load(&c, path, err, sizeof(err));
    CHECK(rc != 0, "%s: a damaged checkpoint was accepted", what);
    CHECK(strstr(err, needle) != NULL, "%s: message '%s' lacks '%s'", what, err, needle);
    CHECK(strstr(err, path) != NULL, "%s: message '%s' does not name the file", what, err);
    printf("  %-28s refused: %s\n", what, err);
}

// A 4 GB file (sparse: no disk space) whose table does not fit its size must be refused from its
// header and record table, without reading it into memory: checked in a child limited to 2 GB of
// address space, where reading the whole file first cannot succeed. (Not under AddressSanitizer,
// which reserves terabytes of address space at start-up.)
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif

static void expect_big_file_refused(const char* src, const char* path, const char* what, const char* needle) {
#if defined(UNDER_ASAN)
    (void)src, (void)path, (void)needle;
    printf("  %-28s skipped under AddressSanitizer\n", what);
#else
    copy_damaged(src, path, -1, -1);
    CHECK(truncate(path, 4LL << 30) == 0, "truncate %s to 4 GB", path);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit limit = {2LL << 30, 2LL << 30};
        setrlimit(RLIMIT_AS, &limit);
        Checkpoint c;
        char err[1200] = "";
        int rc = ckpt_load(&c, path, err, sizeof(err));
        printf("  %-28s %s: %s\n", what, rc ? "refused" : "accepted", err);
        fflush(stdout);
        _exit(rc == 0 ? 2 : strstr(err, needle) && strstr(err, path) ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the reader did not refuse it from its table "
          "within 2 GB (status %d): it reads the whole file first", what, status);
    unlink(path);
#endif
}

static Engine* small_engine(int width, Conv2d* conv, BatchNorm2d* bn) {
    BackendOptions opt = {0};
    char err[256];
    const Backend* be = backend_open("cpu", &opt, err, sizeof(err));
    Engine* e = engine_create(be);
    conv2d_init(conv, e, "conv", 3, width, 3, 1, 1, 1);
    batchnorm2d_init(bn, e, "bn", width);
    engine_alloc_params(e);
    engine_init_params(e, 7);
    return e;
}

int main(void) {
    snprintf(dir, sizeof(dir), "/tmp/drnet-ckpt-XXXXXX");
    if (!mkdtemp(dir)) nn_fatal("mkdtemp failed");
    char path[512], bad[512], err[1200];
    snprintf(path, sizeof(path), "%s/a.ckpt", dir);

    // An engine with momentum that is not zero, saved and loaded into a fresh engine.
    Conv2d conv, conv2;
    BatchNorm2d bn, bn2;
    Engine* e = small_engine(4, &conv, &bn);
    float m[108];
    for (int i = 0; i < 108; i++) m[i] = 0.01f * (float)(i + 1);
    e->be->upload(e->param_momentum + engine_find_param(e, "conv.weight")->offset, m, sizeof(m));
    CkptWriter w;
    CHECK(ckpt_begin(&w, path, err, sizeof(err)) == 0, "%s", err);
    ckpt_put_i64(&w, "train.step", 1234);
    ckpt_put_f32(&w, "meta.width", 0.5f);
    ckpt_put_str(&w, "meta.model", "mobilenet");
    ckpt_put_engine(&w, e, 1);
    CHECK(ckpt_commit(&w, err, sizeof(err)) == 0, "%s", err);
    CHECK(access(path, F_OK) == 0, "checkpoint missing after commit");
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0, "temporary file left behind");

    Checkpoint c;
    CHECK(ckpt_load(&c, path, err, sizeof(err)) == 0, "load: %s", err);
    int64_t step = 0;
    float width = 0;
    char model[32] = "";
    CHECK(!ckpt_get_i64(&c, "train.step", &step) && step == 1234, "i64 record");
    CHECK(!ckpt_get_f32(&c, "meta.width", &width) && width == 0.5f, "f32 record");
    CHECK(!ckpt_get_str(&c, "meta.model", model, sizeof(model)) && !strcmp(model, "mobilenet"), "string record");
    CHECK(ckpt_get_i64(&c, "meta.width", &step) != 0, "a record read with the wrong type must fail");

    Engine* e2 = small_engine(4, &conv2, &bn2);
    engine_init_params(e2, 99); // different values, to be overwritten
    CHECK(ckpt_get_engine(&c, e2, 1, err, sizeof(err)) == 0, "engine load: %s", err);
    int same = memcmp(e->param_data, e2->param_data, e->num_param_floats * sizeof(float)) == 0 &&
               memcmp(e->param_momentum, e2->param_momentum, e->num_param_floats * sizeof(float)) == 0 &&
               memcmp(e->buffer_data, e2->buffer_data, e->num_buffer_floats * sizeof(float)) == 0;
    CHECK(same, "engine tensors differ after a round trip");
    ckpt_free(&c);

    // The wrong model: a tensor of another shape is refused, naming it.
    Conv2d conv3;
    BatchNorm2d bn3;
    Engine* e3 = small_engine(5, &conv3, &bn3);
    CHECK(ckpt_load(&c, path, err, sizeof(err)) == 0, "reload");
    CHECK(ckpt_get_engine(&c, e3, 1, err, sizeof(err)) != 0, "a checkpoint of another shape was accepted");
    CHECK(strstr(err, "conv.weight") && strstr(err, "4x3x3x3") && strstr(err, "5x3x3x3"),
          "shape mismatch message '%s'", err);
    printf("  %-28s refused: %s\n", "other shape", err);
    ckpt_free(&c);

    // Damage of every kind.
    long size = file_size(path);
    snprintf(bad, sizeof(bad), "%s/flipped.ckpt", dir);
    copy_damaged(path, bad, -1, size - 17); // a byte inside the last tensor's data
    expect_refused(bad, "flipped data byte", "CRC32");
    snprintf(bad, sizeof(bad), "%s/truncated.ckpt", dir);
    copy_damaged(path, bad, size / 2, -1);
    expect_refused(bad, "truncated", "truncated");
    snprintf(bad, sizeof(bad), "%s/magic.ckpt", dir);
    copy_damaged(path, bad, -1, 0);
    expect_refused(bad, "bad magic", "not a drnet checkpoint");
    snprintf(bad, sizeof(bad), "%s/version.ckpt", dir);
    copy_damaged(path, bad, -1, 8);
    expect_refused(bad, "other version", "version");
    snprintf(bad, sizeof(bad), "%s/empty.ckpt", dir);
    copy_damaged(path, bad, 0, -1);
    expect_refused(bad, "empty file", "truncated");
    snprintf(bad, sizeof(bad), "%s/trailing.ckpt", dir);
    copy_damaged(path, bad, -1, -1);
    FILE* f = NN_FOPEN(bad, "ab");
    fputs("junk", f);
    fclose(f);
    expect_refused(bad, "trailing bytes", "unexpected bytes");
    snprintf(bad, sizeof(bad), "%s/missing.ckpt", dir);
    expect_refused(bad, "missing file", "No such file");
    snprintf(bad, sizeof(bad), "%s/big.ckpt", dir);
    expect_big_file_refused(path, bad, "4 GB, trailing bytes", "unexpected bytes after its last record");
    snprintf(bad, sizeof(bad), "%s/big-magic.ckpt", dir);
    {
        FILE* big = NN_FOPEN(bad, "wb");
        fputs("not a checkpoint", big);
        fclose(big);
        snprintf(tmp, sizeof(tmp), "%s/not.ckpt", dir);
        rename(bad, tmp);
        expect_big_file_refused(tmp, bad, "4 GB, bad magic", "not a drnet checkpoint");
    }

    // Format version 2: the CRC covers each record's header, so flipping any byte of a name, type,
    // rank, dimension or size is refused too (version 1 accepted a flipped name or dimension).
    int header_flips = 0, accepted = 0;
    {
        size_t n = (size_t)size;
        uint8_t* buf = NN_MALLOC(n);
        FILE* in = NN_FOPEN(path, "rb");
        CHECK(fread(buf, 1, n, in) == n, "read back %s", path);
        fclose(in);
        size_t at = 16;
        while (at < n) {
            uint16_t len;
            memcpy(&len, buf + at, 2);
            uint8_t ndim = buf[at + 2 + len + 1];
            size_t head = 2 + (size_t)len + 2 + 8 * (size_t)ndim + 8; // before the CRC
            uint64_t nbytes;
            memcpy(&nbytes, buf + at + head - 8, 8);
            for (size_t b = at; b < at + head; b++) {
                for (int bit = 0; bit < 8; bit += 3) {
                    buf[b] ^= (uint8_t)(1u << bit);
                    Checkpoint d;
                    char derr[1200];
                    if (ckpt_parse(&d, buf, n, "flip", derr, sizeof(derr)) == 0) {
                        if (accepted++ < 3) CHECK(0, "header byte %zu flipped (bit %d) was accepted", b, bit);
                        ckpt_free(&d);
                    }
                    buf[b] ^= (uint8_t)(1u << bit);
                    header_flips++;
                }
            }
            at += head + 4 + nbytes;
        }
        free(buf);
    }
    CHECK(accepted == 0, "%d of %d header bit flips were accepted", accepted, header_flips);
    printf("  %-28s refused: all %d bit flips of record headers\n", "flipped header bits", header_flips);

    // A version 1 file (CRC of the data only), as earlier releases wrote it, still loads.
    {
        snprintf(bad, sizeof(bad), "%s/v1.ckpt", dir);
        FILE* v1 = NN_FOPEN(bad, "wb");
        uint32_t version = 1, count = 2;
        fwrite("DRNETCKP", 1, 8, v1), fwrite(&version, 4, 1, v1), fwrite(&count, 4, 1, v1);
        const char* names[2] = {"train.step", "meta.width"};
        int64_t i_val = 77;
        float f_val = 0.25f;
        const void* vals[2] = {&i_val, &f_val};
        uint8_t dtypes[2] = {CKPT_I64, CKPT_F32};
        uint64_t sizes[2] = {8, 4};
        for (int k = 0; k < 2; k++) {
            uint16_t len = (uint16_t)strlen(names[k]);
            uint8_t ndim = 0;
            uint32_t crc = (uint32_t)crc32(0L, vals[k], (uInt)sizes[k]);
            fwrite(&len, 2, 1, v1), fwrite(names[k], 1, len, v1), fwrite(&dtypes[k], 1, 1, v1);
            fwrite(&ndim, 1, 1, v1), fwrite(&sizes[k], 8, 1, v1), fwrite(&crc, 4, 1, v1);
            fwrite(vals[k], 1, sizes[k], v1);
        }
        fclose(v1);
        int64_t s1 = 0;
        float w1 = 0;
        CHECK(ckpt_load(&c, bad, err, sizeof(err)) == 0, "version 1 file refused: %s", err);
        CHECK(!ckpt_get_i64(&c, "train.step", &s1) && s1 == 77 && !ckpt_get_f32(&c, "meta.width", &w1) &&
              w1 == 0.25f, "version 1 values");
        ckpt_free(&c);
        printf("  %-28s loaded\n", "version 1 file");
    }

    // A failed save (directory not writable) must leave the previous checkpoint alone.
    snprintf(bad, sizeof(bad), "%s/no/such/dir/x.ckpt", dir);
    CHECK(ckpt_begin(&w, bad, err, sizeof(err)) != 0 && strstr(err, bad), "unwritable path: '%s'", err);

    engine_destroy(e), engine_destroy(e2), engine_destroy(e3);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_finish("test_checkpoint");
}
