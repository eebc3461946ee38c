// Tests the data layer: reading and validating CIFAR-10 (data/cifar10.c) and the batch loader
// (data/loader.c). The real tarball named by $CIFAR10_PATH is loaded and checked against facts of the
// official files (counts, first labels, class histograms); every failure mode the reader promises to
// diagnose is provoked on small files made here -- truncated and corrupt copies, synthetic tar.gz
// archives written with zlib, sparse directories -- and the message must name the file, the offset
// and the problem. The loader is checked for exact pixel values, augmentation geometry and, most
// importantly, determinism: the same (seed, epoch) gives the same bits, whatever the restart point
// or batch size. The synthetic parts run without the real file; if it is absent the test reports
// what did run and exits 77 (CTest "skipped").
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../data/cifar10.h"
#include "../data/loader.h"
#include "../nn/rng.h"
#include "../nn/util.h"
#include "test_util.h"

#define MB (1024 * 1024)

static char tmp[512]; // mkdtemp directory for every file this test writes

static const char* tmp_path(const char* name) {
    static char bufs[4][1024];
    static int next;
    char* p = bufs[next++ % 4];
    snprintf(p, 1024, "%s/%s", tmp, name);
    return p;
}

// ---------------------------------------------------------------------------------------------
// Expecting errors.

// Loads path, which must fail with a message that contains every one of the NULL-terminated needles.
static void expect_error(const char* what, const char* path, const char* const* needles) {
    Cifar10 ds;
    char err[2048];
    int rc = cifar10_load(&ds, path, err, sizeof err);
    CHECK(rc != 0, "%s: loading %s succeeded", what, path);
    CHECK(ds.train == NULL && ds.test == NULL, "%s: failed load left arrays allocated", what);
    CHECK(strchr(err, '\n') == NULL, "%s: message is not one line", what);
    int ok = rc != 0;
    for (const char* const* n = needles; *n; n++) {
        CHECK(strstr(err, *n) != NULL, "%s: message lacks \"%s\": %s", what, *n, err);
        ok = ok && strstr(err, *n);
    }
    printf("%s %-22s %s\n", ok ? "ok  " : "FAIL", what, err);
    cifar10_free(&ds);
}

// ---------------------------------------------------------------------------------------------
// Writing synthetic tar.gz archives with zlib.

