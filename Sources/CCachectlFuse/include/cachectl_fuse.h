#ifndef CACHECTL_FUSE_H
#define CACHECTL_FUSE_H

#include <stddef.h>

/* What Swift cannot call in libfuse 3: fuse_new() and fuse_loop_mt() are
   versioned macros, and stopping a multithreaded loop from another thread
   needs a signal to interrupt the loop thread's sem_wait(). Every symbol
   carries the cachectl_fuse_ prefix. The operations table itself is built in
   Swift (CachectlFUSE/FuseOperations.swift) and passed as an opaque pointer. */

struct cachectl_fuse;

/* Creates a libfuse session with `argv` (options such as "-o", "ro,..."), the
   operations table `ops` (a struct fuse_operations of size `ops_size`) and
   `user_data` (returned by fuse_get_context()->private_data), and mounts it on
   `mountpoint`. Returns NULL on failure; libfuse has printed why on stderr. */
struct cachectl_fuse *cachectl_fuse_mount(int argc, char **argv, const void *ops,
                                          size_t ops_size, void *user_data,
                                          const char *mountpoint);

/* Runs the multithreaded request loop on the calling thread until
   cachectl_fuse_request_exit() or until the filesystem is unmounted from
   outside. `max_threads` bounds libfuse's worker threads. Returns 0 or -1. */
int cachectl_fuse_loop(struct cachectl_fuse *handle, unsigned int max_threads);

/* Asks the loop to end: marks the session exited and interrupts the thread
   blocked in cachectl_fuse_loop(). Safe from any thread, more than once; never
   blocks. Returns 1 while the loop is still running (the signal can land just
   before the loop waits, so callers repeat until it returns 0), else 0. */
int cachectl_fuse_request_exit(struct cachectl_fuse *handle);

/* Unmounts (lazily, as libfuse does: open files see ENOTCONN once the
   connection closes) and frees the session. Call after the loop returned. */
void cachectl_fuse_unmount_and_destroy(struct cachectl_fuse *handle);

/* In an operation's callback: the `user_data` given to cachectl_fuse_mount()
   (fuse_get_context()->private_data). */
void *cachectl_fuse_private_data(void);

/* The /dev/fuse descriptor of the session. */
int cachectl_fuse_fd(struct cachectl_fuse *handle);

/* FUSE passthrough (Linux 6.9+) with libfuse 3.14, which has no API for it:
   see cachectl_fuse.c. Call cachectl_fuse_hook_replies() once after mounting,
   before the loop runs (0 or a negative errno). In the init callback,
   cachectl_fuse_want_passthrough() asks for passthrough in the INIT reply;
   cachectl_fuse_passthrough_offered() tells whether that reply carried it (the
   kernel may still have ignored it: only a backing open proves it on). In an
   open callback about to return success, cachectl_fuse_open_passthrough() makes
   this thread's next open reply (with file handle `fh`) a passthrough open of
   `backing_id`. */
int cachectl_fuse_hook_replies(struct cachectl_fuse *handle);
void cachectl_fuse_want_passthrough(struct cachectl_fuse *handle);
int cachectl_fuse_passthrough_offered(struct cachectl_fuse *handle);
void cachectl_fuse_open_passthrough(unsigned long long fh, int backing_id);

/* FUSE_DEV_IOC_BACKING_OPEN / _CLOSE on the session's /dev/fuse descriptor:
   a backing id (> 0) for the open file `fd`, or a negative errno (ENOTTY or
   EINVAL: no passthrough in this kernel or connection; EPERM: needs
   CAP_SYS_ADMIN). */
int cachectl_fuse_backing_open(int dev_fd, int fd);
int cachectl_fuse_backing_close(int dev_fd, int backing_id);

/* A tmpfs never attached to the mount tree, with huge=`huge` (NULL: default):
   its mount descriptor, or a negative errno (needs CAP_SYS_ADMIN). */
int cachectl_tmpfs_detached(const char *huge);
/* An unnamed file of `size` bytes in the tmpfs at `mnt`, or a negative errno. */
int cachectl_tmpfs_file(int mnt, long long size);
/* fallocate(PUNCH_HOLE | KEEP_SIZE): 0 or a negative errno. */
int cachectl_punch_hole(int fd, long long offset, long long length);

#endif
