import CAllocatorTuning
import HISPCommands
#if canImport(Glibc)
import Glibc
#endif

// Allocator tuning for a server that handles multi-megabyte messages: glibc
// serves blocks above its mmap threshold with fresh pages from the kernel
// and unmaps them on free, so every large buffer of every message is
// page-faulted and zeroed again (half the time of a 1 MB message in
// `hisp bench smime`). Keep blocks up to 32 MiB in the heap and let up to
// 128 MiB of free heap stay mapped for reuse. Process-wide, set once here
// before any work; see docs/benchmarks.md.
_ = hisp_tune_allocator(32 << 20, 128 << 20)

exit(await HispMain.run(Array(CommandLine.arguments.dropFirst())))
