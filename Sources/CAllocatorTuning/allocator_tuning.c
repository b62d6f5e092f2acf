// The target's code is the inline function in include/allocator_tuning.h.
#include "allocator_tuning.h"
