#ifndef CACHECTL_MOUNT_H
#define CACHECTL_MOUNT_H

#include <libmount/libmount.h>

/* The libmount calls cachectl makes, each as cachectl_<its name>. libmount (and the
   libblkid, libselinux and libpcre2 behind it) is loaded the first time one of them
   runs, not when cachectl starts: linked, it cost every command about 0.5 ms, and
   most commands (--version, warm and residency of local files) never call it. When
   it cannot be loaded, the call prints why on stderr and exits 1, as the dynamic
   loader would have at start-up. */

struct libmnt_context *cachectl_mnt_new_context(void);
void cachectl_mnt_free_context(struct libmnt_context *cxt);
int cachectl_mnt_context_set_optsmode(struct libmnt_context *cxt, int mode);
int cachectl_mnt_context_set_source(struct libmnt_context *cxt, const char *source);
int cachectl_mnt_context_set_target(struct libmnt_context *cxt, const char *target);
int cachectl_mnt_context_set_fstype(struct libmnt_context *cxt, const char *fstype);
int cachectl_mnt_context_set_options(struct libmnt_context *cxt, const char *optstr);
int cachectl_mnt_context_mount(struct libmnt_context *cxt);
int cachectl_mnt_context_helper_executed(struct libmnt_context *cxt);
int cachectl_mnt_context_get_helper_status(struct libmnt_context *cxt);
int cachectl_mnt_context_get_excode(struct libmnt_context *cxt, int rc, char *buf, size_t bufsz);
int cachectl_mnt_context_syscall_called(struct libmnt_context *cxt);
int cachectl_mnt_context_get_syscall_errno(struct libmnt_context *cxt);
struct libmnt_table *cachectl_mnt_new_table(void);
void cachectl_mnt_unref_table(struct libmnt_table *tb);
void cachectl_mnt_table_enable_comments(struct libmnt_table *tb, int enable);
int cachectl_mnt_table_parse_file(struct libmnt_table *tb, const char *filename);
int cachectl_mnt_table_parse_fstab(struct libmnt_table *tb, const char *filename);
int cachectl_mnt_table_next_fs(struct libmnt_table *tb, struct libmnt_iter *itr, struct libmnt_fs **fs);
struct libmnt_iter *cachectl_mnt_new_iter(int direction);
void cachectl_mnt_free_iter(struct libmnt_iter *itr);
const char *cachectl_mnt_fs_get_source(struct libmnt_fs *fs);
const char *cachectl_mnt_fs_get_target(struct libmnt_fs *fs);
const char *cachectl_mnt_fs_get_fstype(struct libmnt_fs *fs);
const char *cachectl_mnt_fs_get_options(struct libmnt_fs *fs);
const char *cachectl_mnt_fs_get_vfs_options(struct libmnt_fs *fs);
const char *cachectl_mnt_fs_get_fs_options(struct libmnt_fs *fs);
int cachectl_mnt_fs_set_options(struct libmnt_fs *fs, const char *optstr);
int cachectl_mnt_fs_get_id(struct libmnt_fs *fs);
int cachectl_mnt_fs_get_parent_id(struct libmnt_fs *fs);
dev_t cachectl_mnt_fs_get_devno(struct libmnt_fs *fs);
int cachectl_mnt_fs_get_freq(struct libmnt_fs *fs);
int cachectl_mnt_fs_get_passno(struct libmnt_fs *fs);
int cachectl_mnt_optstr_get_option(const char *optstr, const char *name, char **value, size_t *valsz);
int cachectl_mnt_optstr_set_option(char **optstr, const char *name, const char *value);
int cachectl_mnt_optstr_remove_option(char **optstr, const char *name);

#endif
