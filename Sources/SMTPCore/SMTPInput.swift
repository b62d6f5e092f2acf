/// Bytes received from a peer, cut into command lines or read as message data.
/// The handler appends what the network delivers; nothing here blocks.
public struct SMTPInputBuffer: Sendable {
    private var bytes: [UInt8] = []
    private var start = 0
    /// After an over-long line: skip to its end before reading the next.
    private var discarding = false

    public init() {}

    public var isEmpty: Bool { start == bytes.count }
    public var count: Int { bytes.count - start }

    public mutating func append(_ more: some Collection<UInt8>) {
        if start > 65_536 && start * 2 > bytes.count {
            bytes.removeSubrange(0..<start)
            start = 0
        }
        bytes.append(contentsOf: more)
    }

    /// Drops everything buffered (RFC 3207 5: nothing sent before the TLS handshake may be acted on after it).
    public mutating func discardAll() {
        bytes.removeAll(keepingCapacity: true)
        start = 0
        discarding = false
    }

    public enum Line: Equatable, Sendable {
        case line([UInt8])
        /// A line exceeded the limit; its rest is skipped.
        case tooLong
    }

    /// The next line without its line ending (CRLF, or a bare LF from a lenient
    /// client in command mode), or nil when no whole line is buffered yet.
    public mutating func takeLine(limit: Int) -> Line? {
        while true {
            let lf = bytes[start...].firstIndex(of: 0x0A)
            if discarding {
                guard let lf else {
                    start = bytes.count
                    return nil
                }
                start = lf + 1
                discarding = false
                continue
            }
            guard let lf else {
                if count > limit {
                    discarding = true
                    start = bytes.count
                    return .tooLong
                }
                return nil
            }
            var end = lf
            if end > start && bytes[end - 1] == 0x0D { end -= 1 }
            let line = Array(bytes[start..<end])
            start = lf + 1
            return line.count > limit ? .tooLong : .line(line)
        }
    }

    /// Moves message data into `reader` (RFC 5321 4.1.1.4, 4.5.2) and returns
    /// its outcome once the terminating `.` line arrived; bytes after it stay
    /// buffered (pipelined commands).
    ///
    /// `admit` is asked, with the message's size, before a whole message is put together
    /// (and so before it takes memory twice, as pieces and as one array); a reply it gives
    /// refuses the message instead.
    public mutating func read(into reader: inout SMTPDataReader, admit: (Int) -> SMTPReply? = { _ in nil }) -> SMTPDataReader.Outcome? {
        while start < bytes.count {
            guard let lf = bytes[start...].firstIndex(of: 0x0A) else {
                // A partial line: keep it unless it is already past any sane length.
                // The last byte stays: it may be the CR of this line's CRLF.
                if count > SMTPDataReader.maxBufferedPartialLine {
                    reader.partial(bytes[start..<bytes.count - 1])
                    start = bytes.count - 1
                }
                return nil
            }
            let line = bytes[start..<lf + 1]
            start = lf + 1
            if let outcome = reader.line(line, admit: admit) { return outcome }
        }
        return nil
    }
}

/// Reads the body of DATA: dot-unstuffing, the end marker, limits, and the
/// checks that keep SMTP smuggling out (only CRLF ends a line, RFC 5321 2.3.8).
public struct SMTPDataReader: Sendable {
    public enum Outcome: Equatable, Sendable {
        case message([UInt8])
        /// Read to the end, but not acceptable; the reply says why.
        case rejected(SMTPReply)
        /// Cannot go on reading (bare LF): reply and close.
        case abort(SMTPReply)
    }

    static let maxBufferedPartialLine = 65_536

    public let maxBytes: Int
    /// RFC 5322 2.1.1: at most 998 characters per line, excluding CRLF.
    public let maxLineLength: Int
    /// The message so far, in pieces of `chunkSize`: a message that grows does not leave
    /// freed buffers of half, a quarter, ... its size behind (as one doubling array would),
    /// and what it holds is what it received. Joined once, at its end.
    private var chunks: [[UInt8]] = []
    private var current: [UInt8] = []
    private var stored = 0
    static let chunkSize = 64 * 1024
    private var size = 0
    private var midLine = false
    private var currentLineLength = 0
    private var longestLine = 0
    private var bareCR = false
    /// Set when the server cannot hold this message now (`stopStoring`): the rest is read and dropped.
    private var refusal: SMTPReply?

