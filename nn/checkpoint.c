#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"

static const char MAGIC[8] = {'D', 'R', 'N', 'E', 'T', 'C', 'K', 'P'};

// ---------------------------------------------------------------------------------------------
// Writing

static void put_bytes(CkptWriter* w, const void* p, size_t n) {
    if (!w->failed && n && fwrite(p, 1, n, w->f) != n) w->failed = errno ? errno : EIO;
}

int ckpt_begin(CkptWriter* w, const char* path, char* err, size_t errlen) {
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "%s", path);
    snprintf(w->tmp, sizeof(w->tmp), "%s.tmp", path);
    char why[128];
    w->f = nn_fopen_file(w->tmp, "wb", why, sizeof(why)); // a FIFO left at PATH.tmp must not block the save
    if (!w->f) {
        snprintf(err, errlen, "cannot write checkpoint '%s': %s", w->tmp, why);
        return 1;
    }
    uint32_t version = CKPT_VERSION, count = 0; // the count is patched in by ckpt_commit
    put_bytes(w, MAGIC, 8);
    put_bytes(w, &version, 4);
    put_bytes(w, &count, 4);
    return 0;
}

// The record header as written: u16 name length | name | u8 dtype | u8 ndim | i64 dims[ndim] | u64
// nbytes. Format version 2's CRC covers these bytes and then the data, so a flipped name or
// dimension is caught like a flipped weight. Returns the header's length in buf.
static size_t record_header(uint8_t* buf, const char* name, int dtype, int ndim, const int64_t* dims,
                            uint64_t nbytes) {
    uint16_t len = (uint16_t)strlen(name);
    size_t at = 0;
    memcpy(buf + at, &len, 2), at += 2;
    memcpy(buf + at, name, len), at += len;
    buf[at++] = (uint8_t)dtype;
    buf[at++] = (uint8_t)ndim;
    if (ndim) memcpy(buf + at, dims, 8 * (size_t)ndim), at += 8 * (size_t)ndim;
    memcpy(buf + at, &nbytes, 8), at += 8;
    return at;
}

// zlib's crc32 takes a uInt length: large data goes in pieces.
static uint32_t crc_update(uint32_t crc, const void* data, uint64_t n) {
    const Bytef* p = data;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk, n -= chunk;
    }
    return crc;
}

void ckpt_put(CkptWriter* w, const char* name, int dtype, int ndim, const int64_t* dims,
              const void* data, size_t nbytes) {
    NN_ASSERT(strlen(name) < sizeof(((CkptRecord*)0)->name) && ndim >= 0 && ndim <= 4, "checkpoint record '%s'", name);
    uint8_t head[2 + 128 + 2 + 32 + 8]; // (record header) at most
    size_t hlen = record_header(head, name, dtype, ndim, dims, nbytes);
    uint32_t crc = crc_update(crc_update((uint32_t)crc32(0L, Z_NULL, 0), head, hlen), data, nbytes);
    put_bytes(w, head, hlen);
    put_bytes(w, &crc, 4);
    put_bytes(w, data, nbytes);
    w->count++;
}

void ckpt_put_i64(CkptWriter* w, const char* name, int64_t v) { ckpt_put(w, name, CKPT_I64, 0, NULL, &v, 8); }
void ckpt_put_f32(CkptWriter* w, const char* name, float v) { ckpt_put(w, name, CKPT_F32, 0, NULL, &v, 4); }
void ckpt_put_str(CkptWriter* w, const char* name, const char* s) {
    int64_t n = (int64_t)strlen(s);
    ckpt_put(w, name, CKPT_BYTES, 1, &n, s, (size_t)n);
}

void ckpt_abort(CkptWriter* w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
    unlink(w->tmp);
}

