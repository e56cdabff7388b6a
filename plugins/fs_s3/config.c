/*
 * config.c - fs_s3's configuration, the way the AWS CLI and SDKs read it, and URIs.
 *
 * Credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) from the
 * environment; otherwise the profile AWS_PROFILE (default "default") of the shared
 * credentials file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials); otherwise
 * none (anonymous requests, for public buckets).  Region: AWS_REGION, AWS_DEFAULT_REGION,
 * the profile's "region" in the config file (AWS_CONFIG_FILE, default ~/.aws/config,
 * section "[profile NAME]" or "[default]"), else us-east-1.  Endpoint: AWS_ENDPOINT_URL_S3,
 * AWS_ENDPOINT_URL, else https://s3.<region>.amazonaws.com.  FLOE_S3_* variables tune the
 * plugin (README.md lists them); a malformed value fails init naming the variable.
 *
 * Sections: small helpers, the shared files, numeric knobs, loading, URIs.
 */
#include "fs_s3-impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Small helpers ------------------------------------------------------------------- */

static char *dup_or_null(const char *s) {
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* ---- The shared files ------------------------------------------------------------------ */

/* Looks up @key in section @section of the INI file @path into *@out (malloc'd).  A
 * missing file is not an error; an unreadable one is. */
static floe_status ini_get(const char *path, const char *section, const char *key, char **out) {
    char line[4096];
    int in_section = 0;

    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return FLOE_OK;
        return floe_fail(FLOE_PERMISSION_DENIED, "s3: cannot read '%s': %s", path,
                         strerror(errno));
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = trim(line);
        if (s[0] == '#' || s[0] == ';' || s[0] == '\0')
            continue;
        if (s[0] == '[') {
            char *end = strchr(s, ']');
            if (end != NULL)
                *end = '\0';
            in_section = strcmp(trim(s + 1), section) == 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in_section || eq == NULL)
            continue;
        *eq = '\0';
        if (strcmp(trim(s), key) == 0) {
            free(*out);
            *out = strdup(trim(eq + 1));
            if (*out == NULL)
                break;
        }
    }
    fclose(f);
    return FLOE_OK;
}

/* ~/.aws/<name> unless @var names another file.  malloc'd or NULL. */
static char *shared_file(const char *var, const char *name) {
    const char *p = env(var), *home = env("HOME");
    char buf[4096];
    if (p != NULL)
        return strdup(p);
    if (home == NULL)
        return NULL;
    snprintf(buf, sizeof(buf), "%s/.aws/%s", home, name);
    return strdup(buf);
}

static floe_status load_credentials(s3_config *cfg, const char *profile) {
    floe_status st = FLOE_OK;

    if (env("AWS_ACCESS_KEY_ID") != NULL || env("AWS_SECRET_ACCESS_KEY") != NULL) {
        if (env("AWS_ACCESS_KEY_ID") == NULL || env("AWS_SECRET_ACCESS_KEY") == NULL)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "s3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set "
                             "together (only %s is)",
                             env("AWS_ACCESS_KEY_ID") ? "AWS_ACCESS_KEY_ID"
                                                      : "AWS_SECRET_ACCESS_KEY");
        cfg->access_key = dup_or_null(env("AWS_ACCESS_KEY_ID"));
        cfg->secret_key = dup_or_null(env("AWS_SECRET_ACCESS_KEY"));
        cfg->session_token = dup_or_null(env("AWS_SESSION_TOKEN"));
        return FLOE_OK;
    }
    char *path = shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    if (path == NULL)
        return FLOE_OK;
    if ((st = ini_get(path, profile, "aws_access_key_id", &cfg->access_key)) == FLOE_OK &&
        (st = ini_get(path, profile, "aws_secret_access_key", &cfg->secret_key)) == FLOE_OK)
        st = ini_get(path, profile, "aws_session_token", &cfg->session_token);
    if (st == FLOE_OK && (cfg->access_key == NULL) != (cfg->secret_key == NULL))
        st = floe_fail(FLOE_INVALID_ARGUMENT,
                       "s3: profile '%s' of '%s' has only one of aws_access_key_id and "
                       "aws_secret_access_key",
                       profile, path);
    free(path);
    return st;
}

static floe_status load_region(s3_config *cfg, const char *profile) {
    const char *r = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
    char section[256];

    if (r != NULL) {
        cfg->region = strdup(r);
        return FLOE_OK;
    }
    char *path = shared_file("AWS_CONFIG_FILE", "config");
    if (path != NULL) {
        if (strcmp(profile, "default") == 0)
            snprintf(section, sizeof(section), "default");
        else
            snprintf(section, sizeof(section), "profile %s", profile);
        floe_status st = ini_get(path, section, "region", &cfg->region);
        free(path);
        if (st != FLOE_OK)
            return st;
    }
    if (cfg->region == NULL)
        cfg->region = strdup("us-east-1");
    return FLOE_OK;
}