    public init(maxBytes: Int, maxLineLength: Int = 998) {
        self.maxBytes = maxBytes
        self.maxLineLength = maxLineLength
        current.reserveCapacity(min(maxBytes, Self.chunkSize))
    }

    mutating func partial(_ bytes: ArraySlice<UInt8>) {
        currentLineLength += bytes.count
        longestLine = max(longestLine, currentLineLength)
        add(bytes)
        midLine = true
    }

    private mutating func add(_ bytes: ArraySlice<UInt8>) {
        size += bytes.count
        guard size <= maxBytes && refusal == nil else { return }
        var rest = bytes[...]
        while !rest.isEmpty {
            if current.count == Self.chunkSize {
                chunks.append(current)
                current = []
                current.reserveCapacity(Self.chunkSize)
            }
            let n = min(rest.count, Self.chunkSize - current.count)
            current.append(contentsOf: rest.prefix(n))
            rest = rest.dropFirst(n)
            stored += n
        }
    }

    /// The bytes of the message held so far (what a memory budget counts).
    public var storedBytes: Int { chunks.count * Self.chunkSize + current.capacity }

    /// The message as one array (made once, at its end).
    var message: [UInt8] {
        if chunks.isEmpty { return current }
        var whole: [UInt8] = []
        whole.reserveCapacity(stored)
        for c in chunks { whole.append(contentsOf: c) }
        whole.append(contentsOf: current)
        return whole
    }

    /// The server cannot hold this message now (a memory budget is spent): what
    /// was stored is released, the rest of the data is read and dropped, and the
    /// end of the data is answered with `reply` (a 4xx, so the sender retries).
    public mutating func stopStoring(_ reply: SMTPReply) {
        guard refusal == nil else { return }
        refusal = reply
        chunks = []
        current = []
    }

    /// One line including its LF.
    mutating func line(_ line: ArraySlice<UInt8>, admit: (Int) -> SMTPReply? = { _ in nil }) -> Outcome? {
        let lf = line.endIndex - 1
        // RFC 5321 2.3.8: lines end in CRLF; a bare LF is how SMTP smuggling works.
        guard line.count >= 2, line[lf - 1] == 0x0D else {
            return .abort(SMTPReply(554, "5.5.2", "bare LF in message data (RFC 5321 2.3.8); closing"))
        }
        var content = line[line.startIndex..<lf - 1]
        if !midLine {
            // RFC 5321 4.1.1.4: a line with only "." ends the data.
            if content.count == 1 && content.first == 0x2E { return finish(admit: admit) }
            // RFC 5321 4.5.2: a leading dot was doubled by the client.
            if content.first == 0x2E { content = content.dropFirst() }
        }
        if content.contains(0x0D) { bareCR = true }
        currentLineLength += content.count
        longestLine = max(longestLine, currentLineLength)
        currentLineLength = 0
        midLine = false
        add(line[content.startIndex...])
        return nil
    }

    private mutating func finish(admit: (Int) -> SMTPReply?) -> Outcome {
        if size > maxBytes {
            // RFC 5321 4.5.3.1.10 / RFC 1870: 552 for a message over the size limit.
            return .rejected(SMTPReply(552, "5.3.4", "message exceeds the size limit of \(maxBytes) octets"))
        }
        if let refusal { return .rejected(refusal) }
        if let refusal = admit(stored) {
            stopStoring(refusal)
            return .rejected(refusal)
        }
        if bareCR {
            return .rejected(SMTPReply(554, "5.6.0", "bare CR in message data (RFC 5321 2.3.8)"))
        }
        if longestLine > maxLineLength {
            return .rejected(SMTPReply(554, "5.6.0", "a line is longer than \(maxLineLength) characters (RFC 5322 2.1.1)"))
        }
        return .message(message)
    }
}
