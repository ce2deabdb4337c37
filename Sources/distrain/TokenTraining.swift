import DistrainKit
import ArgumentParser
import Collectives
import Datasets
import Foundation
import Layers
import Text
import Training

/// Flags that only token data reads.
struct TokenDataOptions: ParsableArguments {
    @Option(help: "Token data: positions per window (T); a sample is T tokens and, as targets, the T that follow.")
    var context = 64

    @Option(name: .customLong("eval-batches"),
            help: "Token data: evaluate on K batches of windows spread evenly over the val split (default: every window).")
    var evalBatches: Int?

    @Option(help: ArgumentHelp("Train on text: a tokenizer.json, or 'char' for a character-level vocabulary of the corpus. "
        + "The corpus (files or folders) is tokenized once into a cache in --checkpoint-dir (or the current folder)."))
    var tokenizer: String?

    @Option(name: .customLong("split-documents"), help: ArgumentHelp("Train on text: what a document is (file, "
        + "blank-lines, lines); a tenth of the documents is the validation split."))
    var splitDocuments: DocumentSplitting = .file

    @Option(name: .customLong("init-from"), help: ArgumentHelp("Start from pretrained weights: a Hugging Face GPT2LMHeadModel "
        + "model.safetensors, loaded into a model of the same size (--model gpt2, or a spec in GPT-2's layout)."))
    var initFrom: String?

    func validate() throws {
        if let initFrom, !FileManager.default.isReadableFile(atPath: initFrom) {
            throw ValidationError("--init-from \(initFrom) is not a readable file; give a Hugging Face model.safetensors")
        }
        if !(1...65_536).contains(context) { throw ValidationError("--context must be in 1...65536, got \(context)") }
        if let evalBatches, evalBatches < 1 { throw ValidationError("--eval-batches must be at least 1, got \(evalBatches)") }
        if let tokenizer, tokenizer != "char", !FileManager.default.isReadableFile(atPath: tokenizer) {
            throw ValidationError("--tokenizer \(tokenizer) is neither 'char' nor a readable tokenizer.json")
        }
    }
}

/// Whether `path` is a folder `distrain tokenize` wrote (it holds a manifest).
func isTokenShardFolder(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        && FileManager.default.fileExists(atPath: path + "/" + TokenManifest.fileName)
}

/// `distrain train DIR` on a token-shard folder: windows of the train split, exact evaluation on the
/// validation split (`--test-limit N` scores its first N windows), next-token cross-entropy.
func runTokenTraining(directory source: String, options: TrainOptions, tokens: TokenDataOptions) throws {
    if tokens.tokenizer != nil { try refuseOutputInsideData(options.checkpointDirectory, data: source) }  // a corpus folder
    let session = try TrainingSession(threads: options.resources.threads, collectiveTimeout: options.collectiveTimeout,
                                      localRanks: options.localRanks, precision: options.precision)
    let lock = try session.lockOnCoordinator(options.checkpointDirectory)
    defer { withExtendedLifetime(lock) {} }
    try session.run {
        session.tracker.enter(.loading)
        let directory = try tokens.tokenizer.map {
            try tokenShardCache(corpus: [source], tokenizer: $0, splitting: tokens.splitDocuments,
                                root: options.checkpointDirectory, communicator: session.communicator)
        } ?? source
        let name = URL(fileURLWithPath: source).lastPathComponent
        let run = try TokenRun(directory: directory, name: name, options: options, tokens: tokens,
                               communicator: session.communicator)
        session.tracker.enter(.startup)
        try session.train(RunPlan(options: options, configuration: run.configuration), data: run.data,
                          objective: run.objective, builtModel: run.builtModel, makeModel: { try run.makeModel(communicator: $0) })
    }
}

/// What a language model trains on and with, from a token-shard folder and the flags: the train split's windows,
/// the val split's windows to score (all, `--test-limit`, or `--eval-batches`), the next-token objective, and the
/// configuration (nanoGPT's AdamW groups, MFU reported). Every rank opens the shards; all agree before going on.
struct TokenRun {
    let data: TrainingData
    let objective: NextTokenObjective
    let configuration: TrainingConfiguration
    let context: Int
    let initFrom: String?

