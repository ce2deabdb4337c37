import ArgumentParser
import Collectives
import DistrainKit
import Datasets
import Foundation
import SafeTensors
import Tensors
import Training

/// `distrain evaluate --checkpoint DIR <dataset>`: test-set metrics of a saved model.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a checkpoint on a dataset's test set (locally or under mpirun).",
        discussion: """
        Prints accuracy, macro and micro precision/recall/F1, a per-class table and the confusion matrix.
        --checkpoint takes one checkpoint (a folder with model.safetensors) or a --checkpoint-dir, whose
        'best' (else 'latest') checkpoint is used.
        Example: distrain evaluate --checkpoint runs/cnn fashion-mnist --json
        """)

    @OptionGroup var checkpointOption: CheckpointOption
    var checkpoint: String { checkpointOption.checkpoint }

    @Argument(help: "The dataset: \(DatasetRegistry.names).")
    var dataset: String

    @OptionGroup var dataLocation: DataLocationOptions

    @OptionGroup var testSet: TestSetOptions
    var testLimit: Int? { testSet.testLimit }
    var batchSize: Int { testSet.batchSize }

    @OptionGroup var resources: ThreadOptions

    @Option(help: ttaHelp)
    var tta: TestTimeAugmentation?

    @Flag(help: "Print one JSON object instead of the report.")
    var json = false

    func validate() throws {
        if !isTokenShardFolder(dataset) { _ = try dataLocation.directory(for: try registeredDataset(dataset)) }
    }

    func run() throws {
        let communicator = try resources.makeJobCommunicator()
        try runCollectively(communicator) {
            if isTokenShardFolder(dataset) {
                try evaluateLanguageModel(checkpoint: checkpoint, directory: dataset, limit: testLimit, batchSize: batchSize,
                                          json: json, communicator: communicator)
                return
            }
            let result = try evaluateCheckpoint(communicator: communicator)
            if communicator.isCoordinator {
                report(result.evaluation, classNames: result.classNames, folder: result.folder, augmentation: result.augmentation)
            }
        }
    }

    private func evaluateCheckpoint(communicator: Communicator) throws
        -> (evaluation: EvaluationResult, classNames: [String], folder: String, augmentation: TestTimeAugmentation) {
        let (file, folder) = try readSavedModelFile(checkpoint, communicator: communicator)
        if LanguageModelCheckpoint.holdsLanguageModel(file) {
            throw ValidationError("\(folder) is a language model: evaluate it on a token-shard folder (distrain tokenize), "
                + "not on \(dataset)")
        }
        let saved = try CheckpointModel(file: file)
        let (data, augmentation) = try communicator.collectively { () -> (ImageDataset, TestTimeAugmentation) in
            let test = try dataLocation.load(dataset, like: saved).test.prefix(testLimit)
            try requireFits(saved, folder: folder, data: test, datasetName: dataset)
            return (test, try testTimeAugmentation(tta, for: saved))
        }
        let evaluation = try evaluate(model: saved.model, dataset: data, normalization: saved.normalization,
                                      communicator: communicator, batchSize: batchSize, testTimeAugmentation: augmentation)
        return (evaluation, data.classNames, folder, augmentation)
    }

    private func report(_ evaluation: EvaluationResult, classNames: [String], folder: String, augmentation: TestTimeAugmentation) {
        if let r = evaluation.regression {
            if json {
                print(JSONValue.object([("checkpoint", .string(folder)), ("dataset", .string(dataset)), ("samples", .int(r.count)),
                                        ("test_loss", .number(evaluation.meanLoss)), ("rmse", .number(r.rootMeanSquaredError)),
                                        ("mae", .number(r.meanAbsoluteError)), ("r2", .number(r.rSquared))]).serialized)
            } else {
                print("checkpoint \(folder) on the \(dataset) test set (\(r.count) samples): RMSE "
                    + "\(format(r.rootMeanSquaredError, 4))  MAE \(format(r.meanAbsoluteError, 4))  R² \(format(r.rSquared, 4))")
            }
            fflush(nil)
            return
        }
        guard let m = evaluation.classification else { return }
        if json {
            let object = JSONValue.object([
                ("checkpoint", .string(folder)), ("dataset", .string(dataset)), ("samples", .integer(evaluation.sampleCount)),
                ("tta", .string(augmentation.rawValue)), ("test_loss", .number(evaluation.meanLoss)), ("accuracy", .number(m.accuracy)),
                ("precision_macro", .number(m.precisionMacro)), ("recall_macro", .number(m.recallMacro)), ("f1_macro", .number(m.f1Macro)),
                ("precision_micro", .number(m.precisionMicro)), ("recall_micro", .number(m.recallMicro)), ("f1_micro", .number(m.f1Micro)),
                ("per_class", .array((0..<m.classCount).map { c in
                    .object([("class", .string(classNames[c])), ("precision", .number(m.precision(of: c))),
                             ("recall", .number(m.recall(of: c))), ("f1", .number(m.f1(of: c))), ("support", .integer(m.support(of: c)))])
                })),
                ("confusion_matrix", .array(m.rows.map { .array($0.map { .integer($0) }) })),
                ("class_names", .array(classNames.map { .string($0) })),
            ])
            print(object.serialized)
        } else {
            let flip = augmentation == .flip ? ", each image averaged with its mirror image (--tta flip)" : ""
            print("checkpoint \(folder) on the \(dataset) test set (\(evaluation.sampleCount) samples\(flip)), test "
                + "loss \(format(evaluation.meanLoss, 4))")
            print("micro precision = recall = F1 = accuracy = \(format(m.accuracy, 4))")
            for line in classificationReport(m, classNames: classNames) { print(line) }
        }
        fflush(nil)
    }
}

