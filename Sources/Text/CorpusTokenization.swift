import DurableFiles
import Foundation

/// How `distrain tokenize` writes a corpus's tokens.
public struct TokenizationOptions: Sendable {
    public var outputDirectory: String
    /// Tokens per shard file (llm.c's fineweb uses 100 M).
    public var shardTokens = 100_000_000
    /// The share of documents held out as the validation split (chosen by a hash of seed and document).
    public var validationFraction = 0.1
    public var seed: UInt64 = 0
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var corpus = CorpusOptions()

    public init(outputDirectory: String) { self.outputDirectory = outputDirectory }
}

/// How far a tokenization has got, for a progress line.
public struct TokenizationProgress: Sendable {
    public let bytesRead: Int
    public let totalBytes: Int
    public let tokens: Int
    public let seconds: Double
}

/// Corpus → token shards: streams documents, encodes them in parallel batches (one encoder per
/// thread), puts the end-of-text token before each document, sends whole documents to the train or
/// validation split, and writes shards and then the manifest, each atomically.
public enum CorpusTokenization {
    /// Bytes of text encoded per thread in one parallel batch.
    static let bytesPerThread = 2 << 20

    public static func run(files: [String], tokenizer: Tokenizer, options: TokenizationOptions,
                           progress: (TokenizationProgress) -> Void = { _ in }) throws -> TokenManifest {
        guard let endOfText = tokenizer.endOfText else {
            throw TextError.badTokenizer(path: "the tokenizer", problem: "it has no <|endoftext|> token to put "
                + "between documents; train one with the default special tokens")
        }
        let reader = CorpusReader(files: files, options: options.corpus)
        let settings = tokenizer.fingerprint + " " + files.map { "\($0):\(fileSize($0))" }.joined(separator: " ")
            + " \(options.shardTokens) \(options.validationFraction) \(options.seed) \(options.corpus)"
        try TokenOutputFolder.prepare(options.outputDirectory, settings: settings)
        try writeFileAtomically(Array(tokenizer.huggingFaceJSON().utf8),
                             to: options.outputDirectory + "/" + TokenManifest.tokenizerFileName)
        var batch = TokenizationBatch(tokenizer: tokenizer, options: options, endOfText: endOfText)
        let started = Date(), total = reader.totalBytes
        try reader.read { piece in
            batch.add(piece)
            if batch.pendingBytes >= bytesPerThread * max(options.threads, 1) {
                try batch.flush()
                progress(TokenizationProgress(bytesRead: reader.bytesRead, totalBytes: total, tokens: batch.tokens,
                                              seconds: Date().timeIntervalSince(started)))
            }
        }
        try batch.flush()
        let shards = try batch.finish()
        progress(TokenizationProgress(bytesRead: reader.bytesRead, totalBytes: total, tokens: batch.tokens,
                                      seconds: Date().timeIntervalSince(started)))
        guard shards.contains(where: { $0.split == "train" }) else {
            throw TextError.emptyCorpus(path: files.count == 1 ? files[0] : "the corpus")
        }
        if options.validationFraction > 0 && !shards.contains(where: { $0.split == "val" }) {
            throw TextError.unreadable(path: files.count == 1 ? files[0] : "the corpus", reason: "no document fell "
                + "into the validation split (\(batch.documents) documents); cut the text into more documents "
                + "(--split-documents lines or blank-lines) or pass --val-fraction 0")
        }
        let manifest = TokenManifest(tokenizerFingerprint: tokenizer.fingerprint, vocabularySize: tokenizer.vocabularySize,
                                     tokenizerKind: tokenizer.kind.rawValue, endOfText: endOfText, seed: options.seed,
                                     validationFraction: options.validationFraction, shards: shards)
        try writeFileAtomically(Array(manifest.json().utf8), to: options.outputDirectory + "/" + TokenManifest.fileName)
        return manifest
    }

    private static func fileSize(_ path: String) -> Int {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_size) : -1
    }
}

/// Text waiting to be encoded, cut into units of about a megabyte, and the shard writers it goes to.
struct TokenizationBatch {
    let tokenizer: Tokenizer
    let options: TokenizationOptions
    let endOfText: Int32
    private var text: [UInt8] = []
    private var units: [(range: Range<Int>, startsDocument: Bool)] = []
    private let encoders: [TokenEncoder]
    private let writers: [String: TokenShardWriter]
    private var currentSplit = "train"
    private(set) var tokens = 0
    private(set) var documents = 0

    init(tokenizer: Tokenizer, options: TokenizationOptions, endOfText: Int32) {
        self.tokenizer = tokenizer
        self.options = options
        self.endOfText = endOfText
        encoders = (0..<max(options.threads, 1)).map { _ in tokenizer.makeEncoder() }
        let width = TokenShardFormat.tokenWidth(vocabularySize: tokenizer.vocabularySize)
        writers = ["train": TokenShardWriter(directory: options.outputDirectory, split: "train", width: width,
                                             shardTokens: options.shardTokens),
                   "val": TokenShardWriter(directory: options.outputDirectory, split: "val", width: width,
                                           shardTokens: options.shardTokens)]
    }

    var pendingBytes: Int { text.count }

    mutating func add(_ piece: DocumentText) {
        let base = text.count
        text.append(contentsOf: piece.text)
        var start = base, first = true
        text.withUnsafeBufferPointer { all in
            while all.count - start > 1 << 20 {
                guard let cut = TextChunks.lastBoundary(all, before: start + (1 << 20), after: start) else { break }
                units.append((start..<cut, first && piece.startsDocument))
                first = false
                start = cut
            }
        }
        units.append((start..<text.count, first && piece.startsDocument))
    }

    mutating func flush() throws {
        guard !units.isEmpty else { return }
        var encoded = [[Int32]](repeating: [], count: units.count)
        var failure: Error?
        let workers = encoders.count, units = self.units, encoders = self.encoders
        text.withUnsafeBufferPointer { all in
            encoded.withUnsafeMutableBufferPointer { results in
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    for k in stride(from: worker, to: units.count, by: workers) {
                        do { try encoders[worker].encode(UnsafeBufferPointer(rebasing: all[units[k].range]),
                                                         appendingTo: &results[k]) } catch { failure = error }
                    }
                }
            }
        }
        if let failure { throw failure }
        for (k, unit) in units.enumerated() { try write(encoded[k], unit: unit) }
        text.removeAll(keepingCapacity: true)
        self.units.removeAll(keepingCapacity: true)
    }

    private mutating func write(_ ids: [Int32], unit: (range: Range<Int>, startsDocument: Bool)) throws {
        if unit.startsDocument {
            currentSplit = isValidation(document: documents) ? "val" : "train"
            documents += 1
            try writers[currentSplit]!.append([endOfText], textBytes: 0, startsDocument: true)
            tokens += 1
        }
        try writers[currentSplit]!.append(ids[...], textBytes: unit.range.count, startsDocument: false)
        tokens += ids.count
    }

    /// Whether document `index` is held out: a SplitMix64 hash of (seed, index) below the fraction.
    private func isValidation(document index: Int) -> Bool {
        guard options.validationFraction > 0 else { return false }
        var z = options.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53) < options.validationFraction
    }

    /// `isValidation(document:)` for tests that rebuild the split by hand.
    func isValidationForTesting(document index: Int) -> Bool { isValidation(document: index) }

    func finish() throws -> [ShardRecord] {
        try writers["train"]!.finish()
        try writers["val"]!.finish()
        return writers["train"]!.shards + writers["val"]!.shards
    }
}