/* ---- Numeric knobs ---------------------------------------------------------------------- */

/* @name as an integer in [lo, hi] with an optional K, M or G (binary) suffix when
 * @sizes; *@v keeps its default when unset. */
static floe_status knob(const char *name, int64_t lo, int64_t hi, int sizes, int64_t *v) {
    const char *s = env(name);
    char *end;

    if (s == NULL)
        return FLOE_OK;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    int shift = 0;
    if (sizes && (*end == 'K' || *end == 'k'))
        shift = 10;
    else if (sizes && (*end == 'M' || *end == 'm'))
        shift = 20;
    else if (sizes && (*end == 'G' || *end == 'g'))
        shift = 30;
    if (shift > 0) {
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B')
            end++;
    }
    if (end == s || *end != '\0' || errno != 0 || x < 0 || x > (INT64_MAX >> shift) ||
        (x << shift) < lo || (x << shift) > hi)
        return floe_fail(FLOE_INVALID_ARGUMENT, "s3: %s='%s' is not %s in [%lld, %lld]", name, s,
                         sizes ? "a size (bytes, or with a K/M/G suffix)" : "an integer",
                         (long long)lo, (long long)hi);
    *v = (int64_t)x << shift;
    return FLOE_OK;
}

static floe_status load_knobs(s3_config *cfg) {
    int64_t part = 8 << 20, ra = 8 << 20, ra_max = 64 << 20, deadline = 300000, connect = 10000, stall = 30,
            attempts = 10, base = 50, cap = 5000, keys = 1000, threads = 4, verbose = 0, force = -1;
    floe_status st;

    if ((st = knob("FLOE_S3_PART_SIZE", (int64_t)S3_MIN_PART_SIZE, (int64_t)S3_MAX_PART_SIZE,
                   1, &part)) != FLOE_OK ||
        (st = knob("FLOE_S3_READAHEAD", 0, (int64_t)1 << 30, 1, &ra)) != FLOE_OK ||
        (st = knob("FLOE_S3_READAHEAD_MAX", 0, (int64_t)1 << 30, 1, &ra_max)) != FLOE_OK ||
        (st = knob("FLOE_S3_DEADLINE_MS", 1, (int64_t)1 << 40, 0, &deadline)) != FLOE_OK ||
        (st = knob("FLOE_S3_CONNECT_TIMEOUT_MS", 1, (int64_t)1 << 31, 0, &connect)) != FLOE_OK ||
        (st = knob("FLOE_S3_STALL_SECONDS", 1, 86400, 0, &stall)) != FLOE_OK ||
        (st = knob("FLOE_S3_MAX_ATTEMPTS", 1, 100, 0, &attempts)) != FLOE_OK ||
        (st = knob("FLOE_S3_RETRY_BASE_MS", 1, 60000, 0, &base)) != FLOE_OK ||
        (st = knob("FLOE_S3_RETRY_CAP_MS", 1, 600000, 0, &cap)) != FLOE_OK ||
        (st = knob("FLOE_S3_MAX_KEYS", 1, 1000, 0, &keys)) != FLOE_OK ||
        (st = knob("FLOE_S3_UPLOAD_THREADS", 1, 16, 0, &threads)) != FLOE_OK ||
        (st = knob("FLOE_S3_VERBOSE", 0, 1, 0, &verbose)) != FLOE_OK ||
        (st = knob("FLOE_S3_FORCE_PATH_STYLE", 0, 1, 0, &force)) != FLOE_OK)
        return st;
    cfg->part_size = (size_t)part;
    cfg->readahead = (size_t)ra;
    cfg->readahead_max = (size_t)(ra_max > ra ? ra_max : ra);
    cfg->deadline_ms = deadline;
    cfg->connect_timeout_ms = connect;
    cfg->stall_seconds = (long)stall;
    cfg->max_attempts = (int)attempts;
    cfg->retry_base_ms = base;
    cfg->retry_cap_ms = cap < base ? base : cap;
    cfg->max_keys = (int)keys;
    cfg->upload_threads = (int)threads;
    cfg->verbose = (int)verbose;
    /* An endpoint URL (MinIO, moto, Ceph, ...) rarely has wildcard DNS for buckets. */
    cfg->path_style = force >= 0 ? (int)force : cfg->endpoint != NULL;
    return FLOE_OK;
}

/* ---- Loading ------------------------------------------------------------------------------ */

