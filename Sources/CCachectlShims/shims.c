#define _GNU_SOURCE
#include "cachectl_shims.h"

#include <errno.h>
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

pid_t cachectl_gettid(void) {
    return (pid_t)syscall(SYS_gettid);
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
