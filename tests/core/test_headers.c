/*
 * test_headers.c - every installed header compiles on its own, as C11 and as C++.
 *
 * TensorFlow's "C" headers drifted into C++-only form; this test keeps Floe's honest.  For
 * each public header (core/include/floe and plugin_api/include/floe) it writes a one-line
 * translation unit that includes only that header, and runs the C compiler
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
#include <sys/wait.h>
#include <unistd.h>

/* The headers that `meson install` puts under include/floe/, relative to their include dir. */
static const struct {
    const char *include_dir; /* relative to the source root */
    const char *header;      /* as written in #include <...> */
} headers[] = {
    {"core/include", "floe/floe.h"},
    {"core/include", "floe/types.h"},
    {"core/include", "floe/tensor.h"},
    {"core/include", "floe/graph.h"},
    {"core/include", "floe/session.h"},
    {"core/include", "floe/fs.h"},
    {"core/include", "floe/experimental/testing.h"},
    {"core/include", "floe/experimental/transport.h"},
    {"plugin_api/include", "floe/plugin.h"},
    {"plugin_api/include", "floe/cpu.h"},
};

#define NUM_HEADERS (sizeof(headers) / sizeof(headers[0]))

typedef struct hdr_env {
    char root[1024];
    char tmpdir[64];
    const char *cc;
    const char *cxx;
} hdr_env;

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
                 "-I'%s/core/include' -I'%s/plugin_api/include' '%s' >'%s' 2>&1",
                 e->cc, e->root, e->root, tu, log);
    else
        snprintf(cmd, sizeof(cmd),
                 "%s -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only "
                 "-I'%s/core/include' -I'%s/plugin_api/include' '%s' >'%s' 2>&1",
                 e->cxx, e->root, e->root, tu, log);
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

    for (size_t i = 0; i < NUM_HEADERS; i++) {
        snprintf(path, sizeof(path), "%s/%s/%s", e->root, headers[i].include_dir,
                 headers[i].header);
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "missing header: %s\n", path);
            nfailed++;
            continue;
        }
        /* A second include checks the include guard; the declaration keeps the TU non-empty
         * under -Wpedantic. */
        snprintf(text, sizeof(text), "#include <%s>\n#include <%s>\nint floe_header_check_;\n",
                 headers[i].header, headers[i].header);
        snprintf(tu, sizeof(tu), "%s/tu_%zu.%s", e->tmpdir, i, strcmp(lang, "c") == 0 ? "c" : "cc");
        snprintf(log, sizeof(log), "%s/tu_%zu_%s.log", e->tmpdir, i, lang);
        assert_int_equal(write_file(tu, text), 0);
        if (compile_tu(e, tu, lang, log) != 0) {
            fprintf(stderr, "header %s does not compile on its own as %s:\n", headers[i].header,
                    strcmp(lang, "c") == 0 ? "C11" : "C++11");
            print_file(log);
            nfailed++;
        }
    }
    assert_int_equal(nfailed, 0);
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
        cmocka_unit_test(headers_compile_alone_as_c11),
        cmocka_unit_test(headers_compile_alone_as_cxx),
        cmocka_unit_test(headers_plugin_refuses_floe_h),
    };
    return cmocka_run_group_tests(tests, setup_env, teardown_env);
}
