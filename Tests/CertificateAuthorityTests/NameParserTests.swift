import SwiftASN1
import Testing
import X509
@testable import CertificateAuthority

@Suite struct NameParserTests {
    @Test func readsRFC4514MostSpecificFirst() throws {
        let name = try NameParser.parse("CN=Example Direct CA,O=Example Clinic,C=us")
        #expect(name.description == "CN=Example Direct CA,O=Example Clinic,C=US")
        #expect(Array(name).count == 3)
        #expect(Array(name).first?.description == "C=US")
    }

    @Test func handlesEscapesSpacesMultiValuedRDNsAndOIDs() async throws {
        let name = try NameParser.parse(#"CN=Smith\, Jane \+ Co\5C,OU=A+OU=B, 2.5.4.10 = Org\20 "#)
        let rdns = Array(name)
        #expect(rdns.count == 3)
        let cn = try #require(rdns.last?.first)
        #expect(String(cn.value) == #"Smith, Jane + Co\"#)
        #expect(rdns[1].count == 2)  // OU=A+OU=B is one RDN of two attributes
        #expect(String(try #require(rdns[0].first).value) == "Org ")  // escaped trailing space kept
    }

    @Test(arguments: [
        ("", "empty"), ("CN", "has no '='"), ("CN=", "empty value"), ("Q=x", "unknown attribute type"),
        ("CN=a\\", "dangling"), ("CN=#0403", "hex-encoded"), ("C=USA", "two-letter"), ("CN=a\\q", "not an RFC 4514 escape"),
        ("1.2.x=a", "unknown attribute type"),
    ])
    func refusesWithAReason(input: String, reason: String) {
        do {
            _ = try NameParser.parse(input)
            Issue.record("accepted \(input)")
        } catch let e as CAError {
            #expect(e.description.contains(reason), "\(e)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func limitsItsInput() {
        #expect(throws: CAError.self) { try NameParser.parse(String(repeating: "CN=a,", count: 400) + "CN=a") }
        #expect(throws: CAError.self) { try NameParser.parse(Array(repeating: "CN=a", count: 40).joined(separator: ",")) }
    }
}

@Suite struct RevocationListTests {
    @Test func serialsAreMinimalPositiveIntegers() {
        #expect(RevocationList.normalizedSerial([0, 0, 0x7F]) == [0x7F])
        #expect(RevocationList.normalizedSerial([0x80]) == [0, 0x80])
        #expect(RevocationList.normalizedSerial([]) == [0])
        #expect(RevocationList.integerBytes(0) == [0])
        #expect(RevocationList.integerBytes(0x1234) == [0x12, 0x34])
        #expect(RevocationList.integerBytes(UInt64.max) == [0] + Array(repeating: 0xFF, count: 8))
    }
}