static void tar_header(gzFile gz, const char* name, unsigned long long size, char type, int bad_sum) {
    unsigned char h[512] = {0};
    snprintf((char*)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0001750", 8);
    memcpy(h + 116, "0001750", 8);
    char octal[32];
    snprintf(octal, sizeof octal, "%011llo", size);
    memcpy(h + 124, octal, 12);
    memcpy(h + 136, "13450001400", 12);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar\0" "00", 8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char*)h + 148, 8, "%06o", sum + (bad_sum ? 1 : 0)); // "%06o\0" then the space kept
    h[155] = ' ';
    CHECK(gzwrite(gz, h, 512) == 512, "gzwrite failed");
}

static void tar_pad(gzFile gz, unsigned long long size) {
    static const unsigned char zeros[512];
    unsigned pad = (unsigned)((512 - size % 512) % 512);
    if (pad) CHECK(gzwrite(gz, zeros, pad) == (int)pad, "gzwrite failed");
}

// A .bin member of nrec records: label (label_base + r) % 10 (or bad_label at record bad_record), the
// first pixel byte is marker, the second r % 256, the rest zero.
static void tar_bin_member(gzFile gz, const char* name, int nrec, int label_base, int marker,
                           int bad_record, int bad_label) {
    unsigned long long size = (unsigned long long)nrec * CIFAR10_RECORD;
    tar_header(gz, name, size, '0', 0);
    uint8_t* data = calloc((size_t)size, 1);
    CHECK(data != NULL, "out of memory");
    for (int r = 0; r < nrec; r++) {
        uint8_t* rec = data + (size_t)r * CIFAR10_RECORD;
        rec[0] = (uint8_t)(r == bad_record ? bad_label : (label_base + r) % 10);
        rec[1] = (uint8_t)marker;
        rec[2] = (uint8_t)(r % 256);
    }
    CHECK(gzwrite(gz, data, (unsigned)size) == (int)size, "gzwrite failed");
    free(data);
    tar_pad(gz, size);
}

static void tar_text_member(gzFile gz, const char* name, const char* text) {
    tar_header(gz, name, strlen(text), '0', 0);
    CHECK(gzwrite(gz, text, (unsigned)strlen(text)) == (int)strlen(text), "gzwrite failed");
    tar_pad(gz, strlen(text));
}

// End-of-archive (two zero blocks), padded like tar to a 10240-byte record.
static void tar_end(gzFile gz, unsigned long long written) {
    static const unsigned char zeros[10240];
    unsigned long long total = written + 1024;
    total += (10240 - total % 10240) % 10240;
    CHECK(gzwrite(gz, zeros, (unsigned)(total - written)) == (int)(total - written), "gzwrite failed");
}

static gzFile gz_create(const char* path, const char* mode) {
    gzFile gz = gzopen(path, mode);
    if (!gz) nn_fatal("cannot create %s: %s", path, strerror(errno));
    return gz;
}

static void gz_done(gzFile gz, const char* path) {
    int rc = gzclose(gz);
    if (rc != Z_OK) nn_fatal("writing %s failed (zlib %d)", path, rc);
}

// The official layout: a directory entry, then the six members in the order the real file has
// them, with batches.meta.txt among them. Written as two concatenated gzip members (as pigz or
// `cat a.gz b.gz` make) to exercise that path too. File k has labels (k + r) % 10 and marker k.
static void write_full_targz(const char* path) {
    static const int order[6] = {3, 4, 1, 0, 2, 5};
    static const char* const names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    unsigned long long written = 512;
    gzFile gz = gz_create(path, "wb1");
    tar_header(gz, "cifar-10-batches-bin/", 0, '5', 0);
    for (int i = 0; i < 6; i++) {
        if (i == 3) { // split into a second gzip member after three members
            gz_done(gz, path);
            gz = gz_create(path, "ab1");
            tar_text_member(gz, "cifar-10-batches-bin/batches.meta.txt", "airplane\nautomobile\n");
            written += 1024;
        }
        char name[128];
        snprintf(name, sizeof name, "cifar-10-batches-bin/%s", names[order[i]]);
        tar_bin_member(gz, name, CIFAR10_PER_FILE, order[i], order[i], -1, 0);
        written += 512 + CIFAR10_FILE_BYTES + (512 - CIFAR10_FILE_BYTES % 512) % 512;
    }
    tar_end(gz, written);
    gz_done(gz, path);
}

static void write_small_targz(const char* path, int bad_sum, int bin_records, int bad_record) {
    gzFile gz = gz_create(path, "wb6");
    tar_header(gz, "cifar-10-batches-bin/", 0, '5', 0);
    if (bad_sum) tar_header(gz, "cifar-10-batches-bin/data_batch_1.bin", CIFAR10_FILE_BYTES, '0', 1);
    else if (bin_records)
        tar_bin_member(gz, "cifar-10-batches-bin/data_batch_3.bin", bin_records, 0, 0, bad_record, 200);
    tar_end(gz, 0);
    gz_done(gz, path);
}

// ---------------------------------------------------------------------------------------------
// Plain files.

static uint8_t* read_all(const char* path, size_t* len) {
    FILE* f = NN_FOPEN(path, "rb");
    CHECK(fseek(f, 0, SEEK_END) == 0, "fseek %s", path);
    long n = ftell(f);
    CHECK(n >= 0 && fseek(f, 0, SEEK_SET) == 0, "ftell %s", path);
    uint8_t* data = NN_MALLOC((size_t)n);
    CHECK(fread(data, 1, (size_t)n, f) == (size_t)n, "reading %s", path);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static void write_all(const char* path, const void* data, size_t len) {
    FILE* f = NN_FOPEN(path, "wb");
    if (fwrite(data, 1, len, f) != len || fclose(f) != 0) nn_fatal("writing %s failed", path);
}

// A copy of the first `len` bytes of src, with `flip` bytes inverted from flip_at (flip may be 0).
static void write_prefix(const char* dst, const char* src, size_t len, size_t flip_at, size_t flip) {
    FILE* in = NN_FOPEN(src, "rb");
    uint8_t* buf = NN_MALLOC(len);
    size_t got = fread(buf, 1, len, in);
    fclose(in);
    CHECK(got == len, "%s is shorter than %zu bytes", src, len);
    for (size_t i = flip_at; i < flip_at + flip && i < got; i++) buf[i] ^= 0xFF;
    write_all(dst, buf, got);
    free(buf);
}

// A .bin file of the right size that takes no disk space (all-zero records: label 0, black).
static void write_sparse_bin(const char* path, long long size) {
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || ftruncate(fd, size) != 0 || close(fd) != 0)
        nn_fatal("creating %s: %s", path, strerror(errno));
}

static void poke(const char* path, long long offset, uint8_t value) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || pwrite(fd, &value, 1, offset) != 1 || close(fd) != 0)
        nn_fatal("writing %s: %s", path, strerror(errno));
}

// ---------------------------------------------------------------------------------------------
// Reader tests.

