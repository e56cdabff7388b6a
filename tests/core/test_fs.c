/*
 * test_fs.c - the file API over the built-in local filesystem: round trips, append,
 * atomic whole-file writes, listing, stat, rename, removal, mkdir -p, the read_all cap,
 * and error statuses and messages.
 *
 * Most tests pass a NULL context (local paths need none); the scheme tests use a
 * context without plugins.  Every test works in its own fresh temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <floe/floe.h>

typedef struct fs_state {
    char dir[256];
} fs_state;

static int setup_dir(void **state) {
    fs_state *s = calloc(1, sizeof(*s));
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof(s->dir), "%s/floe_test_fs_XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    *state = s;
    return 0;
}

static int remove_tree(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    return system(cmd);
}

static int teardown_dir(void **state) {
    fs_state *s = *state;
    remove_tree(s->dir);
    free(s);
    return 0;
}

static const char *path_in(void **state, const char *name) {
    static char buf[512];
    fs_state *s = *state;
    snprintf(buf, sizeof(buf), "%s/%s", s->dir, name);
    return buf;
}

static void assert_contents(const char *path, const char *expect, size_t n) {
    void *data = NULL;
    size_t size = 99;
    assert_int_equal(floe_fs_read_all(NULL, path, 0, &data, &size), FLOE_OK);
    assert_int_equal(size, n);
    assert_memory_equal(data, expect, n);
    assert_int_equal(((char *)data)[n], '\0');      /* NUL after the data */
    free(data);
}

/* ---- Round trips --------------------------------------------------------------------- */

static void write_all_read_all_round_trip(void **state) {
    char path[512];
    snprintf(path, sizeof(path), "%s", path_in(state, "a.bin"));
    assert_int_equal(floe_fs_write_all(NULL, path, "hello\0world", 11), FLOE_OK);
    assert_contents(path, "hello\0world", 11);
    /* Overwrite replaces everything. */
    assert_int_equal(floe_fs_write_all(NULL, path, "xy", 2), FLOE_OK);
    assert_contents(path, "xy", 2);
    /* Empty file. */
    assert_int_equal(floe_fs_write_all(NULL, path, NULL, 0), FLOE_OK);
    assert_contents(path, "", 0);
}

static void file_uri_is_local(void **state) {
    char uri[600];
    snprintf(uri, sizeof(uri), "file://%s", path_in(state, "u.txt"));
    assert_int_equal(floe_fs_write_all(NULL, uri, "uri", 3), FLOE_OK);
    assert_contents(path_in(state, "u.txt"), "uri", 3);
}

static void read_all_large_file(void **state) {
    char path[512];
    size_t n = 3 * 65536 + 123;
    char *big = malloc(n);
    void *data = NULL;
    size_t size = 0;
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7);
    snprintf(path, sizeof(path), "%s", path_in(state, "big"));
    assert_int_equal(floe_fs_write_all(NULL, path, big, n), FLOE_OK);
    assert_int_equal(floe_fs_read_all(NULL, path, 0, &data, &size), FLOE_OK);
    assert_int_equal(size, n);
    assert_memory_equal(data, big, n);
    free(data);
    free(big);
}

static void pread_reads_at_offsets(void **state) {
    char path[512];
    floe_file *f = NULL;
    char buf[16];
    size_t nread = 99;
    snprintf(path, sizeof(path), "%s", path_in(state, "p"));
    assert_int_equal(floe_fs_write_all(NULL, path, "0123456789", 10), FLOE_OK);
    assert_int_equal(floe_file_open_read(NULL, path, &f), FLOE_OK);
    assert_int_equal(floe_file_pread(f, 3, buf, 4, &nread), FLOE_OK);
    assert_int_equal(nread, 4);
    assert_memory_equal(buf, "3456", 4);
    assert_int_equal(floe_file_pread(f, 8, buf, 16, &nread), FLOE_OK);   /* short at EOF */
    assert_int_equal(nread, 2);
    assert_int_equal(floe_file_pread(f, 100, buf, 16, &nread), FLOE_OK);
    assert_int_equal(nread, 0);
    assert_int_equal(floe_file_write(f, "x", 1), FLOE_FAILED_PRECONDITION);
    assert_int_equal(floe_file_close(f), FLOE_OK);
}

/* ---- Writing: visibility, abort, append ----------------------------------------------- */

