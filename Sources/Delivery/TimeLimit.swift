import Synchronization

/// The value of `work` when it finishes within `limit`; nil as soon as `limit`
/// passes otherwise. `work` is not cancelled: it runs to its end in the
/// background and its value is dropped (what it looked up still fills the
/// caches it went through). A cancelled lookup could look like a missing
/// certificate to whoever caches the answer, so none is cancelled here.
func value<T: Sendable>(within limit: Duration, of work: @escaping @Sendable () async -> T) async -> T? {
    let answer = FirstAnswer<T>()
    return await withCheckedContinuation { continuation in
        answer.expect(continuation)
        let timer = Task {
            // Cancelled when `work` answers first: no answer from here then.
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            answer.give(nil)
        }
        Task {
            let v = await work()
            if answer.give(v) { timer.cancel() }
        }
    }
}

/// One continuation, resumed by whichever answer comes first.
private final class FirstAnswer<T: Sendable>: Sendable {
    private let waiting = Mutex<CheckedContinuation<T?, Never>?>(nil)

    func expect(_ c: CheckedContinuation<T?, Never>) { waiting.withLock { $0 = c } }

    /// Whether this was the first answer (the one the caller gets).
    @discardableResult
    func give(_ value: T?) -> Bool {
        guard let c = waiting.withLock({ w -> CheckedContinuation<T?, Never>? in defer { w = nil }; return w }) else { return false }
        c.resume(returning: value)
        return true
    }
}
