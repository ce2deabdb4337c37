import Foundation

/// What `distrain tokenizer train` makes.
public struct TokenizerTrainingOptions: Sendable {
    public var vocabularySize = 4096
    public var pattern = SplitPattern.gpt2
    public var specialTokens = ["<|endoftext|>"]
    /// A character-level vocabulary instead of byte-level BPE (`vocabularySize` is then what the text has).
    public var characterLevel = false
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var corpus = CorpusOptions()

    public init() {}
}

/// Trains a tokenizer on a corpus streamed from files: memory follows the distinct pieces, not the text.
public enum TokenizerTraining {
    public static func train(files: [String], options: TokenizerTrainingOptions) throws -> Tokenizer {
        let reader = CorpusReader(files: files, options: options.corpus)
        if options.characterLevel {
            var builder = CharacterVocabularyBuilder(specialTokens: options.specialTokens)
            try reader.read { builder.count($0.text) }
            return try emptyCorpusNamed(files) { try builder.build() }
        }
        var trainer = try BPETrainer(vocabularySize: options.vocabularySize, pattern: options.pattern,
                                     specialTokens: options.specialTokens, threads: options.threads)
        var text: [UInt8] = [], segments: [Range<Int>] = []
        let batchBytes = 2 << 20 * max(options.threads, 1)
        func countBatch() {
            text.withUnsafeBufferPointer { all in
                var parts: [Range<Int>] = []
                for segment in segments {
                    let piece = UnsafeBufferPointer(rebasing: all[segment])
                    parts += TextChunks.split(piece, into: options.threads, pattern: options.pattern)
                        .map { ($0.lowerBound + segment.lowerBound)..<($0.upperBound + segment.lowerBound) }
                }
                trainer.count(all, segments: parts)
            }
            text.removeAll(keepingCapacity: true)
            segments.removeAll(keepingCapacity: true)
        }
        try reader.read { piece in
            segments.append(text.count..<(text.count + piece.text.count))
            text.append(contentsOf: piece.text)
            if text.count >= batchBytes { countBatch() }
        }
        countBatch()
        return try emptyCorpusNamed(files) { try trainer.train() }
    }

    private static func emptyCorpusNamed(_ files: [String], _ body: () throws -> Tokenizer) throws -> Tokenizer {
        do { return try body() } catch TextError.emptyCorpus {
            throw TextError.emptyCorpus(path: files.count == 1 ? files[0] : files.isEmpty ? "the corpus" : "\(files.count) files")
        }
    }
}
