#ifndef CACHECTL_PROCESS_H
#define CACHECTL_PROCESS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/xattr.h> /* fgetxattr/fsetxattr, which Glibc's module does not export */

/* pipe2(2) with O_CLOEXEC: both ends closed in any program spawned meanwhile. */
int cachectl_pipe_cloexec(int fds[2]);

/* memfd_create(2) with MFD_CLOEXEC: an anonymous file for a child's stdin. */
int cachectl_memfd(const char *name);

/* Opens path with the filesystem rights of uid/gid/groups instead of root's:
   on a thread of its own, which sets its own (per-thread) supplementary groups,
   fsgid and fsuid with raw syscalls, so the kernel checks every directory search
   and the file's mode bits and ACL as that user. Other threads keep their
   credentials. Returns the descriptor (O_CLOEXEC added; usable by any thread),
   or -1 with errno set (EACCES when that user may not open it). */
int cachectl_open_as(const char *path, int flags, uid_t uid, gid_t gid,
                     const gid_t *groups, size_t ngroups);

#endif