static void test_real_file(const Cifar10* ds, double seconds) {
    static const int train_first[10] = {6, 9, 9, 4, 1, 1, 2, 7, 8, 3};
    static const int test_first[10] = {3, 8, 8, 0, 6, 6, 1, 6, 3, 1};
    static const int batch4_first[10] = {0, 6, 0, 2, 7, 2, 1, 2, 4, 1}; // 4th in name, 1st in the tar
    printf("loaded %s in %.3f s\n", ds->source, seconds);
    CHECK(ds->n_train == 50000 && ds->n_test == 10000, "counts %d, %d", ds->n_train, ds->n_test);
    for (int i = 0; i < 10; i++) {
        CHECK(ds->train[(size_t)i * CIFAR10_RECORD] == train_first[i], "train label %d is %d, want %d", i,
              ds->train[(size_t)i * CIFAR10_RECORD], train_first[i]);
        CHECK(ds->test[(size_t)i * CIFAR10_RECORD] == test_first[i], "test label %d is %d, want %d", i,
              ds->test[(size_t)i * CIFAR10_RECORD], test_first[i]);
        size_t r4 = (size_t)(30000 + i) * CIFAR10_RECORD;
        CHECK(ds->train[r4] == batch4_first[i], "data_batch_4 label %d is %d, want %d", i, ds->train[r4],
              batch4_first[i]);
    }
    int train_hist[10] = {0}, test_hist[10] = {0};
    for (int i = 0; i < ds->n_train; i++) train_hist[ds->train[(size_t)i * CIFAR10_RECORD]]++;
    for (int i = 0; i < ds->n_test; i++) test_hist[ds->test[(size_t)i * CIFAR10_RECORD]]++;
    for (int c = 0; c < 10; c++) {
        CHECK(train_hist[c] == 5000, "train has %d images of class %d, want 5000", train_hist[c], c);
        CHECK(test_hist[c] == 1000, "test has %d images of class %d, want 1000", test_hist[c], c);
    }
    // Byte-exact identity of the copy in shared/data (a JPEG round trip of the official pixels):
    // informative only, since the pristine official file is equally valid input.
    uLong crc_train = crc32(0, ds->train, (uInt)((size_t)ds->n_train * CIFAR10_RECORD));
    uLong crc_test = crc32(0, ds->test, (uInt)((size_t)ds->n_test * CIFAR10_RECORD));
    printf("crc32 train %08lx, test %08lx\n", crc_train, crc_test);
}

static void test_real_file_errors(const char* real) {
    const char* trunc = tmp_path("truncated.tar.gz");
    write_prefix(trunc, real, 20 * MB, 0, 0);
    expect_error("truncated gzip", trunc,
                 (const char*[]){"truncated.tar.gz", "unexpected end of file", "compressed byte 20971520",
                                 "data_batch_4.bin", "30730000 bytes", NULL});
    unlink(trunc);
    // 64 bytes inverted at 50 MB, in the middle of data_batch_5.bin's deflate stream. (The one full
    // copy this test makes: damage inside a Huffman-coded block often decodes to plausible bytes, and
    // only the CRC-32 at the very end of the file is sure to catch it.)
    struct stat st;
    CHECK(stat(real, &st) == 0, "stat %s", real);
    const char* corrupt = tmp_path("corrupt.tar.gz");
    write_prefix(corrupt, real, (size_t)st.st_size, 50 * MB, 64);
    expect_error("corrupt gzip", corrupt,
                 (const char*[]){"corrupt.tar.gz", "gzip data is corrupt at compressed byte", "zlib:", NULL});
    unlink(corrupt);
}

static void check_full_synthetic(const Cifar10* ds) {
    int ok = 1;
    for (int k = 0; k < 6 && ok; k++)
        for (int r = 0; r < CIFAR10_PER_FILE && ok; r++) {
            const uint8_t* rec = k < 5 ? ds->train + ((size_t)k * CIFAR10_PER_FILE + r) * CIFAR10_RECORD
                                       : ds->test + (size_t)r * CIFAR10_RECORD;
            ok = rec[0] == (k + r) % 10 && rec[1] == k && rec[2] == r % 256 && rec[3] == 0;
            CHECK(ok, "synthetic file %d record %d: label %d marker %d %d", k, r, rec[0], rec[1], rec[2]);
        }
}

