import CZlib

/// Deflate cannot expand data by more than about 1032:1, so a file can never justify more output.
let maximumDeflateRatio = 1032

/// True when the bytes start with the gzip magic number.
public func isGzip(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
}

/// Decompresses a whole gzip file (all members), refusing output beyond `limit` bytes.
///
/// Output grows with the data actually produced, so a lying header cannot force a large allocation.
/// Truncated or corrupt input is an error naming `path`, never a spin or a crash.
///
/// - Parameter prefix: stop as soon as this many bytes are out (to read a header before the rest).
public func gunzip(_ compressed: [UInt8], path: String, limit: Int? = nil, prefix: Int? = nil) throws -> [UInt8] {
    let cap = limit ?? (compressed.count * maximumDeflateRatio + 65_536)
    var output: [UInt8] = []
    output.reserveCapacity(min(cap, compressed.count * 4))
    var stream = z_stream()
    // 15 window bits + 16: expect a gzip wrapper.
    guard czlib_inflate_init2(&stream, 15 + 16) == Z_OK else {
        throw DatasetError.malformed(path: path, problem: "zlib could not start inflating")
    }
    defer { inflateEnd(&stream) }
    var chunk = [UInt8](repeating: 0, count: 1 << 18)
    try compressed.withUnsafeBufferPointer { input in
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
        stream.avail_in = UInt32(input.count)
        while true {
            let status: Int32 = chunk.withUnsafeMutableBufferPointer { out in
                stream.next_out = out.baseAddress
                stream.avail_out = UInt32(out.count)
                return inflate(&stream, Z_NO_FLUSH)
            }
            let produced = chunk.count - Int(stream.avail_out)
            if output.count + produced > cap {
                throw DatasetError.malformed(path: path, problem: limit == nil ? "decompresses to more than \(cap) bytes, more than the file can hold" : "decompresses to more than \(cap) bytes, the size its header declares; the file is corrupt or not what it claims")
            }
            output.append(contentsOf: chunk[0..<produced])
            if let prefix, output.count >= prefix { return }
            switch status {
            case Z_STREAM_END:
                // Another gzip member may follow (concatenated files are valid gzip).
                if stream.avail_in == 0 { return }
                let remaining = UnsafeBufferPointer(start: stream.next_in, count: Int(stream.avail_in))
                if remaining.allSatisfy({ $0 == 0 }) { return }  // trailing padding
                guard remaining.count >= 2, remaining[0] == 0x1F, remaining[1] == 0x8B else {
                    throw DatasetError.malformed(path: path, problem: "unexpected bytes after the end of the gzip stream")
                }
                guard inflateReset(&stream) == Z_OK else {
                    throw DatasetError.malformed(path: path, problem: "zlib could not restart for the next gzip member")
                }
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress possible with a fresh output chunk: the input ended before the stream did.
                throw DatasetError.malformed(path: path, problem: "truncated gzip data (the file ends before the compressed stream does); download it again")
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                throw DatasetError.malformed(path: path, problem: "corrupt gzip data (\(message)); download it again")
            }
        }
    }
    return output
}

/// The file's bytes, decompressed when it is gzip.
///
/// - Parameter declaredSize: the whole file's size as its own header declares it, given the first
///   `headerBytes` decompressed bytes (nil when they are no valid header). Decompression stops there:
///   a stream that inflates beyond what its header promises is refused at that size, not at deflate's
///   1032:1 limit.
public func readPossiblyCompressed(_ path: String, headerBytes: Int = 0,
                                   declaredSize: ([UInt8]) -> Int? = { _ in nil }) throws -> [UInt8] {
    let bytes = try readFileBytes(path)
    guard isGzip(bytes) else { return bytes }
    var limit: Int?
    if headerBytes > 0 {
        let header = try gunzip(bytes, path: path, prefix: headerBytes)
        limit = declaredSize(header).map { min($0, bytes.count * maximumDeflateRatio + 65_536) }
    }
    return try gunzip(bytes, path: path, limit: limit)
}
