import CSecureRandom

/// Random bytes for keys, nonces, identifiers and salts, from the kernel's
/// CSPRNG in one system call per request. (The standard library's
/// `SystemRandomNumberGenerator` makes one call per 8 bytes, and
/// `UInt8.random` one per byte: a 16-byte identifier cost 16 calls.)
public enum SecureRandom {
    /// Fills `buffer` with random bytes.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        if hisp_secure_random(base, buffer.count) == 0 { return }
        // getrandom(2) unavailable (a kernel before 3.17): the standard
        // library's generator, which has its own fallbacks.
        var generator = SystemRandomNumberGenerator()
        for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: generator.next()) }
    }

    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: max(0, count)) { buffer, initialized in
            fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = buffer.count
        }
    }
}

/// A `RandomNumberGenerator` over `SecureRandom` that fetches eight words
/// per system call, for code that draws several words in a row (a MIME
/// boundary). Keep one for the duration of a task, not in shared state.
public struct SecureRandomGenerator: RandomNumberGenerator {
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var used = 8

    public init() {}

    public mutating func next() -> UInt64 {
        if used == 8 {
            withUnsafeMutableBytes(of: &words) { SecureRandom.fill($0) }
            used = 0
        }
        defer { used += 1 }
        return withUnsafeBytes(of: &words) { $0.load(fromByteOffset: used * 8, as: UInt64.self) }
    }
}
