import Foundation

/// llm.c's token-shard file: a header of 256 little-endian int32 (magic, version, token count, zeros),
/// then the tokens — uint16 (magic 20240520, version 1: GPT-2's vocabularies) or uint32 (magic 20240801,
/// version 7, llm.c's Llama 3 layout) when ids reach 65,536.
public enum TokenShardFormat {
    public static let headerBytes = 256 * 4
    public static let uint16Magic: Int32 = 20240520
    public static let uint32Magic: Int32 = 20240801

    /// Bytes per token for a vocabulary of `size` ids.
    public static func tokenWidth(vocabularySize size: Int) -> Int { size <= 65536 ? 2 : 4 }

    /// The header for `count` tokens of `width` bytes.
    public static func header(count: Int, width: Int) -> [Int32] {
        var header = [Int32](repeating: 0, count: 256)
        header[0] = width == 2 ? uint16Magic : uint32Magic
        header[1] = width == 2 ? 1 : 7
        header[2] = Int32(count)
        return header
    }
}

/// One token shard, memory-mapped read-only (MAP_SHARED: every rank of a host shares the page cache, and
/// resident memory does not follow the corpus). Checked on open: magic, version, count against size.
public final class TokenShard: @unchecked Sendable {
    public let path: String
    public let count: Int
    /// 2 (uint16) or 4 (uint32).
    public let width: Int
    private let mapping: UnsafeRawPointer
    private let mappedBytes: Int

    public init(path: String) throws {
        self.path = path
        let fail = { (problem: String) in TextError.badShard(path: path, problem: problem) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw TextError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw fail("not a regular file")
        }
        let size = Int(status.st_size)
        guard size >= TokenShardFormat.headerBytes else {
            throw fail("\(size) bytes is shorter than the 1024-byte header: a truncated or foreign file")
        }
        var header = [Int32](repeating: 0, count: 256)
        guard pread(descriptor, &header, TokenShardFormat.headerBytes, 0) == TokenShardFormat.headerBytes else {
            throw fail("the header cannot be read")
        }
        let magic = Int32(littleEndian: header[0]), version = Int32(littleEndian: header[1])
        switch (magic, version) {
        case (TokenShardFormat.uint16Magic, 1): width = 2
        case (TokenShardFormat.uint32Magic, 7): width = 4
        default: throw fail("magic \(magic) version \(version) is not an llm.c token shard (20240520 v1 or 20240801 v7)")
        }
        let claimed = Int(Int32(littleEndian: header[2]))
        guard claimed >= 0, TokenShardFormat.headerBytes + claimed * width == size else {
            throw fail("the header says \(claimed) tokens (\(TokenShardFormat.headerBytes + max(claimed, 0) * width) "
                + "bytes) but the file has \(size) bytes")
        }
        count = claimed
        mappedBytes = size
        guard let mapped = mmap(nil, size, PROT_READ, MAP_SHARED, descriptor, 0), mapped != MAP_FAILED else {
            throw fail("it cannot be mapped: \(String(cString: strerror(errno)))")
        }
        mapping = UnsafeRawPointer(mapped)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: mapping), mappedBytes) }

    /// Token `index` (0 ..< count).
    @inline(__always) public func token(_ index: Int) -> Int32 {
        let base = mapping + TokenShardFormat.headerBytes
        if width == 2 { return Int32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))) }
        return Int32(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
    }

    /// The first token at or above `limit`, as (offset, id), or nil when every id is below it.
    public func firstToken(atLeast limit: Int) -> (offset: Int, id: Int)? {
        for index in 0..<count where Int(token(index)) >= limit || token(index) < 0 {
            return (index, Int(UInt32(bitPattern: token(index))))
        }
        return nil
    }
}
