import ArgumentParser
import Collectives
import Datasets
import DistrainKit
import Foundation
import Selection
import Training

/// `distrain compare CKPT_A CKPT_B DATASET`: the A/B test of two models on the same test samples.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "A/B-test two checkpoints on the same test samples: accuracies, macro P/R/F1, the difference with a "
            + "95% bootstrap interval, McNemar's exact test, per-class F1.",
        discussion: "Example: distrain compare runs/mlp runs/cnn fashion-mnist --json")

    @Argument(help: "Checkpoint A (a checkpoint folder or a --checkpoint-dir: its best).")
    var checkpointA: String

    @Argument(help: "Checkpoint B.")
    var checkpointB: String

    @Argument(help: "The dataset whose test set both are scored on: \(DatasetRegistry.names).")
    var dataset: String

    @OptionGroup var dataLocation: DataLocationOptions
    @OptionGroup var resources: ThreadOptions

    @OptionGroup var testSet: TestSetOptions
    var testLimit: Int? { testSet.testLimit }

    @Option(help: "Bootstrap resamples for the interval of the difference.")
    var bootstrap = 2000

    @Option(help: "Seed of the bootstrap's draws.")
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Test-time augmentation for both: none, or flip (average the logits of each image and "
        + "its mirror image). Default: what each checkpoint's training run used (its --tta)."))
    var tta: TestTimeAugmentation?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if !isTokenShardFolder(dataset) { _ = try dataLocation.directory(for: try registeredDataset(dataset)) }
        if bootstrap < 100 || bootstrap > 1_000_000 { throw ValidationError("--bootstrap must be between 100 and "
            + "1000000, got \(bootstrap)") }
    }

    func run() throws {
        let communicator = try resources.makeJobCommunicator()
        try runCollectively(communicator) {
            if isTokenShardFolder(dataset) { return try compareLanguageModels(communicator: communicator) }
            let (a, folderA) = try loadSavedModel(checkpointA, communicator: communicator)
            let (b, folderB) = try loadSavedModel(checkpointB, communicator: communicator)
            try requireComparable(a, folderA, b, folderB)
            typealias Flips = (a: TestTimeAugmentation, b: TestTimeAugmentation)
            let (test, augmentations) = try communicator.collectively { () -> (ImageDataset, Flips) in
                let test = try dataLocation.load(dataset, like: a).test.prefix(testLimit)
                try requireFits(a, folder: folderA, data: test, datasetName: dataset)
                return (test, (a: try testTimeAugmentation(tta, for: a), b: try testTimeAugmentation(tta, for: b)))
            }
            let (resultA, predictionsA) = try predict(a, on: test, augmentation: augmentations.a, communicator: communicator)
            let (resultB, predictionsB) = try predict(b, on: test, augmentation: augmentations.b, communicator: communicator)
            guard communicator.isCoordinator else { return }
            let comparison = PairedComparison(labels: test.labels.map(Int.init), predictionsA: predictionsA, predictionsB: predictionsB,
                                              resamples: bootstrap, seed: seed)
            guard let metricsA = resultA.classification, let metricsB = resultB.classification else { return }  // classifiers (checked)
            report(comparison, metricsA, metricsB, folderA, folderB, classNames: test.classNames)
        }
    }

    /// Both models must answer the same question: same dataset, input shape and classes.
    private func requireComparable(_ a: CheckpointModel, _ folderA: String, _ b: CheckpointModel, _ folderB: String) throws {
        func describe(_ m: CheckpointModel) -> String {
            let classes = m.classNames.isEmpty ? String(m.classCount) : m.classNames.joined(separator: "/")
            return "\(m.dataset ?? "?"), \(m.inputShape.map(String.init).joined(separator: "x")) images, classes \(classes)"
        }
        for (model, folder) in [(a, folderA), (b, folderB)] where !model.objective.judgesAnswers {
            throw SelectionError(message: "compare tests classifiers (McNemar's test counts right and wrong answers); "
                + "\(folder) is a \(model.objective.task) model")
        }
        guard a.dataset == b.dataset, a.inputShape == b.inputShape, a.classCount == b.classCount, a.classNames == b.classNames else {
            throw SelectionError(message: "cannot compare: \(folderA) was trained on \(describe(a)) and \(folderB) on "
                + "\(describe(b)); compare models of the same dataset and classes")
        }
    }

    /// The model's evaluation and per-sample predictions on `data` (every rank gets all of them).
    private func predict(_ saved: CheckpointModel, on data: ImageDataset, augmentation: TestTimeAugmentation,
                         communicator: Communicator) throws -> (EvaluationResult, [Int]) {
        let buffer = UnsafeMutableBufferPointer<Int64>.allocate(capacity: data.count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0)
        let result = try evaluate(model: saved.model, dataset: data, normalization: saved.normalization, communicator: communicator,
                                  batchSize: testSet.batchSize, testTimeAugmentation: augmentation, predictions: buffer)
        return (result, buffer.map { Int($0) })
    }

    private func report(_ c: PairedComparison, _ a: ClassificationMetrics, _ b: ClassificationMetrics, _ folderA: String, _ folderB: String,
                        classNames: [String]) {
        let perClass = (0..<a.classCount).map { a.f1(of: $0) - b.f1(of: $0) }
        if json {
            print(JSONValue.object([
                ("a", .string(folderA)), ("b", .string(folderB)), ("dataset", .string(dataset)), ("samples", .int(c.samples)),
                ("accuracy_a", .number(c.accuracyA)), ("accuracy_b", .number(c.accuracyB)), ("difference", .number(c.difference)),
                ("ci95", .array([.number(c.interval.low), .number(c.interval.high)])), ("bootstrap_resamples", .int(bootstrap)),
                ("mcnemar_p", .number(c.mcNemarP)), ("n01", .int(c.onlyA)), ("n10", .int(c.onlyB)),
                ("precision_macro_a", .number(a.precisionMacro)), ("precision_macro_b", .number(b.precisionMacro)),
                ("recall_macro_a", .number(a.recallMacro)), ("recall_macro_b", .number(b.recallMacro)),
                ("f1_macro_a", .number(a.f1Macro)), ("f1_macro_b", .number(b.f1Macro)),
                ("per_class_f1_difference", .object(zip(classNames, perClass).map { ($0, .number($1)) })),
            ]).serialized)
            return
        }
        func pct(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }
        print("compare on the \(dataset) test set (\(c.samples) samples)\n  A: \(folderA)\n  B: \(folderB)")
        print("                   A        B")
        print("accuracy           " + pct(c.accuracyA).padding(toLength: 9, withPad: " ",
            startingAt: 0) + pct(c.accuracyB))  // (%-8@ ignores its width on Linux)
        for (name, x, y) in [("precision (macro)", a.precisionMacro, b.precisionMacro), ("recall (macro)", a.recallMacro, b.recallMacro),
                             ("F1 (macro)", a.f1Macro, b.f1Macro)] {
            print(name.padding(toLength: 19, withPad: " ", startingAt: 0) + String(format: "%.4f   %.4f", x, y))
        }
        print(String(format: "difference A − B: %+.2f points, 95%% bootstrap interval [%+.2f, %+.2f] (%d resamples)",
                     100 * c.difference, 100 * c.interval.low, 100 * c.interval.high, bootstrap))
        print("disagreements: only A right n01 = \(c.onlyA), only B right n10 = \(c.onlyB); "
              + "McNemar exact p = \(String(format: "%.3g", c.mcNemarP))"
              + (c.mcNemarP < 0.05 ? " (the models differ at the 5% level)" : " (no significant difference at the 5% level)"))
        print("per-class F1, A − B:")
        for (name, d) in zip(classNames, perClass) { print("  " + name.padding(toLength: 16, withPad: " ",
            startingAt: 0) + String(format: "%+.4f", d)) }
        fflush(nil)
    }
}
