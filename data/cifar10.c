// Reads CIFAR-10 from the official cifar-10-binary.tar.gz, or from an extracted directory, into two
// arrays of raw 3073-byte records. The tarball is streamed: zlib inflates (with gzip header
// detection, so the CRC-32 and length in the gzip trailer are checked) straight into the destination
// arrays, and a minimal ustar reader finds the six .bin members, whatever their order. Nothing is
// extracted to disk and nothing is read twice, so loading the 174 MB file costs about one pass of
// inflate. Because a dataset that is silently short or corrupt wastes a whole training run, every
// layer is validated -- gzip integrity and truncation, tar header checksums, exact member sizes, the
// label of every record -- and each failure becomes a one-line message naming the file, the member
// and the byte offset.
#define _POSIX_C_SOURCE 200809L
#include "cifar10.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../nn/util.h"

#define N_FILES 6 // data_batch_1..5, test_batch
#define TAR_BLOCK 512
#define GZ_IN_BYTES (256 * 1024) // compressed read-ahead
#define SKIP_BYTES (64 * 1024)   // scratch for tar data we do not keep
#define TAR_NAME_MAX 4096

static const char* const FILE_NAMES[N_FILES] = {"data_batch_1.bin", "data_batch_2.bin",
                                                "data_batch_3.bin", "data_batch_4.bin",
                                                "data_batch_5.bin", "test_batch.bin"};

static int fail(char* err, size_t errlen, const char* fmt, ...) NN_PRINTF(3, 4);
static int fail(char* err, size_t errlen, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

// Records in each of the six files: 10000, or fewer through cifar10_load_small (fuzzing, tests).
static int per_file(const Cifar10* ds) { return ds->n_test; }
static size_t file_bytes(const Cifar10* ds) { return (size_t)per_file(ds) * CIFAR10_RECORD; }

// Where file k of FILE_NAMES goes: train files fill train[] in batch order, whatever order the tar
// stores them in.
static uint8_t* file_dest(Cifar10* ds, int k) {
    if (k == N_FILES - 1) return ds->test;
    return ds->train + (size_t)k * file_bytes(ds);
}

// Index in FILE_NAMES of a path's last component, or -1 for members we do not need.
static int file_index(const char* path) {
    const char* base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (int k = 0; k < N_FILES; k++)
        if (strcmp(base, FILE_NAMES[k]) == 0) return k;
    return -1;
}

// Every label must be a class index: a byte outside 0..9 means the file is not what we think it is.
// Returns the first bad record, or -1.
static int find_bad_label(const uint8_t* data, int records) {
    for (int r = 0; r < records; r++)
        if (data[(size_t)r * CIFAR10_RECORD] >= CIFAR10_CLASSES) return r;
    return -1;
}

// per_file records in each file: the test set is one file, the training set five.
static void alloc_arrays(Cifar10* ds, int per_file) {
    ds->train = NN_MALLOC((size_t)(N_FILES - 1) * per_file * CIFAR10_RECORD);
    ds->test = NN_MALLOC((size_t)per_file * CIFAR10_RECORD);
    ds->n_train = (N_FILES - 1) * per_file;
    ds->n_test = per_file;
}

void cifar10_free(Cifar10* ds) {
    free(ds->train);
    free(ds->test);
    memset(ds, 0, sizeof *ds);
}

// ---------------------------------------------------------------------------------------------
// Extracted directory: six plain files.

static int load_file(Cifar10* ds, const char* dir, int k, char* err, size_t errlen) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, FILE_NAMES[k]);
    char why[128];
    FILE* f = nn_fopen_file(path, "rb", why, sizeof why); // a FIFO member would block fopen forever
    if (!f) return fail(err, errlen, "%s: %s", path, why);
    struct stat st;
    int rc = 0;
    if (fstat(fileno(f), &st) != 0) {
        rc = fail(err, errlen, "%s: %s", path, strerror(errno));
    } else if (st.st_size < 0 || (uint64_t)st.st_size != file_bytes(ds)) {
        rc = fail(err, errlen, "%s: file is %lld bytes, expected %zu (%d records of %d bytes)", path,
                  (long long)st.st_size, file_bytes(ds), per_file(ds), CIFAR10_RECORD);
    } else {
        size_t got = fread(file_dest(ds, k), 1, file_bytes(ds), f);
        if (got != file_bytes(ds))
            rc = ferror(f) ? fail(err, errlen, "%s: read error at byte %zu: %s", path, got,
                                  strerror(errno))
                           : fail(err, errlen, "%s: unexpected end of file at byte %zu", path, got);
    }
    fclose(f);
    int r = rc ? -1 : find_bad_label(file_dest(ds, k), per_file(ds));
    if (r >= 0)
        rc = fail(err, errlen, "%s: record %d (byte offset %zu): label %d is outside 0..9", path, r,
                  (size_t)r * CIFAR10_RECORD, file_dest(ds, k)[(size_t)r * CIFAR10_RECORD]);
    return rc;
}

