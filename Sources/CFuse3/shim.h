/* libfuse 3's high-level API, for its types: nothing links libfuse3 (CCachectlFuse
   loads it when a mirror mounts), so calling its functions from Swift fails the
   link. Do not define _FILE_OFFSET_BITS here: on 64-bit
   it is already 64 and defining it breaks the build (statvfs defined twice). */
#define FUSE_USE_VERSION 312
#include <fuse3/fuse.h>
