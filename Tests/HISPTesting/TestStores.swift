import Crypto
import Foundation
import SQLiteStore
import Storage

/// Stores for tests that use the store in process: a scratch directory and a new store in it.
public enum TestStores {
    public static func scratchDirectory(_ prefix: String = "hisp-test-store") throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A new store in `dir`, under a key made for the test.
    public static func store(in dir: URL) async throws -> HISPStore {
        try await HISPStore.create(
            database: try await SQLiteDatabase.open(path: dir.appendingPathComponent("hisp.sqlite").path, create: true),
            material: .keyFile(SymmetricKey(size: .bits256), origin: "test key"), actor: "test")
    }
}
