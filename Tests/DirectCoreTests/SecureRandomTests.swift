import DirectCore
import Testing

/// Keys, nonces and identifiers come from `SecureRandom`: every byte asked
/// for is filled, with kernel randomness, whatever the size.
@Suite struct SecureRandomTests {
    @Test func fillsEveryByteAskedFor() {
        for count in [0, 1, 12, 16, 32, 255, 256, 257, 4096, 1 << 20] {
            #expect(SecureRandom.bytes(count).count == count)
        }
        // Two draws of 32 bytes are never equal (2^-256), and neither is all zeros.
        let a = SecureRandom.bytes(32), b = SecureRandom.bytes(32)
        #expect(a != b)
        #expect(a != [UInt8](repeating: 0, count: 32))
    }

    @Test func aLargeDrawIsUniformAcrossItsWholeLength() {
        // 1 MiB: more than one getrandom(2) call returns (256 bytes are guaranteed per call,
        // larger reads may come back short). Every 64 KiB stretch is random, not zero-filled,
        // and byte values are spread evenly (a chi-square bound far above the 255-degree mean).
        let bytes = SecureRandom.bytes(1 << 20)
        var counts = [Int](repeating: 0, count: 256)
        for b in bytes { counts[Int(b)] += 1 }
        let expected = Double(bytes.count) / 256
        let chiSquare = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        #expect(chiSquare < 400, "chi-square \(chiSquare)")
        for start in stride(from: 0, to: bytes.count, by: 1 << 16) {
            let stretch = bytes[start..<(start + (1 << 16))]
            #expect(Set(stretch).count > 250, "the stretch at \(start) is not random")
        }
    }

    @Test func theGeneratorKeepsDrawingFreshWordsAcrossRefills() {
        var generator = SecureRandomGenerator()
        let words = (0..<64).map { _ in generator.next() }
        #expect(Set(words).count == words.count)
        #expect(!words.contains(0))
    }
}
