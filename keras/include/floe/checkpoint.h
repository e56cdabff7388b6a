/*
 * floe/checkpoint.h - saving and restoring a session's variables (optimizer slots
 * included) through the filesystem ABI (floe/fs.h), and reading checkpoint files.
 *
 *     floe_checkpoint_save(g, s, "runs/mlp", step, 3, NULL, 0);  // keeps the last 3
 *     ...
 *     floe_checkpoint_restore_latest(g, s, "runs/mlp", NULL, 0);
 *
 * What is saved: every variable of the graph, that is every VarHandleOp node (named by
 * its shared_name, or the node's name when that is empty), with its current value in
 * the session.  Values are fetched in one session run through ReadVariableOp nodes the
 * library adds to the graph ("save/<var>/Read") and restored in one run feeding
 * Placeholders "restore/<var>/value" into AssignVariableOps "restore/<var>/Assign"
 * (added on first use, reused after).  Every variable must have a value to be saved.
 *
 * The file (little-endian) is a 32-byte header, an index, then the tensors' bytes:
 *   header  "FLOECKPT" | u32 version (1) | u32 tensor count | u64 index bytes |
 *           u32 CRC32C of the index | u32 CRC32C of the header's first 28 bytes
 *   index   per tensor: u32 name length | name | u8 dtype-name length | dtype name
 *           ("f32") | u32 ndim | i64 dims[ndim] | u64 data offset | u64 data bytes |
 *           u32 CRC32C of the data; tensors sorted by name
 *   data    the tensors' elements, row-major, at the offsets the index gives
 * A reader trusts nothing: every length, count, offset and extent is checked against
 * the file's size and limits before use, the header and index checksums before the
 * index is parsed, and each tensor's checksum when it is read, so a truncated or
 * corrupted file gives FLOE_DATA_LOSS with the reason, never a crash.
 *
 * Crash consistency: a checkpoint file is written with floe_file_open_write(), which
 * writes aside (the local filesystem: a temporary file in the same directory), and
 * commits at floe_file_close(): fsync, atomic rename over the final name, directory
 * fsync; a failed write discards the temporary.  floe_checkpoint_save() then rewrites
 * the pointer file "<dir>/checkpoint" the same way, last, so "latest" never names an
 * incomplete file, and only then deletes the checkpoints beyond the newest @keep_last.
 * An interrupted save leaves the previous checkpoint and pointer untouched.
 *
 * On filesystems without atomic rename (floe_fs_caps() lacks FLOE_FS_CAP_ATOMIC_RENAME:
 * object stores such as s3://) nothing is renamed: each object is committed whole by the
 * store at floe_file_close() (an S3 PUT or CompleteMultipartUpload; a failed upload is
 * aborted and never appears), in the same order, data first and the pointer last, and
 * before writing the pointer the save reads the new checkpoint's header and index back
 * (checksums, extents against the size the store serves), so "latest" only ever names a
 * checkpoint the store serves whole.  A save killed at any point leaves the previous
 * "latest" valid; at worst an unreferenced ckpt-N object stays behind.
 *
 * The pointer file is text: a line "latest: NAME" then one "all: NAME" line per kept
 * checkpoint, oldest first; names are relative to the directory ("ckpt-120.floeckpt").
 *
 * Errors: a failing call returns its status; the message is floe_keras_last_error().
 */
#ifndef FLOE_CHECKPOINT_H
#define FLOE_CHECKPOINT_H

#include <floe/floe.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef FLOE_KERAS_API
#  ifdef FLOE_BUILDING_KERAS
#    define FLOE_KERAS_API FLOE_EXPORT_
#  else
#    define FLOE_KERAS_API
#  endif
#endif

#define FLOE_CHECKPOINT_VERSION 1

/* ---- Saving and restoring a session ------------------------------------------------------ */

/*
 * floe_checkpoint_write: writes every variable of @g as held by @s to the file @path.
 * FLOE_FAILED_PRECONDITION when a variable is uninitialised, FLOE_UNIMPLEMENTED for a
 * variable of a dtype without fixed-size elements (strings), or the filesystem's error.
 */
FLOE_KERAS_API floe_status floe_checkpoint_write(floe_graph *g, floe_session *s,
                                                 const char *path);

/*
 * floe_checkpoint_restore: assigns every variable of @g in @s from the file @path.
 * The file must hold every variable of the graph with the same dtype and a shape that
 * matches the variable's declared shape (unknown extents match anything); tensors of the
 * file that the graph lacks are ignored (an inference graph restores a training
 * checkpoint).  On a mismatch nothing is assigned and FLOE_INVALID_ARGUMENT (or
 * FLOE_NOT_FOUND when only names are missing) lists every difference:
 *   "variable 'dense/kernel': shape [784, 128] in the graph, [784, 64] in the checkpoint;
 *    variable 'dense/bias': not in the checkpoint".
 * FLOE_DATA_LOSS for a corrupt file.
 */
FLOE_KERAS_API floe_status floe_checkpoint_restore(floe_graph *g, floe_session *s,
                                                   const char *path);

/*
 * floe_checkpoint_save: writes "<dir>/ckpt-<step>.floeckpt" (creating @dir), then the
 * pointer file, then deletes the checkpoints the pointer file listed beyond the newest
 * @keep_last (<= 0 keeps all).  @path (out, nullable): the file written, truncated to
 * @path_len bytes with a NUL.  @step >= 0.
 */
FLOE_KERAS_API floe_status floe_checkpoint_save(floe_graph *g, floe_session *s, const char *dir,
                                                int64_t step, int keep_last, char *path,
                                                size_t path_len);

/* The path of the newest checkpoint of @dir per its pointer file, into @path (@path_len
 * bytes with the NUL); FLOE_NOT_FOUND when there is none; FLOE_DATA_LOSS for a malformed
 * pointer file; FLOE_OUT_OF_RANGE when @path is too small. */
FLOE_KERAS_API floe_status floe_checkpoint_latest(floe_context *ctx, const char *dir, char *path,
                                                  size_t path_len);

/* floe_checkpoint_latest then floe_checkpoint_restore.  @path (out, nullable) as above. */
FLOE_KERAS_API floe_status floe_checkpoint_restore_latest(floe_graph *g, floe_session *s,
                                                          const char *dir, char *path,
                                                          size_t path_len);

/* ---- Reading a checkpoint file (TensorFlow's CheckpointReader) ----------------------------- */

typedef struct floe_checkpoint floe_checkpoint;

/* Opens @path and checks its header and index.  (transfer full) */
FLOE_KERAS_API floe_status floe_checkpoint_open(floe_context *ctx, const char *path,
                                                floe_checkpoint **out);
FLOE_KERAS_API void floe_checkpoint_close(floe_checkpoint *c);     /* NULL-safe */

FLOE_KERAS_API int floe_checkpoint_num_tensors(const floe_checkpoint *c);
/* The index of tensor @name, or -1. */
FLOE_KERAS_API int floe_checkpoint_find(const floe_checkpoint *c, const char *name);
/* Name (transfer none, valid until close), dtype and shape of tensor @i. */
FLOE_KERAS_API floe_status floe_checkpoint_tensor_info(const floe_checkpoint *c, int i,
                                                       const char **name, floe_dtype *dtype,
                                                       floe_shape *shape);
/* Reads tensor @i and checks its checksum.  (transfer full) */
FLOE_KERAS_API floe_status floe_checkpoint_read_tensor(floe_checkpoint *c, int i,
                                                       floe_tensor **out);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_CHECKPOINT_H */