static void test_synthetic_targz(void) {
    const char* full = tmp_path("full.tar.gz");
    double t = nn_now();
    write_full_targz(full);
    printf("wrote synthetic %s in %.2f s\n", full, nn_now() - t);
    Cifar10 ds;
    char err[2048];
    int rc = cifar10_load(&ds, full, err, sizeof err);
    CHECK(rc == 0, "synthetic full.tar.gz: %s", err);
    if (rc == 0) {
        check_full_synthetic(&ds);
        CHECK(strcmp(ds.source, full) == 0, "source is %s", ds.source);
        printf("ok   synthetic tar.gz loads (two gzip members, members out of order)\n");
    }
    cifar10_free(&ds);

    // The gzip trailer: CRC-32 then length of the last gzip member. Damage there is only visible if
    // the reader inflates to the very end of the stream.
    size_t len;
    uint8_t* bytes = read_all(full, &len);
    const char* bad = tmp_path("trailer.tar.gz");
    bytes[len - 8] ^= 1;
    write_all(bad, bytes, len);
    expect_error("bad gzip CRC", bad, (const char*[]){"trailer.tar.gz", "corrupt", "byte", "incorrect data check", NULL});
    bytes[len - 8] ^= 1;
    bytes[len - 2] ^= 1;
    write_all(bad, bytes, len);
    expect_error("bad gzip length", bad, (const char*[]){"trailer.tar.gz", "corrupt", "incorrect length check", NULL});
    bytes[len - 2] ^= 1;
    write_all(bad, bytes, len - 8);
    expect_error("missing gzip trailer", bad, (const char*[]){"trailer.tar.gz", "unexpected end of file", "byte", NULL});
    unlink(bad);
    unlink(full);
    free(bytes);

    const char* p = tmp_path("badlabel.tar.gz");
    write_small_targz(p, 0, CIFAR10_PER_FILE, 4711);
    expect_error("bad label (tar.gz)", p,
                 (const char*[]){"badlabel.tar.gz", "cifar-10-batches-bin/data_batch_3.bin", "record 4711",
                                 "byte offset 14476903", "label 200 is outside 0..9", NULL});
    unlink(p);
    p = tmp_path("badsize.tar.gz");
    write_small_targz(p, 0, 100, -1);
    expect_error("wrong member size", p,
                 (const char*[]){"badsize.tar.gz", "data_batch_3.bin", "is 307300 bytes", "expected 30730000", NULL});
    unlink(p);
    p = tmp_path("badsum.tar.gz");
    write_small_targz(p, 1, 0, -1);
    expect_error("bad tar checksum", p,
                 (const char*[]){"badsum.tar.gz", "tar header at byte 512", "bad checksum", NULL});
    unlink(p);
    p = tmp_path("empty.tar.gz");
    write_small_targz(p, 0, 0, -1);
    expect_error("missing members", p,
                 (const char*[]){"empty.tar.gz", "without data_batch_1.bin", "test_batch.bin", NULL});
    unlink(p);
    p = tmp_path("text.tar.gz");
    write_all(p, "hello\n", 6);
    expect_error("not gzip", p, (const char*[]){"text.tar.gz", "not a gzip file", NULL});
    unlink(p);
    p = tmp_path("nope.tar.gz");
    expect_error("missing file", p, (const char*[]){p, "No such file or directory", NULL});
}

static void test_directory(void) {
    static const char* const names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    const char* root = tmp_path("extracted");
    char dir[1024], file[6][1100];
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", root);
    if (mkdir(root, 0755) != 0 || mkdir(dir, 0755) != 0) nn_fatal("mkdir %s: %s", dir, strerror(errno));
    for (int k = 0; k < 6; k++) {
        snprintf(file[k], sizeof file[k], "%s/%s", dir, names[k]);
        write_sparse_bin(file[k], CIFAR10_FILE_BYTES);
    }
    poke(file[2], 4711LL * CIFAR10_RECORD, 200);
    expect_error("bad label (directory)", root,
                 (const char*[]){"data_batch_3.bin", "record 4711", "byte offset 14476903", "label 200", NULL});
    poke(file[2], 4711LL * CIFAR10_RECORD, 7);
    poke(file[5], 9999LL * CIFAR10_RECORD, 9);
    for (int pass = 0; pass < 2; pass++) { // the folder holding cifar-10-batches-bin/, then that folder
        Cifar10 ds;
        char err[2048];
        int rc = cifar10_load(&ds, pass ? dir : root, err, sizeof err);
        CHECK(rc == 0, "directory load: %s", err);
        if (rc == 0) {
            CHECK(ds.train[(20000 + 4711) * (size_t)CIFAR10_RECORD] == 7, "directory: data_batch_3 misplaced");
            CHECK(ds.test[9999 * (size_t)CIFAR10_RECORD] == 9, "directory: test_batch misplaced");
            CHECK(strcmp(ds.source, dir) == 0, "directory: source is %s", ds.source);
        }
        cifar10_free(&ds);
    }
    printf("ok   extracted directory loads\n");
    write_sparse_bin(file[5], CIFAR10_FILE_BYTES - 1);
    expect_error("wrong file size", root, (const char*[]){"test_batch.bin", "is 30729999 bytes", "expected 30730000", NULL});
    unlink(file[4]);
    expect_error("missing .bin file", root, (const char*[]){"data_batch_5.bin", "No such file or directory", NULL});
    for (int k = 0; k < 6; k++) unlink(file[k]);
    rmdir(dir);
    // A directory with none of the files (--data pointed at the wrong folder): the message says what
    // was expected there, not only that data_batch_1.bin is missing; one holding the archive names it.
    expect_error("directory without data", root,
                 (const char*[]){root, "no CIFAR-10 files", "an extracted cifar-10-batches-bin folder",
                                 "cifar-10-binary.tar.gz", NULL});
    char archive[1100];
    snprintf(archive, sizeof archive, "%s/cifar-10-binary.tar.gz", root);
    write_all(archive, "x", 1);
    expect_error("directory with the archive", root, (const char*[]){root, "give the archive itself", archive, NULL});
    unlink(archive);
    rmdir(root);
}