// A directory that holds none of the six files (the wrong folder given) is refused saying what was
// expected there, rather than with "data_batch_1.bin: No such file or directory"; one that holds the
// archive is pointed at it.
static int check_dir_holds_data(const char* path, const char* dir, char* err, size_t errlen) {
    char file[1100];
    struct stat st;
    for (int k = 0; k < N_FILES; k++) {
        snprintf(file, sizeof file, "%s/%s", dir, FILE_NAMES[k]);
        if (stat(file, &st) == 0) return 0;
    }
    snprintf(file, sizeof file, "%s/cifar-10-binary.tar.gz", path);
    if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
        return fail(err, errlen, "%s: a directory with no CIFAR-10 files (data_batch_1..5.bin, test_batch.bin), "
                    "but it holds the archive: give the archive itself, %s", path, file);
    return fail(err, errlen, "%s: a directory with no CIFAR-10 files (data_batch_1..5.bin, test_batch.bin): "
                "expected an extracted cifar-10-batches-bin folder (or the folder holding it), or the "
                "cifar-10-binary.tar.gz archive", path);
}

static int load_dir(Cifar10* ds, const char* path, int records, char* err, size_t errlen) {
    // Accept both the folder the tarball extracts into and the folder that holds it.
    char dir[1024];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) snprintf(dir, sizeof dir, "%s", path);
    if (check_dir_holds_data(path, dir, err, errlen)) return -1;
    alloc_arrays(ds, records);
    for (int k = 0; k < N_FILES; k++)
        if (load_file(ds, dir, k, err, errlen)) return -1;
    snprintf(ds->source, sizeof ds->source, "%s", dir);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// gzip stream: inflate into caller buffers, tracking positions for messages.

typedef struct GzStream {
    const char* path; // for messages
    FILE* f;
    z_stream zs;
    int zs_ready;        // inflateInit2 succeeded (so inflateEnd is due)
    unsigned char* in;   // (GZ_IN_BYTES) compressed read-ahead
    unsigned char* sink; // (SKIP_BYTES) where tar data we do not keep is inflated to
    uint64_t file_pos;   // compressed bytes read from f so far
    uint64_t out_pos;    // uncompressed (tar) bytes produced so far
    int member_end;      // a gzip member has ended (its trailer checked); more may follow
    // What is being read, for messages: a tar member's data, or else a description.
    const char* member;
    uint64_t member_start, member_size;
    const char* what;
    char* err;
    size_t errlen;
} GzStream;

static uint64_t gz_compressed_pos(const GzStream* g) { return g->file_pos - g->zs.avail_in; }

static int gz_eof_error(const GzStream* g) {
    if (g->member)
        return fail(g->err, g->errlen,
                    "%s: unexpected end of file at compressed byte %llu, uncompressed byte %llu "
                    "(member %s is %llu bytes, %llu read)",
                    g->path, (unsigned long long)gz_compressed_pos(g),
                    (unsigned long long)g->out_pos, g->member,
                    (unsigned long long)g->member_size,
                    (unsigned long long)(g->out_pos - g->member_start));
    return fail(g->err, g->errlen,
                "%s: unexpected end of file at compressed byte %llu, uncompressed byte %llu (%s)",
                g->path, (unsigned long long)gz_compressed_pos(g), (unsigned long long)g->out_pos,
                g->what);
}

