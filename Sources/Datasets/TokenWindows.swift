import Foundation
import Text

/// A token-shard folder (`distrain tokenize`) as a dataset of windows: sample i is tokens
/// [i·T, i·T + T] of the split's shards taken as one stream — T inputs, and as targets the T tokens that
/// follow each one. Windows do not overlap, so an epoch (the batch plan's shuffled pass over window
/// indices, a function of seed and epoch only) reads every token once, and exact evaluation scores every
/// position of the held-out split once. The shards are memory-mapped: the ranks of a host share the page
/// cache, and resident memory does not follow the corpus.
public final class TokenWindowDataset: Dataset, @unchecked Sendable {
    public let directory: String
    public let split: String
    public let contextLength: Int
    public let vocabularySize: Int
    public let manifest: TokenManifest
    private let shards: [TokenShard]
    /// The stream offset where each shard starts.
    private let shardStarts: [Int]
    /// The windows this view holds (nil: all of them, in order).
    private let selection: [Int]?
    private let windowTotal: Int

    /// Opens `split` ("train" or "val") of `directory` with windows of `contextLength` tokens, checking every
    /// shard's header and every id against `vocabularySize` (default: the tokenizer's) before training.
    public convenience init(directory: String, split: String, contextLength: Int, vocabularySize: Int? = nil) throws {
        let manifest = try TokenManifest.load(directory: directory)
        let records = manifest.shards(split)
        guard !records.isEmpty else {
            throw DatasetError.malformed(path: directory, problem: "has no \(split) shards; tokenize with --val-fraction "
                + "above 0 for a validation split")
        }
        let vocabulary = vocabularySize ?? manifest.vocabularySize
        var shards: [TokenShard] = [], starts: [Int] = [], total = 0
        for record in records {
            let shard = try TokenShard(path: directory + "/" + record.file)
            guard shard.count == record.tokens else {
                throw DatasetError.malformed(path: shard.path, problem: "holds \(shard.count) tokens, the manifest says "
                    + "\(record.tokens); tokenize the corpus again")
            }
            if let bad = shard.firstToken(atLeast: vocabulary) {
                throw DatasetError.malformed(path: shard.path, problem: "token \(bad.id) at offset \(bad.offset) is outside "
                    + "the model's vocabulary of \(vocabulary); tokenize with the model's tokenizer")
            }
            shards.append(shard)
            starts.append(total)
            total += shard.count
        }
        guard contextLength >= 1, total > contextLength else {
            throw DatasetError.malformed(path: directory, problem: "the \(split) split has \(total) tokens, shorter than one "
                + "window of \(contextLength) + 1; use a smaller --context or a longer corpus")
        }
        self.init(directory: directory, split: split, contextLength: contextLength, vocabularySize: vocabulary,
                  manifest: manifest, shards: shards, shardStarts: starts, windowTotal: (total - 1) / contextLength,
                  selection: nil)
    }

    private init(directory: String, split: String, contextLength: Int, vocabularySize: Int, manifest: TokenManifest,
                 shards: [TokenShard], shardStarts: [Int], windowTotal: Int, selection: [Int]?) {
        self.directory = directory
        self.split = split
        self.contextLength = contextLength
        self.vocabularySize = vocabularySize
        self.manifest = manifest
        self.shards = shards
        self.shardStarts = shardStarts
        self.windowTotal = windowTotal
        self.selection = selection
    }

    private func view(_ selection: [Int]?) -> TokenWindowDataset {
        TokenWindowDataset(directory: directory, split: split, contextLength: contextLength, vocabularySize: vocabularySize,
                           manifest: manifest, shards: shards, shardStarts: shardStarts, windowTotal: windowTotal,
                           selection: selection)
    }

    public var count: Int { selection?.count ?? windowTotal }
    public var sampleShape: [Int] { [contextLength] }
    public var targetKind: TargetKind { .tokens(vocabulary: vocabularySize, positions: contextLength) }
    public var stratificationLabels: [UInt8]? { nil }
    public var gatherScratchBytes: Int { 0 }

    /// UTF-8 bytes of text per token in this split (for bits per byte).
    public var bytesPerToken: Double? {
        let records = manifest.shards(split)
        let tokens = records.reduce(0) { $0 + $1.tokens }, bytes = records.reduce(0) { $0 + $1.textBytes }
        return tokens > 0 && bytes > 0 ? Double(bytes) / Double(tokens) : nil
    }

    /// Token `offset` of the split's stream.
    @inline(__always) private func token(at offset: Int) -> Int32 {
        var low = 0, high = shards.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if shardStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return shards[low].token(offset - shardStarts[low])
    }

    public func gather(_ indices: UnsafeBufferPointer<Int32>, into inputs: UnsafeMutablePointer<Float>,
                       targets: TargetBuffer, augmentation: AugmentationKey?) throws {
        let t = contextLength
        for (row, index) in indices.enumerated() {
            let start = (selection?[Int(index)] ?? Int(index)) * t
            var previous = token(at: start)
            for j in 0..<t {
                let next = token(at: start + j + 1)
                inputs[row * t + j] = Float(previous)
                targets.indices[row * t + j] = next
                previous = next
            }
        }
    }

    public func firstSamples(_ limit: Int?) -> any Dataset {
        guard let limit, limit < count else { return self }
        return view((0..<limit).map { selection?[$0] ?? $0 })
    }

    public func samples(at indices: [Int]) throws -> any Dataset { view(indices.map { selection?[$0] ?? $0 }) }

    /// Windows, context, vocabulary, the tokenizer's fingerprint and 4,096 tokens spread over the stream.
    public func checksum() throws -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ value: UInt64) { h = (h ^ value) &* 0x100_0000_01B3 }
        mix(UInt64(count))
        mix(UInt64(contextLength))
        mix(UInt64(vocabularySize))
        for byte in manifest.tokenizerFingerprint.utf8 { mix(UInt64(byte)) }
        let streamLength = windowTotal * contextLength + 1
        for k in 0..<4096 { mix(UInt64(UInt32(bitPattern: token(at: k * (streamLength - 1) / 4095)))) }
        if let selection { for index in selection.prefix(4096) { mix(UInt64(index)) } }
        return h
    }

    public var checkpointMetadata: [String: String] {
        var metadata = ["data": "tokens", "context": "\(contextLength)", "vocab_size": "\(vocabularySize)",
                        "tokenizer_fingerprint": manifest.tokenizerFingerprint]
        // The tokenizer itself, so that `generate` and `serve` turn text into the model's ids with the checkpoint alone.
        if let json = try? String(contentsOfFile: directory + "/" + TokenManifest.tokenizerFileName, encoding: .utf8),
           json.utf8.count <= Tokenizer.maximumFileBytes {
            metadata["tokenizer"] = json
        }
        return metadata
    }
}
