/*
 * cpuinfo.c - what the CPU device says of itself: the model name from /proc/cpuinfo
 * (the "model name" line on x86, "Processor"/"CPU part" elsewhere), the number of
 * online processors, the vector ISA the compiler's runtime detects, and the size of
 * physical memory.  Used for the device description only: kernels that pick code paths
 * by ISA ask the compiler builtins themselves.
 */
#include "dev_cpu-impl.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Copies the value of a "key\t: value" line into @out, trimmed. */
static void cpuinfo_value(const char *line, char *out, size_t len) {
    const char *v = strchr(line, ':');
    size_t n;

    if (v == NULL || len == 0)
        return;
    v++;
    while (*v == ' ' || *v == '\t')
        v++;
    n = strcspn(v, "\r\n");
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static void cpuinfo_model(char *out, size_t len) {
    static const char *const keys[] = {"model name", "Model", "Processor", "cpu model"};
    char line[512];
    FILE *f;

    snprintf(out, len, "unknown CPU");
    f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            size_t kl = strlen(keys[i]);
            if (strncmp(line, keys[i], kl) == 0 && (line[kl] == ' ' || line[kl] == '\t' ||
                                                    line[kl] == ':')) {
                cpuinfo_value(line, out, len);
                if (out[0] == '\0')
                    snprintf(out, len, "unknown CPU");
                fclose(f);
                return;
            }
        }
    }
    fclose(f);
}

void dev_cpu__cpuinfo_read(dev_cpu__info *info) {
    long n, pages, page_size;

    memset(info, 0, sizeof(*info));
    cpuinfo_model(info->model, sizeof(info->model));
    n = sysconf(_SC_NPROCESSORS_ONLN);
    info->cores = n > 0 ? (int)n : 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    info->has_avx2 = __builtin_cpu_supports("avx2") != 0;
    info->has_fma = __builtin_cpu_supports("fma") != 0;
    info->has_avx512f = __builtin_cpu_supports("avx512f") != 0;
#endif
    pages = sysconf(_SC_PHYS_PAGES);
    page_size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page_size > 0)
        info->memory_bytes = (uint64_t)pages * (uint64_t)page_size;
}

void dev_cpu__cpuinfo_describe(const dev_cpu__info *info, char *buf, size_t len) {
    const char *isa = info->has_avx512f ? "AVX-512"
                      : info->has_avx2  ? (info->has_fma ? "AVX2+FMA" : "AVX2")
                                        : "baseline ISA";
    snprintf(buf, len, "%s (%d core%s, %s, GEMM: %s)", info->model, info->cores,
             info->cores == 1 ? "" : "s", isa, dev_cpu__gemm_library());
}
