/// Bytes from an IMAP client, cut into whole commands (RFC 9051 2.2): a
/// command is one or more lines joined by literals (`{n}` or `{n+}` at a
/// line's end, then n octets). The handler appends what the network gives
/// and asks for the next event; nothing here blocks.
public struct IMAPCommandInput: Sendable {
    public struct Limits: Sendable {
        /// The longest line between literals.
        public var maxLine: Int
        /// The largest literal (an APPEND's message: the message size limit).
        public var maxLiteral: Int
        /// Literals in one command.
        public var maxLiterals: Int

        public init(maxLine: Int = 8192, maxLiteral: Int = 32 * 1024 * 1024, maxLiterals: Int = 64) {
            self.maxLine = maxLine
            self.maxLiteral = maxLiteral
            self.maxLiterals = maxLiterals
        }
    }

    public enum Event: Sendable, Equatable {
        /// A whole command, literals included as sent (`{n}\r\n` and the n octets), without the final CRLF.
        case command([UInt8])
        /// RFC 9051 7.5: a synchronizing literal was announced; send "+ " so the client sends it.
        case continueLiteral
        /// A line was longer than `maxLine`; it is skipped to its end.
        case lineTooLong
        /// A synchronizing literal was larger than allowed: the command is refused and its literal will not come.
        /// `tag` is the command's tag when it could be read.
        case literalTooLarge(tag: String?, size: Int)
        /// A non-synchronizing literal too large, or too many literals: the connection cannot be
        /// resynchronized and must be closed (RFC 7888 4).
        case fatal(String)
    }

    public let limits: Limits
    private var bytes: [UInt8] = []
    private var start = 0
    /// Where the current command began, and where scanning for its next line resumes.
    private var scan = 0
    /// Octets of a literal still to come before scanning resumes.
    private var literalLeft = 0
    private var literals = 0
    /// After an over-long line: skip to its end.
    private var discarding = false
    /// After `.fatal`: nothing more is read.
    private var failed = false

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public var isEmpty: Bool { start == bytes.count }
    /// Octets of the command being read (a large APPEND counts here while it arrives).
    public var pendingCount: Int { bytes.count - start }

    public mutating func append(_ more: some Collection<UInt8>) {
        if start > 65_536 && start * 2 > bytes.count {
            bytes.removeSubrange(0..<start)
            scan -= start
            start = 0
        }
        bytes.append(contentsOf: more)
    }

    /// Drops everything buffered (RFC 9051 6.2.1: nothing sent before the TLS handshake is acted on after it).
    public mutating func discardAll() {
        bytes.removeAll(keepingCapacity: true)
        start = 0
        scan = 0
        literalLeft = 0
        literals = 0
        discarding = false
    }

    /// The next event, or nil when more bytes are needed.
    public mutating func next() -> Event? {
        guard !failed else { return nil }
        while true {
            if literalLeft > 0 {
                let available = bytes.count - scan
                guard available >= literalLeft else { return nil }
                scan += literalLeft
                literalLeft = 0
                continue
            }
            guard let lf = bytes[scan...].firstIndex(of: 0x0A) else {
                // Still inside a line already refused: drop what came, say nothing more.
                if discarding {
                    resetCommand(at: bytes.count)
                    return nil
                }
                if bytes.count - scan > limits.maxLine {
                    discarding = true
                    resetCommand(at: bytes.count)
                    return .lineTooLong
                }
                return nil
            }
            if discarding {
                discarding = false
                resetCommand(at: lf + 1)
                continue
            }
            var end = lf
            if end > scan && bytes[end - 1] == 0x0D { end -= 1 }
            if end - scan > limits.maxLine {
                resetCommand(at: lf + 1)
                return .lineTooLong
            }
            if let literal = Self.literalAtEnd(bytes[scan..<end]) {
                literals += 1
                guard literals <= limits.maxLiterals else {
                    failed = true
                    return .fatal("more than \(limits.maxLiterals) literals in one command")
                }
                guard literal.size <= limits.maxLiteral else {
                    if literal.synchronizing {
                        let tag = Self.tag(bytes[start..<end])
                        resetCommand(at: lf + 1)
                        return .literalTooLarge(tag: tag, size: literal.size)
                    }
                    failed = true
                    return .fatal("a literal of \(literal.size) octets is larger than the limit (\(limits.maxLiteral))")
                }
                scan = lf + 1
                literalLeft = literal.size
                if literal.synchronizing { return .continueLiteral }
                continue
            }
            let command = Array(bytes[start..<end])
            resetCommand(at: lf + 1)
            return .command(command)
        }
    }

    private mutating func resetCommand(at position: Int) {
        start = position
        scan = position
        literals = 0
    }

    /// `{123}` or `{123+}` at the end of a line (RFC 9051 4.3, RFC 7888).
    static func literalAtEnd(_ line: ArraySlice<UInt8>) -> (size: Int, synchronizing: Bool)? {
        guard line.last == 0x7D, let open = line.lastIndex(of: 0x7B) else { return nil }
        var digits = line[(open + 1)..<(line.endIndex - 1)]
        var synchronizing = true
        if digits.last == 0x2B {
            synchronizing = false
            digits = digits.dropLast()
        }
        // literal8 (RFC 3516): "~{n}".
        guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let size = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return (size, synchronizing)
    }

    /// The tag of a command line: its first word, when it is a valid tag.
    static func tag(_ line: ArraySlice<UInt8>) -> String? {
        let word = line.prefix { $0 != 0x20 }
        guard !word.isEmpty, word.count <= 64, word.allSatisfy(IMAPSyntax.isTagChar) else { return nil }
        return String(decoding: word, as: UTF8.self)
    }
}

/// Character classes of RFC 9051 9 (formal syntax).
enum IMAPSyntax {
    /// ATOM-CHAR: any CHAR except atom-specials.
    static func isAtomChar(_ b: UInt8) -> Bool {
        guard b > 0x20 && b < 0x7F else { return false }
        switch b {
        case 0x28, 0x29, 0x7B, 0x25, 0x2A, 0x22, 0x5C, 0x5D: return false  // ( ) { % * " \ ]
        default: return true
        }
    }

    /// ASTRING-CHAR: ATOM-CHAR or "]".
    static func isAStringChar(_ b: UInt8) -> Bool { isAtomChar(b) || b == 0x5D }

    /// tag: 1*<any ASTRING-CHAR except "+">.
    static func isTagChar(_ b: UInt8) -> Bool { isAStringChar(b) && b != 0x2B }

    /// list-mailbox: list-char (ATOM-CHAR / list-wildcards / resp-specials).
    static func isListChar(_ b: UInt8) -> Bool { isAtomChar(b) || b == 0x25 || b == 0x2A || b == 0x5D }
}