    /// - Parameter validationAsSelection: the val windows also as the validation split, so that `--monitor val_loss`
    ///   selects on them (sweeps).
    init(directory: String, name: String, options: TrainOptions, tokens: TokenDataOptions, communicator: Communicator,
         validationAsSelection: Bool = false) throws {
        let (train, validation) = try communicator.collectively {
            (try TokenWindowDataset(directory: directory, split: "train", contextLength: tokens.context),
             try TokenWindowDataset(directory: directory, split: "val", contextLength: tokens.context))
        }
        var configuration = options.configuration(name: name, augmentsByDefault: false)
        if configuration.modelFile == nil && configuration.gptPreset == nil { configuration.modelName = "token-mlp" }
        configuration.decaysMatricesOnly = true  // nanoGPT's AdamW groups: no decay on biases and LayerNorm weights
        configuration.reportsModelFlopsUtilization = true
        let scored = try evaluationWindows(validation, configuration: configuration, tokens: tokens)
        data = TrainingData(name: name, train: train.firstSamples(configuration.trainLimit), test: scored,
                            validation: validationAsSelection ? scored : nil)
        objective = NextTokenObjective(vocabularySize: train.vocabularySize, positions: tokens.context,
                                       bytesPerToken: validation.bytesPerToken)
        self.configuration = configuration
        context = tokens.context
        initFrom = tokens.initFrom
    }

    /// The model's layers with every size, nothing allocated (the memory preflight).
    func builtModel() throws -> BuiltModel {
        try configuration.builtModel(inputShape: [context], outputShape: objective.outputShape)
    }

    /// A rank's model: the flags' model for the windows and vocabulary, from `--init-from` when given. With
    /// `--shard parameters`, the values of `communicator`'s rank only.
    func makeModel(communicator: Communicator? = nil) throws -> Sequential {
        let model = try configuration.makeModel(inputShape: [context], outputShape: objective.outputShape,
                                                communicator: communicator)
        if let initFrom { try PretrainedGPT2.load(initFrom, into: model, in: model.parameters.initializedRange) }
        return model
    }
}

/// The validation windows a run scores: all (exact), the first `--test-limit`, or `--eval-batches K` batches
/// spread evenly over the split (the same windows at every evaluation).
private func evaluationWindows(_ validation: TokenWindowDataset, configuration: TrainingConfiguration,
                               tokens: TokenDataOptions) throws -> any Dataset {
    guard let batches = tokens.evalBatches else { return validation.firstSamples(configuration.testLimit) }
    let wanted = min(batches * configuration.globalBatchSize, validation.count)
    return try validation.samples(at: (0..<wanted).map { $0 * validation.count / wanted })
}

/// `distrain train CORPUS --tokenizer tok.json|char`: the corpus's token shards, made once (by the
/// coordinator; the others wait for its verdict) in a cache folder named by the tokenizer and the corpus.
func tokenShardCache(corpus: [String], tokenizer: String, splitting: DocumentSplitting, root: String?,
                     communicator: Communicator) throws -> String {
    let folder = try communicator.onCoordinator {
        try makeTokenShardCache(corpus: corpus, tokenizer: tokenizer, splitting: splitting, root: root)
    }
    let bytes = try communicator.broadcast(bytes: Array((folder ?? "").utf8), root: 0)
    return String(decoding: bytes, as: UTF8.self)
}

private func makeTokenShardCache(corpus: [String], tokenizer path: String, splitting: DocumentSplitting,
                                 root: String?) throws -> String {
    let files = try CorpusFiles.expand(corpus)
    var reading = CorpusOptions()
    reading.splitting = splitting
    let tokenizer: Tokenizer
    if path == "char" {
        var options = TokenizerTrainingOptions()
        options.characterLevel = true
        options.corpus = reading
        tokenizer = try TokenizerTraining.train(files: files, options: options)
    } else {
        tokenizer = try Tokenizer.load(path: path)
    }
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    let identity = tokenizer.fingerprint + splitting.rawValue + files.map { file -> String in
        var status = stat()
        return stat(file, &status) == 0 ? "\(file):\(status.st_size):\(status.st_mtim.tv_sec)" : file
    }.joined(separator: "|")
    for byte in identity.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    let folder = (root ?? ".") + "/tokens-" + String(hash, radix: 16)
    if root != nil { try? FileManager.default.createDirectory(atPath: root!, withIntermediateDirectories: true) }
    if (try? TokenManifest.load(directory: folder))?.tokenizerFingerprint == tokenizer.fingerprint {
        print("token cache: \(folder) (made before)")
        return folder
    }
    var options = TokenizationOptions(outputDirectory: folder)
    options.corpus = reading
    let manifest = try CorpusTokenization.run(files: files, tokenizer: tokenizer, options: options)
    let tokens = manifest.shards.reduce(0) { $0 + $1.tokens }
    print("token cache: \(folder) (\(tokens) tokens, \(tokenizer.vocabularySize)-token \(tokenizer.kind.rawValue) vocabulary)")
    return folder
}
