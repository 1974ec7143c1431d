/* Do not define _FILE_OFFSET_BITS: on 64-bit it is already 64, and defining it
   breaks the Swift build (statvfs declared twice). */
#define FUSE_USE_VERSION 312
#include "cachectl_fuse.h"

#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct cachectl_fuse {
    struct fuse *fuse;
    pthread_t loop_thread;
    atomic_int loop_running;
    atomic_int exit_requested;
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
    cachectl_fuse_install_wake_handler();
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct cachectl_fuse *handle = calloc(1, sizeof *handle);
    if (!handle) return NULL;
    handle->fuse = fuse_new(&args, (const struct fuse_operations *)ops, ops_size, user_data);
    fuse_opt_free_args(&args);
    if (!handle->fuse) {
        free(handle);
        return NULL;
    }
    if (fuse_mount(handle->fuse, mountpoint) != 0) {
        fuse_destroy(handle->fuse);
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
    struct fuse_loop_config *config = fuse_loop_cfg_create();
    if (!config) return -1;
    fuse_loop_cfg_set_max_threads(config, max_threads);
    fuse_loop_cfg_set_idle_threads(config, max_threads);
    fuse_loop_cfg_set_clone_fd(config, 0);
    int result = fuse_loop_mt(handle->fuse, config);
    fuse_loop_cfg_destroy(config);
    atomic_store(&handle->loop_running, 0);
    return result == 0 ? 0 : -1;
}

int cachectl_fuse_request_exit(struct cachectl_fuse *handle) {
    atomic_store(&handle->exit_requested, 1);
    fuse_exit(handle->fuse);
    if (!atomic_load(&handle->loop_running)) return 0;
    pthread_kill(handle->loop_thread, cachectl_fuse_wake_signal());
    return 1;
}

void cachectl_fuse_unmount_and_destroy(struct cachectl_fuse *handle) {
    fuse_unmount(handle->fuse);
    fuse_destroy(handle->fuse);
    free(handle);
}

int cachectl_fuse_fd(struct cachectl_fuse *handle) {
    return fuse_session_fd(fuse_get_session(handle->fuse));
}
