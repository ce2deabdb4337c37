import DurableFiles
/// Appends tokens to numbered shards of one split (`train_000000.bin`, …), each at most `shardTokens`
/// long and committed atomically when full or finished; memory is one write buffer.
final class TokenShardWriter {
    let directory: String
    let split: String
    let width: Int
    let shardTokens: Int
    private(set) var shards: [ShardRecord] = []
    private var file: AtomicFile?
    private var tokensInShard = 0
    private var bytesInShard = 0
    private var documentsInShard = 0
    private var scratch: [UInt8] = []

    init(directory: String, split: String, width: Int, shardTokens: Int) {
        self.directory = directory
        self.split = split
        self.width = width
        self.shardTokens = shardTokens
    }

    /// Appends `tokens` (ids of `textBytes` bytes of text; a document starts here when `startsDocument`).
    func append(_ tokens: ArraySlice<Int32>, textBytes: Int, startsDocument: Bool) throws {
        var remaining = tokens
        var bytesLeft = textBytes
        if startsDocument { documentsInShard += 1 }
        while !remaining.isEmpty {
            if file == nil { try openShard() }
            let take = min(remaining.count, shardTokens - tokensInShard)
            let taken = remaining.prefix(take)
            // Text bytes follow the tokens that encode them, shared in proportion when a shard fills up.
            let bytes = take == remaining.count ? bytesLeft : bytesLeft * take / remaining.count
            try write(taken)
            tokensInShard += take
            bytesInShard += bytes
            bytesLeft -= bytes
            remaining = remaining.dropFirst(take)
            if tokensInShard == shardTokens { try closeShard() }
        }
    }

    private func write(_ tokens: ArraySlice<Int32>) throws {
        scratch.removeAll(keepingCapacity: true)
        for token in tokens {
            let value = UInt32(bitPattern: token)
            scratch.append(UInt8(value & 0xFF))
            scratch.append(UInt8(value >> 8 & 0xFF))
            if width == 4 {
                scratch.append(UInt8(value >> 16 & 0xFF))
                scratch.append(UInt8(value >> 24))
            }
        }
        try file!.append(scratch)
    }

    private var shardName: String { "\(split)_" + String(String(shards.count + 1_000_000).dropFirst()) + ".bin" }

    private func openShard() throws {
        let opened = try AtomicFile(path: directory + "/" + shardName)
        try opened.append([UInt8](repeating: 0, count: TokenShardFormat.headerBytes))
        file = opened
        tokensInShard = 0
        bytesInShard = 0
    }

    private func closeShard() throws {
        guard let file else { return }
        let header = TokenShardFormat.header(count: tokensInShard, width: width)
        try file.write(header.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }, at: 0)
        try file.commit()
        shards.append(ShardRecord(file: shardName, split: split, tokens: tokensInShard, textBytes: bytesInShard,
                                  documents: documentsInShard))
        documentsInShard = 0
        self.file = nil
    }

    /// Commits the shard being written, if any.
    func finish() throws { try closeShard() }
}
