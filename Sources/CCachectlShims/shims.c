#define _GNU_SOURCE
#include "cachectl_shims.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef __NR_cachestat
/* Same number on x86_64 and arm64 (the unified syscall table). */
#define __NR_cachestat 451
#endif

struct cachectl_cachestat_range {
    uint64_t off;
    uint64_t len;
};

int cachectl_cachestat(int fd, uint64_t offset, uint64_t length,
                       struct cachectl_cachestat *out) {
    struct cachectl_cachestat_range range = { offset, length };
    return (int)syscall(__NR_cachestat, fd, &range, out, 0);
}

long cachectl_page_size(void) {
    return sysconf(_SC_PAGESIZE);
}

uint64_t cachectl_memlock_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
        return UINT64_MAX;
    }
    return (uint64_t)limit.rlim_cur;
}

#ifndef __NR_openat2
/* Same number on x86_64 and arm64 (the unified syscall table). */
#define __NR_openat2 437
#endif

/* struct open_how and the RESOLVE_ flags from include/uapi/linux/openat2.h. */
struct cachectl_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
#define CACHECTL_RESOLVE_NO_MAGICLINKS 0x02
#define CACHECTL_RESOLVE_NO_SYMLINKS 0x04
#define CACHECTL_RESOLVE_BENEATH 0x08

/* The fallback: one component at a time, each opened with O_NOFOLLOW. */
static int cachectl_walk_beneath(int dirfd, const char *path, int flags, unsigned int mode) {
    char buffer[4096];
    size_t length = strlen(path);
    if (length >= sizeof buffer) { errno = ENAMETOOLONG; return -1; }
    if (path[0] == '/') { errno = EXDEV; return -1; }
    memcpy(buffer, path, length + 1);
    int current = dirfd;
    char *component = buffer;
    for (;;) {
        while (*component == '/') component++;
        char *slash = strchr(component, '/');
        while (slash && slash[1] == '/') slash++;
        int last = slash == NULL || slash[1] == '\0';
        if (slash) *slash = '\0';
        if (*component == '\0') component = ".";
        if (strcmp(component, "..") == 0) {
            if (current != dirfd) close(current);
            errno = EXDEV;
            return -1;
        }
        int fd = last
            ? openat(current, component, flags | O_NOFOLLOW | O_CLOEXEC, mode)
            : openat(current, component, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        if (current != dirfd) close(current);
        if (fd < 0) {
            /* A symlink in the middle of the path: O_DIRECTORY|O_NOFOLLOW says ENOTDIR. */
            errno = saved;
            return -1;
        }
        if (last) return fd;
        current = fd;
        component = slash + 1;
    }
}

int cachectl_open_beneath(int dirfd, const char *path, int flags, unsigned int mode) {
    struct cachectl_open_how how = {
        .flags = (uint64_t)(unsigned int)(flags | O_CLOEXEC),
        .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
        .resolve = CACHECTL_RESOLVE_BENEATH | CACHECTL_RESOLVE_NO_SYMLINKS | CACHECTL_RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(__NR_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return (int)fd;
    /* ENOSYS: kernel before 5.6; EPERM: a seccomp filter that refuses openat2. */
    return cachectl_walk_beneath(dirfd, path, flags, mode);
}

int cachectl_o_path(void) {
    return O_PATH;
}

long cachectl_fd_getxattr(int fd, const char *name, void *value, unsigned long size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return (long)getxattr(path, name, value, size);
}

void cachectl_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

long cachectl_pipe(int fds[2], unsigned long size) {
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        return -1;
    }
    if (fcntl(fds[1], F_SETPIPE_SZ, (int)size) < 0 && size > (1UL << 20)) {
        (void)fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    }
    long got = fcntl(fds[1], F_GETPIPE_SZ);
    if (got < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
    }
    return got;
}

long cachectl_splice_through(int fd, int64_t *offset, unsigned long length, int pipe_read, int pipe_write,
                             int sink) {
    loff_t at = *offset;
    ssize_t in;
    do {
        in = splice(fd, &at, pipe_write, NULL, length, 0);
    } while (in < 0 && errno == EINTR);
    if (in <= 0) {
        return in;
    }
    ssize_t left = in;
    while (left > 0) {
        ssize_t out = splice(pipe_read, NULL, sink, NULL, (size_t)left, 0);
        if (out < 0 && errno == EINTR) {
            continue;
        }
        if (out <= 0) {
            int saved = out == 0 ? EIO : errno;
            char scrap[4096];
            while (read(pipe_read, scrap, sizeof scrap) > 0) {
            }
            errno = saved;
            return -1;
        }
        left -= out;
    }
    *offset = at;
    return in;
}

int cachectl_dlbind(const char *library, const char *const names[], void **const slots[], int count, char *error,
                    size_t size) {
    void *lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        snprintf(error, size, "%s", dlerror());
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if ((*slots[i] = dlsym(lib, names[i])) == NULL) {
            snprintf(error, size, "%s has no %s", library, names[i]);
            return -1;
        }
    }
    return 0;
}
