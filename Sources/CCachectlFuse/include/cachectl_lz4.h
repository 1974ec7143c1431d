#ifndef CACHECTL_LZ4_H
#define CACHECTL_LZ4_H

/* liblz4's block calls for the FUSE mirror's RAM pool (CachectlFUSE/ChunkCodec.swift),
   each as cachectl_<its name>. liblz4 is loaded the first time one runs, or when a
   mirror mounts (cachectl_lz4_require: a mounted mirror's request threads must not
   exit), not when cachectl starts; when it cannot be, the call prints why on stderr
   and exits 1. */

int cachectl_LZ4_compressBound(int inputSize);
int cachectl_LZ4_compress_default(const char *src, char *dst, int srcSize, int dstCapacity);
int cachectl_LZ4_decompress_safe(const char *src, char *dst, int compressedSize, int dstCapacity);

/* Loads liblz4 now, or exits 1 saying why. */
void cachectl_lz4_require(void);

#endif
