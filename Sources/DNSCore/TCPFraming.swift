import NIOCore

/// RFC 1035 4.2.2 / RFC 7766 8: over TCP each DNS message is preceded by its
/// two-octet length. Emits one ByteBuffer per message.
public struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length),
              let message = buffer.getSlice(at: buffer.readerIndex + 2, length: Int(length))
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2 + Int(length))
        context.fireChannelRead(wrapInboundOut(message))
        return .continue
    }
}

extension ByteBuffer {
    /// A DNS message with its TCP length prefix.
    public static func dnsTCPFrame(_ message: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: message.count + 2)
        out.writeInteger(UInt16(message.count))
        out.writeBytes(message)
        return out
    }
}
