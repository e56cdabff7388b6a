/*
 * test_headers.c - every installed header compiles on its own, as C11 and as C++.
 *
 * TensorFlow's "C" headers drifted into C++-only form; this test keeps Floe's honest.  For
 * each public header (every <dir>/include/floe of the tree: core, plugin_api, io, keras,
 * found by discover()) it writes a one-line translation unit that includes only that header, and runs the C compiler
 * (-std=c11 -Wpedantic) and the C++ compiler (-std=c++11) on it with -fsyntax-only -Werror,
 * through system().  A failure names the header and the language and shows the compiler's
 * output.  A negative control checks that a broken translation unit is caught, so the test
 * cannot pass by not compiling anything.
 *
 * Environment: FLOE_SOURCE_ROOT (set by meson) locates the headers; CC and CXX pick the
 * compilers (default cc and c++).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The public headers are found, not listed (a list went stale as libraries were added):
 * every file under <dir>/include/floe/ (one level of subdirectories: experimental/) for
 * each top-level <dir> of the source tree (core, plugin_api, io, keras, ...).  The test
 * fails if the ones every release has are not among them, so discovery cannot pass by
 * finding nothing. */
#define MAX_HEADERS 128
#define MAX_INCLUDE_DIRS 16

typedef struct hdr_entry {
    char include_dir[64]; /* relative to the source root: "core/include" */
    char header[128];     /* as written in #include <...>: "floe/floe.h" */
} hdr_entry;

static const char *const required_headers[] = {
    "floe/floe.h", "floe/types.h", "floe/tensor.h", "floe/graph.h", "floe/session.h",
    "floe/fs.h", "floe/gradients.h", "floe/plugin.h", "floe/cpu.h", "floe/keras.h",
    "floe/tfrecord.h", "floe/experimental/testing.h"};

typedef struct hdr_env {
    char root[1024];
    char tmpdir[64];
    const char *cc;
    const char *cxx;
    hdr_entry headers[MAX_HEADERS];
    int nheaders;
    int ninclude_dirs;
    char iflags[4096]; /* -I'<root>/<dir>/include' for every include dir */
} hdr_env;

static int is_header(const char *name) {
    size_t n = strlen(name);
    return n > 2 && strcmp(name + n - 2, ".h") == 0;
}

/* Adds the headers of <root>/<dir>/include/@sub (sub: "floe" or "floe/x"). */
static void scan_dir(hdr_env *e, const char *dir, const char *sub, int depth) {
    char path[1400];
    DIR *d;
    struct dirent *de;

    snprintf(path, sizeof(path), "%s/%s/include/%s", e->root, dir, sub);
    if ((d = opendir(path)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char child[512], full[1700];
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(child, sizeof(child), "%.200s/%.255s", sub, de->d_name);
        snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth == 0) {
            scan_dir(e, dir, child, 1);
        } else if (S_ISREG(st.st_mode) && is_header(de->d_name) && e->nheaders < MAX_HEADERS &&
                   strlen(child) < sizeof(e->headers[0].header)) {
            hdr_entry *h = &e->headers[e->nheaders++];
            snprintf(h->include_dir, sizeof(h->include_dir), "%.50s/include", dir);
            snprintf(h->header, sizeof(h->header), "%.127s", child);
        }
    }
    closedir(d);
}

/* Every <root>/<dir>/include/floe, in name order of <dir> (build directories have none). */
static void discover(hdr_env *e) {
    struct dirent **names = NULL;
    int n = scandir(e->root, &names, NULL, alphasort);

    for (int i = 0; i < n; i++) {
        char path[1400];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s/include/floe", e->root, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
            e->ninclude_dirs < MAX_INCLUDE_DIRS && strlen(names[i]->d_name) < 50) {
            size_t len = strlen(e->iflags);
            e->ninclude_dirs++;
            snprintf(e->iflags + len, sizeof(e->iflags) - len, " -I'%s/%s/include'", e->root,
                     names[i]->d_name);
            scan_dir(e, names[i]->d_name, "floe", 0);
        }
        free(names[i]);
    }
    free(names);
}

static int setup_env(void **state) {
    hdr_env *e = calloc(1, sizeof(*e));
    const char *root = getenv("FLOE_SOURCE_ROOT");

    if (e == NULL)
        return -1;
    if (root == NULL || root[0] == '\0') {
        fprintf(stderr, "FLOE_SOURCE_ROOT is not set (meson sets it)\n");
        free(e);
        return -1;
    }
    if (strlen(root) >= sizeof(e->root)) {
        fprintf(stderr, "FLOE_SOURCE_ROOT is too long\n");
        free(e);
        return -1;
    }
    snprintf(e->root, sizeof(e->root), "%s", root);
    snprintf(e->tmpdir, sizeof(e->tmpdir), "/tmp/floe-headers-XXXXXX");
    if (mkdtemp(e->tmpdir) == NULL) {
        perror("mkdtemp");
        free(e);
        return -1;
    }
    discover(e);
    e->cc = getenv("CC") != NULL && getenv("CC")[0] != '\0' ? getenv("CC") : "cc";
    e->cxx = getenv("CXX") != NULL && getenv("CXX")[0] != '\0' ? getenv("CXX") : "c++";
    *state = e;
    return 0;
}

static int teardown_env(void **state) {
    hdr_env *e = *state;
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->tmpdir);
    free(e);
    return 0;
}

