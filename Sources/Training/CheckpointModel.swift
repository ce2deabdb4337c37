import Foundation
import Datasets
import Compression
import Layers
import SafeTensors

/// A trained model rebuilt from a checkpoint's model.safetensors and its metadata.
public struct CheckpointModel {
    /// The preset's name or the spec file's path it was trained with.
    public let label: String
    public let model: Sequential
    /// The model as built: its modules with every size (the PyTorch export and the summary).
    public let built: BuiltModel
    public let normalization: Normalization
    public let inputShape: [Int]
    public let classCount: Int
    /// The dataset it was trained on, as its metadata says ("fashion-mnist"), if recorded.
    public let dataset: String?
    /// Its class names, index = output (empty when not recorded).
    public let classNames: [String]
    /// How image files became its inputs (image-folder datasets), if recorded.
    public let preprocessing: ImagePreprocessing?
    /// CSV tables: the feature columns in input order, and the label column.
    public let featureNames: [String]?
    public let labelColumn: String?
    /// What the model predicts: named classes (the recorded names, else "0", "1", …), or one number under its
    /// column's name (`--task regression`).
    public let targets: TargetKind
    /// An int8 model (`distrain quantize`): its Linear and Conv2d layers compute in integers.
    public let isQuantized: Bool
    /// `--tta` of the run that trained it: what `evaluate`, `predict` and `compare` do unless told.
    public let testTimeAugmentation: TestTimeAugmentation
    /// The metadata key that records `--tta` (absent: none).
    public static let testTimeAugmentationKey = "tta"

    /// The objective it was trained under: how its outputs are scored and presented.
    public var objective: any Objective { defaultObjective(for: targets) }

