import SwiftASN1

/// Object identifiers used by CMS and S/MIME.
public enum CMSOID {
    // RFC 5652 14 / RFC 5083 1.
    public static let data: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 1]
    public static let encryptedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 6]
    public static let signedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 2]
    public static let envelopedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 3]
    public static let authEnvelopedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 16, 1, 23]

    // RFC 5652 11: signed attributes. RFC 8551 2.5.2: SMIMECapabilities.
    public static let contentTypeAttribute: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 3]
    public static let messageDigestAttribute: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 4]
    public static let signingTimeAttribute: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 5]
    public static let smimeCapabilitiesAttribute: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 15]

    // Digests (RFC 5754 2).
    public static let md5: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 5]
    public static let sha1: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]
    public static let sha224: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 4]
    public static let sha256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]
    public static let sha384: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
    public static let sha512: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 3]

    // Signature algorithms (RFC 5754 3, RFC 3279, RFC 5758).
    public static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    public static let md5WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 4]
    public static let sha1WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 5]
    public static let sha256WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 11]
    public static let sha384WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 12]
    public static let sha512WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 13]
    public static let rsassaPSS: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 10]
    public static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    public static let ecdsaWithSHA1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 1]
    public static let ecdsaWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
    public static let ecdsaWithSHA384: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 3]
    public static let ecdsaWithSHA512: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 4]
    public static let secp256r1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    public static let secp384r1: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]

    // Key transport (RFC 3560, RFC 8017 A.2.1).
    public static let rsaesOAEP: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 7]
    public static let mgf1: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 8]
    public static let pSpecified: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 9]

    // Content encryption (RFC 3565, RFC 5084, and the refused legacy ones).
    public static let aes128CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 2]
    public static let aes192CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 22]
    public static let aes256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]
    public static let aes128GCM: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 6]
    public static let aes192GCM: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 26]
    public static let aes256GCM: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 46]
    public static let desCBC: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 7]
    public static let desEDE3CBC: ASN1ObjectIdentifier = [1, 2, 840, 113549, 3, 7]
    public static let rc2CBC: ASN1ObjectIdentifier = [1, 2, 840, 113549, 3, 2]

    // X.509 extension used to match recipients and signers by key id.
    public static let subjectKeyIdentifier: ASN1ObjectIdentifier = [2, 5, 29, 14]

    /// Every identifier above.
    static let all: [ASN1ObjectIdentifier] = [
        data, encryptedData, signedData, envelopedData, authEnvelopedData, contentTypeAttribute,
        messageDigestAttribute, signingTimeAttribute, smimeCapabilitiesAttribute, md5, sha1, sha224, sha256, sha384,
        sha512, rsaEncryption, md5WithRSAEncryption, sha1WithRSAEncryption, sha256WithRSAEncryption,
        sha384WithRSAEncryption, sha512WithRSAEncryption, rsassaPSS, ecPublicKey, ecdsaWithSHA1, ecdsaWithSHA256,
        ecdsaWithSHA384, ecdsaWithSHA512, secp256r1, secp384r1, rsaesOAEP, mgf1, pSpecified, aes128CBC, aes192CBC,
        aes256CBC, aes128GCM, aes192GCM, aes256GCM, desCBC, desEDE3CBC, rc2CBC, subjectKeyIdentifier,
    ]

    /// A readable name for error messages.
    public static func name(_ oid: ASN1ObjectIdentifier) -> String {
        let names: [ASN1ObjectIdentifier: String] = [
            md5: "MD5", sha1: "SHA-1", sha224: "SHA-224", sha256: "SHA-256", sha384: "SHA-384", sha512: "SHA-512",
            rsaEncryption: "RSA", md5WithRSAEncryption: "MD5 with RSA", sha1WithRSAEncryption: "SHA-1 with RSA",
            sha256WithRSAEncryption: "SHA-256 with RSA", sha384WithRSAEncryption: "SHA-384 with RSA",
            sha512WithRSAEncryption: "SHA-512 with RSA", rsassaPSS: "RSASSA-PSS", ecdsaWithSHA1: "ECDSA with SHA-1",
            ecdsaWithSHA256: "ECDSA with SHA-256", ecdsaWithSHA384: "ECDSA with SHA-384",
            ecdsaWithSHA512: "ECDSA with SHA-512", rsaesOAEP: "RSAES-OAEP", aes128CBC: "AES-128-CBC",
            aes192CBC: "AES-192-CBC", aes256CBC: "AES-256-CBC", aes128GCM: "AES-128-GCM", aes192GCM: "AES-192-GCM",
            aes256GCM: "AES-256-GCM", desCBC: "DES-CBC", desEDE3CBC: "3DES (DES-EDE3-CBC)", rc2CBC: "RC2-CBC",
            data: "id-data", signedData: "id-signedData", envelopedData: "id-envelopedData",
            authEnvelopedData: "id-ct-authEnvelopedData", ecPublicKey: "EC",
        ]
        return names[oid] ?? oid.description
    }
}
