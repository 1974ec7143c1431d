/* Linux headers Swift's Glibc module does not include: statfs(2) (f_type,
   to tell a network filesystem) and the xattr calls (cachefiles needs user
   xattrs on the cache filesystem). Header only: glibc has the symbols. */
#include <sys/vfs.h>
#include <sys/xattr.h>
