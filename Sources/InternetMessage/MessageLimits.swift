/// Explicit limits on everything the parser reads. Each is enforced with a
/// specific `MessageError`.
public struct MessageLimits: Sendable, Hashable {
    /// Whole message, bytes.
    public var maxMessageBytes: Int
    /// One entity's header section, bytes.
    public var maxHeaderSectionBytes: Int
    /// One physical header line, bytes without its line ending. RFC 5322 2.1.1
    /// sets 998 for what we write; received mail is allowed some slack.
    public var maxHeaderLineLength: Int
    /// Header fields in one entity.
    public var maxHeaderFields: Int
    /// Multipart nesting depth.
    public var maxDepth: Int
    /// MIME parts in the whole message.
    public var maxParts: Int

    public init(
        maxMessageBytes: Int = 64 * 1024 * 1024,
        maxHeaderSectionBytes: Int = 256 * 1024,
        maxHeaderLineLength: Int = 8192,
        maxHeaderFields: Int = 1000,
        maxDepth: Int = 16,
        maxParts: Int = 1000
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.maxHeaderSectionBytes = maxHeaderSectionBytes
        self.maxHeaderLineLength = maxHeaderLineLength
        self.maxHeaderFields = maxHeaderFields
        self.maxDepth = maxDepth
        self.maxParts = maxParts
    }

    public static let `default` = MessageLimits()
}