static floe_status load_endpoint(s3_config *cfg) {
    const char *e = env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3")
                                              : env("AWS_ENDPOINT_URL");
    const char *name = env("AWS_ENDPOINT_URL_S3") ? "AWS_ENDPOINT_URL_S3" : "AWS_ENDPOINT_URL";

    if (e == NULL)
        return FLOE_OK;
    const char *host = strncmp(e, "http://", 7) == 0    ? e + 7
                       : strncmp(e, "https://", 8) == 0 ? e + 8
                                                        : NULL;
    if (host == NULL || host[0] == '\0' || host[0] == '/')
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "s3: %s='%s' is not an http:// or https:// URL with a host", name, e);
    const char *slash = strchr(host, '/');
    if (slash != NULL && slash[strspn(slash, "/")] != '\0')
        return floe_fail(FLOE_INVALID_ARGUMENT, "s3: %s='%s' has a path; give scheme://host[:port]",
                         name, e);
    for (const char *c = host; *c != '\0' && *c != '/'; c++)
        if (!isalnum((unsigned char)*c) && strchr(".-:[]_", *c) == NULL)
            return floe_fail(FLOE_INVALID_ARGUMENT, "s3: %s='%s': bad character '%c' in the host",
                             name, e, *c);
    cfg->endpoint = strdup(e);
    if (cfg->endpoint != NULL) {
        size_t n = strlen(cfg->endpoint);
        while (n > 0 && cfg->endpoint[n - 1] == '/')
            cfg->endpoint[--n] = '\0';
    }
    return FLOE_OK;
}

floe_status s3_config_load(s3_config *cfg) {
    const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
    char buf[512];
    floe_status st;

    memset(cfg, 0, sizeof(*cfg));
    if ((st = load_credentials(cfg, profile)) != FLOE_OK || (st = load_region(cfg, profile)) != FLOE_OK ||
        (st = load_endpoint(cfg)) != FLOE_OK || (st = load_knobs(cfg)) != FLOE_OK)
        goto fail;
    if (cfg->region == NULL)
        goto fail_oom;
    for (const char *c = cfg->region; *c != '\0'; c++)
        if (!isalnum((unsigned char)*c) && *c != '-') {
            st = floe_fail(FLOE_INVALID_ARGUMENT, "s3: region '%s' has a bad character '%c'",
                           cfg->region, *c);
            goto fail;
        }
    snprintf(buf, sizeof(buf), "aws:amz:%s:s3", cfg->region);
    if ((cfg->sigv4 = strdup(buf)) == NULL)
        goto fail_oom;
    return FLOE_OK;

fail_oom:
    st = floe_fail(FLOE_RESOURCE_EXHAUSTED, "s3: out of memory reading the configuration");
fail:
    s3_config_free(cfg);
    return st;
}

void s3_config_free(s3_config *cfg) {
    free(cfg->access_key);
    free(cfg->secret_key);
    free(cfg->session_token);
    free(cfg->region);
    free(cfg->endpoint);
    free(cfg->sigv4);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- URIs ------------------------------------------------------------------------------------ */

floe_status s3_split_uri(const char *uri, char **bucket, char **key) {
    *bucket = NULL;
    *key = NULL;
    if (uri == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "s3: URI is NULL");
    if (strncasecmp(uri, "s3://", 5) != 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "'%s' is not an s3:// URI", uri);
    const char *b = uri + 5, *slash = strchr(b, '/');
    size_t blen = slash != NULL ? (size_t)(slash - b) : strlen(b);
    if (blen < 3 || blen > 63)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "'%s': the bucket name must have 3 to 63 characters (it has %zu)", uri,
                         blen);
    for (size_t i = 0; i < blen; i++)
        if (!isalnum((unsigned char)b[i]) && b[i] != '.' && b[i] != '-' && b[i] != '_')
            return floe_fail(FLOE_INVALID_ARGUMENT, "'%s': bad character '%c' in the bucket name",
                             uri, b[i]);
    const char *k = slash != NULL ? slash + 1 : "";
    if (strlen(k) > S3_MAX_KEY)
        return floe_fail(FLOE_INVALID_ARGUMENT, "'%s': the key is longer than %d bytes", uri,
                         S3_MAX_KEY);
    for (const char *c = k; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return floe_fail(FLOE_INVALID_ARGUMENT, "'%s': control character 0x%02x in the key",
                             uri, (unsigned)(unsigned char)*c);
    *bucket = strndup(b, blen);
    *key = strdup(k);
    if (*bucket == NULL || *key == NULL) {
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "'%s': out of memory", uri);
    }
    return FLOE_OK;
}