int ckpt_commit(CkptWriter* w, char* err, size_t errlen) {
    if (!w->failed && fseek(w->f, 12, SEEK_SET) != 0) w->failed = errno;
    put_bytes(w, &w->count, 4);
    if (!w->failed && fflush(w->f) != 0) w->failed = errno;
    if (!w->failed && fsync(fileno(w->f)) != 0) w->failed = errno;
    if (fclose(w->f) != 0 && !w->failed) w->failed = errno;
    w->f = NULL;
    if (!w->failed && rename(w->tmp, w->path) != 0) w->failed = errno;
    if (w->failed) {
        snprintf(err, errlen, "writing checkpoint '%s' failed: %s (the previous checkpoint, if any, is untouched)",
                 w->tmp, strerror(w->failed));
        unlink(w->tmp);
        return 1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Reading

// The reader walks the file twice: first every record header (the table), checked against the
// file's size, so that a file that is not a checkpoint, a damaged table or sizes that do not add up
// to the file are refused before any data is read or allocated (a 4 GB file that is not a checkpoint
// costs a few bytes); then each record's data, read into its own buffer and checked by its CRC.
// Bytes come from a file (ckpt_load) or from memory (ckpt_parse, the fuzzer's entry point), through
// the same checks: every field is bounds-checked against the bytes that remain.
typedef struct Reader {
    FILE* f;            // the file, or NULL: the bytes are at buf
    const uint8_t* buf;
    uint64_t size, offset;
    const char* path;
    char* err;
    size_t errlen;
} Reader;

// Where pass 1 found a record: its header (for the version 2 CRC), its data and its CRC.
typedef struct RecordAt {
    uint64_t start, data_at;
    uint32_t crc;
} RecordAt;

static int refuse(Reader* r, const char* fmt, ...) NN_PRINTF(2, 3);
static int refuse(Reader* r, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    return 1;
}

// n bytes at byte `at` (already known to lie inside the file) into p.
static int read_at(Reader* r, uint64_t at, void* p, uint64_t n) {
    if (!n) return 0;
    if (!r->f) {
        memcpy(p, r->buf + at, n);
        return 0;
    }
    if (fseeko(r->f, (off_t)at, SEEK_SET) == 0 && fread(p, 1, n, r->f) == n) return 0;
    return refuse(r, "cannot read checkpoint '%s': %s at byte %llu", r->path,
                  ferror(r->f) ? strerror(errno) : "end of file", (unsigned long long)at);
}

static int get_bytes(Reader* r, void* p, uint64_t n, const char* what) {
    if (n > r->size - r->offset) {
        snprintf(r->err, r->errlen, "checkpoint '%s' is truncated: end of file at byte %llu while reading %s "
                 "(%llu bytes at byte %llu)", r->path, (unsigned long long)r->size, what,
                 (unsigned long long)n, (unsigned long long)r->offset);
        return 1;
    }
    if (read_at(r, r->offset, p, n)) return 1;
    r->offset += n;
    return 0;
}

void ckpt_free(Checkpoint* c) {
    for (int i = 0; i < c->count; i++) free(c->records[i].data);
    free(c->records);
    c->records = NULL;
    c->count = 0;
}

// Pass 1: the header of record i at r->offset into rec and at, checked (name length and bytes, type,
// rank, that the data lies inside the file and that its size matches the dimensions); r->offset
// moves past the data without reading it.
static int read_record_header(Reader* r, CkptRecord* rec, RecordAt* at, uint32_t i) {
    const char* path = r->path;
    uint64_t start = r->offset;
    uint16_t len;
    uint8_t dtype, ndim;
    uint64_t nbytes;
    if (get_bytes(r, &len, 2, "a record header")) return 1;
    if (len == 0 || len >= sizeof(rec->name))
        return refuse(r, "checkpoint '%s': record %u at byte %llu has a bad name length %u", path, i,
                      (unsigned long long)start, len);
    if (get_bytes(r, rec->name, len, "a record name")) return 1;
    rec->name[len] = '\0';
    if (memchr(rec->name, '\0', len))
        return refuse(r, "checkpoint '%s': record %u at byte %llu has a NUL byte in its name", path, i,
                      (unsigned long long)start);
    if (get_bytes(r, &dtype, 1, "a record header") || get_bytes(r, &ndim, 1, "a record header")) return 1;
    if (ndim > 4 || dtype < CKPT_F32 || dtype > CKPT_BYTES)
        return refuse(r, "checkpoint '%s': record '%s' at byte %llu has a bad type %u or rank %u", path,
                      rec->name, (unsigned long long)start, dtype, ndim);
    if (get_bytes(r, rec->dims, 8u * ndim, "record dimensions")) return 1;
    if (get_bytes(r, &nbytes, 8, "a record size") || get_bytes(r, &at->crc, 4, "a record checksum")) return 1;
    if (nbytes > r->size - r->offset)
        return refuse(r, "checkpoint '%s' is truncated: record '%s' at byte %llu needs %llu bytes, the "
                      "file has %llu left", path, rec->name, (unsigned long long)start,
                      (unsigned long long)nbytes, (unsigned long long)(r->size - r->offset));
    // Dimensions: each in 0..nbytes, and their product times the element size equal to nbytes
    // (checked without overflow: a running product never exceeds nbytes unless a dim is 0).
    size_t elem = dtype == CKPT_F32 ? 4 : dtype == CKPT_I64 ? 8 : 1;
    uint64_t numel = 1;
    int ok = 1;
    for (int d = 0; d < ndim; d++) {
        if (rec->dims[d] < 0 || (uint64_t)rec->dims[d] > nbytes) ok = 0;
        else if (numel && (uint64_t)rec->dims[d] > nbytes / numel) ok = 0;
        else numel *= (uint64_t)rec->dims[d];
    }
    if (!ok || numel > nbytes / elem || numel * elem != nbytes)
        return refuse(r, "checkpoint '%s': record '%s' at byte %llu holds %llu bytes, which does not match "
                      "its dimensions", path, rec->name, (unsigned long long)start,
                      (unsigned long long)nbytes);
    rec->dtype = dtype, rec->ndim = ndim, rec->nbytes = nbytes;
    at->start = start, at->data_at = r->offset;
    r->offset += nbytes;
    return 0;
}

// Pass 2: a record's data, read into rec->data and checked by its CRC (version 1: the data; version
// 2: the header, every byte before the CRC field, and the data).
static int read_record_data(Reader* r, CkptRecord* rec, const RecordAt* at, uint32_t version) {
    uint8_t head[2 + 128 + 2 + 32 + 8];
    const uint64_t hlen = at->data_at - 4 - at->start;
    rec->data = NN_MALLOC(rec->nbytes ? rec->nbytes : 1);
    if (read_at(r, at->data_at, rec->data, rec->nbytes) || (version >= 2 && read_at(r, at->start, head, hlen)))
        return 1;
    uint32_t want = (uint32_t)crc32(0L, Z_NULL, 0);
    if (version >= 2) want = crc_update(want, head, hlen);
    want = crc_update(want, rec->data, rec->nbytes);
    if (want != at->crc)
        return refuse(r, "checkpoint '%s' is corrupt: record '%s' (at byte %llu, data at byte %llu, %llu "
                      "bytes) fails its CRC32%s", r->path, rec->name, (unsigned long long)at->start,
                      (unsigned long long)at->data_at, (unsigned long long)rec->nbytes,
                      version >= 2 ? " (which covers its name, type, dimensions and data)" : "");
    return 0;
}

// The magic, the version and the record count (which must fit the file) into *version, *count.
static int read_file_header(Reader* r, uint32_t* version, uint32_t* count) {
    char magic[8];
    if (get_bytes(r, magic, 8, "the header")) return 1;
    if (memcmp(magic, MAGIC, 8) != 0)
        return refuse(r, "'%s' is not a drnet checkpoint (bad magic bytes at offset 0)", r->path);
    if (get_bytes(r, version, 4, "the header")) return 1;
    if (*version < 1 || *version > CKPT_VERSION)
        return refuse(r, "checkpoint '%s' has format version %u; this program reads versions 1 to %d",
                      r->path, *version, CKPT_VERSION);
    if (get_bytes(r, count, 4, "the header")) return 1;
    // The smallest record (1-byte name, scalar, no data) is 17 bytes: a count the file cannot hold is
    // refused before anything is allocated for it.
    if (*count > 100000 || *count > (r->size - 16) / 17)
        return refuse(r, "checkpoint '%s': implausible record count %u at byte 12 for a file of %llu bytes",
                      r->path, *count, (unsigned long long)r->size);
    return 0;
}

static int read_checkpoint(Checkpoint* c, Reader* r) {
    uint32_t version, count;
    if (read_file_header(r, &version, &count)) return 1;
    c->records = NN_CALLOC(count ? count : 1, sizeof(CkptRecord));
    RecordAt* at = NN_CALLOC(count ? count : 1, sizeof(RecordAt));
    int rc = 0;
    for (uint32_t i = 0; !rc && i < count; i++) rc = read_record_header(r, &c->records[i], &at[i], i);
    if (!rc && r->offset != r->size)
        rc = refuse(r, "checkpoint '%s' has %llu unexpected bytes after its last record (byte %llu)", r->path,
                    (unsigned long long)(r->size - r->offset), (unsigned long long)r->offset);
    c->count = (int)count; // every record's data pointer is NULL until read: ckpt_free can run anytime
    for (uint32_t i = 0; !rc && i < count; i++) rc = read_record_data(r, &c->records[i], &at[i], version);
    free(at);
    if (rc) ckpt_free(c);
    return rc;
}

int ckpt_parse(Checkpoint* c, const void* buf, size_t size, const char* path, char* err, size_t errlen) {
    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s", path);
    Reader r = {.buf = buf, .size = size, .path = path, .err = err, .errlen = errlen};
    return read_checkpoint(c, &r);
}

int ckpt_load(Checkpoint* c, const char* path, char* err, size_t errlen) {
    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s", path);
    char why[128];
    FILE* f = nn_fopen_file(path, "rb", why, sizeof(why)); // a FIFO would block fopen forever
    if (!f) {
        snprintf(err, errlen, "cannot open checkpoint '%s': %s", path, why);
        return 1;
    }
    struct stat st;
    errno = 0;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read checkpoint '%s': %s", path,
                 errno ? strerror(errno) : "not a regular file");
        fclose(f);
        return 1;
    }
    Reader r = {.f = f, .size = (uint64_t)st.st_size, .path = path, .err = err, .errlen = errlen};
    int rc = read_checkpoint(c, &r);
    fclose(f);
    return rc;
}

