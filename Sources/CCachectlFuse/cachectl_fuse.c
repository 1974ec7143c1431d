/* Do not define _FILE_OFFSET_BITS: on 64-bit it is already 64, and defining it
   breaks the Swift build (statvfs declared twice). */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312
#include "cachectl_fuse.h"
#include "cachectl_lazy.h"
#include "cachectl_lz4.h"

#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* The libfuse 3 calls this file makes (loaded when the first mirror mounts: see
   cachectl_lazy.h). fuse_new_31 and fuse_loop_mt_312 are the symbols a link against
   libfuse 3.12+ binds fuse_new and fuse_loop_mt to at FUSE_USE_VERSION 312. */
#define LIBFUSE_CALLS(R, V) \
    R(struct fuse *, fuse_new_31, \
      (struct fuse_args *args, const struct fuse_operations *op, size_t op_size, void *private_data), \
      (args, op, op_size, private_data)) \
    V(void, fuse_opt_free_args, (struct fuse_args *args), (args)) \
    R(int, fuse_mount, (struct fuse *f, const char *mountpoint), (f, mountpoint)) \
    V(void, fuse_unmount, (struct fuse *f), (f)) \
    V(void, fuse_destroy, (struct fuse *f), (f)) \
    V(void, fuse_exit, (struct fuse *f), (f)) \
    R(struct fuse_session *, fuse_get_session, (struct fuse *f), (f)) \
    R(struct fuse_context *, fuse_get_context, (void), ()) \
    R(struct fuse_loop_config *, fuse_loop_cfg_create, (void), ()) \
    V(void, fuse_loop_cfg_destroy, (struct fuse_loop_config *config), (config)) \
    V(void, fuse_loop_cfg_set_max_threads, (struct fuse_loop_config *config, unsigned int value), (config, value)) \
    V(void, fuse_loop_cfg_set_idle_threads, (struct fuse_loop_config *config, unsigned int value), (config, value)) \
    V(void, fuse_loop_cfg_set_clone_fd, (struct fuse_loop_config *config, unsigned int value), (config, value)) \
    R(int, fuse_loop_mt_312, (struct fuse *f, struct fuse_loop_config *config), (f, config)) \
    R(int, fuse_session_custom_io, (struct fuse_session *se, const struct fuse_custom_io *io, int fd), (se, io, fd)) \
    R(int, fuse_session_fd, (struct fuse_session *se), (se))
CACHECTL_LAZY_LIBRARY(LIBFUSE_CALLS, "libfuse3.so.3", "libfuse3-3")

struct cachectl_fuse {
    struct fuse *fuse;
    pthread_t loop_thread;
    atomic_int loop_running;
    atomic_int exit_requested;
    atomic_int passthrough_offered;
};

/* The loop thread waits in sem_wait(), which a signal handler interrupts
   (EINTR) so that it notices the exited flag. The handler does nothing. */
static void cachectl_fuse_wake_handler(int sig) { (void)sig; }

static int cachectl_fuse_wake_signal(void) { return SIGRTMIN + 6; }

static void cachectl_fuse_install_wake_handler_once(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cachectl_fuse_wake_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: sem_wait must return EINTR */
    sigaction(cachectl_fuse_wake_signal(), &sa, NULL);
}

static void cachectl_fuse_install_wake_handler(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cachectl_fuse_install_wake_handler_once);
}

struct cachectl_fuse *cachectl_fuse_mount(int argc, char **argv, const void *ops,
                                          size_t ops_size, void *user_data,
                                          const char *mountpoint) {
    /* Both libraries now, before anything is mounted: request threads must not exit. */
    lazy_require();
    cachectl_lz4_require();
    cachectl_fuse_install_wake_handler();
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct cachectl_fuse *handle = calloc(1, sizeof *handle);
    if (!handle) return NULL;
    handle->fuse = lazy.fuse_new_31(&args, (const struct fuse_operations *)ops, ops_size, user_data);
    lazy.fuse_opt_free_args(&args);
    if (!handle->fuse) {
        free(handle);
        return NULL;
    }
    if (lazy.fuse_mount(handle->fuse, mountpoint) != 0) {
        lazy.fuse_destroy(handle->fuse);
        free(handle);
        return NULL;
    }
    return handle;
}

int cachectl_fuse_loop(struct cachectl_fuse *handle, unsigned int max_threads) {
    handle->loop_thread = pthread_self();
    /* The wake signal must reach this thread even if the caller blocked it. */
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, cachectl_fuse_wake_signal());
    pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
    atomic_store(&handle->loop_running, 1);
    if (atomic_load(&handle->exit_requested)) {
        atomic_store(&handle->loop_running, 0);
        return 0;
    }
    struct fuse_loop_config *config = lazy.fuse_loop_cfg_create();
    if (!config) return -1;
    lazy.fuse_loop_cfg_set_max_threads(config, max_threads);
    lazy.fuse_loop_cfg_set_idle_threads(config, max_threads);
    lazy.fuse_loop_cfg_set_clone_fd(config, 0);
    int result = lazy.fuse_loop_mt_312(handle->fuse, config);
    lazy.fuse_loop_cfg_destroy(config);
    atomic_store(&handle->loop_running, 0);
    return result == 0 ? 0 : -1;
}