/// A saved model: `path` is a checkpoint folder, or a --checkpoint-dir (its `best`, else `latest`). Rank 0
/// reads the weights and every rank parses identical bytes, so every rank reaches the same verdict.
func loadSavedModel(_ path: String, communicator: Communicator) throws -> (model: CheckpointModel, folder: String) {
    let (file, folder) = try readSavedModelFile(path, communicator: communicator)
    return (try CheckpointModel(file: file), folder)
}

/// The model.safetensors of a checkpoint folder, or of a --checkpoint-dir's best (else latest) checkpoint:
/// read by the coordinator, handed to every rank.
func readSavedModelFile(_ path: String, communicator: Communicator) throws -> (file: SafeTensorsFile, folder: String) {
    let folder = try communicator.resolveOnCoordinator {
        if pathExists("\(path)/\(CheckpointFile.model)") { return path }
        guard let name = CheckpointWriter.pointer("best", in: path) ?? CheckpointWriter.pointer("latest", in: path)
                ?? CheckpointWriter.checkpointNames(in: path).last else {
            throw CheckpointError.notFound(path: path, hint: "pass a folder holding model.safetensors, or a --checkpoint-dir of a run")
        }
        return "\(path)/\(name)"
    }!
    let read = try communicator.onCoordinator { try readFileBytes("\(folder)/\(CheckpointFile.model)") }
    let bytes = try communicator.broadcast(bytes: read ?? [], root: 0)
    return (try SafeTensors.decode(bytes, path: "\(folder)/\(CheckpointFile.model)"), folder)
}

/// `--tta`'s help for the commands that run a saved model.
let ttaHelp = ArgumentHelp("Test-time augmentation: none, or flip (average the logits of each image and its mirror "
    + "image). Default: what the checkpoint's training run used (its --tta).")

/// `--tta` when given, else what the checkpoint's run used; flip needs images wider than one pixel.
func testTimeAugmentation(_ requested: TestTimeAugmentation?, for saved: CheckpointModel) throws -> TestTimeAugmentation {
    let chosen = requested ?? saved.testTimeAugmentation
    if chosen == .flip && saved.inputShape[2] == 1 {
        throw ModelShapeError(message: "--tta flip mirrors images left–right, but this model's inputs are "
            + "\(saved.inputShape.map(String.init).joined(separator: "x")) (one pixel wide, as a table's rows are): "
            + "pass --tta none")
    }
    return chosen
}

/// Throws, in evaluation's words, unless the data has the shape and classes the model was trained on.
func requireFits(_ saved: CheckpointModel, folder: String, data: ImageDataset, datasetName: String) throws {
    guard data.shape != saved.inputShape || data.classCount != saved.classCount else {
        try requireSameClassNames(saved, folder: folder, data: data, datasetName: datasetName)
        return
    }
    func describe(_ name: String, _ shape: [Int], _ classes: Int) -> String {
        "\(name) (\(shape.map(String.init).joined(separator: "x")) images, \(classes) classes)"
    }
    throw CheckpointError.wrongData(checkpoint: folder, trainedOn: describe(saved.dataset ?? "another dataset",
        saved.inputShape, saved.classCount),
                                    given: describe(datasetName, data.shape, data.classCount))
}

/// Classes are matched by name, not by position: folders Dog/cat are not a cat/dog model's classes.
func requireSameClassNames(_ saved: CheckpointModel, folder: String, data: ImageDataset, datasetName: String) throws {
    if case .classes = saved.targets, !saved.classNames.isEmpty && !data.classNames.isEmpty
        && saved.classNames != data.classNames {
        func list(_ names: [String]) -> String {
            let shown = names.prefix(12).map { "'\($0)'" }.joined(separator: ", ")
            return names.count > 12 ? shown + ", … (\(names.count) classes)" : shown
        }
        let order = Set(saved.classNames) == Set(data.classNames) ? " (the same names in another order)" : ""
        throw CheckpointError.wrongData(checkpoint: folder, trainedOn: "classes \(list(saved.classNames))",
                                        given: "\(datasetName)'s classes \(list(data.classNames))\(order)")
    }
}

/// Image-folder options that reproduce a checkpoint's preprocessing (or the flags, for other checkpoints).
extension DataLocationOptions {
    /// DATASET (a name or a path) as the checkpoint saw it in training (`SourceOptions.follow`), and its folder.
    func registered(_ dataset: String, like saved: CheckpointModel) throws -> (dataset: RegisteredDataset, directory: String) {
        var options = try imageOptions
        options.follow(saved)
        let registered = try registeredDataset(dataset, images: options)
        return (registered, try directory(for: registered))
    }

    /// DATASET read the way the checkpoint saw it in training.
    func load(_ dataset: String, like saved: CheckpointModel) throws -> DatasetSplits {
        let (registered, directory) = try registered(dataset, like: saved)
        return try registered.load(directory)
    }
}