static void test_resolve_path(void) {
    char out[1024], err[2048];
    const char* saved = getenv("CIFAR10_PATH");
    char* saved_copy = saved ? strdup(saved) : NULL;
    const char* nope = tmp_path("nope.tar.gz");
    CHECK(cifar10_resolve_path(out, sizeof out, nope, NULL, err, sizeof err) != 0 && strstr(err, nope) &&
              strstr(err, CIFAR10_URL) && strstr(err, "--data"),
          "resolve with a missing --data: %s", err);
    CHECK(cifar10_resolve_path(out, sizeof out, tmp, NULL, err, sizeof err) == 0 && strcmp(out, tmp) == 0,
          "resolve with --data %s gave %s", tmp, out);
    setenv("CIFAR10_PATH", tmp, 1);
    CHECK(cifar10_resolve_path(out, sizeof out, NULL, NULL, err, sizeof err) == 0 && strcmp(out, tmp) == 0,
          "resolve with CIFAR10_PATH=%s gave %s", tmp, out);
    setenv("CIFAR10_PATH", nope, 1);
    CHECK(cifar10_resolve_path(out, sizeof out, NULL, NULL, err, sizeof err) != 0 && strstr(err, nope) &&
              strstr(err, "CIFAR10_PATH"),
          "resolve with a missing CIFAR10_PATH: %s", err);
    unsetenv("CIFAR10_PATH");
    struct stat st;
    if (stat("data/cifar-10-binary.tar.gz", &st) != 0 && stat("data/cifar-10-batches-bin", &st) != 0) {
        // Nothing in the working directory: the fallback directory is searched, then the error lists all.
        char data_dir[1024], file[1100];
        snprintf(data_dir, sizeof data_dir, "%s/data", tmp);
        snprintf(file, sizeof file, "%s/cifar-10-binary.tar.gz", data_dir);
        CHECK(cifar10_resolve_path(out, sizeof out, NULL, tmp, err, sizeof err) != 0 &&
                  strstr(err, "data/cifar-10-binary.tar.gz (") && strstr(err, data_dir) &&
                  strstr(err, CIFAR10_URL),
              "resolve with nothing to find: %s", err);
        printf("ok   resolve error: %s\n", err);
        if (mkdir(data_dir, 0755) != 0) nn_fatal("mkdir %s: %s", data_dir, strerror(errno));
        write_all(file, "", 0);
        CHECK(cifar10_resolve_path(out, sizeof out, NULL, tmp, err, sizeof err) == 0 && strcmp(out, file) == 0,
              "resolve via the fallback directory gave %s (%s)", out, err);
        unlink(file);
        rmdir(data_dir);

        // A source tree (the fallback) with the download script: the error names the command.
        char cmake_dir[1024], script[1100], hint[1200];
        snprintf(cmake_dir, sizeof cmake_dir, "%s/cmake", tmp);
        snprintf(script, sizeof script, "%s/fetch_cifar10.cmake", cmake_dir);
        snprintf(hint, sizeof hint, "cmake -P %s", script);
        CHECK(cifar10_resolve_path(out, sizeof out, NULL, tmp, err, sizeof err) != 0 && !strstr(err, hint),
              "resolve names a download script that is not there: %s", err);
        if (mkdir(cmake_dir, 0755) != 0) nn_fatal("mkdir %s: %s", cmake_dir, strerror(errno));
        write_all(script, "", 0);
        CHECK(cifar10_resolve_path(out, sizeof out, NULL, tmp, err, sizeof err) != 0 && strstr(err, hint) &&
                  strstr(err, CIFAR10_URL),
              "resolve does not name the download script %s: %s", script, err);
        unlink(script);
        rmdir(cmake_dir);

        // Run from the fallback directory itself: each path is listed once, not as both
        // data/... and DIR/data/...
        char cwd[1024];
        if (!getcwd(cwd, sizeof cwd) || chdir(tmp) != 0) nn_fatal("chdir %s: %s", tmp, strerror(errno));
        CHECK(cifar10_resolve_path(out, sizeof out, NULL, tmp, err, sizeof err) != 0 && !strstr(err, data_dir),
              "resolve from the fallback directory lists its paths twice: %s", err);
        if (chdir(cwd) != 0) nn_fatal("chdir %s: %s", cwd, strerror(errno));
    }
    if (saved_copy) setenv("CIFAR10_PATH", saved_copy, 1);
    free(saved_copy);
}

// ---------------------------------------------------------------------------------------------
// Loader tests.

static float normalized(int c, int v) { return ((float)v / 255.0f - CIFAR10_MEAN[c]) / CIFAR10_STD[c]; }

static int close_to(float a, double b) { return a > b - 1e-5 && a < b + 1e-5; }