int cachectl_fuse_request_exit(struct cachectl_fuse *handle) {
    atomic_store(&handle->exit_requested, 1);
    lazy.fuse_exit(handle->fuse);
    if (!atomic_load(&handle->loop_running)) return 0;
    pthread_kill(handle->loop_thread, cachectl_fuse_wake_signal());
    return 1;
}

void cachectl_fuse_unmount_and_destroy(struct cachectl_fuse *handle) {
    lazy.fuse_unmount(handle->fuse);
    lazy.fuse_destroy(handle->fuse);
    free(handle);
}

/* Runs in every request's callback: no lazy_require() here, the mount that makes
   callbacks possible has loaded the library. */
void *cachectl_fuse_private_data(void) {
    return lazy.fuse_get_context()->private_data;
}

int cachectl_fuse_fd(struct cachectl_fuse *handle) {
    return lazy.fuse_session_fd(lazy.fuse_get_session(handle->fuse));
}

/* ---- FUSE passthrough (Linux 6.9+) on libfuse 3.14 ------------------------

   libfuse 3.14 speaks protocol 7.38 and has no API for passthrough (7.40), so
   the two replies that carry it are amended on their way to /dev/fuse, through
   fuse_session_custom_io()'s writev hook:
   - the INIT reply gets FUSE_PASSTHROUGH (flags2 bit 5, with FUSE_INIT_EXT) and
     max_stack_depth 1 (the kernel turns passthrough on only for 1..2, and only
     without the writeback cache, which the mirror never asks for);
   - an OPEN reply gets FOPEN_PASSTHROUGH and the backing id (the 7.40 name of
     fuse_open_out's padding).
   Both replies are written by the thread that ran the callback (high-level
   libfuse replies right after init()/open() return), so the callback leaves
   its wish in a thread-local variable and the hook applies it to that thread's
   next matching reply. A kernel without passthrough ignores the unknown flag
   and field; the backing-id ioctl then fails and the mirror never asks for
   passthrough on an open. */

struct cachectl_out_header { uint32_t len; int32_t error; uint64_t unique; };
struct cachectl_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };
#define CACHECTL_FOPEN_PASSTHROUGH (1u << 7)
#define CACHECTL_FUSE_INIT_EXT (1u << 30)
#define CACHECTL_FUSE_PASSTHROUGH_FLAGS2 (1u << 5) /* FUSE_PASSTHROUGH, 1ULL << 37 */
#define CACHECTL_INIT_OUT_FLAGS 12
#define CACHECTL_INIT_OUT_FLAGS2 32
#define CACHECTL_INIT_OUT_STACK_DEPTH 36
#define CACHECTL_INIT_OUT_SIZE 64
/* FUSE_DEV_IOC_BACKING_OPEN / _CLOSE: _IOW(229, 1, struct fuse_backing_map), _IOW(229, 2, uint32_t) */
struct cachectl_backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define CACHECTL_BACKING_OPEN _IOW(229, 1, struct cachectl_backing_map)
#define CACHECTL_BACKING_CLOSE _IOW(229, 2, uint32_t)

static __thread int cachectl_tl_init_wanted;
static __thread struct cachectl_fuse *cachectl_tl_init_handle;
static __thread uint64_t cachectl_tl_open_fh;
static __thread int32_t cachectl_tl_open_backing;

static ssize_t cachectl_io_read(int fd, void *buf, size_t len, void *userdata) {
    (void)userdata;
    return read(fd, buf, len);
}

