import Crypto
import Foundation
import Testing
@testable import Storage

/// The at-rest format every stored ciphertext has: existing stores depend on it.
@Suite struct EnvelopeTests {
    @Test func aSealedValueIsVersionNonceCiphertextTagAndOpensOnlyWhereItBelongs() async throws {
        let key = SymmetricKey(size: .bits256)
        let context = Envelope.context("messages", "row-1", "body_enc")
        for size in [0, 1, 31, 4096] {
            let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let sealed = try Envelope.seal(plaintext, key: key, context: context)
            #expect(sealed.count == size + Envelope.overhead)
            #expect(sealed[0] == 1, "version")
            // Read by AES-GCM itself from the documented layout.
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: sealed[1..<13]), ciphertext: sealed[13..<(sealed.count - 16)],
                                            tag: sealed[(sealed.count - 16)...])
            #expect(Array(try AES.GCM.open(box, using: key, authenticating: context)) == plaintext)
            #expect(try Envelope.open(sealed, key: key, context: context, what: "test") == plaintext)
            // Another row's context, or another key: refused.
            #expect(throws: StoreError.self) { try Envelope.open(sealed, key: key, context: Envelope.context("messages", "row-2", "body_enc"), what: "test") }
            #expect(throws: StoreError.self) { try Envelope.open(sealed, key: SymmetricKey(size: .bits256), context: context, what: "test") }
            // Every altered byte: refused.
            for i in sealed.indices {
                var altered = sealed
                altered[i] ^= 0x01
                #expect(throws: StoreError.self) { try Envelope.open(altered, key: key, context: context, what: "test") }
            }
        }
        // Two seals of the same value differ (fresh nonces).
        #expect(try Envelope.seal([1, 2, 3], key: key, context: context) != Envelope.seal([1, 2, 3], key: key, context: context))
    }
}
