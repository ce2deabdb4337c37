import Tensors

/// Windows of seeded random token ids, in memory: what `distrain bench` trains a language model on (speed does
/// not depend on what the tokens say). Window i is tokens i·T … i·T + T of one stream; its targets the next T.
public struct SyntheticTokenDataset: Dataset {
    public let vocabularySize: Int
    public let contextLength: Int
    /// (windows·T + 1) ids.
    private let stream: [Int32]
    /// The windows this view holds (nil: all, in order).
    private let selection: [Int]?

    public init(windows: Int, contextLength: Int, vocabularySize: Int, seed: UInt64 = 7) {
        precondition(windows > 0 && contextLength > 0 && vocabularySize > 0, "synthetic tokens need positive sizes")
        var generator = SeededGenerator(seed: seed, keys: 0x544F_4B53)
        stream = (0...(windows * contextLength)).map { _ in Int32(generator.nextInt(below: vocabularySize)) }
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        selection = nil
    }

    private init(of other: SyntheticTokenDataset, selection: [Int]) {
        vocabularySize = other.vocabularySize
        contextLength = other.contextLength
        stream = other.stream
        self.selection = selection
    }

    public var count: Int { selection?.count ?? (stream.count - 1) / contextLength }
    public var sampleShape: [Int] { [contextLength] }
    public var targetKind: TargetKind { .tokens(vocabulary: vocabularySize, positions: contextLength) }
    public var stratificationLabels: [UInt8]? { nil }
    public var gatherScratchBytes: Int { 0 }
    public var checkpointMetadata: [String: String] { ["data": "synthetic-tokens", "context": "\(contextLength)"] }

    public func gather(_ indices: UnsafeBufferPointer<Int32>, into inputs: UnsafeMutablePointer<Float>,
                       targets: TargetBuffer, augmentation: AugmentationKey?) throws {
        let t = contextLength
        stream.withUnsafeBufferPointer { ids in
            for row in 0..<indices.count {
                let start = (selection?[Int(indices[row])] ?? Int(indices[row])) * t
                for j in 0..<t {
                    inputs[row * t + j] = Float(ids[start + j])
                    targets.indices[row * t + j] = ids[start + j + 1]
                }
            }
        }
    }

    public func firstSamples(_ limit: Int?) -> any Dataset {
        guard let limit, limit < count else { return self }
        return SyntheticTokenDataset(of: self, selection: Array(0..<limit).map { selection?[$0] ?? $0 })
    }

    public func samples(at indices: [Int]) throws -> any Dataset {
        SyntheticTokenDataset(of: self, selection: indices.map { selection?[$0] ?? $0 })
    }

    public func checksum() throws -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for index in 0..<count { hash = (hash ^ UInt64(selection?[index] ?? index)) &* 0x100_0000_01B3 }
        for id in stream.prefix(4096) { hash = (hash ^ UInt64(UInt32(bitPattern: id))) &* 0x100_0000_01B3 }
        return hash
    }
}
