#include "CSecureRandom.h"

#include <errno.h>

#if defined(__APPLE__)
#include <stdlib.h>

int hisp_secure_random(void *buffer, size_t count) {
    arc4random_buf(buffer, count);
    return 0;
}

#else
#include <sys/random.h>

int hisp_secure_random(void *buffer, size_t count) {
    unsigned char *p = buffer;
    while (count > 0) {
        // Flags 0: the urandom pool, blocking only until it is first seeded at boot.
        ssize_t n = getrandom(p, count, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += n;
        count -= (size_t)n;
    }
    return 0;
}
#endif
