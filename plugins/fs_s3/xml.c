/*
 * xml.c - S3's XML answers: error bodies, ListObjectsV2 pages, and the small helpers the
 * other answers use (UploadId, ...).  No network and no host calls here, so the fuzz
 * target tests/fuzz/fuzz_s3_xml.c runs this file alone.
 *
 * libxml2 parses (xmlReadMemory without network access, DTD loading or entity
 * substitution, and a document with a DTD is refused outright): a maintained parser
 * rather than string matching, since listings carry arbitrary user keys, which a
 * hand-written scanner gets wrong on entities and CDATA.  What the answer says is then
 * checked: keys no longer than S3's 1024 bytes, continuation tokens present, bounded and
 * different from the previous one (a server that never ends a listing is an error).
 *
 * Sections: parsing and helpers, errors, listings, time.
 */
#include "fs_s3-impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>

/* ---- Parsing and helpers ------------------------------------------------------------------------------------- */

xmlDoc *s3_xml_parse(const char *text, size_t len) {
    if (text == NULL || len == 0 || len > (size_t)INT32_MAX)
        return NULL;
    xmlDoc *doc = xmlReadMemory(text, (int)len, "s3.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    /* S3 answers never carry a DTD; one here could only declare entities to expand. */
    if (doc != NULL && (doc->intSubset != NULL || doc->extSubset != NULL)) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

xmlNode *s3_xml_child(xmlNode *parent, const char *name) {
    for (xmlNode *n = parent != NULL ? parent->children : NULL; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
            return n;
    return NULL;
}

int s3_xml_text(xmlNode *parent, const char *name, char *buf, size_t len) {
    xmlNode *n = s3_xml_child(parent, name);
    buf[0] = '\0';
    if (n == NULL)
        return 0;
    xmlChar *t = xmlNodeGetContent(n);
    snprintf(buf, len, "%s", t != NULL ? (const char *)t : "");
    xmlFree(t);
    return 1;
}

/* ---- Errors ---------------------------------------------------------------------------------- */

int s3_parse_error(const char *text, size_t len, char *code, size_t clen, char *msg, size_t mlen,
                   char *rid, size_t rlen) {
    code[0] = msg[0] = '\0';
    xmlDoc *doc = s3_xml_parse(text, len);
    xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
    int is_error = root != NULL && strcmp((const char *)root->name, "Error") == 0;
    if (is_error) {
        s3_xml_text(root, "Code", code, clen);
        s3_xml_text(root, "Message", msg, mlen);
        char id[128];
        if (s3_xml_text(root, "RequestId", id, sizeof(id)) && rid[0] == '\0')
            snprintf(rid, rlen, "%s", id);
    }
    xmlFreeDoc(doc);
    return is_error;
}

/* ---- Listings ---------------------------------------------------------------------------------- */

floe_status s3_parse_list_page(const char *text, size_t len, const char *prefix, s3_list_fn fn,
                               void *arg, int64_t *count, int *marker, int *more, char *token,
                               size_t token_len, char *msg, size_t mlen) {
    char name[S3_MAX_KEY + 2], num[64], prev[2048];
    size_t plen = strlen(prefix);
    floe_status st = FLOE_OK;

    *more = 0;
    xmlDoc *doc = s3_xml_parse(text, len);
    xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
    if (root == NULL || strcmp((const char *)root->name, "ListBucketResult") != 0) {
        snprintf(msg, mlen, "the answer is not a ListBucketResult");
        xmlFreeDoc(doc);
        return FLOE_DATA_LOSS;
    }
    for (xmlNode *n = root->children; n != NULL && st == FLOE_OK; n = n->next) {
        int is_key = n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "Contents") == 0;
        int is_dir = n->type == XML_ELEMENT_NODE &&
                     strcmp((const char *)n->name, "CommonPrefixes") == 0;
        if (!is_key && !is_dir)
            continue;
        if (!s3_xml_text(n, is_key ? "Key" : "Prefix", name, sizeof(name)) ||
            strncmp(name, prefix, plen) != 0)
            continue;   /* not under the prefix asked for: ignored */
        if (strlen(name) >= sizeof(name) - 1) {
            snprintf(msg, mlen, "a key longer than %d bytes", S3_MAX_KEY);
            st = FLOE_DATA_LOSS;
            break;
        }
        char *rel = name + plen;
        size_t rlen = strlen(rel);
        if (is_dir && rlen > 0 && rel[rlen - 1] == '/')
            rel[--rlen] = '\0';
        if (memchr(rel, '/', rlen) != NULL)
            continue;   /* not a direct child (a server ignoring the delimiter) */
        (*count)++;
        if (rlen == 0 && marker != NULL)
            *marker = 1;
        if (rlen == 0 || fn == NULL)
            continue;
        floe_file_info info;
        memset(&info, 0, sizeof(info));
        info.struct_size = sizeof(info);
        info.is_dir = is_dir;
        if (is_key) {
            s3_xml_text(n, "Size", num, sizeof(num));
            info.size = strtoull(num, NULL, 10);
            s3_xml_text(n, "LastModified", num, sizeof(num));
            info.mtime_ns = s3_parse_time(num);
        }
        fn(arg, rel, &info);
    }
    s3_xml_text(root, "IsTruncated", num, sizeof(num));
    *more = st == FLOE_OK && strcmp(num, "true") == 0;
    /* A server that never ends (no token, the same token again, one too long to send
     * back) would loop forever: each is an error instead. */
    snprintf(prev, sizeof(prev), "%s", token);
    if (*more && (!s3_xml_text(root, "NextContinuationToken", token, token_len) ||
                  token[0] == '\0' || strlen(token) >= token_len - 1 || strcmp(token, prev) == 0)) {
        snprintf(msg, mlen, "truncated without a usable NextContinuationToken");
        st = FLOE_DATA_LOSS;
    }
    xmlFreeDoc(doc);
    return st;
}

/* ---- Time ------------------------------------------------------------------------------------ */

int64_t s3_parse_time(const char *s) {
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%a, %d %b %Y %H:%M:%S", &tm);
    }
    if (end == NULL)
        return 0;
    time_t t = timegm(&tm);
    int64_t ns = 0;
    if (*end == '.') {
        int64_t scale = 100000000;
        for (end++; isdigit((unsigned char)*end) && scale > 0; end++, scale /= 10)
            ns += (*end - '0') * scale;
    }
    /* Outside [1970, 2262] the nanoseconds do not fit: unknown (found by fuzz_s3_xml). */
    if (t < 0 || (int64_t)t > INT64_MAX / 1000000000 - 1)
        return 0;
    return (int64_t)t * 1000000000 + ns;
}