static void test_decode(void) {
    uint8_t rec[CIFAR10_RECORD];
    rec[0] = 3;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            rec[1 + y * 32 + x] = (uint8_t)((y * 32 + x) & 255);      // R
            rec[1 + 1024 + y * 32 + x] = (uint8_t)(255 - rec[1 + y * 32 + x]); // G
            rec[1 + 2048 + y * 32 + x] = (uint8_t)(x * 8 + y);        // B
        }
    float out[CIFAR10_IMAGE], ref[CIFAR10_IMAGE];
    cifar10_decode(out, rec, 0, 0, 0);
    // Hand-computed in double: (v/255 - mean)/std.
    CHECK(close_to(out[0 * 1024 + 0 * 32 + 1], -1.9735968881), "R(0,1)=1 -> %f", out[1]);
    CHECK(close_to(out[0 * 1024 + 7 * 32 + 31], 2.0591093117), "R(7,31)=255 -> %f", out[7 * 32 + 31]);
    CHECK(close_to(out[1 * 1024 + 0 * 32 + 0], 2.1264887064), "G(0,0)=255 -> %f", out[1024]);
    CHECK(close_to(out[2 * 1024 + 0 * 32 + 2], -1.4669529891), "B(0,2)=16 -> %f", out[2048 + 2]);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 1024; i++)
            CHECK(out[c * 1024 + i] == normalized(c, rec[1 + c * 1024 + i]), "decode c%d i%d", c, i);

    // Every augmentation against a direct transcription of crop-then-flip on the padded image.
    for (int dy = -4; dy <= 4; dy++)
        for (int dx = -4; dx <= 4; dx++)
            for (int flip = 0; flip < 2; flip++) {
                cifar10_decode(out, rec, dx, dy, flip);
                for (int c = 0; c < 3; c++)
                    for (int y = 0; y < 32; y++)
                        for (int x = 0; x < 32; x++) {
                            int sy = y + dy, sx = (flip ? 31 - x : x) + dx;
                            int inside = sy >= 0 && sy < 32 && sx >= 0 && sx < 32;
                            ref[c * 1024 + y * 32 + x] = normalized(c, inside ? rec[1 + c * 1024 + sy * 32 + sx] : 0);
                        }
                CHECK(memcmp(out, ref, sizeof out) == 0, "decode dx %d dy %d flip %d", dx, dy, flip);
            }
    // The padding is exactly black, (0 - mean) / std, at the border the crop exposes.
    cifar10_decode(out, rec, 4, -4, 0);
    CHECK(close_to(out[0], -1.9894736842) && close_to(out[1024 + 2 * 32 + 5], -1.9802874743) &&
              close_to(out[2048 + 3 * 32 + 31], -1.7068042813) && out[10 * 32 + 30] == normalized(0, 0),
          "padding values %f %f %f", out[0], out[1024 + 2 * 32 + 5], out[2048 + 3 * 32 + 31]);
    CHECK(out[4 * 32 + 0] == normalized(0, rec[1 + 0 * 32 + 4]) && out[4 * 32 + 28] == normalized(0, 0) &&
              out[4 * 32 + 27] == normalized(0, rec[1 + 31]),
          "crop (dx 4, dy -4) misplaced");
    cifar10_decode(ref, rec, 0, 0, 0);
    cifar10_decode(out, rec, 0, 0, 1);
    CHECK(out[5 * 32 + 0] == ref[5 * 32 + 31] && out[1024 + 9 * 32 + 31] == ref[1024 + 9 * 32 + 0], "flip does not mirror");
    printf("ok   decode: values, crop padding, flip\n");
}

typedef struct EpochLog {
    uint32_t* hash; // (batches) crc32 of each batch's images, labels and indices
    int batches;
} EpochLog;

static uint32_t batch_hash(const Batch* b) {
    uLong h = crc32(0, (const Bytef*)b->images, (uInt)((size_t)b->n * CIFAR10_IMAGE * sizeof(float)));
    h = crc32(h, (const Bytef*)b->labels, (uInt)(b->n * sizeof(int)));
    h = crc32(h, (const Bytef*)b->indices, (uInt)(b->n * sizeof(int)));
    return (uint32_t)h;
}

// Runs epoch `epoch` from batch `start` to its end, hashing each batch into log->hash[index].
static void run_epoch(Loader* l, int epoch, int start, uint32_t* hash) {
    loader_start_epoch(l, epoch, start);
    int expect = start;
    for (const Batch* b; (b = loader_next(l)); expect++) {
        CHECK(b->index == expect && b->epoch == epoch, "batch index %d epoch %d, want %d %d", b->index,
              b->epoch, expect, epoch);
        hash[b->index] = batch_hash(b);
    }
    CHECK(expect == loader_batches_per_epoch(l), "epoch ended after %d batches", expect);
}

