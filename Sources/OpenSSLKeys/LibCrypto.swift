#if canImport(Glibc)
import Glibc
#endif

/// The few libcrypto functions the provider calls, looked up once with `dlsym`
/// in OpenSSL 3's libcrypto.so.3 (OpenSSL 3.0 API: these are functions, not macros).
struct LibCrypto: @unchecked Sendable {
    typealias CtxFn = @convention(c) (OpaquePointer?) -> Int32
    typealias OperateFn = @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<Int>?, UnsafePointer<UInt8>?, Int) -> Int32

    static let RSA_PKCS1_PADDING: Int32 = 1
    static let RSA_PKCS1_OAEP_PADDING: Int32 = 4

    let d2i_AutoPrivateKey: @convention(c) (UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, Int) -> OpaquePointer?
    let EVP_PKEY_free: @convention(c) (OpaquePointer?) -> Void
    let EVP_PKEY_CTX_new: @convention(c) (OpaquePointer?, OpaquePointer?) -> OpaquePointer?
    let EVP_PKEY_CTX_free: @convention(c) (OpaquePointer?) -> Void
    let EVP_PKEY_sign_init: CtxFn
    let EVP_PKEY_sign: OperateFn
    let EVP_PKEY_decrypt_init: CtxFn
    let EVP_PKEY_decrypt: OperateFn
    let EVP_PKEY_CTX_set_rsa_padding: @convention(c) (OpaquePointer?, Int32) -> Int32
    let EVP_PKEY_CTX_set_signature_md: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32
    let EVP_PKEY_CTX_set_rsa_oaep_md: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32
    let EVP_PKEY_CTX_set_rsa_mgf1_md: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32
    let EVP_sha1: @convention(c) () -> OpaquePointer?
    let EVP_sha256: @convention(c) () -> OpaquePointer?
    let EVP_sha384: @convention(c) () -> OpaquePointer?
    let EVP_sha512: @convention(c) () -> OpaquePointer?
    let ERR_clear_error: @convention(c) () -> Void
    let OpenSSL_version: @convention(c) (Int32) -> UnsafePointer<CChar>?

    func versionText() -> String { OpenSSL_version(0).map { String(cString: $0) } ?? "OpenSSL" }

    static func load() -> Result<LibCrypto, KeyProviderError> {
        // RTLD_LOCAL: its symbols stay apart from the BoringSSL that swift-crypto and swift-nio-ssl link (theirs are prefixed).
        guard let lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "not found"
            return .failure(KeyProviderError("OpenSSL 3's libcrypto.so.3 could not be loaded (\(why)); Debian: apt-get install libssl3"))
        }
        struct Missing: Error { let name: String }
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            guard let p = dlsym(lib, name) else { throw Missing(name: name) }
            return unsafeBitCast(p, to: type)
        }
        do {
            return .success(try LibCrypto(
            d2i_AutoPrivateKey: try symbol("d2i_AutoPrivateKey", as: (@convention(c) (UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, Int) -> OpaquePointer?).self),
            EVP_PKEY_free: try symbol("EVP_PKEY_free", as: (@convention(c) (OpaquePointer?) -> Void).self),
            EVP_PKEY_CTX_new: try symbol("EVP_PKEY_CTX_new", as: (@convention(c) (OpaquePointer?, OpaquePointer?) -> OpaquePointer?).self),
            EVP_PKEY_CTX_free: try symbol("EVP_PKEY_CTX_free", as: (@convention(c) (OpaquePointer?) -> Void).self),
            EVP_PKEY_sign_init: try symbol("EVP_PKEY_sign_init", as: CtxFn.self),
            EVP_PKEY_sign: try symbol("EVP_PKEY_sign", as: OperateFn.self),
            EVP_PKEY_decrypt_init: try symbol("EVP_PKEY_decrypt_init", as: CtxFn.self),
            EVP_PKEY_decrypt: try symbol("EVP_PKEY_decrypt", as: OperateFn.self),
            EVP_PKEY_CTX_set_rsa_padding: try symbol("EVP_PKEY_CTX_set_rsa_padding", as: (@convention(c) (OpaquePointer?, Int32) -> Int32).self),
            EVP_PKEY_CTX_set_signature_md: try symbol("EVP_PKEY_CTX_set_signature_md", as: (@convention(c) (OpaquePointer?, OpaquePointer?) -> Int32).self),
            EVP_PKEY_CTX_set_rsa_oaep_md: try symbol("EVP_PKEY_CTX_set_rsa_oaep_md", as: (@convention(c) (OpaquePointer?, OpaquePointer?) -> Int32).self),
            EVP_PKEY_CTX_set_rsa_mgf1_md: try symbol("EVP_PKEY_CTX_set_rsa_mgf1_md", as: (@convention(c) (OpaquePointer?, OpaquePointer?) -> Int32).self),
            EVP_sha1: try symbol("EVP_sha1", as: (@convention(c) () -> OpaquePointer?).self),
            EVP_sha256: try symbol("EVP_sha256", as: (@convention(c) () -> OpaquePointer?).self),
            EVP_sha384: try symbol("EVP_sha384", as: (@convention(c) () -> OpaquePointer?).self),
            EVP_sha512: try symbol("EVP_sha512", as: (@convention(c) () -> OpaquePointer?).self),
            ERR_clear_error: try symbol("ERR_clear_error", as: (@convention(c) () -> Void).self),
            OpenSSL_version: try symbol("OpenSSL_version", as: (@convention(c) (Int32) -> UnsafePointer<CChar>?).self)))
        } catch let m as Missing {
            return .failure(KeyProviderError("libcrypto.so.3 lacks \(m.name) (OpenSSL 3.0 or later is needed)"))
        } catch {
            return .failure(KeyProviderError("libcrypto.so.3: \(error)"))
        }
    }
}
