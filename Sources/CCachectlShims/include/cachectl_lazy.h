#ifndef CACHECTL_LAZY_H
#define CACHECTL_LAZY_H

/* A shared library loaded the first time cachectl calls it, not linked: each one
   linked costs every start-up its mapping and symbol binding, and most commands
   (--version, warm and residency of local files) call none of them.

   One library per C file. `CALLS(R, V)` lists its functions, R(ret, name, params,
   args) for one that returns a value, V(...) for one that does not:

     #define LIBFOO_CALLS(R, V) \
         R(int, foo_open, (const char *path), (path)) \
         V(void, foo_close, (int handle), (handle))
     CACHECTL_LAZY_LIBRARY(LIBFOO_CALLS, "libfoo.so.1", "libfoo1")
     CACHECTL_LAZY_WRAPPERS(LIBFOO_CALLS)   // optional: cachectl_foo_open, cachectl_foo_close
     CACHECTL_LAZY_CHECK(LIBFOO_CALLS)      // with <foo.h> included: the signatures match it

   CACHECTL_LAZY_LIBRARY defines `lazy` (a pointer per function) and `lazy_require()`,
   which loads the library once (dlopen, RTLD_NOW; pthread_once) or, when it cannot,
   prints why and the Debian package to install on stderr and exits 1, as the dynamic
   loader would have at start-up. CACHECTL_LAZY_WRAPPERS defines cachectl_NAME for each
   function: lazy_require(), then the call. Code that must not die half-way (a mounted
   FUSE filesystem's request threads) calls lazy_require() before it starts instead. */

#include "cachectl_shims.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define CACHECTL_LAZY_POINTER(ret, name, params, args) ret(*name) params;
#define CACHECTL_LAZY_NAME(ret, name, params, args) #name,
#define CACHECTL_LAZY_SLOT(ret, name, params, args) (void **)&lazy.name,

#define CACHECTL_LAZY_LIBRARY(CALLS, soname, package)                                                        \
    static struct {                                                                                          \
        CALLS(CACHECTL_LAZY_POINTER, CACHECTL_LAZY_POINTER)                                                  \
    } lazy;                                                                                                  \
    static pthread_once_t lazy_once = PTHREAD_ONCE_INIT;                                                     \
    static void lazy_load(void) {                                                                            \
        static const char *const names[] = {CALLS(CACHECTL_LAZY_NAME, CACHECTL_LAZY_NAME)};                  \
        void **const slots[] = {CALLS(CACHECTL_LAZY_SLOT, CACHECTL_LAZY_SLOT)};                              \
        char error[256];                                                                                     \
        if (cachectl_dlbind(soname, names, slots, (int)(sizeof names / sizeof names[0]), error, sizeof error) \
            != 0) {                                                                                          \
            fprintf(stderr, "cachectl: cannot load %s (%s); install it (Debian, Ubuntu: %s)\n", soname, error, \
                    package);                                                                                \
            exit(1);                                                                                         \
        }                                                                                                    \
    }                                                                                                        \
    __attribute__((unused)) static void lazy_require(void) { pthread_once(&lazy_once, lazy_load); }

#define CACHECTL_LAZY_RETURNING(ret, name, params, args) \
    ret cachectl_##name params {                          \
        lazy_require();                                   \
        return lazy.name args;                            \
    }
#define CACHECTL_LAZY_VOID(ret, name, params, args) \
    ret cachectl_##name params {                     \
        lazy_require();                              \
        lazy.name args;                              \
    }
#define CACHECTL_LAZY_WRAPPERS(CALLS) CALLS(CACHECTL_LAZY_RETURNING, CACHECTL_LAZY_VOID)

/* With the library's header included: fails the build when a listed signature is not
   the one the header declares (a pointer called with the wrong type is undefined). */
#define CACHECTL_LAZY_MATCHES(ret, name, params, args)                                        \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), __typeof__(lazy.name)), \
                   #name " is listed with another signature than its header declares");
#define CACHECTL_LAZY_CHECK(CALLS) CALLS(CACHECTL_LAZY_MATCHES, CACHECTL_LAZY_MATCHES)

#endif