static void write_visible_only_after_close(void **state) {
    char path[512];
    floe_file *f = NULL;
    floe_file_info info = {sizeof(info)};
    snprintf(path, sizeof(path), "%s", path_in(state, "w"));
    assert_int_equal(floe_fs_write_all(NULL, path, "old", 3), FLOE_OK);
    assert_int_equal(floe_file_open_write(NULL, path, 0, &f), FLOE_OK);
    assert_int_equal(floe_file_write(f, "new ", 4), FLOE_OK);
    assert_int_equal(floe_file_write(f, "content", 7), FLOE_OK);
    assert_contents(path, "old", 3);                  /* readers still see the old file */
    assert_int_equal(floe_file_close(f), FLOE_OK);
    assert_contents(path, "new content", 11);
    assert_int_equal(floe_fs_stat(NULL, path, &info), FLOE_OK);
    assert_int_equal(info.size, 11);
}

static int count_entries(const char *dir);

static void abort_discards_write(void **state) {
    char path[512];
    floe_file *f = NULL;
    fs_state *s = *state;
    snprintf(path, sizeof(path), "%s", path_in(state, "ab"));
    assert_int_equal(floe_fs_write_all(NULL, path, "keep", 4), FLOE_OK);
    assert_int_equal(floe_file_open_write(NULL, path, 0, &f), FLOE_OK);
    assert_int_equal(floe_file_write(f, "lost", 4), FLOE_OK);
    floe_file_abort(f);
    assert_contents(path, "keep", 4);
    /* No temporary file is left behind. */
    assert_int_equal(count_entries(s->dir), 1);
    /* Aborting a new file leaves nothing at all. */
    assert_int_equal(floe_file_open_write(NULL, path_in(state, "never"), 0, &f), FLOE_OK);
    floe_file_abort(f);
    floe_file_info info = {sizeof(info)};
    assert_int_equal(floe_fs_stat(NULL, path_in(state, "never"), &info), FLOE_NOT_FOUND);
    floe_file_abort(NULL);
    assert_int_equal(floe_file_close(NULL), FLOE_OK);
}

static void append_adds_to_the_end(void **state) {
    char path[512];
    floe_file *f = NULL;
    uint32_t caps = 0;
    snprintf(path, sizeof(path), "%s", path_in(state, "log"));
    assert_int_equal(floe_fs_caps(NULL, path, &caps), FLOE_OK);
    assert_true(caps & FLOE_FS_CAP_APPEND);
    assert_true(caps & FLOE_FS_CAP_ATOMIC_RENAME);
    /* Append creates a missing file. */
    assert_int_equal(floe_file_open_write(NULL, path, 1, &f), FLOE_OK);
    assert_int_equal(floe_file_write(f, "one,", 4), FLOE_OK);
    assert_int_equal(floe_file_close(f), FLOE_OK);
    assert_int_equal(floe_file_open_write(NULL, path, 1, &f), FLOE_OK);
    assert_int_equal(floe_file_write(f, "two", 3), FLOE_OK);
    assert_int_equal(floe_file_close(f), FLOE_OK);
    assert_contents(path, "one,two", 7);
    /* An aborted append is cut back off. */
    assert_int_equal(floe_file_open_write(NULL, path, 1, &f), FLOE_OK);
    assert_int_equal(floe_file_write(f, ",three", 6), FLOE_OK);
    floe_file_abort(f);
    assert_contents(path, "one,two", 7);
}

/* ---- Directories ------------------------------------------------------------------------ */

typedef struct list_acc {
    int n;
    int files, dirs;
    uint64_t bytes;
    char names[8][32];
} list_acc;

static void list_fn(void *arg, const char *name, const floe_file_info *info) {
    list_acc *a = arg;
    if (a->n < 8)
        snprintf(a->names[a->n], sizeof(a->names[0]), "%s", name);
    a->n++;
    if (info->is_dir)
        a->dirs++;
    else
        a->files++;
    a->bytes += info->size;
    assert_int_equal(info->struct_size, sizeof(*info));
}

static int count_entries(const char *dir) {
    list_acc a = {0};
    assert_int_equal(floe_fs_list(NULL, dir, list_fn, &a), FLOE_OK);
    return a.n;
}

