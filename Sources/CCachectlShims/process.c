#define _GNU_SOURCE
#include "cachectl_process.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int cachectl_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int cachectl_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

struct cachectl_open_as_request {
    const char *path;
    int flags;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    int fd;
    int error;
};

static void *cachectl_open_as_thread(void *argument) {
    struct cachectl_open_as_request *request = argument;
    request->fd = -1;
    /* Raw syscalls: glibc's wrappers would apply the change to every thread. */
    if (syscall(SYS_setgroups, request->ngroups, request->groups) != 0) {
        request->error = errno;
        return NULL;
    }
    syscall(SYS_setfsgid, request->gid);
    syscall(SYS_setfsuid, request->uid);
    /* setfsuid/setfsgid report no error: read the values back (-1 changes nothing). */
    if ((uid_t)syscall(SYS_setfsuid, (uid_t)-1) != request->uid ||
        (gid_t)syscall(SYS_setfsgid, (gid_t)-1) != request->gid) {
        request->error = EPERM;
        return NULL;
    }
    do {
        request->fd = open(request->path, request->flags | O_CLOEXEC);
    } while (request->fd < 0 && errno == EINTR);
    request->error = request->fd < 0 ? errno : 0;
    return NULL;
}

int cachectl_open_as(const char *path, int flags, uid_t uid, gid_t gid,
                     const gid_t *groups, size_t ngroups) {
    struct cachectl_open_as_request request = { path, flags, uid, gid, groups, ngroups, -1, 0 };
    pthread_t thread;
    int code = pthread_create(&thread, NULL, cachectl_open_as_thread, &request);
    if (code != 0) {
        errno = code;
        return -1;
    }
    pthread_join(thread, NULL);  /* the thread's credentials end with it */
    if (request.fd < 0) errno = request.error;
    return request.fd;
}
