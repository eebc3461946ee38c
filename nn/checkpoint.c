#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        snprintf(err, errlen, "cannot write checkpoint '%s': %s", w->tmp, strerror(errno));
        return 1;
    }
    uint32_t version = CKPT_VERSION, count = 0; // the count is patched in by ckpt_commit
    put_bytes(w, MAGIC, 8);
    put_bytes(w, &version, 4);
    put_bytes(w, &count, 4);
    return 0;
}

void ckpt_put(CkptWriter* w, const char* name, int dtype, int ndim, const int64_t* dims,
              const void* data, size_t nbytes) {
    uint16_t len = (uint16_t)strlen(name);
    uint8_t t = (uint8_t)dtype, nd = (uint8_t)ndim;
    uint64_t nb = nbytes;
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef*)data, (uInt)nbytes);
    NN_ASSERT(len < sizeof(((CkptRecord*)0)->name) && ndim >= 0 && ndim <= 4, "checkpoint record '%s'", name);
    put_bytes(w, &len, 2);
    put_bytes(w, name, len);
    put_bytes(w, &t, 1);
    put_bytes(w, &nd, 1);
    put_bytes(w, dims, sizeof(int64_t) * (size_t)ndim);
    put_bytes(w, &nb, 8);
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

typedef struct Reader {
    FILE* f;
    const char* path;
    long offset;
} Reader;

static int get_bytes(Reader* r, void* p, size_t n, const char* what, char* err, size_t errlen) {
    if (n && fread(p, 1, n, r->f) != n) {
        snprintf(err, errlen, "checkpoint '%s' is truncated: end of file at byte %ld while reading %s",
                 r->path, r->offset, what);
        return 1;
    }
    r->offset += (long)n;
    return 0;
}

void ckpt_free(Checkpoint* c) {
    for (int i = 0; i < c->count; i++) free(c->records[i].data);
    free(c->records);
    c->records = NULL;
    c->count = 0;
}

int ckpt_load(Checkpoint* c, const char* path, char* err, size_t errlen) {
    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s", path);
    Reader r = {.path = path};
    r.f = fopen(path, "rb");
    if (!r.f) {
        snprintf(err, errlen, "cannot open checkpoint '%s': %s", path, strerror(errno));
        return 1;
    }
    fseek(r.f, 0, SEEK_END);
    long size = ftell(r.f);
    fseek(r.f, 0, SEEK_SET);
    char magic[8];
    uint32_t version, count;
    int rc = get_bytes(&r, magic, 8, "the header", err, errlen);
    if (!rc && memcmp(magic, MAGIC, 8) != 0) {
        snprintf(err, errlen, "'%s' is not a drnet checkpoint (bad magic bytes at offset 0)", path);
        rc = 1;
    }
    rc = rc || get_bytes(&r, &version, 4, "the header", err, errlen);
    if (!rc && version != CKPT_VERSION) {
        snprintf(err, errlen, "checkpoint '%s' has format version %u; this program reads version %d",
                 path, version, CKPT_VERSION);
        rc = 1;
    }
    rc = rc || get_bytes(&r, &count, 4, "the header", err, errlen);
    if (!rc && count > 100000) {
        snprintf(err, errlen, "checkpoint '%s': implausible record count %u at byte 12", path, count);
        rc = 1;
    }
    if (!rc) c->records = NN_CALLOC(count ? count : 1, sizeof(CkptRecord));
    for (uint32_t i = 0; !rc && i < count; i++) {
        CkptRecord* rec = &c->records[i];
        long start = r.offset;
        uint16_t len;
        uint8_t dtype, ndim;
        uint64_t nbytes;
        uint32_t crc;
        rc = get_bytes(&r, &len, 2, "a record header", err, errlen);
        if (!rc && len >= sizeof(rec->name)) {
            snprintf(err, errlen, "checkpoint '%s': record %u at byte %ld has a bad name length %u", path, i, start, len);
            rc = 1;
        }
        rc = rc || get_bytes(&r, rec->name, len, "a record name", err, errlen);
        rc = rc || get_bytes(&r, &dtype, 1, "a record header", err, errlen);
        rc = rc || get_bytes(&r, &ndim, 1, "a record header", err, errlen);
        if (!rc && (ndim > 4 || dtype < CKPT_F32 || dtype > CKPT_BYTES)) {
            snprintf(err, errlen, "checkpoint '%s': record '%s' at byte %ld has a bad type %u or rank %u",
                     path, rec->name, start, dtype, ndim);
            rc = 1;
        }
        rc = rc || get_bytes(&r, rec->dims, 8u * ndim, "record dimensions", err, errlen);
        rc = rc || get_bytes(&r, &nbytes, 8, "a record size", err, errlen);
        rc = rc || get_bytes(&r, &crc, 4, "a record checksum", err, errlen);
        if (!rc && nbytes > (uint64_t)(size - r.offset)) {
            snprintf(err, errlen, "checkpoint '%s' is truncated: record '%s' at byte %ld needs %llu bytes, "
                     "the file has %ld left", path, rec->name, start, (unsigned long long)nbytes, size - r.offset);
            rc = 1;
        }
        if (rc) break;
        rec->dtype = dtype, rec->ndim = ndim, rec->nbytes = nbytes;
        rec->data = NN_MALLOC(nbytes ? nbytes : 1);
        c->count = (int)i + 1;
        long data_at = r.offset;
        rc = get_bytes(&r, rec->data, nbytes, rec->name, err, errlen);
        if (!rc && (uint32_t)crc32(0L, (const Bytef*)rec->data, (uInt)nbytes) != crc) {
            snprintf(err, errlen, "checkpoint '%s' is corrupt: record '%s' (data at byte %ld, %llu bytes) "
                     "fails its CRC32", path, rec->name, data_at, (unsigned long long)nbytes);
            rc = 1;
        }
        size_t elem = dtype == CKPT_F32 ? 4 : dtype == CKPT_I64 ? 8 : 1;
        uint64_t numel = 1;
        for (int d = 0; d < ndim; d++) numel *= (uint64_t)rec->dims[d];
        if (!rc && numel * elem != nbytes) {
            snprintf(err, errlen, "checkpoint '%s': record '%s' at byte %ld holds %llu bytes for %llu elements",
                     path, rec->name, start, (unsigned long long)nbytes, (unsigned long long)numel);
            rc = 1;
        }
    }
    if (!rc && r.offset != size) {
        snprintf(err, errlen, "checkpoint '%s' has %ld unexpected bytes after its last record (byte %ld)",
                 path, size - r.offset, r.offset);
        rc = 1;
    }
    fclose(r.f);
    if (rc) ckpt_free(c);
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
