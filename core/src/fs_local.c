/*
 * fs_local.c - the built-in filesystem for plain paths and "file://" URIs.
 *
 * It implements floe_fs_ops (floe__local_fs_ops) on POSIX calls, so the core reaches
 * local files exactly as it reaches plugin filesystems.  Writing is crash-consistent:
 * a new file is written to a temporary file in the same directory ("NAME.tmp.PID.N"),
 * fsync'd, renamed over NAME on commit and the directory fsync'd; abort unlinks the
 * temporary.  Append mode writes to the file itself and abort truncates it back to
 * its size at open.  errno values map onto floe_status (map_errno), and every message
 * names the path and strerror().
 *
 * Sections: errors and paths, reading, writing, directory operations, the ops table.
 */
#include "core-impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Errors and paths ---------------------------------------------------------------- */

static floe_status map_errno(int err) {
    switch (err) {
    case ENOENT: case ENOTDIR:
        return FLOE_NOT_FOUND;
    case EACCES: case EPERM: case EROFS:
        return FLOE_PERMISSION_DENIED;
    case EEXIST:
        return FLOE_ALREADY_EXISTS;
    case ENOSPC: case EDQUOT: case ENOMEM: case EMFILE: case ENFILE:
        return FLOE_RESOURCE_EXHAUSTED;
    case EFBIG: case EOVERFLOW: case ERANGE:
        return FLOE_OUT_OF_RANGE;
    case EINVAL: case ENAMETOOLONG: case ELOOP: case EBADF:
        return FLOE_INVALID_ARGUMENT;
    case EISDIR: case ENOTEMPTY: case EXDEV: case ETXTBSY:
        return FLOE_FAILED_PRECONDITION;
    case EAGAIN: case EINTR: case EBUSY: case ETIMEDOUT: case EIO:
        return FLOE_UNAVAILABLE;
    case ENOSYS: case ENOTSUP:
        return FLOE_UNIMPLEMENTED;
    default:
        return FLOE_UNKNOWN;
    }
}

static floe_status fail_errno(int err, const char *what, const char *path) {
    return floe__fail(map_errno(err), "%s '%s': %s", what, path, strerror(err));
}

/* "file:///a/b" -> "/a/b"; a plain path is returned as it is. */
static const char *uri_path(const char *uri) {
    if (strncmp(uri, "file://", 7) == 0)
        return uri + 7;
    return uri;
}

static floe_status check_uri(const char *uri, const char **path) {
    *path = NULL;
    if (uri == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "path is NULL");
    *path = uri_path(uri);
    if ((*path)[0] == '\0')
        return floe__fail(FLOE_INVALID_ARGUMENT, "empty path in '%s'", uri);
    return FLOE_OK;
}

/* ---- Reading --------------------------------------------------------------------------- */

typedef struct local_file {
    int fd;
    bool append;
    off_t append_start;      /* append: size at open, restored by abort */
    char *tmp;               /* truncating write: the temporary file; NULL for append */
    char path[];
} local_file;

static local_file *file_new(const char *path, size_t extra) {
    size_t len = strlen(path);
    local_file *f = floe__malloc(sizeof(*f) + len + 1 + extra);
    if (f == NULL)
        return NULL;
    f->fd = -1;
    f->append = false;
    f->append_start = 0;
    f->tmp = NULL;
    memcpy(f->path, path, len + 1);
    return f;
}

static floe_status local_open_read(void *fs, const char *uri, void **out) {
    const char *path;
    struct stat st;
    floe_status s;

    *out = NULL;
    if ((s = check_uri(uri, &path)) != FLOE_OK)
        return s;
    local_file *f = file_new(path, 0);
    if (f == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "open '%s': out of memory", path);
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        s = fail_errno(errno, "open", path);
        goto fail_free;
    }
    if (fstat(f->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        s = fail_errno(EISDIR, "open", path);
        goto fail_close;
    }
    *out = f;
    return FLOE_OK;

fail_close:
    close(f->fd);
fail_free:
    floe__free(f);
    return s;
}

