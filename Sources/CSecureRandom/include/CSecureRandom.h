#ifndef HISP_CSECURERANDOM_H
#define HISP_CSECURERANDOM_H

#include <stddef.h>

/// Fills `buffer` with `count` bytes from the kernel's CSPRNG: getrandom(2)
/// on Linux (looping over partial reads and EINTR), arc4random_buf on Darwin.
/// Returns 0, or the errno that stopped it (ENOSYS: a kernel without getrandom).
int hisp_secure_random(void *buffer, size_t count);

#endif
