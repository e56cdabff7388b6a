/*
 * floe/fs.h - file access through the filesystem ABI.
 *
 * Every file the core touches goes through these calls.  A URI's scheme ("s3://...")
 * picks a filesystem registered by a plugin (plugin_api floe/plugin.h,
 * floe_fs_ops); a plain path or "file://" goes to the built-in local filesystem.
 *
 * Thread safety: all calls are safe from any thread; one floe_file must not be used
 * by two threads at once.
 */
#ifndef FLOE_FS_H
#define FLOE_FS_H

#include <floe/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct floe_file floe_file;


/* Capabilities of the filesystem that serves @uri; FLOE_NOT_FOUND for an unknown scheme. */
FLOE_API floe_status floe_fs_caps(floe_context *ctx, const char *uri, uint32_t *caps);

/* Opens @uri for reading.  (transfer full): close with floe_file_close(). */
FLOE_API floe_status floe_file_open_read(floe_context *ctx, const char *uri, floe_file **out);
/* Reads up to @n bytes at @offset; *@nread < @n only at end of file. */
FLOE_API floe_status floe_file_pread(floe_file *f, uint64_t offset, void *buf, size_t n,
                                     size_t *nread);

/* Opens @uri for writing (truncating) or appending.  Data is visible under @uri only
 * after floe_file_close() returns FLOE_OK; floe_file_abort() discards it. */
FLOE_API floe_status floe_file_open_write(floe_context *ctx, const char *uri, int append,
                                          floe_file **out);
FLOE_API floe_status floe_file_write(floe_file *f, const void *buf, size_t n);
/* Commits a written file, or just closes a read one; frees @f in every case. NULL-safe. */
FLOE_API floe_status floe_file_close(floe_file *f);
/* Closes a file being written without committing it; frees @f.  NULL-safe. */
FLOE_API void floe_file_abort(floe_file *f);

/* Reads a whole file.  @max_bytes caps the size (FLOE_OUT_OF_RANGE beyond it; 0 means
 * no cap).  *@data (transfer full) is freed with free(). */
FLOE_API floe_status floe_fs_read_all(floe_context *ctx, const char *uri, size_t max_bytes,
                                      void **data, size_t *size);
/* Writes a whole file so that readers see the old content or the new, never a mix
 * (temporary file plus atomic rename where the filesystem has it). */
FLOE_API floe_status floe_fs_write_all(floe_context *ctx, const char *uri, const void *data,
                                       size_t size);

FLOE_API floe_status floe_fs_stat(floe_context *ctx, const char *uri, floe_file_info *info);
/* Calls @fn for each entry (a name, not a path) of directory @uri, in no set order. */
FLOE_API floe_status floe_fs_list(floe_context *ctx, const char *uri,
                                  void (*fn)(void *arg, const char *name,
                                             const floe_file_info *info),
                                  void *arg);
FLOE_API floe_status floe_fs_remove(floe_context *ctx, const char *uri);
/* Creates a directory and its parents; FLOE_OK if it exists. */
FLOE_API floe_status floe_fs_mkdir(floe_context *ctx, const char *uri);
FLOE_API floe_status floe_fs_rename(floe_context *ctx, const char *from, const char *to);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_FS_H */