// Refills the read-ahead when empty. Returns 1 if input is available, 0 at end of file, -1 on error.
static int gz_fill(GzStream* g) {
    if (g->zs.avail_in > 0) return 1;
    size_t n = fread(g->in, 1, GZ_IN_BYTES, g->f);
    if (n == 0) {
        if (ferror(g->f))
            return fail(g->err, g->errlen, "%s: read error at byte %llu: %s", g->path,
                        (unsigned long long)g->file_pos, strerror(errno));
        return 0;
    }
    g->zs.next_in = g->in;
    g->zs.avail_in = (uInt)n;
    g->file_pos += n;
    return 1;
}

static int gz_zlib_error(const GzStream* g, int ret) {
    const char* msg = g->zs.msg ? g->zs.msg : zError(ret);
    if (ret == Z_MEM_ERROR) return fail(g->err, g->errlen, "%s: zlib is out of memory", g->path);
    if (g->out_pos == 0 && gz_compressed_pos(g) <= 10 && ret == Z_DATA_ERROR) // in the header
        return fail(g->err, g->errlen,
                    "%s: not a gzip file (zlib: %s at compressed byte %llu); expected the official "
                    "cifar-10-binary.tar.gz or an extracted cifar-10-batches-bin directory",
                    g->path, msg, (unsigned long long)gz_compressed_pos(g));
    char where[1200] = "";
    if (g->member) snprintf(where, sizeof where, ", in member %s", g->member);
    return fail(g->err, g->errlen,
                "%s: gzip data is corrupt at compressed byte %llu (zlib: %s; uncompressed byte %llu%s)",
                g->path, (unsigned long long)gz_compressed_pos(g), msg,
                (unsigned long long)g->out_pos, where);
}

// After a gzip member ends, more input means another member follows (as `cat a.gz b.gz` or pigz
// produce); end of file means the uncompressed data is over. Returns 1, 0 or -1 like gz_fill.
static int gz_next_member(GzStream* g) {
    int have = gz_fill(g);
    if (have <= 0) return have;
    if (inflateReset(&g->zs) != Z_OK) return gz_zlib_error(g, Z_STREAM_ERROR);
    g->member_end = 0;
    return 1;
}

// Reads exactly n uncompressed bytes into dst, or fails: a stream that ends early is an error.
static int gz_read(GzStream* g, void* dst, size_t n) {
    unsigned char* out = dst;
    while (n > 0) {
        int have = g->member_end ? gz_next_member(g) : gz_fill(g);
        if (have < 0) return -1;
        if (have == 0) return gz_eof_error(g);
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        g->zs.next_out = out;
        g->zs.avail_out = chunk;
        int ret = inflate(&g->zs, Z_NO_FLUSH);
        size_t got = chunk - g->zs.avail_out;
        out += got;
        n -= got;
        g->out_pos += got;
        if (ret == Z_STREAM_END) g->member_end = 1;
        else if (ret != Z_OK && ret != Z_BUF_ERROR) return gz_zlib_error(g, ret);
    }
    return 0;
}

// Discards n uncompressed bytes (members we do not need, tar padding).
static int gz_skip(GzStream* g, uint64_t n) {
    while (n > 0) {
        size_t chunk = n > SKIP_BYTES ? SKIP_BYTES : (size_t)n;
        if (gz_read(g, g->sink, chunk)) return -1;
        n -= chunk;
    }
    return 0;
}

// Inflates whatever follows the tar's end-of-archive block (tar pads archives to 10 KiB records) up to
// the end of the gzip stream, so that the trailer's CRC-32 and length are checked: a corrupt byte
// anywhere in the file must be an error, even in data we already used.
static int gz_finish(GzStream* g, const char* what) {
    g->member = NULL;
    g->what = what;
    for (;;) {
        while (!g->member_end) {
            int have = gz_fill(g);
            if (have < 0) return -1;
            if (have == 0) return gz_eof_error(g);
            g->zs.next_out = g->sink;
            g->zs.avail_out = SKIP_BYTES;
            int ret = inflate(&g->zs, Z_NO_FLUSH);
            g->out_pos += SKIP_BYTES - g->zs.avail_out;
            if (ret == Z_STREAM_END) g->member_end = 1;
            else if (ret != Z_OK && ret != Z_BUF_ERROR) return gz_zlib_error(g, ret);
        }
        int more = gz_next_member(g);
        if (more <= 0) return more;
    }
}

