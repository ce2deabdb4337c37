import DurableFiles
import ArgumentParser
import Collectives
import Datasets
import DistrainKit
import Foundation
import Training

/// `distrain predict --checkpoint DIR INPUT...`: the model on new inputs, with the training preprocessing.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run a checkpoint on new inputs (image files or folders, or a .npy of uint8 samples) and print or "
            + "write the top-k classes with probabilities.",
        discussion: """
        Inputs get exactly the training preprocessing recorded in the checkpoint (image channels and size, input
        normalization). Under mpirun the inputs are split over ranks and the output is written once, in input order.
          distrain predict --checkpoint runs/x photo1.png photos/ --top-k 3
          distrain predict --checkpoint runs/x --split test fashion-mnist --out test-predictions.csv
        """)

    @OptionGroup var checkpointOption: CheckpointOption
    var checkpoint: String { checkpointOption.checkpoint }

    @Argument(help: "Image files, folders of images (searched recursively, in byte order), or .npy files; with --split, the dataset.")
    var inputs: [String] = []

    @Option(name: .customLong("top-k"), help: "How many classes to report per input.")
    var topK = 1

    @Option(help: "Write the predictions to FILE.csv or FILE.jsonl instead of printing them.")
    var out: String?

    @Option(help: "Predict every sample of this split of the dataset named as the input (only 'test').")
    var split: String?

    @Option(help: ttaHelp)
    var tta: TestTimeAugmentation?

    @OptionGroup var dataLocation: DataLocationOptions
    @OptionGroup var resources: ThreadOptions

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("predict needs inputs: image files or folders, .npy files, or --split test DATASET") }
        if topK < 1 { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        if let out, !(out.hasSuffix(".csv") || out.hasSuffix(".jsonl")) { throw ValidationError("--out must end in "
            + ".csv or .jsonl, got \(out)") }
        if let split, split != "test" { throw ValidationError("--split takes 'test', got \(split)") }
        if split != nil && inputs.count != 1 { throw ValidationError("--split test takes one dataset name or path") }
    }

    func run() throws {
        let communicator = try resources.makeJobCommunicator()
        try runCollectively(communicator) {
            let (saved, folder) = try loadSavedModel(checkpoint, communicator: communicator)
            let (augmentation, samples) = try communicator.collectively {
                (try testTimeAugmentation(tta, for: saved), try loadInputs(saved))
            }
            let outputs = try predictProbabilities(model: saved.model, dataset: samples.data, normalization: saved.normalization,
                                                   communicator: communicator, batchSize: 256, softmax: false,
                                                   testTimeAugmentation: augmentation)
            guard communicator.isCoordinator else { return }
            let objective = saved.objective, count = saved.model.outputCount, names = saved.targets.names
            let rows = outputs.withUnsafeBufferPointer { all in
                samples.names.enumerated().map { index, name in
                    (name: name, top: objective.present(all.baseAddress! + index * count, names: names, topK: topK))
                }
            }
            try report(rows, folder: folder)
        }
    }

    /// The inputs as one dataset of the model's input shape, with a name per sample.
    private func loadInputs(_ saved: CheckpointModel) throws -> (data: ImageDataset, names: [String]) {
        let shape = saved.inputShape
        let classNames = (0..<saved.classCount).map(String.init)
        if split != nil {
            let test = try dataLocation.load(inputs[0], like: saved).test
            guard test.shape == shape else {
                throw CheckpointError.wrongData(checkpoint: checkpoint, trainedOn: "\(shape) inputs",
                    given: "\(test.shape) inputs of \(inputs[0])")
            }
            return (test, (0..<test.count).map { "\(inputs[0]):test[\($0)]" })
        }
        if let features = saved.featureNames { return try tableRows(features, shape: shape, classNames: classNames) }
        let preprocessing = saved.preprocessing ?? ImagePreprocessing(channels: shape[0], height: shape[1], width: shape[2])
        var pixels: [UInt8] = [], names: [String] = []
        for input in inputs {
            if input.hasSuffix(".npy") {
                let array = try NumPyArray(npy: try readFileBytes(input), path: input)
                guard case let .bytes(bytes) = array.values, array.shape.count >= 2,
                      array.shape.dropFirst().reduce(1, *) == shape.reduce(1, *) else {
                    throw DatasetError.malformed(path: input, problem: "holds \(array.shape); the model takes uint8 "
                        + "samples of \(shape.map(String.init).joined(separator: "x"))")
                }
                pixels += bytes
                names += (0..<array.shape[0]).map { "\(input)[\($0)]" }
            } else {
                for file in try isDirectory(input) ? imagesBelow(input) : [input] {
                    pixels += try decodeImage(file, preprocessing: preprocessing)
                    names.append(file)
                }
            }
        }
        guard !names.isEmpty else { throw DatasetError.malformed(path: inputs.joined(separator: " "),
            problem: "holds no PNG, JPEG or .npy input") }
        return (ImageDataset(shape: shape, pixels: pixels, labels: [UInt8](repeating: 0, count: names.count),
            classNames: classNames), names)
    }

    /// CSV rows of a table model: its feature columns, found by name in each input file's header.
    private func tableRows(_ features: [String], shape: [Int], classNames: [String]) throws -> (data: ImageDataset, names: [String]) {
        var values: [Float] = [], names: [String] = []
        for input in inputs {
            guard input.hasSuffix(".csv") else { throw DatasetError.malformed(path: input, problem: "is not a .csv; "
                + "this model takes CSV rows with the columns \(features.joined(separator: ", "))") }
            guard let text = String(validating: try readFileBytes(input),
                as: UTF8.self) else { throw DatasetError.malformed(path: input, problem: "is not UTF-8 text") }
            let (header, rows) = try parseCSV(text, path: input)
            let columns = try features.map { name -> Int in
                guard let column = header.firstIndex(of: name) else { throw DatasetError.malformed(path: input, problem: "has "
                    + "no column '\(name)', a feature of the model") }
                return column
            }
            for (index, row) in rows.enumerated() {
                guard row.count == header.count else { throw DatasetError.malformed(path: input, problem: "row "
                    + "\(index + 2) has \(row.count) cells, the header has \(header.count)") }
                for column in columns {
                    guard let value = Float(row[column].trimmingCharacters(in: .whitespaces)), value.isFinite else {
                        throw DatasetError.malformed(path: input, problem: "row \(index + 2), column "
                            + "'\(header[column])': '\(row[column])' is not a number")
                    }
                    values.append(value)
                }
                names.append("\(input):\(index + 2)")
            }
        }
        guard !names.isEmpty else { throw DatasetError.malformed(path: inputs.joined(separator: " "), problem: "holds no data row") }
        return (ImageDataset(shape: shape, features: values, labels: [UInt8](repeating: 0, count: names.count),
            classNames: classNames), names)
    }

    /// Every image below a folder, folders and files in byte order.
    /// The images in `folder` and below, each folder visited once (by device and inode), so a symbolic
    /// link back up the tree (`up -> ..`) neither repeats images nor walks forever.
    private func imagesBelow(_ folder: String) throws -> [String] {
        var visited = Set<[UInt64]>()
        func walk(_ folder: String) throws -> [String] {
            var status = stat()
            guard stat(folder, &status) == 0, visited.insert([UInt64(status.st_dev), UInt64(status.st_ino)]).inserted else {
                return []
            }
            try requireReadableNames(in: folder)
            return try sortedEntries(folder).flatMap { name -> [String] in
                let path = "\(folder)/\(name)"
                return try isDirectory(path) ? walk(path) : (["png", "jpg",
                    "jpeg"].contains((name as NSString).pathExtension.lowercased()) ? [path] : [])
            }
        }
        return try walk(folder)
    }

    private func report(_ rows: [(name: String, top: [(name: String, value: Float)])], folder: String) throws {
        guard let out else {
            for row in rows { print(row.name + "  " + row.top.map { "\($0.0) \(String(format: "%.4f", $0.1))" }.joined(separator: "  ")) }
            return
        }
        var text = ""
        if out.hasSuffix(".csv") {
            text = "input," + (1...topK).map { "class_\($0),probability_\($0)" }.joined(separator: ",") + "\n"
            for row in rows {
                text += csvField(row.name) + "," + row.top.map { "\(csvField($0.0)),\($0.1)" }.joined(separator: ",") + "\n"
            }
        } else {
            for row in rows {
                text += JSONValue.object([("input", .string(row.name)),
                                          ("top", .array(row.top.map { .object([("class", .string($0.0)),
                                              ("probability", .number(Double($0.1)))]) }))]).serialized + "\n"
            }
        }
        try writeFileAtomically(text, to: out)
        print("wrote \(rows.count) predictions of \(folder) to \(out)")
    }
}

/// A CSV field, quoted when it needs to be.
func csvField(_ text: String) -> String {
    text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
}
