/*
 * fuzz_s3_xml.c - libFuzzer target of the fs_s3 plugin's XML answers
 * (plugins/fs_s3/xml.c): what an S3 server, or anything posing as one, sends back.
 *
 * The input is one answer body.  It goes through the error parser (S3 <Error>), the
 * listing-page parser under two prefixes (the bucket root and "a/", with and without a
 * previous continuation token), and the time parser on its first line.  Oracles: every
 * name handed to the callback is NUL-terminated, non-empty, has no '/', and fits S3's
 * 1024-byte key limit; a page that says it is truncated has a next token that is
 * non-empty, fits its buffer and differs from the one sent; the error fields fit their
 * buffers.
 */
#include "fuzz_util.h"

#include "fs_s3-impl.h"

typedef struct seen {
    int64_t names;
} seen;

static void on_entry(void *arg, const char *name, const floe_file_info *info) {
    seen *s = arg;
    size_t n = strlen(name);
    FUZZ_CHECK(n > 0 && n <= S3_MAX_KEY);
    FUZZ_CHECK(strchr(name, '/') == NULL);
    FUZZ_CHECK(info != NULL && (info->is_dir == 0 || info->is_dir == 1));
    s->names++;
}

static void page(const char *text, size_t len, const char *prefix, const char *sent) {
    char token[64], msg[256];
    int64_t count = 0;
    int marker = 0, more = 0;
    seen s = {0};

    snprintf(token, sizeof(token), "%s", sent);
    floe_status st = s3_parse_list_page(text, len, prefix, on_entry, &s, &count, &marker, &more,
                                        token, sizeof(token), msg, sizeof(msg));
    FUZZ_CHECK(st == FLOE_OK || st == FLOE_DATA_LOSS);
    FUZZ_CHECK(s.names <= count);
    if (st == FLOE_OK && more) {
        FUZZ_CHECK(token[0] != '\0' && strlen(token) < sizeof(token) - 1);
        FUZZ_CHECK(strcmp(token, sent) != 0);
    }
    if (st != FLOE_OK)
        FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) != NULL && msg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char code[32], msg[64], rid[16] = "", line[64];

    /* The parsers take (pointer, length): a copy without a terminator catches reads
     * past the end. */
    char *text = malloc(size ? size : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    int is_error = s3_parse_error(text, size, code, sizeof(code), msg, sizeof(msg), rid,
                                  sizeof(rid));
    FUZZ_CHECK(strlen(code) < sizeof(code) && strlen(msg) < sizeof(msg) &&
               strlen(rid) < sizeof(rid));
    if (!is_error)
        FUZZ_CHECK(code[0] == '\0' && msg[0] == '\0');
    page(text, size, "", "");
    page(text, size, "a/", "");
    page(text, size, "a/", "same");
    size_t n = 0;
    while (n < size && n + 1 < sizeof(line) && data[n] != '\n' && data[n] != '\0') {
        line[n] = (char)data[n];
        n++;
    }
    line[n] = '\0';
    FUZZ_CHECK(s3_parse_time(line) >= 0);
    free(text);
    return 0;
}