    /// Rebuilds the architecture the metadata names and loads its weights.
    public init(file: SafeTensorsFile) throws {
        if LanguageModelCheckpoint.holdsLanguageModel(file) {
            throw CheckpointError.invalid(path: file.path, problem: "is a language model: give it to distrain generate, "
                + "evaluate (with a token-shard folder) or export")
        }
        let metadata = CheckpointMetadata(file)
        let label = try metadata.field("model")
        let shape = try metadata.field("input_shape").split(separator: "x").compactMap { Int($0) }
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 && $0 <= 4096 }) else { throw metadata.invalid("input_shape") }
        let predictsNumber = file.metadata["task"] == RegressionObjective().task
        guard let classes = Int(try metadata.field("classes")), predictsNumber ? classes == 1 : (2...1000).contains(classes) else {
            throw CheckpointError.invalid(path: file.path, problem: "has an invalid class count '\(file.metadata["classes"] ?? "")'")
        }
        guard let tta = TestTimeAugmentation(rawValue: file.metadata[Self.testTimeAugmentationKey] ?? "none") else {
            let known = TestTimeAugmentation.allCases.map(\.rawValue).joined(separator: ", ")
            throw CheckpointError.invalid(path: file.path, problem: "has an unknown tta "
                + "'\(file.metadata[Self.testTimeAugmentationKey]!)' (known: \(known))")
        }
        testTimeAugmentation = tta
        let mean = try metadata.floats("normalization_mean", count: shape[0])
        let deviation = try metadata.floats("normalization_std", count: shape[0])
        guard deviation.allSatisfy({ $0 > 0 }) else {
            throw CheckpointError.invalid(path: file.path, problem: "has a non-positive normalization_std")
        }
        let built = try Self.architecture(file, label: label, shape: shape, classes: classes)
        self.label = label
        self.built = built
        inputShape = shape
        classCount = classes
        dataset = file.metadata["dataset"]
        featureNames = file.metadata["features"].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        labelColumn = file.metadata["label_column"]
        preprocessing = file.metadata["preprocessing"].flatMap { try? JSONDecoder().decode(ImagePreprocessing.self, from: Data($0.utf8)) }
        classNames = file.metadata["class_names"].flatMap { text in
            (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String]
        } ?? []
        targets = predictsNumber ? .value(labelColumn ?? "prediction")
            : .classes(classNames.isEmpty ? (0..<classes).map(String.init) : classNames)
        normalization = Normalization(mean: mean, standardDeviation: deviation)
        isQuantized = QuantizedCheckpoint.isQuantized(file.metadata)
        if isQuantized {
            model = try Self.int8Model(built, inputShape: shape, file: file)
        } else {
            model = built.makeSequential(inputShape: shape)
            try LoadedCheckpoint.restore(file, into: model.parameters)
        }
    }

    /// The model the metadata describes — the spec it records, or (checkpoints written before specs) the preset
    /// it names — after checking that the file holds every tensor it needs, in its shape.
    private static func architecture(_ file: SafeTensorsFile, label: String, shape: [Int], classes: Int) throws -> BuiltModel {
        let built: BuiltModel
        do {
            if let text = file.metadata["spec"] {
                built = try ModelSpec(parsing: text, source: "\(file.path) (its spec)").build(inputShape: shape, classes: classes)
            } else if let name = ModelName(rawValue: label) {
                try name.checkFits(inputShape: shape)
                built = try name.spec(inputShape: shape, classes: classes).build(inputShape: shape, classes: classes)
            } else {
                throw CheckpointError.invalid(path: file.path, problem: "names an unknown model '\(label)' and holds no spec")
            }
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError.invalid(path: file.path, problem: "its metadata does not describe a model that can be built: \(error)")
        }
        let needed = built.layers.flatMap(\.parameterSpecs).map { (name: $0.name, shape: $0.shape) }
            + built.layers.flatMap(\.bufferSpecs).map { (name: $0.name, shape: $0.shape) }
        for spec in needed where file.entries[spec.name]?.shape != spec.shape {
            let held = file.entries[spec.name].map { "shape \($0.shape)" } ?? "no such tensor"
            throw CheckpointError.invalid(path: file.path, problem: "its metadata (\(label) on "
                + "\(shape.map(String.init).joined(separator: "x")), \(classes) classes) needs tensor \(spec.name) of "
                + "shape \(spec.shape), the file holds \(held)")
        }
        return built
    }

    /// The model with int8 Linear and Conv2d layers, from a checkpoint `distrain quantize` wrote.
    private static func int8Model(_ built: BuiltModel, inputShape: [Int], file: SafeTensorsFile) throws -> Sequential {
        let description = file.metadata[QuantizedCheckpoint.metadataKey] ?? ""
        let scheme = (try? JSONSerialization.jsonObject(with: Data(description.utf8)) as? [String: Any])?["scheme"] as? String
        guard scheme == QuantizedCheckpoint.scheme else {
            throw CheckpointError.invalid(path: file.path, problem: "its quantization metadata names the scheme "
                + "'\(scheme ?? description)', which this distrain does not compute; quantize the float checkpoint "
                + "with this version")
        }
        let (layers, consumed) = try QuantizedCheckpoint.int8Layers(built.layers, file: file)
        let model = Sequential(inputShape: inputShape, layers: layers)
        model.specRows = built.rows
        try LoadedCheckpoint.restore(file, into: model.parameters, alsoHolding: consumed)
        return model
    }
}

extension StringProtocol {
    /// The text without the given characters at either end.
    func trimmingCharacters(in characters: String) -> String {
        var view = Substring(self)
        while let first = view.first, characters.contains(first) { view = view.dropFirst() }
        while let last = view.last, characters.contains(last) { view = view.dropLast() }
        return String(view)
    }
}

/// A checkpoint's `__metadata__` fields, read with errors that name the file and the field.
struct CheckpointMetadata {
    let file: SafeTensorsFile

    init(_ file: SafeTensorsFile) { self.file = file }

    func field(_ key: String) throws -> String {
        guard let value = file.metadata[key] else {
            throw CheckpointError.invalid(path: file.path, problem: "__metadata__ lacks \(key); was it written by distrain?")
        }
        return value
    }

    func invalid(_ key: String) -> CheckpointError {
        CheckpointError.invalid(path: file.path, problem: "has an invalid \(key) '\(file.metadata[key] ?? "")'")
    }

    /// "[0.28, 0.35]": `count` finite numbers.
    func floats(_ key: String, count: Int) throws -> [Float] {
        let values = try field(key).trimmingCharacters(in: "[]").split(separator: ",").map { Float($0.trimmingCharacters(in: " ")) }
        guard values.count == count, values.allSatisfy({ $0 != nil && $0!.isFinite }) else { throw invalid(key) }
        return values.map { $0! }
    }
}
