// Checkpoint files: a versioned list of named, typed records, each with its own CRC32.
// The format is specified in docs/checkpoint-format.md; in short, little-endian:
//
//   header   "DRNETCKP" (8 bytes) | u32 version = 2 | u32 record count
//   record   u16 name length | name (UTF-8, no NUL) | u8 dtype (1 f32, 2 i64, 3 bytes) | u8 ndim (0-4)
//            | i64 dims[ndim] | u64 data bytes | u32 CRC32 (zlib) | data
// The CRC of version 2 covers the record's header (everything before the CRC) and its data; version
// 1 files, whose CRC covers the data only, are still read.
//
// Saving writes PATH.tmp, flushes it to disk and renames it over PATH, so a crash or Ctrl-C during a
// save never leaves a damaged or missing checkpoint. Loading reads and verifies everything before
// anything is used: a truncated, corrupt or foreign file is refused with a message naming the file,
// the record and the byte offset.
#ifndef NN_CHECKPOINT_H
#define NN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"

#define CKPT_VERSION 2 // written; versions 1 and 2 are read
enum { CKPT_F32 = 1, CKPT_I64 = 2, CKPT_BYTES = 3 };

typedef struct CkptRecord {
    char name[128];
    int dtype, ndim;
    int64_t dims[4];
    uint64_t nbytes;
    void* data;
} CkptRecord;

typedef struct Checkpoint {
    char path[1024];
    CkptRecord* records;
    int count;
} Checkpoint;

typedef struct CkptWriter {
    FILE* f;
    char path[1024], tmp[1040];
    uint32_t count;
    int failed;
} CkptWriter;

// Writing. Returns 0, or non-zero with a message in err (ckpt_commit renames atomically).
int ckpt_begin(CkptWriter* w, const char* path, char* err, size_t errlen);
void ckpt_put(CkptWriter* w, const char* name, int dtype, int ndim, const int64_t* dims,
              const void* data, size_t nbytes);
void ckpt_put_i64(CkptWriter* w, const char* name, int64_t v);
void ckpt_put_f32(CkptWriter* w, const char* name, float v);
void ckpt_put_str(CkptWriter* w, const char* name, const char* s);
int ckpt_commit(CkptWriter* w, char* err, size_t errlen);
void ckpt_abort(CkptWriter* w);

// Reading: checks the header and every record header against the file's size, then reads each
// record's data and verifies its CRC (nothing is read or allocated for a file whose table is wrong).
int ckpt_load(Checkpoint* c, const char* path, char* err, size_t errlen);
// The same checks on a file already in memory (size bytes at buf); path names it in messages. The
// fuzz harness drives the reader through this.
int ckpt_parse(Checkpoint* c, const void* buf, size_t size, const char* path, char* err, size_t errlen);
void ckpt_free(Checkpoint* c);
const CkptRecord* ckpt_find(const Checkpoint* c, const char* name);
// Scalars and strings by name; return 0 if present with the right type, else non-zero.
int ckpt_get_i64(const Checkpoint* c, const char* name, int64_t* v);
int ckpt_get_f32(const Checkpoint* c, const char* name, float* v);
int ckpt_get_str(const Checkpoint* c, const char* name, char* out, size_t outlen);

// The engine's tensors: every parameter and buffer under its own name, and with momentum = 1 the
// SGD momentum of each parameter under "optimizer.momentum.<name>".
void ckpt_put_engine(CkptWriter* w, Engine* e, int momentum);
// Loads them back, checking that every tensor exists with the same shape (a mismatch is refused
// with a message naming the tensor). With momentum = 1 the momentum records are required too.
int ckpt_get_engine(const Checkpoint* c, Engine* e, int momentum, char* err, size_t errlen);

#endif
