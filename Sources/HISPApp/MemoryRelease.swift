import CAllocatorTuning

/// Returning freed heap memory to the system (glibc keeps it mapped for reuse,
/// up to the trim threshold `hisp` sets, in every thread's arena).
enum MemoryRelease {
    static func releaseFreeMemory() {
        _ = hisp_release_free_memory()
    }
}
