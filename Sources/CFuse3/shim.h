/* libfuse 3 high-level API. Do not define _FILE_OFFSET_BITS here: on 64-bit
   it is already 64 and defining it breaks the build (statvfs defined twice). */
#define FUSE_USE_VERSION 312
#include <fuse.h>