// ---------------------------------------------------------------------------------------------
// tar: 512-byte ustar headers (POSIX and GNU flavours), GNU long names and pax paths.

// An octal numeric field: optional leading spaces, digits, then NUL or space. GNU tar writes sizes
// of 8 GiB and more in base-256 (high bit of the first byte set).
static int parse_number(const unsigned char* field, int len, uint64_t* out) {
    uint64_t v = 0;
    int i = 0;
    if (field[0] & 0x80) {
        if (field[0] & 0x40) return -1; // negative
        v = field[0] & 0x3f;
        for (i = 1; i < len; i++) {
            if (v >> 55) return -1;
            v = (v << 8) | field[i];
        }
        *out = v;
        return 0;
    }
    while (i < len && field[i] == ' ') i++;
    int digits = 0;
    for (; i < len && field[i] >= '0' && field[i] <= '7'; i++, digits++) {
        if (v >> 60) return -1;
        v = v * 8 + (uint64_t)(field[i] - '0');
    }
    if (digits == 0 || (i < len && field[i] != ' ' && field[i] != '\0')) return -1;
    *out = v;
    return 0;
}

// The checksum is the sum of the header bytes with the checksum field read as spaces. Some old tars
// summed signed chars, so either sum is accepted, as GNU tar does.
static int header_checksum_ok(const unsigned char* h, uint64_t* stored, long* computed) {
    long usum = 8 * ' ', ssum = 8 * ' ';
    for (int i = 0; i < TAR_BLOCK; i++) {
        if (i >= 148 && i < 156) continue;
        usum += h[i];
        ssum += (signed char)h[i];
    }
    *computed = usum;
    if (parse_number(h + 148, 8, stored)) *stored = UINT64_MAX; // unreadable
    return *stored == (uint64_t)usum || *stored == (uint64_t)ssum;
}

static int all_zero(const unsigned char* h) {
    for (int i = 0; i < TAR_BLOCK; i++)
        if (h[i]) return 0;
    return 1;
}

// name (100 bytes, not necessarily NUL-terminated), prefixed by the POSIX ustar prefix field.
static void header_name(const unsigned char* h, char* out, size_t outlen) {
    int posix = memcmp(h + 257, "ustar\0", 6) == 0; // GNU tar uses "ustar  \0" and no prefix
    if (posix && h[345])
        snprintf(out, outlen, "%.155s/%.100s", (const char*)h + 345, (const char*)h);
    else
        snprintf(out, outlen, "%.100s", (const char*)h);
}

// Extracts "path=" from pax extended-header records ("LEN key=value\n" each, LEN counting the whole
// record) into name. LEN comes from the file, so it must be plain digits and every bound is checked
// in a form that cannot overflow (a LEN of "-6" once made strtoul return 2^64 - 6 and the loop spin
// forever). Returns 0, or the offset + 1 of the first malformed record.
static size_t pax_path(const char* data, size_t len, char* name, size_t namelen) {
    size_t pos = 0;
    while (pos < len) {
        size_t i = pos, rec = 0;
        while (i < len && data[i] >= '0' && data[i] <= '9' && rec <= len)
            rec = rec * 10 + (size_t)(data[i++] - '0');
        // digits, a space, at least an empty key and the newline, all inside the data
        if (i == pos || i >= len || data[i] != ' ' || rec > len - pos || rec < i - pos + 2 ||
            data[pos + rec - 1] != '\n')
            return pos + 1;
        const char* kv = data + i + 1;
        size_t kvlen = rec - (i - pos) - 2; // without the trailing newline
        if (kvlen > 5 && kvlen - 5 < namelen && memcmp(kv, "path=", 5) == 0) {
            memcpy(name, kv + 5, kvlen - 5);
            name[kvlen - 5] = '\0';
        }
        pos += rec;
    }
    return 0;
}