static floe_status local_pread(void *file, uint64_t offset, void *buf, size_t n, size_t *nread) {
    local_file *f = file;
    size_t done = 0;

    *nread = 0;
    if (offset > (uint64_t)INT64_MAX)
        return floe__fail(FLOE_OUT_OF_RANGE, "read '%s': offset %llu out of range", f->path,
                          (unsigned long long)offset);
    while (done < n) {
        ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(offset + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *nread = done;
            return fail_errno(errno, "read", f->path);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *nread = done;
    return FLOE_OK;
}

static void local_close_read(void *file) {
    local_file *f = file;
    if (f == NULL)
        return;
    close(f->fd);
    floe__free(f);
}

/* ---- Writing ----------------------------------------------------------------------------- */

/* Room behind the path for ".tmp.PID.N". */
#define TMP_SUFFIX_MAX 48

static atomic_uint tmp_counter;

/* Creates the temporary file for a truncating write of @f->path. */
static floe_status open_temp(local_file *f) {
    /* The name buffer was allocated behind path by file_new. */
    f->tmp = f->path + strlen(f->path) + 1;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(f->tmp, strlen(f->path) + TMP_SUFFIX_MAX, "%s.tmp.%ld.%u", f->path, (long)getpid(),
                 atomic_fetch_add(&tmp_counter, 1));
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0)
            return FLOE_OK;
        if (errno != EEXIST)
            return fail_errno(errno, "create", f->tmp);
    }
    return floe__fail(FLOE_ALREADY_EXISTS, "create a temporary file for '%s': all names taken",
                      f->path);
}

static floe_status local_open_write(void *fs, const char *uri, int append, void **out) {
    const char *path;
    floe_status s;

    *out = NULL;
    if ((s = check_uri(uri, &path)) != FLOE_OK)
        return s;
    local_file *f = file_new(path, append ? 0 : strlen(path) + TMP_SUFFIX_MAX);
    if (f == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "open '%s': out of memory", path);
    f->append = append != 0;
    if (append) {
        f->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
        if (f->fd < 0) {
            s = fail_errno(errno, "open", path);
            goto fail_free;
        }
        f->append_start = lseek(f->fd, 0, SEEK_END);
        if (f->append_start < 0) {
            s = fail_errno(errno, "seek", path);
            close(f->fd);
            goto fail_free;
        }
    } else {
        s = open_temp(f);
        if (s != FLOE_OK)
            goto fail_free;
    }
    *out = f;
    return FLOE_OK;

fail_free:
    floe__free(f);
    return s;
}

static floe_status local_write(void *file, const void *buf, size_t n) {
    local_file *f = file;
    size_t done = 0;

    while (done < n) {
        ssize_t w = write(f->fd, (const char *)buf + done, n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fail_errno(errno, "write", f->path);
        }
        done += (size_t)w;
    }
    return FLOE_OK;
}

/* Makes a rename in @path's directory durable. */
static void sync_parent_dir(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof(dir))
            return;
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static floe_status commit_temp(local_file *f) {
    if (fsync(f->fd) != 0) {
        int err = errno;
        close(f->fd);
        unlink(f->tmp);
        return fail_errno(err, "sync", f->path);
    }
    if (close(f->fd) != 0) {
        int err = errno;
        unlink(f->tmp);
        return fail_errno(err, "close", f->path);
    }
    if (rename(f->tmp, f->path) != 0) {
        int err = errno;
        unlink(f->tmp);
        return fail_errno(err, "rename into", f->path);
    }
    sync_parent_dir(f->path);
    return FLOE_OK;
}

static floe_status finish_append(local_file *f, int commit) {
    floe_status s = FLOE_OK;
    if (!commit) {
        /* Discard what this handle appended. */
        if (ftruncate(f->fd, f->append_start) != 0)
            s = fail_errno(errno, "truncate", f->path);
    } else if (fsync(f->fd) != 0) {
        s = fail_errno(errno, "sync", f->path);
    }
    if (close(f->fd) != 0 && s == FLOE_OK && commit)
        s = fail_errno(errno, "close", f->path);
    return s;
}

static floe_status local_close_write(void *file, int commit) {
    local_file *f = file;
    floe_status s;

    if (f == NULL)
        return FLOE_OK;
    if (f->append) {
        s = finish_append(f, commit);
    } else if (commit) {
        s = commit_temp(f);
    } else {
        close(f->fd);
        unlink(f->tmp);
        s = FLOE_OK;
    }
    floe__free(f);
    return s;
}

/* ---- Directory operations ----------------------------------------------------------------- */

