#include "cachectl_lz4.h"
#include "cachectl_lazy.h"

#include <lz4.h>

#define LIBLZ4_CALLS(R, V) \
    R(int, LZ4_compressBound, (int inputSize), (inputSize)) \
    R(int, LZ4_compress_default, (const char *src, char *dst, int srcSize, int dstCapacity), \
      (src, dst, srcSize, dstCapacity)) \
    R(int, LZ4_decompress_safe, (const char *src, char *dst, int compressedSize, int dstCapacity), \
      (src, dst, compressedSize, dstCapacity))

CACHECTL_LAZY_LIBRARY(LIBLZ4_CALLS, "liblz4.so.1", "liblz4-1")
CACHECTL_LAZY_WRAPPERS(LIBLZ4_CALLS)
CACHECTL_LAZY_CHECK(LIBLZ4_CALLS)

void cachectl_lz4_require(void) {
    lazy_require();
}