static void list_names_files_and_dirs(void **state) {
    fs_state *s = *state;
    list_acc a = {0};
    assert_int_equal(floe_fs_write_all(NULL, path_in(state, "f1"), "abc", 3), FLOE_OK);
    assert_int_equal(floe_fs_write_all(NULL, path_in(state, "f2"), "de", 2), FLOE_OK);
    assert_int_equal(floe_fs_mkdir(NULL, path_in(state, "sub")), FLOE_OK);
    assert_int_equal(floe_fs_list(NULL, s->dir, list_fn, &a), FLOE_OK);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.files, 2);
    assert_int_equal(a.dirs, 1);
    assert_int_equal(a.bytes, 5);
    for (int i = 0; i < 3; i++)
        assert_true(strcmp(a.names[i], "f1") == 0 || strcmp(a.names[i], "f2") == 0 ||
                    strcmp(a.names[i], "sub") == 0);
    assert_int_equal(floe_fs_list(NULL, path_in(state, "nope"), list_fn, &a), FLOE_NOT_FOUND);
    assert_int_equal(floe_fs_list(NULL, s->dir, NULL, NULL), FLOE_INVALID_ARGUMENT);
}

static void mkdir_creates_parents(void **state) {
    char path[512];
    floe_file_info info = {sizeof(info)};
    snprintf(path, sizeof(path), "%s", path_in(state, "a/b//c/d/"));
    assert_int_equal(floe_fs_mkdir(NULL, path), FLOE_OK);
    assert_int_equal(floe_fs_mkdir(NULL, path), FLOE_OK);    /* exists: fine */
    assert_int_equal(floe_fs_stat(NULL, path_in(state, "a/b/c/d"), &info), FLOE_OK);
    assert_int_equal(info.is_dir, 1);
    assert_int_equal(info.size, 0);
    assert_int_equal(floe_fs_write_all(NULL, path_in(state, "file"), "x", 1), FLOE_OK);
    assert_int_equal(floe_fs_mkdir(NULL, path_in(state, "file")), FLOE_ALREADY_EXISTS);
    assert_non_null(strstr(floe_last_error(), "not a directory"));
}

static void rename_moves_atomically(void **state) {
    char from[512], to[512];
    floe_file_info info = {sizeof(info)};
    snprintf(from, sizeof(from), "%s", path_in(state, "from"));
    snprintf(to, sizeof(to), "%s", path_in(state, "to"));
    assert_int_equal(floe_fs_write_all(NULL, from, "moved", 5), FLOE_OK);
    assert_int_equal(floe_fs_write_all(NULL, to, "replaced", 8), FLOE_OK);
    assert_int_equal(floe_fs_rename(NULL, from, to), FLOE_OK);
    assert_contents(to, "moved", 5);
    assert_int_equal(floe_fs_stat(NULL, from, &info), FLOE_NOT_FOUND);
    assert_int_equal(floe_fs_rename(NULL, from, to), FLOE_NOT_FOUND);
    assert_non_null(strstr(floe_last_error(), "from"));
}

static void remove_files_and_empty_dirs(void **state) {
    floe_file_info info = {sizeof(info)};
    assert_int_equal(floe_fs_write_all(NULL, path_in(state, "r"), "x", 1), FLOE_OK);
    assert_int_equal(floe_fs_remove(NULL, path_in(state, "r")), FLOE_OK);
    assert_int_equal(floe_fs_stat(NULL, path_in(state, "r"), &info), FLOE_NOT_FOUND);
    assert_int_equal(floe_fs_remove(NULL, path_in(state, "r")), FLOE_NOT_FOUND);
    assert_int_equal(floe_fs_mkdir(NULL, path_in(state, "d/e")), FLOE_OK);
    assert_int_equal(floe_fs_remove(NULL, path_in(state, "d")), FLOE_FAILED_PRECONDITION);
    assert_int_equal(floe_fs_remove(NULL, path_in(state, "d/e")), FLOE_OK);
    assert_int_equal(floe_fs_remove(NULL, path_in(state, "d")), FLOE_OK);
}

/* ---- Errors and caps -------------------------------------------------------------------- */

static void missing_file_is_not_found_with_path(void **state) {
    void *data = (void *)state;
    size_t size = 99;
    floe_file *f = (floe_file *)state;
    const char *path = path_in(state, "missing.txt");
    assert_int_equal(floe_fs_read_all(NULL, path, 0, &data, &size), FLOE_NOT_FOUND);
    assert_null(data);
    assert_int_equal(size, 0);
    assert_non_null(strstr(floe_last_error(), "missing.txt"));
    assert_non_null(strstr(floe_last_error(), "No such file"));
    assert_int_equal(floe_file_open_read(NULL, path, &f), FLOE_NOT_FOUND);
    assert_null(f);
    /* Writing into a missing directory fails too, naming it. */
    assert_int_equal(floe_fs_write_all(NULL, path_in(state, "no/dir/x"), "x", 1), FLOE_NOT_FOUND);
    assert_non_null(strstr(floe_last_error(), "no/dir/x"));
}

