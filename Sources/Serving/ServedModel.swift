import Datasets
import Foundation
import Text
import SafeTensors
import Training

/// A model `distrain serve` answers for, loaded once, read-only, with the worker that runs it.
public enum ServedModel: @unchecked Sendable {
    /// An image or table model (float or int8) behind dynamic batching.
    case classifier(name: String, batcher: ClassifierBatcher)
    /// A language model behind continuous batching, with the tokenizer of its data.
    case languageModel(name: String, engine: CompletionEngine, tokenizer: Tokenizer, label: String)

    public var name: String {
        switch self {
        case let .classifier(name, _), let .languageModel(name, _, _, _): return name
        }
    }

    /// A checkpoint's served form; `tokenizer` is required for a language model.
    public static func make(name: String, checkpoint file: SafeTensorsFile, tokenizer: Tokenizer?,
                            testTimeAugmentation: TestTimeAugmentation?, options: ServerOptions,
                            metrics: ServerMetrics) throws -> ServedModel {
        if LanguageModelCheckpoint.holdsLanguageModel(file) {
            let saved = try LanguageModelCheckpoint(file: file)
            guard let tokenizer else { throw HTTPProblem(500, "a language model needs its tokenizer") }
            let engine = try CompletionEngine(name: name, model: saved.model, options: options, metrics: metrics)
            return .languageModel(name: name, engine: engine, tokenizer: tokenizer, label: saved.label)
        }
        let saved = try CheckpointModel(file: file)
        let batcher = ClassifierBatcher(name: name, saved: saved, testTimeAugmentation: testTimeAugmentation
                                        ?? saved.testTimeAugmentation, options: options, metrics: metrics)
        return .classifier(name: name, batcher: batcher)
    }

    /// OpenAI's model object, with what a client needs to build requests under "distrain".
    var description: JSONValue {
        var details: [(String, JSONValue)]
        switch self {
        case let .classifier(_, batcher):
            let saved = batcher.saved
            details = [("task", .string(saved.objective.task)), ("architecture", .string(saved.label)),
                       ("input_shape", .array(saved.inputShape.map { .integer(Int64($0)) })),
                       ("quantized", .bool(saved.isQuantized)), ("tta", .string(batcher.testTimeAugmentation.rawValue)),
                       ("outputs", .array(saved.targets.names.map { .string($0) }))]
            if let features = saved.featureNames { details.append(("features", .array(features.map { .string($0) }))) }
            if let dataset = saved.dataset { details.append(("dataset", .string(dataset))) }
        case let .languageModel(_, engine, tokenizer, label):
            details = [("task", .string("language-model")), ("architecture", .string(label)),
                       ("context", .integer(Int64(engine.context))), ("vocab_size", .integer(Int64(engine.vocabularySize))),
                       ("tokenizer_vocab_size", .integer(Int64(tokenizer.vocabularySize))),
                       ("max_concurrent_sequences", .integer(Int64(engine.maxSequences)))]
        }
        return .object([("id", .string(name)), ("object", .string("model")), ("created", .integer(0)),
                        ("owned_by", .string("distrain")), ("distrain", .object(details))])
    }

    /// One line for the start-up banner.
    public var summary: String {
        switch self {
        case let .classifier(_, batcher):
            let saved = batcher.saved, shape = saved.inputShape.map(String.init).joined(separator: "x")
            let outputs = saved.targets.names.count, task = "\(saved.objective.task), \(outputs) output\(outputs == 1 ? "" : "s")"
            return "\(saved.label) on \(shape), \(task)\(saved.isQuantized ? ", int8" : ""), batches of up to \(batcher.maxBatch)"
        case let .languageModel(_, engine, tokenizer, label):
            return "language model \(label), context \(engine.context), \(tokenizer.vocabularySize)-token tokenizer, up to "
                + "\(engine.maxSequences) sequences per decode step"
        }
    }

    func stop() {
        switch self {
        case let .classifier(_, batcher): batcher.stop()
        case let .languageModel(_, engine, _, _): engine.stop()
        }
    }
}