// Epoch 0 in full: every sample is the record the epoch order names, decoded with its augmentation.
static void check_epoch_contents(Loader* l, const uint8_t* records, int count, int batch, uint64_t seed) {
    int* perm = NN_MALLOC((size_t)count * sizeof(int));
    int* seen = NN_CALLOC((size_t)count, sizeof(int));
    loader_epoch_order(perm, count, seed, 0);
    float img[CIFAR10_IMAGE];
    int bad = 0, total = 0, last_n = 0, dx_hist[9] = {0}, flips = 0;
    loader_start_epoch(l, 0, 0);
    for (const Batch* b; (b = loader_next(l));) {
        for (int j = 0; j < b->n; j++) {
            int pos = b->index * batch + j, idx = b->indices[j];
            int dx, dy, flip;
            loader_augmentation(seed, 0, idx, &dx, &dy, &flip);
            dx_hist[dx + 4]++;
            flips += flip;
            cifar10_decode(img, records + (size_t)idx * CIFAR10_RECORD, dx, dy, flip);
            if (idx != perm[pos] || b->labels[j] != records[(size_t)idx * CIFAR10_RECORD] ||
                memcmp(img, b->images + (size_t)j * CIFAR10_IMAGE, sizeof img) != 0)
                bad++;
            seen[idx]++;
        }
        total += b->n;
        last_n = b->n;
    }
    CHECK(bad == 0, "%d samples differ from decode(record, augmentation)", bad);
    CHECK(total == count, "epoch yielded %d samples of %d", total, count);
    CHECK(last_n == count - (count - 1) / batch * batch, "last batch has %d samples", last_n);
    int dup = 0;
    for (int i = 0; i < count; i++) dup += seen[i] != 1;
    CHECK(dup == 0, "%d dataset indices not seen exactly once", dup);
    for (int i = 0; i < 9; i++)
        CHECK(abs(dx_hist[i] - count / 9) < count / 50, "crop dx %d drawn %d times of %d", i - 4, dx_hist[i], count);
    CHECK(abs(flips - count / 2) < count / 50, "flipped %d of %d", flips, count);
    free(perm);
    free(seen);
}

static void test_loader(const uint8_t* records, int count, const uint8_t* test_records, int test_count) {
    const int B = 128;
    const uint64_t seed = 1234;
    LoaderConfig cfg = {.records = records, .count = count, .batch = B, .train = 1, .seed = seed};
    Loader* l = loader_create(&cfg);
    int nb = loader_batches_per_epoch(l);
    CHECK(nb == (count + B - 1) / B, "%d batches per epoch", nb);
    check_epoch_contents(l, records, count, B, seed);
    printf("ok   loader epoch 0: order, augmentation, every index once, last batch short\n");

    double t = nn_now();
    loader_start_epoch(l, 5, 0);
    int n = 0;
    for (const Batch* b; (b = loader_next(l));) n += b->n;
    double epoch_s = nn_now() - t;
    printf("prepared one training epoch (%d images, batch %d) in %.3f s\n", n, B, epoch_s);

    uint32_t* h0 = NN_MALLOC((size_t)nb * sizeof(uint32_t));
    uint32_t* h1 = NN_MALLOC((size_t)nb * sizeof(uint32_t));
    run_epoch(l, 0, 0, h0);
    run_epoch(l, 0, 0, h1);
    CHECK(memcmp(h0, h1, (size_t)nb * sizeof(uint32_t)) == 0, "epoch 0 differs between two runs");
    for (int k = 0; k < nb; k++) h1[k] = 0;
    run_epoch(l, 0, 100, h1);
    CHECK(memcmp(h0 + 100, h1 + 100, (size_t)(nb - 100) * sizeof(uint32_t)) == 0, "restart at 100 differs");
    // Restart while the producer is mid-flight, into another epoch and back.
    loader_start_epoch(l, 3, 0);
    for (int k = 0; k < 5; k++) loader_next(l);
    run_epoch(l, 0, 37, h1);
    CHECK(memcmp(h0 + 37, h1 + 37, (size_t)(nb - 37) * sizeof(uint32_t)) == 0, "restart at 37 differs");
    run_epoch(l, 0, nb - 1, h1);
    CHECK(h1[nb - 1] == h0[nb - 1], "restart at the last batch differs");
    loader_start_epoch(l, 0, nb);
    CHECK(loader_next(l) == NULL, "start at batches_per_epoch should yield nothing");

    // A fresh loader (a resumed process) gives the same bits; epoch 1 and another seed do not.
    Loader* l2 = loader_create(&cfg);
    run_epoch(l2, 0, 0, h1);
    CHECK(memcmp(h0, h1, (size_t)nb * sizeof(uint32_t)) == 0, "a second loader differs");
    run_epoch(l2, 1, 0, h1);
    int same = 0;
    for (int k = 0; k < nb; k++) same += h0[k] == h1[k];
    CHECK(same == 0, "%d batches of epoch 1 equal epoch 0's", same);
    loader_destroy(l2);
    int* p0 = NN_MALLOC((size_t)count * sizeof(int));
    int* p1 = NN_MALLOC((size_t)count * sizeof(int));
    loader_epoch_order(p0, count, seed, 0);
    loader_epoch_order(p1, count, seed, 1);
    int fixed = 0;
    for (int i = 0; i < count; i++) fixed += p0[i] == p1[i];
    CHECK(fixed < count / 100, "epochs 0 and 1 share %d positions", fixed);
    loader_epoch_order(p1, count, seed + 1, 0);
    fixed = 0;
    for (int i = 0; i < count; i++) fixed += p0[i] == p1[i];
    CHECK(fixed < count / 100, "seeds %llu and %llu share %d positions", (unsigned long long)seed,
          (unsigned long long)seed + 1, fixed);
    printf("ok   loader determinism: repeat, restart at 100/37/last, fresh loader, epochs differ\n");

    // The batch size changes the grouping, not the samples: position p is the same image.
    LoaderConfig cfg100 = cfg;
    cfg100.batch = 100;
    cfg100.drop_last = 1;
    Loader* l3 = loader_create(&cfg100);
    CHECK(loader_batches_per_epoch(l3) == count / 100, "drop_last: %d batches", loader_batches_per_epoch(l3));
    loader_start_epoch(l3, 0, 0);
    loader_start_epoch(l, 0, 0);
    const Batch* a = loader_next(l3);
    const Batch* b = loader_next(l);
    CHECK(a && b && memcmp(a->indices, b->indices, 100 * sizeof(int)) == 0 &&
              memcmp(a->images, b->images, 100 * CIFAR10_IMAGE * sizeof(float)) == 0,
          "batch 100 vs 128: first 100 samples differ");
    loader_destroy(l3);
    loader_destroy(l);
    free(h0);
    free(h1);
    free(p0);
    free(p1);
    printf("ok   loader: batch size does not change the samples\n");

    // Evaluation order: identity, no augmentation, last batch short.
    LoaderConfig ecfg = {.records = test_records, .count = test_count, .batch = B, .train = 0, .seed = seed};
    Loader* e = loader_create(&ecfg);
    float img[CIFAR10_IMAGE];
    int bad = 0, total = 0;
    for (int pass = 0; pass < 2; pass++) {
        loader_start_epoch(e, pass, 0);
        for (const Batch* bt; (bt = loader_next(e));) {
            for (int j = 0; j < bt->n; j++, total++) {
                cifar10_decode(img, test_records + (size_t)total % test_count * CIFAR10_RECORD, 0, 0, 0);
                bad += bt->indices[j] != total % test_count ||
                       memcmp(img, bt->images + (size_t)j * CIFAR10_IMAGE, sizeof img) != 0;
            }
        }
    }
    CHECK(bad == 0 && total == 2 * test_count, "test mode: %d of %d samples wrong", bad, total);
    loader_destroy(e);
    printf("ok   loader test mode: identity order, no augmentation\n");
}