static void directory_is_not_a_file(void **state) {
    fs_state *s = *state;
    void *data = NULL;
    size_t size = 0;
    assert_int_equal(floe_fs_read_all(NULL, s->dir, 0, &data, &size), FLOE_FAILED_PRECONDITION);
    assert_null(data);
}

static void permission_denied_maps(void **state) {
    char path[512];
    void *data = NULL;
    size_t size = 0;
    if (geteuid() == 0)
        skip();                      /* root reads everything */
    snprintf(path, sizeof(path), "%s", path_in(state, "secret"));
    assert_int_equal(floe_fs_write_all(NULL, path, "s", 1), FLOE_OK);
    assert_int_equal(chmod(path, 0), 0);
    assert_int_equal(floe_fs_read_all(NULL, path, 0, &data, &size), FLOE_PERMISSION_DENIED);
    assert_non_null(strstr(floe_last_error(), "secret"));
}

static void read_all_cap(void **state) {
    char path[512];
    void *data = NULL;
    size_t size = 0;
    snprintf(path, sizeof(path), "%s", path_in(state, "capped"));
    assert_int_equal(floe_fs_write_all(NULL, path, "0123456789", 10), FLOE_OK);
    assert_int_equal(floe_fs_read_all(NULL, path, 9, &data, &size), FLOE_OUT_OF_RANGE);
    assert_null(data);
    assert_int_equal(size, 0);
    assert_non_null(strstr(floe_last_error(), "cap"));
    assert_int_equal(floe_fs_read_all(NULL, path, 10, &data, &size), FLOE_OK);
    assert_int_equal(size, 10);
    free(data);
    assert_int_equal(floe_fs_read_all(NULL, path, 11, &data, &size), FLOE_OK);
    free(data);
}

static void bad_arguments(void **state) {
    void *data = NULL;
    size_t size = 0;
    floe_file_info info = {sizeof(info)};
    assert_int_equal(floe_fs_read_all(NULL, NULL, 0, &data, &size), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_fs_read_all(NULL, "", 0, &data, &size), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_fs_read_all(NULL, path_in(state, "x"), 0, NULL, &size),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_fs_write_all(NULL, path_in(state, "x"), NULL, 3), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_fs_stat(NULL, NULL, &info), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_fs_stat(NULL, "/", NULL), FLOE_INVALID_ARGUMENT);
    /* Other schemes need a context. */
    assert_int_equal(floe_fs_read_all(NULL, "s3://bucket/key", 0, &data, &size),
                     FLOE_INVALID_ARGUMENT);
}

static void unknown_scheme_is_not_found(void **state) {
    floe_context_options opts;
    floe_context *ctx = NULL;
    void *data = NULL;
    size_t size = 0;
    uint32_t caps = 7;
    floe_context_options_init(&opts);
    opts.no_plugins = 1;
    assert_int_equal(floe_context_new(&opts, &ctx), FLOE_OK);
    assert_int_equal(floe_fs_read_all(ctx, "nosuch://bucket/key", 0, &data, &size),
                     FLOE_NOT_FOUND);
    assert_non_null(strstr(floe_last_error(), "nosuch"));
    assert_int_equal(floe_fs_caps(ctx, "nosuch://x", &caps), FLOE_NOT_FOUND);
    assert_int_equal(caps, 0);
    /* The context serves local paths through the same built-in filesystem. */
    assert_int_equal(floe_fs_write_all(ctx, path_in(state, "ctx"), "via ctx", 7), FLOE_OK);
    assert_int_equal(floe_fs_read_all(ctx, path_in(state, "ctx"), 0, &data, &size), FLOE_OK);
    assert_int_equal(size, 7);
    free(data);
    floe_context_free(ctx);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)
    const struct CMUnitTest tests[] = {
        T(write_all_read_all_round_trip),
        T(file_uri_is_local),
        T(read_all_large_file),
        T(pread_reads_at_offsets),
        T(write_visible_only_after_close),
        T(abort_discards_write),
        T(append_adds_to_the_end),
        T(list_names_files_and_dirs),
        T(mkdir_creates_parents),
        T(rename_moves_atomically),
        T(remove_files_and_empty_dirs),
        T(missing_file_is_not_found_with_path),
        T(directory_is_not_a_file),
        T(permission_denied_maps),
        T(read_all_cap),
        T(bad_arguments),
        T(unknown_scheme_is_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
