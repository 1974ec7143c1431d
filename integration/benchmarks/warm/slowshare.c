// slowshare: a read-only FUSE mirror of a directory that answers every read
// request after a fixed delay, to model a network share in the warm benchmark.
//
//   slowshare SOURCE MOUNTPOINT LATENCY_US
//
// What it models: an NFS/SMB client with its distributions' default per-mount
// readahead of 128 KiB (Ubuntu since 18.04, RHEL since 8.3; see the Azure NetApp
// Files "Linux NFS read-ahead best practices" page), reads of up to 1 MiB per
// request (rsize=1M), many requests in flight at once, and a server that answers
// each request LATENCY_US after it arrives (round trip plus server time). The
// data itself comes from SOURCE, which the benchmark keeps in the page cache, so
// the latency is the only cost the share adds: it has no bandwidth limit, so it
// models a link faster than one reader can use. Runs in the foreground with a
// thread per request in flight; stop it with umount or SIGTERM.
#define FUSE_USE_VERSION 312
#include <fuse3/fuse.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *source;
static long latency_us;

static int source_path(char *out, const char *path) {
  return snprintf(out, PATH_MAX, "%s%s", source, path) < PATH_MAX ? 0 : -ENAMETOOLONG;
}

static void *share_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  cfg->kernel_cache = 1;  // the data never changes: keep the page cache across opens
  cfg->entry_timeout = cfg->attr_timeout = 3600;
  conn->max_read = 1 << 20;         // rsize=1M
  conn->max_readahead = 128 << 10;  // the distributions' NFS default
  conn->max_background = 128;       // NFS keeps many RPCs in flight; FUSE's default is 12
  conn->congestion_threshold = 96;
  return NULL;
}

static int share_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  char full[PATH_MAX];
  int rc = source_path(full, path);
  if (rc) return rc;
  return lstat(full, st) == 0 ? 0 : -errno;
}

static int share_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset,
                         struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)offset; (void)fi; (void)flags;
  char full[PATH_MAX];
  int rc = source_path(full, path);
  if (rc) return rc;
  DIR *dir = opendir(full);
  if (!dir) return -errno;
  for (struct dirent *entry; (entry = readdir(dir));) fill(buf, entry->d_name, NULL, 0, 0);
  closedir(dir);
  return 0;
}

static int share_open(const char *path, struct fuse_file_info *fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  char full[PATH_MAX];
  int rc = source_path(full, path);
  if (rc) return rc;
  int fd = open(full, O_RDONLY);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  return 0;
}

static int share_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
  (void)path;
  struct timespec delay = {latency_us / 1000000, (latency_us % 1000000) * 1000};
  while (nanosleep(&delay, &delay) != 0 && errno == EINTR) {}
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread((int)fi->fh, buf + done, size - done, offset + (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) break;
    done += (size_t)n;
  }
  return (int)done;
}

static int share_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  close((int)fi->fh);
  return 0;
}

static const struct fuse_operations share_operations = {
  .init = share_init,
  .getattr = share_getattr,
  .readdir = share_readdir,
  .open = share_open,
  .read = share_read,
  .release = share_release,
};

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s SOURCE MOUNTPOINT LATENCY_US\n", argv[0]);
    return 2;
  }
  static char resolved[PATH_MAX];
  if (!realpath(argv[1], resolved)) {
    perror(argv[1]);
    return 1;
  }
  source = resolved;
  latency_us = strtol(argv[3], NULL, 10);
  char *fuse_argv[] = {argv[0], "-o", "ro,max_read=1048576,fsname=slowshare", NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
  struct fuse *fuse = fuse_new(&args, &share_operations, sizeof(share_operations), NULL);
  if (!fuse || fuse_mount(fuse, argv[2]) != 0) return 1;
  fuse_set_signal_handlers(fuse_get_session(fuse));
  // A thread for every request in flight, as a server with many nfsd threads.
  struct fuse_loop_config *config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(config, 256);
  fuse_loop_cfg_set_idle_threads(config, 64);
  int rc = fuse_loop_mt(fuse, config);
  fuse_loop_cfg_destroy(config);
  fuse_remove_signal_handlers(fuse_get_session(fuse));
  fuse_unmount(fuse);
  fuse_destroy(fuse);
  return rc ? 1 : 0;
}
