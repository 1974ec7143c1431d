#include "cachectl_mount.h"
#include "cachectl_lazy.h"

/* Every call in cachectl_mount.h: R returns a value, V does not. */
#define LIBMOUNT_CALLS(R, V) \
    R(struct libmnt_context *, mnt_new_context, (void), ()) \
    V(void, mnt_free_context, (struct libmnt_context *cxt), (cxt)) \
    R(int, mnt_context_set_optsmode, (struct libmnt_context *cxt, int mode), (cxt, mode)) \
    R(int, mnt_context_set_source, (struct libmnt_context *cxt, const char *source), (cxt, source)) \
    R(int, mnt_context_set_target, (struct libmnt_context *cxt, const char *target), (cxt, target)) \
    R(int, mnt_context_set_fstype, (struct libmnt_context *cxt, const char *fstype), (cxt, fstype)) \
    R(int, mnt_context_set_options, (struct libmnt_context *cxt, const char *optstr), (cxt, optstr)) \
    R(int, mnt_context_mount, (struct libmnt_context *cxt), (cxt)) \
    R(int, mnt_context_helper_executed, (struct libmnt_context *cxt), (cxt)) \
    R(int, mnt_context_get_helper_status, (struct libmnt_context *cxt), (cxt)) \
    R(int, mnt_context_get_excode, (struct libmnt_context *cxt, int rc, char *buf, size_t bufsz), (cxt, rc, buf, bufsz)) \
    R(int, mnt_context_syscall_called, (struct libmnt_context *cxt), (cxt)) \
    R(int, mnt_context_get_syscall_errno, (struct libmnt_context *cxt), (cxt)) \
    R(struct libmnt_table *, mnt_new_table, (void), ()) \
    V(void, mnt_unref_table, (struct libmnt_table *tb), (tb)) \
    V(void, mnt_table_enable_comments, (struct libmnt_table *tb, int enable), (tb, enable)) \
    R(int, mnt_table_parse_file, (struct libmnt_table *tb, const char *filename), (tb, filename)) \
    R(int, mnt_table_parse_fstab, (struct libmnt_table *tb, const char *filename), (tb, filename)) \
    R(int, mnt_table_next_fs, (struct libmnt_table *tb, struct libmnt_iter *itr, struct libmnt_fs **fs), (tb, itr, fs)) \
    R(struct libmnt_iter *, mnt_new_iter, (int direction), (direction)) \
    V(void, mnt_free_iter, (struct libmnt_iter *itr), (itr)) \
    R(const char *, mnt_fs_get_source, (struct libmnt_fs *fs), (fs)) \
    R(const char *, mnt_fs_get_target, (struct libmnt_fs *fs), (fs)) \
    R(const char *, mnt_fs_get_fstype, (struct libmnt_fs *fs), (fs)) \
    R(const char *, mnt_fs_get_options, (struct libmnt_fs *fs), (fs)) \
    R(const char *, mnt_fs_get_vfs_options, (struct libmnt_fs *fs), (fs)) \
    R(const char *, mnt_fs_get_fs_options, (struct libmnt_fs *fs), (fs)) \
    R(int, mnt_fs_set_options, (struct libmnt_fs *fs, const char *optstr), (fs, optstr)) \
    R(int, mnt_fs_get_id, (struct libmnt_fs *fs), (fs)) \
    R(int, mnt_fs_get_parent_id, (struct libmnt_fs *fs), (fs)) \
    R(dev_t, mnt_fs_get_devno, (struct libmnt_fs *fs), (fs)) \
    R(int, mnt_fs_get_freq, (struct libmnt_fs *fs), (fs)) \
    R(int, mnt_fs_get_passno, (struct libmnt_fs *fs), (fs)) \
    R(int, mnt_optstr_get_option, (const char *optstr, const char *name, char **value, size_t *valsz), (optstr, name, value, valsz)) \
    R(int, mnt_optstr_set_option, (char **optstr, const char *name, const char *value), (optstr, name, value)) \
    R(int, mnt_optstr_remove_option, (char **optstr, const char *name), (optstr, name))

CACHECTL_LAZY_LIBRARY(LIBMOUNT_CALLS, "libmount.so.1", "libmount1")
CACHECTL_LAZY_WRAPPERS(LIBMOUNT_CALLS)
CACHECTL_LAZY_CHECK(LIBMOUNT_CALLS)
