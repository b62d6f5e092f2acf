import CAllocatorTuning
import Dispatch
import Synchronization

/// Returning freed heap memory to the system (glibc keeps it mapped for reuse,
/// up to the trim threshold `hisp` sets, in every thread's arena).
enum MemoryRelease {
    static func releaseFreeMemory() {
        _ = hisp_release_free_memory()
    }
}

/// Gives freed memory back soon, off the caller's thread, once for any number of
/// requests made while a release is pending (a burst of refusals asks many times).
final class MemoryReleaser: Sendable {
    private let pending = Mutex(false)

    func request() {
        let start = pending.withLock { p -> Bool in
            defer { p = true }
            return !p
        }
        guard start else { return }
        DispatchQueue.global(qos: .utility).async {
            self.pending.withLock { $0 = false }
            MemoryRelease.releaseFreeMemory()
        }
    }
}
