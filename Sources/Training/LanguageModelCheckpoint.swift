import Collectives
import Datasets
import Foundation
import Layers
import SafeTensors

/// A language model rebuilt from a checkpoint a next-token run wrote: its spec at the run's context and
/// vocabulary, its weights, and the tokenizer its data was made with.
public struct LanguageModelCheckpoint {
    /// The preset's name or the spec file's path it was trained with.
    public let label: String
    public let model: Sequential
    /// The model as built: its modules with every size.
    public let built: BuiltModel
    /// The canonical spec it was built from.
    public let spec: String
    /// Positions of a window (the run's --context).
    public let context: Int
    public let vocabularySize: Int
    /// The tokenizer.json text of the run's token shards (nil in checkpoints written before it was recorded).
    public let tokenizerJSON: String?
    /// The fingerprint of the tokenizer that made its training data.
    public let tokenizerFingerprint: String?
    /// The metadata key that holds the tokenizer.json text.
    public static let tokenizerKey = "tokenizer"

    /// Whether `file` holds a language model (a next-token run's checkpoint).
    public static func holdsLanguageModel(_ file: SafeTensorsFile) -> Bool { file.metadata["task"] == "next-token" }

    /// Rebuilds the model the metadata describes and loads its weights.
    public init(file: SafeTensorsFile) throws {
        let fail = { (problem: String) in CheckpointError.invalid(path: file.path, problem: problem) }
        guard Self.holdsLanguageModel(file) else {
            throw fail("is not a language model's checkpoint (its task is \(file.metadata["task"] ?? "not recorded")); "
                + "give a checkpoint of a run on token data")
        }
        guard let context = file.metadata["context"].flatMap(Int.init), (1...65_536).contains(context),
              let vocabulary = file.metadata["vocab_size"].flatMap(Int.init), (1...(1 << 24)).contains(vocabulary) else {
            throw fail("has no valid context and vocab_size in its metadata; was it written by distrain?")
        }
        guard let spec = file.metadata["spec"] else { throw fail("records no model spec; was it written by distrain?") }
        let built: BuiltModel
        do {
            built = try ModelSpec(parsing: spec, source: "\(file.path) (its spec)")
                .build(inputShape: [context], outputShape: [context, vocabulary])
        } catch {
            throw fail("its metadata does not describe a model that can be built: \(error)")
        }
        for parameter in built.layers.flatMap(\.parameterSpecs) where file.entries[parameter.name]?.shape != parameter.shape {
            let held = file.entries[parameter.name].map { "shape \($0.shape)" } ?? "no such tensor"
            throw fail("its spec needs tensor \(parameter.name) of shape \(parameter.shape), the file holds \(held)")
        }
        label = file.metadata["model"] ?? "model"
        self.built = built
        self.spec = spec
        self.context = context
        vocabularySize = vocabulary
        tokenizerJSON = file.metadata[Self.tokenizerKey]
        tokenizerFingerprint = file.metadata["tokenizer_fingerprint"]
        model = built.makeSequential(inputShape: [context])
        try LoadedCheckpoint.restore(file, into: model.parameters)
    }
}

extension LanguageModelCheckpoint {
    /// Loss, perplexity, next-token accuracy and bits per byte over every window of `split` of a token-shard
    /// folder (the first `limit` windows when given): exact, each rank scoring its contiguous share.
    /// - Throws: when the folder was made by another tokenizer than the model's data, or holds ids beyond it.
    public func evaluate(directory: String, split: String = "val", limit: Int? = nil, batchSize: Int,
                         communicator: Communicator) throws -> EvaluationResult {
        let windows = try TokenWindowDataset(directory: directory, split: split, contextLength: context,
                                             vocabularySize: vocabularySize)
        if let recorded = tokenizerFingerprint, recorded != windows.manifest.tokenizerFingerprint {
            throw CheckpointError.invalid(path: label, problem: "was trained on data of another tokenizer than \(directory)'s "
                + "(fingerprints \(recorded) and \(windows.manifest.tokenizerFingerprint)); tokenize the text with the "
                + "checkpoint's tokenizer")
        }
        let objective = NextTokenObjective(vocabularySize: vocabularySize, positions: context,
                                           bytesPerToken: windows.bytesPerToken)
        return try Training.evaluate(model: model, dataset: windows.firstSamples(limit), objective: objective,
                                     communicator: communicator, batchSize: batchSize)
    }
}

extension LanguageModelCheckpoint {
    /// The mean next-token loss of each window of `split` (the first `limit` when given), in window order, on every
    /// rank: each rank scores its contiguous share, and the shares are summed into one array (zeros elsewhere).
    public func windowLosses(directory: String, split: String = "val", limit: Int? = nil, batchSize: Int,
                             communicator: Communicator) throws -> [Double] {
        let windows = try TokenWindowDataset(directory: directory, split: split, contextLength: context,
                                             vocabularySize: vocabularySize).firstSamples(limit)
        var losses = [Double](repeating: 0, count: windows.count)
        let vocabulary = vocabularySize, positions = context
        try forEachShareBatch(model: model, dataset: windows, communicator: communicator, batchSize: batchSize,
                              testTimeAugmentation: .none) { start, count, outputs, targets in
            for i in 0..<count {
                let totals = softmaxCrossEntropy(logits: outputs + i * positions * vocabulary,
                                                 labels: targets.indices + i * positions, batch: positions,
                                                 classes: vocabulary, dLogits: nil)
                losses[start + i] = totals.lossSum / Double(positions)
            }
        }
        try communicator.allreduce(&losses, .sum)
        return losses
    }
}