static void fill_info(const struct stat *st, floe_file_info *info) {
    memset(info, 0, sizeof(*info));
    info->struct_size = sizeof(*info);
    info->is_dir = S_ISDIR(st->st_mode) ? 1 : 0;
    info->size = info->is_dir ? 0 : (uint64_t)st->st_size;
    info->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static floe_status local_stat(void *fs, const char *uri, floe_file_info *info) {
    const char *path;
    struct stat st;
    floe_status s;

    memset(info, 0, sizeof(*info));
    info->struct_size = sizeof(*info);
    if ((s = check_uri(uri, &path)) != FLOE_OK)
        return s;
    if (stat(path, &st) != 0)
        return fail_errno(errno, "stat", path);
    fill_info(&st, info);
    return FLOE_OK;
}

static floe_status local_list(void *fs, const char *uri,
                              void (*fn)(void *arg, const char *name, const floe_file_info *info),
                              void *arg) {
    const char *path;
    floe_status s;
    struct dirent *e;

    if ((s = check_uri(uri, &path)) != FLOE_OK)
        return s;
    DIR *d = opendir(path);
    if (d == NULL)
        return fail_errno(errno, "list", path);
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (e == NULL)
            break;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        floe_file_info info;
        struct stat st;
        memset(&info, 0, sizeof(info));
        info.struct_size = sizeof(info);
        /* An entry removed meanwhile is reported with zero info rather than failing. */
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0)
            fill_info(&st, &info);
        fn(arg, e->d_name, &info);
    }
    int err = errno;
    closedir(d);
    if (err != 0)
        return fail_errno(err, "list", path);
    return FLOE_OK;
}

static floe_status local_remove(void *fs, const char *uri) {
    const char *path;
    floe_status s;

    if ((s = check_uri(uri, &path)) != FLOE_OK)
        return s;
    if (unlink(path) == 0)
        return FLOE_OK;
    if (errno == EISDIR || errno == EPERM) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (rmdir(path) == 0)
                return FLOE_OK;
            return fail_errno(errno, "remove directory", path);
        }
        errno = EPERM;
    }
    return fail_errno(errno, "remove", path);
}

/* mkdir of one component: FLOE_OK if it is (now) a directory. */
static floe_status mkdir_one(const char *path) {
    struct stat st;
    if (mkdir(path, 0777) == 0)
        return FLOE_OK;
    int err = errno;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return FLOE_OK;
        return floe__fail(FLOE_ALREADY_EXISTS, "mkdir '%s': exists and is not a directory", path);
    }
    return fail_errno(err, "mkdir", path);
}

static floe_status local_mkdir(void *fs, const char *uri) {
    const char *path;
    floe_status s;

    if ((s = check_uri(uri, &path)) != FLOE_OK)
        return s;
    char *p = floe__strdup(path);
    if (p == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "mkdir '%s': out of memory", path);
    /* Each prefix ending before a '/', then the whole path. */
    for (char *c = p + 1; *c != '\0'; c++) {
        if (*c != '/' || c[-1] == '/')
            continue;
        *c = '\0';
        s = mkdir_one(p);
        *c = '/';
        if (s != FLOE_OK)
            goto out;
    }
    s = mkdir_one(p);
out:
    floe__free(p);
    return s;
}

static floe_status local_rename(void *fs, const char *from, const char *to) {
    const char *pf, *pt;
    floe_status s;

    if ((s = check_uri(from, &pf)) != FLOE_OK || (s = check_uri(to, &pt)) != FLOE_OK)
        return s;
    if (rename(pf, pt) != 0) {
        int err = errno;
        return floe__fail(map_errno(err), "rename '%s' to '%s': %s", pf, pt, strerror(err));
    }
    sync_parent_dir(pt);
    return FLOE_OK;
}

/* ---- The ops table ----------------------------------------------------------------------- */

const floe_fs_ops floe__local_fs_ops = {
    .abi_major = FLOE_PLUGIN_ABI_MAJOR,
    .abi_minor = FLOE_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(floe_fs_ops),
    .scheme = "file",
    .caps = FLOE_FS_CAP_ATOMIC_RENAME | FLOE_FS_CAP_APPEND,
    .state = NULL,
    .open_read = local_open_read,
    .pread = local_pread,
    .close_read = local_close_read,
    .open_write = local_open_write,
    .write = local_write,
    .close_write = local_close_write,
    .stat = local_stat,
    .list = local_list,
    .remove = local_remove,
    .mkdir = local_mkdir,
    .rename = local_rename,
    .destroy = NULL,
};