const CkptRecord* ckpt_find(const Checkpoint* c, const char* name) {
    for (int i = 0; i < c->count; i++)
        if (strcmp(c->records[i].name, name) == 0) return &c->records[i];
    return NULL;
}

int ckpt_get_i64(const Checkpoint* c, const char* name, int64_t* v) {
    const CkptRecord* r = ckpt_find(c, name);
    if (!r || r->dtype != CKPT_I64 || r->nbytes != 8) return 1;
    memcpy(v, r->data, 8);
    return 0;
}

int ckpt_get_f32(const Checkpoint* c, const char* name, float* v) {
    const CkptRecord* r = ckpt_find(c, name);
    if (!r || r->dtype != CKPT_F32 || r->nbytes != 4) return 1;
    memcpy(v, r->data, 4);
    return 0;
}

int ckpt_get_str(const Checkpoint* c, const char* name, char* out, size_t outlen) {
    const CkptRecord* r = ckpt_find(c, name);
    if (!r || r->dtype != CKPT_BYTES || r->nbytes >= outlen) return 1;
    memcpy(out, r->data, r->nbytes);
    out[r->nbytes] = 0;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Engine tensors

// The engine tensors a checkpoint holds, in order: every parameter and buffer under its own name
// (pass 0), then, with momentum, each parameter's SGD momentum (pass 1). Returns the backend memory
// of slot (pass, i) and writes its record name, or returns NULL where that slot holds nothing.
static float* engine_slot(Engine* e, int pass, int i, char* name, size_t len) {
    Param* p = &e->params[i];
    if (pass == 1 && p->is_buffer) return NULL;
    snprintf(name, len, pass == 0 ? "%s" : "optimizer.momentum.%s", p->name);
    return pass == 0 ? p->t.data : e->param_momentum + p->offset;
}

static void shape_text(char* buf, size_t len, int ndim, const int64_t* dims) {
    buf[0] = 0;
    for (int d = 0; d < ndim; d++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%lld", d ? "x" : "", (long long)dims[d]);
}

void ckpt_put_engine(CkptWriter* w, Engine* e, int momentum) {
    size_t most = 0;
    for (int i = 0; i < e->num_params; i++)
        if (e->params[i].numel > most) most = e->params[i].numel;
    float* host = NN_MALLOC(most * sizeof(float));
    char name[160];
    for (int pass = 0; pass < (momentum ? 2 : 1); pass++)
        for (int i = 0; i < e->num_params; i++) {
            const float* src = engine_slot(e, pass, i, name, sizeof(name));
            if (!src) continue;
            Param* p = &e->params[i];
            int64_t dims[4];
            for (int d = 0; d < p->ndim; d++) dims[d] = p->dims[d];
            e->be->download(host, src, p->numel * sizeof(float));
            ckpt_put(w, name, CKPT_F32, p->ndim, dims, host, p->numel * sizeof(float));
        }
    free(host);
}

int ckpt_get_engine(const Checkpoint* c, Engine* e, int momentum, char* err, size_t errlen) {
    char name[160];
    // Check everything before anything is overwritten.
    for (int pass = 0; pass < (momentum ? 2 : 1); pass++)
        for (int i = 0; i < e->num_params; i++) {
            if (!engine_slot(e, pass, i, name, sizeof(name))) continue;
            const Param* p = &e->params[i];
            const CkptRecord* r = ckpt_find(c, name);
            if (!r) {
                snprintf(err, errlen, "checkpoint '%s' has no tensor '%s': it was saved from a different "
                         "model or configuration (--width, classes)", c->path, name);
                return 1;
            }
            int64_t want_dims[4];
            int same = r->dtype == CKPT_F32 && r->ndim == p->ndim;
            for (int d = 0; d < p->ndim; d++) {
                want_dims[d] = p->dims[d];
                same = same && r->dims[d] == p->dims[d];
            }
            if (!same) {
                char have[64], want[64];
                shape_text(have, sizeof(have), r->ndim, r->dims);
                shape_text(want, sizeof(want), p->ndim, want_dims);
                snprintf(err, errlen, "checkpoint '%s': tensor '%s' has shape %s, the model needs %s "
                         "(was it saved with another --width?)", c->path, name, have, want);
                return 1;
            }
        }
    for (int pass = 0; pass < (momentum ? 2 : 1); pass++)
        for (int i = 0; i < e->num_params; i++) {
            float* dst = engine_slot(e, pass, i, name, sizeof(name));
            if (dst) e->be->upload(dst, ckpt_find(c, name)->data, e->params[i].numel * sizeof(float));
        }
    return 0;
}
