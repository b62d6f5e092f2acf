import Foundation
import InternetMessage
import Testing

@Suite struct NotificationTests {
    @Test func mdnRoundTripsAndNamesItsFields() async throws {
        let mdn = MDN(reportingUA: "hisp.b.example; DirectHISP", originalRecipient: "bob@b.example", finalRecipient: "bob@b.example",
                      originalMessageID: "<m1@a.example>", disposition: .dispatched, finalDestinationDelivery: true)
        let bytes = Notifications.mdnMessage(mdn, from: "bob@b.example", to: "alice@a.example", subject: "Dispatched: x",
                                             messageID: "<n1@b.example>", date: Date(timeIntervalSince1970: 0))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("Disposition: automatic-action/MDN-sent-automatically;dispatched\r\n"))
        #expect(text.contains("X-DIRECT-FINAL-DESTINATION-DELIVERY:\r\n"))
        #expect(text.contains("Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"))
        #expect(!text.contains("Disposition-Notification-To"))
        #expect(Notifications.parse(try MIMEEntity(parsing: bytes)) == .mdn(mdn))
    }

    @Test func failedMDNCarriesTheFailureField() async throws {
        let mdn = MDN(reportingUA: "r", finalRecipient: "bob@b.example", originalMessageID: "<m@a>", disposition: .failed,
                      failure: "mailbox full")
        let parsed = Notifications.parse(try MIMEEntity(parsing: Notifications.mdnMessage(
            mdn, from: "bob@b.example", to: "a@a", subject: "s", messageID: "<x@b>", date: Date())))
        #expect(parsed == .mdn(mdn))
    }

    @Test func dsnRoundTripsPerRecipient() async throws {
        let dsn = DSN(reportingMTA: "hisp.a.example", originalMessageID: "<m2@a.example>", recipients: [
            DSNRecipient(finalRecipient: "x@b.example", status: "5.1.1", diagnostic: "550 5.1.1 no such mailbox"),
            DSNRecipient(finalRecipient: "y@c.example", status: "5.7.1", diagnostic: "no trusted certificate"),
        ])
        let bytes = Notifications.dsnMessage(dsn, from: "postmaster@a.example", to: "alice@a.example", subject: "Undeliverable",
                                             messageID: "<d@a.example>", date: Date(), explanation: "Could not deliver.",
                                             originalHeaders: Array("Subject: hello\r\n".utf8))
        let entity = try MIMEEntity(parsing: bytes)
        #expect(entity.contentType[parameter: "report-type"] == "delivery-status")
        #expect(entity.parts.count == 3 && entity.parts[2].contentType.mimeType == "text/rfc822-headers")
        #expect(Notifications.parse(entity) == .dsn(dsn))
    }

    @Test func timelyAndReliableRequestIsRead() async throws {
        let yes = try MIMEEntity(parsing: Array("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n\r\nx".utf8))
        let no = try MIMEEntity(parsing: Array("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,false\r\n\r\nx".utf8))
        #expect(Notifications.requestsFinalDestinationDelivery(yes.headers))
        #expect(!Notifications.requestsFinalDestinationDelivery(no.headers))
    }

    @Test func addressListReadsNamesGroupsAndComments() {
        #expect(AddressList.addresses("\"Roe, Jane\" <jane@a.example>, bob@b.example (Bob), team: c@c.example, d@d.example;")
                == ["jane@a.example", "bob@b.example", "c@c.example", "d@d.example"])
        #expect(AddressList.single("Dr. Who <who@a.example>") == "who@a.example")
        #expect(AddressList.single("a@b, c@d") == nil)
    }
}
