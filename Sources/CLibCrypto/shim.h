/* OpenSSL's libcrypto, for SHA-256 of model blobs (EVP digest API; the
   low-level SHA256_* calls are deprecated in OpenSSL 3). */
#include <openssl/evp.h>
