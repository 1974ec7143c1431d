/* Helper for integration/benchmarks/fuse/run: generates a GGUF-like weights
   file, reads a file sequentially and prints the seconds, and evicts a file's
   pages with POSIX_FADV_DONTNEED (only that file: never drop_caches).

     fusebench gen PATH BYTES     write a GGUF-like file
     fusebench read PATH          sequential 1 MiB reads; prints seconds,
                                  bytes and the reader's CPU seconds
     fusebench evict PATH         drop PATH's pages from the page cache
     fusebench lz4 PATH           LZ4 ratio of PATH in 64 KiB blocks (as the
                                  pool compresses: raw/stored, blocks that do
                                  not shrink counted raw)
     fusebench folios PATH BYTES  map the first BYTES of PATH, touch every page,
                                  and count the page-cache folios behind them
                                  (pagemap + kpageflags; root): prints pages,
                                  order-0 pages, large folios, average folio KiB */
#define _GNU_SOURCE
#include <fcntl.h>
#include <lz4.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static inline uint64_t next(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}
/* Roughly normal weights, as trained layers have (sum of uniforms). */
static inline float weight(float sigma) {
    float s = 0;
    for (int i = 0; i < 4; i++) s += (float)(next() & 0xffff) / 65535.0f;
    return (s - 2.0f) * sigma * 1.7f;
}
static inline uint16_t to_half(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = (x >> 13) & 0x3ff;
    if (exp <= 0) return (uint16_t)sign;
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    return (uint16_t)(sign | (uint32_t)exp << 10 | mant);
}

static int gen(const char *path, uint64_t total) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return 1; }
    /* Header and metadata: magic, version, key/value text, tensor infos. */
    static char header[65536];
    static const char magic[8] = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    static const char type_q4k[8] = {2, 0, 0, 0, 0, 0x10, 0, 0};  /* dims, type */
    memcpy(header, magic, sizeof magic);
    size_t n = sizeof magic;
    for (int i = 0; n < 60000; i++) {
        n += (size_t)snprintf(header + n, sizeof header - n, "blk.%d.attn_q.weight", i);
        memcpy(header + n, type_q4k, sizeof type_q4k);
        n += sizeof type_q4k;
        n += (size_t)snprintf(header + n, sizeof header - n, "q4_K;blk.%d.ffn_up.weight f16 ", i);
    }
    fwrite(header, 1, 65536, f);
    uint64_t written = 65536;
    unsigned char *buf = malloc(1 << 20);
    int tensor = 0;
    while (written < total) {
        /* Per 64 MiB tensor: 1 in 4 float16 (norms, embeddings, output), the
           rest quantised: Q4_K-like (fp16 scale + packed nibbles) and Q8_0-like
           (fp16 scale + 32 int8). */
        int kind = tensor % 4 == 0 ? 0 : tensor % 4 == 3 ? 2 : 1;
        for (int mib = 0; mib < 64 && written < total; mib++) {
            size_t used = 0;
            if (kind == 0) {
                for (; used + 2 <= (1 << 20); used += 2) {
                    uint16_t h = to_half(weight(0.02f));
                    memcpy(buf + used, &h, 2);
                }
            } else if (kind == 1) {
                for (; used + 18 <= (1 << 20); used += 18) {
                    uint16_t d = to_half(0.01f + (float)(next() & 0xff) / 25600.0f);
                    memcpy(buf + used, &d, 2);
                    for (int j = 0; j < 16; j += 8) { uint64_t r = next(); memcpy(buf + used + 2 + j, &r, 8); }
                }
            } else {
                for (; used + 34 <= (1 << 20); used += 34) {
                    uint16_t d = to_half(0.005f + (float)(next() & 0xff) / 51200.0f);
                    memcpy(buf + used, &d, 2);
                    for (int j = 0; j < 32; j++) buf[used + 2 + j] = (unsigned char)(int8_t)lrintf(weight(40.0f));
                }
            }
            memset(buf + used, 0, (1 << 20) - used);  /* alignment padding */
            size_t take = total - written < (1 << 20) ? total - written : (1 << 20);
            fwrite(buf, 1, take, f);
            written += take;
        }
        tensor++;
    }
    free(buf);
    return fclose(f) == 0 ? 0 : 1;
}

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int readall(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    size_t size = 1 << 20;
    char *buf = aligned_alloc(4096, size);
    double start = now();
    ssize_t r;
    unsigned long long total = 0;
    while ((r = read(fd, buf, size)) > 0) total += (unsigned long long)r;
    double seconds = now() - start;
    if (r < 0) { perror("read"); return 1; }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("%.4f %llu %.4f\n", seconds, total, cpu);
    close(fd);
    return 0;
}

static int evict(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    int err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return err != 0;
}

static int lz4ratio(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    enum { block = 64 * 1024 };
    static char in[block], out[LZ4_COMPRESSBOUND(block)];
    unsigned long long raw = 0, stored = 0;
    ssize_t r;
    while ((r = read(fd, in, block)) > 0) {
        int n = LZ4_compress_default(in, out, (int)r, (int)sizeof out);
        raw += (unsigned long long)r;
        stored += (n > 0 && n < r) ? (unsigned long long)n : (unsigned long long)r;
    }
    close(fd);
    if (r < 0) { perror("read"); return 1; }
    printf("%.4f %llu %llu\n", stored ? (double)raw / (double)stored : 1.0, raw, stored);
    return 0;
}

static int folios(const char *path, size_t bytes) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    const size_t page = 4096, pages = bytes / page;
    volatile const char *map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) { perror("mmap"); return 1; }
    unsigned long sum = 0;
    for (size_t i = 0; i < pages; i++) sum += (unsigned long)map[i * page];
    int pagemap = open("/proc/self/pagemap", O_RDONLY), flags = open("/proc/kpageflags", O_RDONLY);
    if (pagemap < 0 || flags < 0) { perror("pagemap/kpageflags (needs root)"); return 1; }
    size_t small = 0, heads = 0, tails = 0;
    for (size_t i = 0; i < pages; i++) {
        uint64_t entry = 0, f = 0;
        if (pread(pagemap, &entry, 8, (off_t)(((uintptr_t)map / page + i) * 8)) != 8 || !(entry >> 63)) continue;
        if (pread(flags, &f, 8, (off_t)((entry & ((1ull << 55) - 1)) * 8)) != 8) continue;
        if (f & (1ull << 15)) heads++;       /* KPF_COMPOUND_HEAD */
        else if (f & (1ull << 16)) tails++;  /* KPF_COMPOUND_TAIL */
        else small++;
    }
    size_t folios = small + heads;
    printf("%zu %zu %zu %.1f\n", pages, small, heads, folios ? (double)(small + heads + tails) * 4.0 / (double)folios : 0.0);
    (void)sum;
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "gen")) return gen(argv[2], strtoull(argv[3], NULL, 10));
    if (argc == 3 && !strcmp(argv[1], "read")) return readall(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "evict")) return evict(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "lz4")) return lz4ratio(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "folios")) return folios(argv[2], strtoull(argv[3], NULL, 10));
    fprintf(stderr, "usage: fusebench gen PATH BYTES | read PATH | evict PATH | lz4 PATH | folios PATH BYTES\n");
    return 2;
}