// Random records with valid labels, for the loader tests when the real file is absent.
static uint8_t* synthetic_records(int count, uint64_t seed) {
    uint8_t* r = NN_MALLOC((size_t)count * CIFAR10_RECORD);
    Rng rng = rng_derive(seed, 1, 2);
    for (size_t i = 0; i < (size_t)count * CIFAR10_RECORD; i++) r[i] = (uint8_t)rng_next(&rng);
    for (int i = 0; i < count; i++) r[(size_t)i * CIFAR10_RECORD] = (uint8_t)(i % 10);
    return r;
}

int main(void) {
    const char* base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/test_data.XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmp)) nn_fatal("mkdtemp %s: %s", tmp, strerror(errno));

    char skip[600];
    const char* real = test_data_path(skip, sizeof skip);
    struct stat st;
    if (real && stat(real, &st) != 0) {
        snprintf(skip, sizeof skip, "cannot stat %s: %s", real, strerror(errno));
        real = NULL;
    }

    Cifar10 ds = {0};
    if (real) {
        char err[2048];
        double t = nn_now();
        int rc = cifar10_load(&ds, real, err, sizeof err);
        double seconds = nn_now() - t;
        CHECK(rc == 0, "loading %s: %s", real, err);
        if (rc == 0) test_real_file(&ds, seconds);
        if (!S_ISDIR(st.st_mode) && st.st_size > 60 * MB) test_real_file_errors(real);
    }
    test_synthetic_targz();
    test_directory();
    test_resolve_path();
    test_decode();
    if (ds.train) {
        test_loader(ds.train, ds.n_train, ds.test, ds.n_test);
    } else {
        uint8_t* train = synthetic_records(50000, 1);
        uint8_t* test = synthetic_records(10000, 2);
        test_loader(train, 50000, test, 10000);
        free(train);
        free(test);
    }
    cifar10_free(&ds);
    if (rmdir(tmp) != 0) printf("note: could not remove %s: %s\n", tmp, strerror(errno));

    if (test_failures) {
        printf("test_data: %d check(s) FAILED\n", test_failures);
        return 1;
    }
    if (!real) {
        printf("test_data: skipped: the real-file checks (the synthetic ones passed): %s\n", skip);
        return 77;
    }
    printf("test_data: all checks passed\n");
    return 0;
}