/* Writes @text to @path; returns 0 on success. */
static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    int rc;

    if (f == NULL)
        return -1;
    rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* Compiles @tu (a file in the temporary directory) in @lang ("c" or "c++"); returns the
 * compiler's exit status (0: compiled) and leaves its output in @log. */
static int compile_tu(const hdr_env *e, const char *tu, const char *lang, const char *log) {
    char cmd[8192];
    int rc;

    if (strcmp(lang, "c") == 0)
        snprintf(cmd, sizeof(cmd),
                 "%s -x c -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only "
                 "%s '%s' >'%s' 2>&1",
                 e->cc, e->iflags, tu, log);
    else
        snprintf(cmd, sizeof(cmd),
                 "%s -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only "
                 "%s '%s' >'%s' 2>&1",
                 e->cxx, e->iflags, tu, log);
    rc = system(cmd);
    if (rc == -1)
        return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static void print_file(const char *path) {
    FILE *f = fopen(path, "r");
    char line[512];

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "    %s", line);
    fclose(f);
}

/* Compiles every header alone in @lang; prints each one that fails and fails the test. */
static void check_all(const hdr_env *e, const char *lang) {
    char tu[256], log[256], text[512], path[1200];
    int nfailed = 0;

    for (int i = 0; i < e->nheaders; i++) {
        const hdr_entry *h = &e->headers[i];
        snprintf(path, sizeof(path), "%s/%s/%s", e->root, h->include_dir, h->header);
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "missing header: %s\n", path);
            nfailed++;
            continue;
        }
        /* A second include checks the include guard; the declaration keeps the TU non-empty
         * under -Wpedantic. */
        snprintf(text, sizeof(text), "#include <%s>\n#include <%s>\nint floe_header_check_;\n",
                 h->header, h->header);
        snprintf(tu, sizeof(tu), "%s/tu_%d.%s", e->tmpdir, i, strcmp(lang, "c") == 0 ? "c" : "cc");
        snprintf(log, sizeof(log), "%s/tu_%d_%s.log", e->tmpdir, i, lang);
        assert_int_equal(write_file(tu, text), 0);
        if (compile_tu(e, tu, lang, log) != 0) {
            fprintf(stderr, "header %s does not compile on its own as %s:\n", h->header,
                    strcmp(lang, "c") == 0 ? "C11" : "C++11");
            print_file(log);
            nfailed++;
        }
    }
    assert_int_equal(nfailed, 0);
}

/* Discovery found the headers every release has, in more than one library. */
static void headers_discovery_finds_the_public_headers(void **state) {
    const hdr_env *e = *state;
    int missing = 0;

    for (size_t r = 0; r < sizeof(required_headers) / sizeof(required_headers[0]); r++) {
        int found = 0;
        for (int i = 0; i < e->nheaders && !found; i++)
            found = strcmp(e->headers[i].header, required_headers[r]) == 0;
        if (!found) {
            fprintf(stderr, "public header %s not found under */include/\n", required_headers[r]);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
    assert_true(e->ninclude_dirs >= 4); /* core, plugin_api, io, keras */
    printf("checking %d headers from %d include directories\n", e->nheaders, e->ninclude_dirs);
}

static void headers_compile_alone_as_c11(void **state) {
    check_all(*state, "c");
}

static void headers_compile_alone_as_cxx(void **state) {
    check_all(*state, "c++");
}

/* The compilers are there and a broken translation unit is reported as such. */
static void headers_check_detects_broken_tu(void **state) {
    const hdr_env *e = *state;
    char tu[256], log[256];

    snprintf(tu, sizeof(tu), "%s/broken.c", e->tmpdir);
    snprintf(log, sizeof(log), "%s/broken.log", e->tmpdir);
    assert_int_equal(write_file(tu, "#include <floe/types.h>\nfloe_no_such_type x;\n"), 0);
    assert_int_not_equal(compile_tu(e, tu, "c", log), 0);
    assert_int_not_equal(compile_tu(e, tu, "c++", log), 0);

    snprintf(tu, sizeof(tu), "%s/fine.c", e->tmpdir);
    assert_int_equal(write_file(tu, "#include <floe/types.h>\nfloe_status x;\n"), 0);
    assert_int_equal(compile_tu(e, tu, "c", log), 0);
    assert_int_equal(compile_tu(e, tu, "c++", log), 0);
}

/* A plugin must not include the application header: plugin.h refuses floe.h before it. */
static void headers_plugin_refuses_floe_h(void **state) {
    const hdr_env *e = *state;
    char tu[256], log[256];

    snprintf(tu, sizeof(tu), "%s/both.c", e->tmpdir);
    snprintf(log, sizeof(log), "%s/both.log", e->tmpdir);
    assert_int_equal(write_file(tu, "#include <floe/floe.h>\n#include <floe/plugin.h>\nint x;\n"),
                     0);
    assert_int_not_equal(compile_tu(e, tu, "c", log), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(headers_check_detects_broken_tu),
        cmocka_unit_test(headers_discovery_finds_the_public_headers),
        cmocka_unit_test(headers_compile_alone_as_c11),
        cmocka_unit_test(headers_compile_alone_as_cxx),
        cmocka_unit_test(headers_plugin_refuses_floe_h),
    };
    return cmocka_run_group_tests(tests, setup_env, teardown_env);
}