static uint64_t padding(uint64_t size) { return (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK; }

// Reads the data of a 'L' (GNU long name) or 'x' (pax) entry into name.
static int read_name_entry(GzStream* g, char type, uint64_t size, uint64_t hpos, char* name) {
    if (size >= 65536)
        return fail(g->err, g->errlen, "%s: tar header at byte %llu: '%c' entry of %llu bytes is too large",
                    g->path, (unsigned long long)hpos, type, (unsigned long long)size);
    char* data = NN_MALLOC((size_t)size + 1);
    g->what = "reading a tar long-name entry";
    int rc = gz_read(g, data, (size_t)size);
    if (rc == 0) {
        data[size] = '\0';
        size_t bad = 0;
        if (type == 'L') snprintf(name, TAR_NAME_MAX, "%s", data);
        else bad = pax_path(data, (size_t)size, name, TAR_NAME_MAX);
        if (bad)
            rc = fail(g->err, g->errlen,
                      "%s: tar header at byte %llu: pax extended header has a malformed record at "
                      "byte %zu of its data (expected \"LENGTH key=value\\n\")",
                      g->path, (unsigned long long)hpos, bad - 1);
        else
            rc = gz_skip(g, padding(size));
    }
    free(data);
    return rc;
}

// A bad label in a tar.gz is most often damage that the gzip CRC would reveal too, so the rest of the
// stream is inflated first: if it is corrupt (or cut short), that root cause leads the message.
static int report_bad_label(GzStream* g, const char* name, int r, int label) {
    char label_msg[TAR_NAME_MAX + 200];
    size_t off = (size_t)r * CIFAR10_RECORD;
    snprintf(label_msg, sizeof label_msg,
             "member %s: record %d (byte offset %zu in the member, %llu in the tar): label %d is "
             "outside 0..9",
             name, r, off, (unsigned long long)(g->member_start + off), label);
    if (gz_finish(g, "inflating the rest of the file after a bad label") == 0)
        return fail(g->err, g->errlen, "%s: %s", g->path, label_msg);
    size_t used = strlen(g->err);
    if (used < g->errlen)
        snprintf(g->err + used, g->errlen - used, "; the data before that was already wrong: %s",
                 label_msg);
    return -1;
}

// One of the six .bin members: exactly 30730000 bytes, inflated straight into its place.
static int read_bin_member(GzStream* g, Cifar10* ds, int k, const char* name, uint64_t size,
                           uint64_t hpos, int* found) {
    if (found[k])
        return fail(g->err, g->errlen, "%s: member %s (tar header at byte %llu) is a second copy of %s",
                    g->path, name, (unsigned long long)hpos, FILE_NAMES[k]);
    if (size != file_bytes(ds))
        return fail(g->err, g->errlen,
                    "%s: member %s (tar header at byte %llu) is %llu bytes, expected %zu (%d records of %d bytes)",
                    g->path, name, (unsigned long long)hpos, (unsigned long long)size,
                    file_bytes(ds), per_file(ds), CIFAR10_RECORD);
    g->member = name;
    g->member_start = g->out_pos;
    g->member_size = size;
    if (gz_read(g, file_dest(ds, k), file_bytes(ds))) return -1;
    g->member = NULL;
    int r = find_bad_label(file_dest(ds, k), per_file(ds));
    if (r >= 0) return report_bad_label(g, name, r, file_dest(ds, k)[(size_t)r * CIFAR10_RECORD]);
    found[k] = 1;
    return gz_skip(g, padding(size));
}

static int report_missing(GzStream* g, const int* found) {
    char missing[256] = "";
    for (int k = 0; k < N_FILES; k++)
        if (!found[k]) {
            strcat(missing, missing[0] ? ", " : "");
            strcat(missing, FILE_NAMES[k]);
        }
    return fail(g->err, g->errlen,
                "%s: the archive ends (tar end-of-archive block at byte %llu) without %s; the "
                "official file (%s) has cifar-10-batches-bin/data_batch_1..5.bin and test_batch.bin",
                g->path, (unsigned long long)(g->out_pos - TAR_BLOCK), missing, CIFAR10_URL);
}

static int read_tar(GzStream* g, Cifar10* ds) {
    unsigned char h[TAR_BLOCK];
    char name[TAR_NAME_MAX], long_name[TAR_NAME_MAX] = "";
    int found[N_FILES] = {0};
    for (;;) {
        uint64_t hpos = g->out_pos, size;
        g->member = NULL;
        g->what = "reading a tar header";
        if (gz_read(g, h, TAR_BLOCK)) return -1;
        if (all_zero(h)) break; // end-of-archive
        uint64_t stored;
        long computed;
        if (!header_checksum_ok(h, &stored, &computed)) {
            char shown[32] = "unreadable";
            if (stored != UINT64_MAX) snprintf(shown, sizeof shown, "%06llo", (unsigned long long)stored);
            return fail(g->err, g->errlen,
                        "%s: tar header at byte %llu has a bad checksum (stored %s, computed %06lo): "
                        "not a tar archive, or corrupt",
                        g->path, (unsigned long long)hpos, shown, computed);
        }
        if (parse_number(h + 124, 12, &size))
            return fail(g->err, g->errlen, "%s: tar header at byte %llu has an invalid size field",
                        g->path, (unsigned long long)hpos);
        char type = (char)h[156];
        if (long_name[0]) {
            snprintf(name, sizeof name, "%s", long_name);
            long_name[0] = '\0';
        } else {
            header_name(h, name, sizeof name);
        }
        if (type == 'L' || type == 'x') {
            if (read_name_entry(g, type, size, hpos, long_name)) return -1;
            continue;
        }
        int k = file_index(name);
        int regular = type == '0' || type == '\0' || type == '7';
        if (k >= 0 && regular) {
            if (read_bin_member(g, ds, k, name, size, hpos, found)) return -1;
            continue;
        }
        if (k >= 0)
            return fail(g->err, g->errlen, "%s: member %s (tar header at byte %llu) is not a regular file (type '%c')",
                        g->path, name, (unsigned long long)hpos, type);
        // Links, directories, devices and fifos have no data blocks; anything else is skipped whole.
        uint64_t data = (type >= '1' && type <= '6') ? 0 : size + padding(size);
        g->what = "in a tar member that is not needed";
        if (gz_skip(g, data)) return -1;
    }
    for (int k = 0; k < N_FILES; k++)
        if (!found[k]) return report_missing(g, found);
    return gz_finish(g, "after the tar end-of-archive block, before the end of the gzip stream");
}

// Reads the tar.gz open in f (closed here); path names it in messages.
static int load_targz(Cifar10* ds, FILE* f, const char* path, int records, char* err, size_t errlen) {
    GzStream g = {.path = path, .f = f, .err = err, .errlen = errlen};
    g.in = NN_MALLOC(GZ_IN_BYTES);
    g.sink = NN_MALLOC(SKIP_BYTES);
    int rc;
    // 15 + 32: maximum window, and detect the gzip (or zlib) header, so the trailer is verified.
    int zret = inflateInit2(&g.zs, 15 + 32);
    if (zret != Z_OK) {
        rc = fail(err, errlen, "%s: inflateInit2 failed (zlib: %s)", path, zError(zret));
    } else {
        g.zs_ready = 1;
        alloc_arrays(ds, records);
        rc = read_tar(&g, ds);
    }
    if (g.zs_ready) inflateEnd(&g.zs);
    free(g.in);
    free(g.sink);
    fclose(g.f);
    if (rc == 0) snprintf(ds->source, sizeof ds->source, "%s", path);
    return rc;
}

int cifar10_load_small(Cifar10* ds, const char* path, int records, char* err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (err && errlen) err[0] = '\0';
    if (records < 1 || records > CIFAR10_PER_FILE)
        return fail(err, errlen, "%s: %d records per file requested (1..%d)", path, records,
                    CIFAR10_PER_FILE);
    if (strlen(path) >= sizeof ds->source - 32)
        return fail(err, errlen, "%.200s...: path is too long", path);
    struct stat st;
    if (stat(path, &st) != 0) return fail(err, errlen, "%s: %s", path, strerror(errno));
    int rc;
    if (S_ISDIR(st.st_mode)) {
        rc = load_dir(ds, path, records, err, errlen);
    } else {
        char why[128];
        FILE* f = nn_fopen_file(path, "rb", why, sizeof why); // not a FIFO or a device: they block or never end
        rc = f ? load_targz(ds, f, path, records, err, errlen) : fail(err, errlen, "%s: %s", path, why);
    }
    if (rc) cifar10_free(ds);
    return rc;
}

int cifar10_load(Cifar10* ds, const char* path, char* err, size_t errlen) {
    return cifar10_load_small(ds, path, CIFAR10_PER_FILE, err, errlen);
}

int cifar10_load_targz_memory(Cifar10* ds, const void* data, size_t len, int records, char* err,
                              size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (err && errlen) err[0] = '\0';
    if (records < 1 || records > CIFAR10_PER_FILE || len == 0)
        return fail(err, errlen, "(memory): nothing to read or %d records per file", records);
    FILE* f = fmemopen((void*)data, len, "rb");
    if (!f) return fail(err, errlen, "(memory): fmemopen: %s", strerror(errno));
    int rc = load_targz(ds, f, "(memory)", records, err, errlen);
    if (rc) cifar10_free(ds);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Finding the file.

static int exists(const char* path, char* why, size_t whylen) {
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    snprintf(why, whylen, "%s", strerror(errno));
    return 0;
}

static int choose(char* out, size_t outlen, const char* path, char* err, size_t errlen) {
    if (strlen(path) >= outlen) return fail(err, errlen, "%.200s...: path is too long", path);
    snprintf(out, outlen, "%s", path);
    return 0;
}

// Whether dir is the working directory itself (then searching it again only repeats the paths).
static int is_working_dir(const char* dir) {
    struct stat a, b;
    return stat(dir, &a) == 0 && stat(".", &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// What to do about missing data, into how. A source tree with the download script comes first: the
// script fetches and checks the archive and puts it where the search below finds it.
static void how_to_get(char* how, size_t howlen, const char* fallback_dir) {
    char script[1100], why[256];
    how[0] = '\0';
    if (fallback_dir) {
        snprintf(script, sizeof script, "%s/cmake/fetch_cifar10.cmake", fallback_dir);
        if (exists(script, why, sizeof why))
            snprintf(how, howlen, "download it with 'cmake -P %s' (the official archive into %s/data/, "
                     "MD5-checked), or ", script, fallback_dir);
    }
    size_t used = strlen(how);
    snprintf(how + used, howlen - used, "get the official binary version from " CIFAR10_URL
             " and put it in data/, or pass --data PATH, or set CIFAR10_PATH=PATH");
}

int cifar10_resolve_path(char* out, size_t outlen, const char* flag_path, const char* fallback_dir,
                         char* err, size_t errlen) {
    char why[256], how[1536];
    const char* env = getenv("CIFAR10_PATH");
    if (flag_path || (env && env[0])) {
        const char* path = flag_path ? flag_path : env;
        if (exists(path, why, sizeof why)) return choose(out, outlen, path, err, errlen);
        how_to_get(how, sizeof how, fallback_dir);
        return fail(err, errlen, "CIFAR-10 not found: %s%s: %s; %s",
                    flag_path ? "--data " : "CIFAR10_PATH=", path, why, how);
    }
    const char* bases[2] = {NULL, fallback_dir};
    const char* leaves[2] = {"data/cifar-10-binary.tar.gz", "data/cifar-10-batches-bin"};
    char looked[1536] = "", cand[1024];
    for (int b = 0; b < 2; b++) {
        if (b == 1 && (!fallback_dir || is_working_dir(fallback_dir))) break;
        for (int l = 0; l < 2; l++) {
            if (bases[b]) snprintf(cand, sizeof cand, "%s/%s", bases[b], leaves[l]);
            else snprintf(cand, sizeof cand, "%s", leaves[l]);
            if (exists(cand, why, sizeof why)) return choose(out, outlen, cand, err, errlen);
            size_t used = strlen(looked);
            snprintf(looked + used, sizeof looked - used, "%s%s (%s)", used ? ", " : "", cand, why);
        }
    }
    how_to_get(how, sizeof how, fallback_dir);
    return fail(err, errlen, "CIFAR-10 not found; looked for %s; CIFAR10_PATH is not set; %s",
                looked, how);
}