static ssize_t cachectl_io_writev(int fd, struct iovec *iov, int count, void *userdata) {
    (void)userdata;
    unsigned char init_copy[CACHECTL_INIT_OUT_SIZE];
    struct cachectl_open_out open_copy;
    if (count == 2 && iov[0].iov_len == sizeof(struct cachectl_out_header)) {
        const struct cachectl_out_header *out = iov[0].iov_base;
        if (cachectl_tl_init_wanted) {
            cachectl_tl_init_wanted = 0;
            if (out->error == 0 && iov[1].iov_len == CACHECTL_INIT_OUT_SIZE) {
                memcpy(init_copy, iov[1].iov_base, sizeof init_copy);
                uint32_t flags, flags2, depth = 1;
                memcpy(&flags, init_copy + CACHECTL_INIT_OUT_FLAGS, 4);
                memcpy(&flags2, init_copy + CACHECTL_INIT_OUT_FLAGS2, 4);
                flags |= CACHECTL_FUSE_INIT_EXT;
                flags2 |= CACHECTL_FUSE_PASSTHROUGH_FLAGS2;
                memcpy(init_copy + CACHECTL_INIT_OUT_FLAGS, &flags, 4);
                memcpy(init_copy + CACHECTL_INIT_OUT_FLAGS2, &flags2, 4);
                memcpy(init_copy + CACHECTL_INIT_OUT_STACK_DEPTH, &depth, 4);
                iov[1].iov_base = init_copy;
                if (cachectl_tl_init_handle) atomic_store(&cachectl_tl_init_handle->passthrough_offered, 1);
            }
        } else if (cachectl_tl_open_backing > 0) {
            int32_t backing = cachectl_tl_open_backing;
            cachectl_tl_open_backing = 0;
            if (out->error == 0 && iov[1].iov_len == sizeof open_copy) {
                memcpy(&open_copy, iov[1].iov_base, sizeof open_copy);
                if (open_copy.fh == cachectl_tl_open_fh) {
                    open_copy.open_flags |= CACHECTL_FOPEN_PASSTHROUGH;
                    open_copy.open_flags &= ~(uint32_t)(1u << 1) /* FOPEN_KEEP_CACHE */;
                    open_copy.backing_id = backing;
                    iov[1].iov_base = &open_copy;
                }
            }
        }
    }
    return writev(fd, iov, count);
}

int cachectl_fuse_hook_replies(struct cachectl_fuse *handle) {
    static const struct fuse_custom_io io = {
        .read = cachectl_io_read,
        .writev = cachectl_io_writev,
    };
    struct fuse_session *se = lazy.fuse_get_session(handle->fuse);
    return lazy.fuse_session_custom_io(se, &io, lazy.fuse_session_fd(se));
}

void cachectl_fuse_want_passthrough(struct cachectl_fuse *handle) {
    cachectl_tl_init_wanted = 1;
    cachectl_tl_init_handle = handle;
}

int cachectl_fuse_passthrough_offered(struct cachectl_fuse *handle) {
    return atomic_load(&handle->passthrough_offered);
}

void cachectl_fuse_open_passthrough(unsigned long long fh, int backing_id) {
    cachectl_tl_open_fh = fh;
    cachectl_tl_open_backing = backing_id;
}

int cachectl_fuse_backing_open(int dev_fd, int fd) {
    struct cachectl_backing_map map = {.fd = fd, .flags = 0, .padding = 0};
    int id = ioctl(dev_fd, CACHECTL_BACKING_OPEN, &map);
    return id < 0 ? -errno : id;
}

int cachectl_fuse_backing_close(int dev_fd, int backing_id) {
    uint32_t id = (uint32_t)backing_id;
    return ioctl(dev_fd, CACHECTL_BACKING_CLOSE, &id) < 0 ? -errno : 0;
}

/* A tmpfs instance that is never attached to the mount tree (fsopen, fsconfig,
   fsmount: Linux 5.2+, CAP_SYS_ADMIN): the pool's files live there, reachable
   only through the returned descriptor, and the instance goes away with the
   last descriptor. `huge` is a tmpfs huge= value ("within_size"): its files
   get 2 MiB folios whatever /sys/kernel/mm/transparent_hugepage/shmem_enabled
   says (unless "deny"). Returns the mount descriptor or -errno. */
int cachectl_tmpfs_detached(const char *huge) {
#if defined(SYS_fsopen) && defined(SYS_fsconfig) && defined(SYS_fsmount)
    int fs = (int)syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */);
    if (fs < 0) return -errno;
    int rc = 0;
    if (huge && syscall(SYS_fsconfig, fs, 1 /* FSCONFIG_SET_STRING */, "huge", huge, 0) < 0) rc = -errno;
    if (rc == 0 && syscall(SYS_fsconfig, fs, 1, "size", "0", 0) < 0) rc = -errno;
    if (rc == 0 && syscall(SYS_fsconfig, fs, 1, "nr_inodes", "0", 0) < 0) rc = -errno;
    if (rc == 0 && syscall(SYS_fsconfig, fs, 1, "mode", "0700", 0) < 0) rc = -errno;
    if (rc == 0 && syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) < 0) rc = -errno;
    int mnt = -1;
    if (rc == 0) {
        mnt = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, 0x8 /* MOUNT_ATTR_NOEXEC */ | 0x2 /* NOSUID */ | 0x4 /* NODEV */);
        if (mnt < 0) rc = -errno;
    }
    close(fs);
    return rc < 0 ? rc : mnt;
#else
    (void)huge;
    return -ENOSYS;
#endif
}

/* An unnamed file (O_TMPFILE) of `size` bytes in the tmpfs at `mnt`, or -errno. */
int cachectl_tmpfs_file(int mnt, long long size) {
    int fd = openat(mnt, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    if (ftruncate(fd, (off_t)size) != 0) {
        int code = errno;
        close(fd);
        return -code;
    }
    return fd;
}

/* Frees the pages of a byte range of a pool file. 0 or -errno. */
int cachectl_punch_hole(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) == 0 ? 0 : -errno;
}
