#include "cachectl_shims.h"

#include <pthread.h>

/* OpenSSL 3's EVP calls, bound from libcrypto.so.3 on first use. */
static struct {
    void *(*ctx_new)(void);
    void (*ctx_free)(void *);
    const void *(*sha256)(void);
    int (*init)(void *, const void *, void *);
    int (*update)(void *, const void *, size_t);
    int (*final)(void *, unsigned char *, unsigned int *);
    int ready;
    char error[256];
} crypto;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static void crypto_load(void) {
    static const char *const names[] = {"EVP_MD_CTX_new",    "EVP_MD_CTX_free",  "EVP_sha256",
                                        "EVP_DigestInit_ex", "EVP_DigestUpdate", "EVP_DigestFinal_ex"};
    void **const slots[] = {(void **)&crypto.ctx_new, (void **)&crypto.ctx_free, (void **)&crypto.sha256,
                            (void **)&crypto.init,    (void **)&crypto.update,   (void **)&crypto.final};
    crypto.ready = cachectl_dlbind("libcrypto.so.3", names, slots, 6, crypto.error, sizeof crypto.error) == 0;
}

const char *cachectl_sha256_unavailable(void) {
    pthread_once(&crypto_once, crypto_load);
    return crypto.ready ? NULL : crypto.error;
}

cachectl_sha256 *cachectl_sha256_new(void) {
    if (cachectl_sha256_unavailable() != NULL) {
        return NULL;
    }
    void *context = crypto.ctx_new();
    if (context != NULL && crypto.init(context, crypto.sha256(), NULL) != 1) {
        crypto.ctx_free(context);
        context = NULL;
    }
    return context;
}

int cachectl_sha256_update(cachectl_sha256 *context, const void *bytes, size_t count) {
    return crypto.update(context, bytes, count) == 1 ? 0 : -1;
}

int cachectl_sha256_final(cachectl_sha256 *context, unsigned char digest[32]) {
    unsigned int length = 0;
    return crypto.final(context, digest, &length) == 1 && length == 32 ? 0 : -1;
}

void cachectl_sha256_free(cachectl_sha256 *context) {
    crypto.ctx_free(context);
}
