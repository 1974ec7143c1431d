#ifndef CACHECTL_SHIMS_H
#define CACHECTL_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What Swift cannot call directly: variadic syscall(2) and function-like
   macros. Every symbol carries the cachectl_ prefix. */

/* struct cachestat from include/uapi/linux/mman.h (Linux 6.5+), declared here
   because Debian bookworm's kernel headers (6.1) do not have it. */
struct cachectl_cachestat {
    uint64_t nr_cache;
    uint64_t nr_dirty;
    uint64_t nr_writeback;
    uint64_t nr_evicted;
    uint64_t nr_recently_evicted;
};

/* cachestat(2): page-cache state of [offset, offset+length) of fd; length 0
   means to the end of the file. Returns 0, or -1 with errno set (ENOSYS on
   kernels before 6.5). */
int cachectl_cachestat(int fd, uint64_t offset, uint64_t length,
                       struct cachectl_cachestat *out);

/* Names the calling thread (prctl PR_SET_NAME: the kernel keeps 15 bytes), for
   ps -L and top -H. */
void cachectl_set_thread_name(const char *name);

/* The kernel's page size, for mincore vectors and alignment. */
long cachectl_page_size(void);

/* The soft RLIMIT_MEMLOCK in bytes; UINT64_MAX when unlimited. */
uint64_t cachectl_memlock_limit(void);

/* Opens `path` relative to the directory `dirfd` without leaving it and without
   following any symlink on the way (openat2(2) with RESOLVE_BENEATH |
   RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS). With O_PATH | O_NOFOLLOW in
   `flags` a trailing symlink is opened itself (an O_PATH descriptor of the link);
   otherwise a trailing symlink fails with ELOOP. Absolute paths and ".." fail
   (EXDEV or ELOOP). Kernels without openat2 (before 5.6) get the same rules from
   a walk that opens each component with O_NOFOLLOW. O_CLOEXEC is always added.
   Returns the descriptor, or -1 with errno set. */
int cachectl_open_beneath(int dirfd, const char *path, int flags, unsigned int mode);

/* O_PATH, which Swift's Glibc does not export (a _GNU_SOURCE macro). */
int cachectl_o_path(void);

/* getxattr(2) of the file open at `fd`, an O_PATH descriptor included (through
   /proc/self/fd). Returns the size, or -1 with errno set. */
long cachectl_fd_getxattr(int fd, const char *name, void *value, unsigned long size);

/* A pipe for moving pages by reference (O_CLOEXEC, O_NONBLOCK: a reader never
   waits on it), grown to `size` bytes by F_SETPIPE_SZ; where the caller may not ask
   for a `size` over 1 MiB (pipe-max-size), to 1 MiB; where neither is allowed, the
   size it was made with. fds[0] is the read end. Returns the pipe's size in bytes,
   or -1 with errno set. */
long cachectl_pipe(int fds[2], unsigned long size);

/* splice(2) of up to `length` bytes of `fd` from `*offset` into the empty pipe
   whose ends are `pipe_read` and `pipe_write`, then from the pipe on to `sink`,
   until the pipe is empty again. `*offset` advances by what moved. Returns the
   bytes moved (0 at the end of the file), or -1 with errno set (the pipe is left
   empty). */
long cachectl_splice_through(int fd, int64_t *offset, unsigned long length, int pipe_read, int pipe_write,
                             int sink);

/* Loads `library` (dlopen, RTLD_NOW) and stores each of its `count` symbols `names[i]`
   at `*slots[i]`: for libraries loaded when first called rather than linked. Returns 0,
   or -1 with why in `error` (dlerror's text, or the name it lacks). */
int cachectl_dlbind(const char *library, const char *const names[], void **const slots[], int count, char *error,
                    size_t size);

/* SHA-256 through OpenSSL 3's libcrypto (EVP), which is loaded (dlopen) the first
   time a digest is asked for rather than linked: loading it costs every start-up
   about 2 ms, and only model promotion hashes. */
typedef struct cachectl_sha256 cachectl_sha256;

/* NULL when libcrypto.so.3 is loaded; else why it cannot be (dlerror's text). */
const char *cachectl_sha256_unavailable(void);

/* A new digest; NULL when libcrypto is unavailable or out of memory. */
cachectl_sha256 *cachectl_sha256_new(void);

/* 0, or -1 when libcrypto reports a failure. */
int cachectl_sha256_update(cachectl_sha256 *context, const void *bytes, size_t count);

/* Writes the 32-byte digest: 0, or -1 when libcrypto reports a failure. */
int cachectl_sha256_final(cachectl_sha256 *context, unsigned char digest[32]);

void cachectl_sha256_free(cachectl_sha256 *context);

#endif
