import Testing
@testable import IMAPCore

/// Commands as clients send them, cut by `IMAPCommandInput` and read by `IMAPParser`.
@Suite struct IMAPParserTests {
    func parse(_ text: String) -> Result<TaggedCommand, IMAPParseError> { IMAPParser.parse(Array(text.utf8)) }

    func command(_ text: String) throws -> IMAPCommand {
        switch parse(text) {
        case .success(let c): return c.command
        case .failure(let e): throw e
        }
    }

    @Test func commandsWithAtomsQuotedStringsAndLiterals() async throws {
        #expect(try command("a1 LOGIN alice@example.org \"pass \\\"word\\\\\"") == .login(user: "alice@example.org", password: "pass \"word\\"))
        #expect(try command("a2 login {5}\r\nalice {3+}\r\npwd") == .login(user: "alice", password: "pwd"))
        #expect(try command("a3 SELECT inbox (CONDSTORE)") == .select("inbox", condStore: true))
        #expect(try command("a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100>)") ==
                .fetch(uid: true, SequenceSet(ranges: [.init(from: .number(1), to: .last)]),
                       [.flags, .section(BodySection(text: .headerFields(["From", "Subject"])), partial: 0...99, peek: true, legacy: nil)],
                       changedSince: nil, vanished: false))
        #expect(try command("a5 FETCH 2,4:6 ALL") == .fetch(uid: false, SequenceSet(ranges: [.init(from: .number(2), to: .number(2)), .init(from: .number(4), to: .number(6))]),
                                                        [.flags, .internalDate, .size, .envelope], changedSince: nil, vanished: false))
        #expect(try command("a6 FETCH 1 (BODY[1.2.MIME] BODY[] RFC822.SIZE BINARY.PEEK[1] MODSEQ) (CHANGEDSINCE 12345)") ==
                .fetch(uid: false, SequenceSet(ranges: [.init(from: .number(1), to: .number(1))]),
                       [.section(BodySection(part: [1, 2], text: .mime), partial: nil, peek: false, legacy: nil),
                        .section(BodySection(), partial: nil, peek: false, legacy: nil), .size, .binary([1], partial: nil, peek: true), .modSeq],
                       changedSince: 12345, vanished: false))
        #expect(try command("a7 UID STORE 5 (UNCHANGEDSINCE 7) +FLAGS.SILENT (\\Seen $Important)") ==
                .store(uid: true, SequenceSet(ranges: [.init(from: .number(5), to: .number(5))]), .add, silent: true,
                       flags: ["\\Seen", "$Important"], unchangedSince: 7))
        #expect(try command("a8 STORE 1 -FLAGS \\Deleted") == .store(uid: false, SequenceSet(ranges: [.init(from: .number(1), to: .number(1))]), .remove,
                                                                     silent: false, flags: ["\\Deleted"], unchangedSince: nil))
        #expect(try command("a9 UID MOVE 1:3 Archive") == .move(uid: true, SequenceSet(ranges: [.init(from: .number(1), to: .number(3))]), "Archive"))
        #expect(try command("b1 LIST \"\" *") == .list(reference: "", patterns: ["*"], selectSubscribed: false, selectSpecialUse: false,
                                                        returnSubscribed: false, returnSpecialUse: false, returnChildren: false, returnStatus: nil))
        #expect(try command("b2 LIST (SPECIAL-USE) \"\" (% INBOX) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))") ==
                .list(reference: "", patterns: ["%", "INBOX"], selectSubscribed: false, selectSpecialUse: true, returnSubscribed: false,
                      returnSpecialUse: false, returnChildren: true, returnStatus: ["MESSAGES", "UNSEEN"]))
        #expect(try command("b3 STATUS Sent (MESSAGES UIDNEXT HIGHESTMODSEQ)") == .status("Sent", ["MESSAGES", "UIDNEXT", "HIGHESTMODSEQ"]))
        #expect(try command("b4 ID (\"name\" \"Thunderbird\" \"version\" NIL)") == .id([IDField(name: "name", value: "Thunderbird"), IDField(name: "version", value: nil)]))
        #expect(try command("b5 ENABLE IMAP4rev2 CONDSTORE") == .enable(["IMAP4REV2", "CONDSTORE"]))
        #expect(try command("b6 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==") == .authenticate(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHNlY3JldA=="))
        #expect(try command("b7 UID EXPUNGE 4:5") == .uidExpunge(SequenceSet(ranges: [.init(from: .number(4), to: .number(5))])))
    }

    @Test func appendTakesFlagsADateAndTheMessage() async throws {
        guard case .append(let box, let flags, let date, let message) = try command("c1 APPEND Drafts (\\Draft \\Seen) \"05-Dec-2026 10:30:00 +0100\" {12}\r\nSubject: x\r\n") else {
            Issue.record("not an APPEND")
            return
        }
        #expect(box == "Drafts" && flags == ["\\Draft", "\\Seen"])
        #expect(date?.timeIntervalSince1970 == 1_796_463_000)
        #expect(message == Array("Subject: x\r\n".utf8))
    }

    @Test func searchKeysNestAndCombine() async throws {
        #expect(try command("s1 SEARCH UNSEEN FROM \"alice\" SINCE 1-Feb-2026") ==
                .search(uid: false, returnOptions: nil, key: .and([.flag("\\Seen", set: false), .header("FROM", "alice"), .since(IMAPDay(year: 2026, month: 2, day: 1))])))
        #expect(try command("s2 UID SEARCH CHARSET UTF-8 OR (SUBJECT referral LARGER 100) NOT DELETED") ==
                .search(uid: true, returnOptions: nil, key: .or(.and([.header("SUBJECT", "referral"), .larger(100)]), .not(.flag("\\Deleted", set: true)))))
        #expect(try command("s3 SEARCH RETURN (COUNT MIN) 1:* HEADER X-Direct yes MODSEQ 9") ==
                .search(uid: false, returnOptions: ["COUNT", "MIN"], key: .and([.sequence(SequenceSet(ranges: [.init(from: .number(1), to: .last)])),
                                                                                  .header("X-Direct", "yes"), .modSeq(9)])))
    }

    @Test func badInputIsRefusedWithAReasonAndTheTag() {
        func refusal(_ text: String) -> IMAPParseError? {
            if case .failure(let e) = parse(text) { return e }
            return nil
        }
        #expect(refusal("a1 FROBNICATE")?.message == "unknown command FROBNICATE")
        #expect(refusal("a1 FROBNICATE")?.tag == "a1")
        #expect(refusal("+x NOOP")?.tag == nil, "+ cannot start a tag")
        #expect(refusal("a2 SELECT")?.message == "the command ends too early")
        #expect(refusal("a3 FETCH 0 FLAGS")?.message == "a message number cannot be 0")
        #expect(refusal("a4 FETCH 99999999999 FLAGS")?.message == "a message number is too large")
        #expect(refusal("a5 SEARCH CHARSET KOI8-R ALL")?.message.hasPrefix("[BADCHARSET") == true)
        #expect(refusal("a6 LOGIN \"unterminated")?.message == "a quoted string is not closed")
        #expect(refusal("a7 NOOP extra")?.message.hasPrefix("unexpected text after the command") == true)
        #expect(refusal("a8 LOGIN {10}\r\nshort")?.message == "the literal is shorter than announced")
        let deep = "a9 SEARCH " + String(repeating: "(", count: 100_000) + "ALL" + String(repeating: ")", count: 100_000)
        #expect(refusal(deep)?.message == "search keys nest deeper than 32")
        let manyRanges = "b1 FETCH " + (1...1001).map { "\($0 * 2)" }.joined(separator: ",") + " FLAGS"
        #expect(refusal(manyRanges)?.message == "a sequence set has at most 1000 ranges")
        #expect(refusal("b2 SEARCH SINCE 31-Foo-2026")?.message == "31-Foo-2026 is not a date like 1-Feb-2026")
    }

    @Test func theInputCutsCommandsAtLiteralsAndAsksForSynchronizingOnes() {
        var input = IMAPCommandInput(limits: .init(maxLine: 100, maxLiteral: 20))
        var events: [IMAPCommandInput.Event] = []
        let text = "a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\na2 NOOP\r\na3 APPEND x {100}\r\na4 LOGIN {30+}\r\n"
        // Fed byte by byte, as a slow network would.
        for b in text.utf8 {
            input.append([b])
            while let e = input.next() { events.append(e) }
        }
        #expect(events == [
            .continueLiteral,
            .command(Array("a1 LOGIN {5}\r\nalice {6+}\r\nsecret".utf8)),
            .command(Array("a2 NOOP".utf8)),
            .literalTooLarge(tag: "a3", size: 100),
            .fatal("a literal of 30 octets is larger than the limit (20)"),
        ])
    }

    @Test func anOverlongLineArrivingInPiecesIsRefusedOnce() {
        // Three times the limit, in pieces as TCP gives them: one refusal, then the next command.
        var input = IMAPCommandInput(limits: .init(maxLine: 10))
        var events: [IMAPCommandInput.Event] = []
        for b in ("a1 SEARCH " + String(repeating: "(", count: 30) + "\r\na2 NOOP\r\n").utf8 {
            input.append([b])
            while let e = input.next() { events.append(e) }
        }
        #expect(events == [.lineTooLong, .command(Array("a2 NOOP".utf8))])
    }

    @Test func anOverlongLineIsSkippedAndTheNextCommandRead() {
        var input = IMAPCommandInput(limits: .init(maxLine: 10))
        input.append(Array("a1 NOOP NOOP NOOP NOOP\r\na2 NOOP\r\n".utf8))
        #expect(input.next() == .lineTooLong)
        #expect(input.next() == .command(Array("a2 NOOP".utf8)))
        #expect(input.next() == nil)
    }
}
