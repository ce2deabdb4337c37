import DurableFiles
import ArgumentParser
import Collectives
import Compression
import Datasets
import DistrainKit
import Foundation
import Layers
import SafeTensors
import Training

/// `distrain quantize`: int8 post-training quantization of a float checkpoint, with the accuracy and
/// file size of both.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a checkpoint to int8 (post-training) and report size and accuracy (locally or under mpirun).",
        discussion: """
        Weights: symmetric per output channel, codes in [-127, 127]. Layer inputs: affine uint8 per tensor,
        codes in [0, 127] (7 bits, so the u8×s8 products never saturate on CPUs without VNNI), scaled to the
        min/max each Linear and Conv2d input reaches over --calibration training samples (spread evenly over
        the training set). BatchNorm, pooling and activations stay float.
        OUT/model.safetensors holds I8 weights with F32 scales and the scheme in its metadata; evaluate,
        predict and compare run it with int8 × int8 → int32 arithmetic (oneDNN); OUT/quantization.json holds
        the report. Prints the file size and test accuracy of the float and the int8 model.
        Example: distrain quantize --checkpoint runs/cnn fashion-mnist --out runs/cnn-int8
        """)

    @OptionGroup var checkpointOption: CheckpointOption
    var checkpoint: String { checkpointOption.checkpoint }

    @Argument(help: "The dataset it was trained on: \(DatasetRegistry.names).")
    var dataset: String

    @OptionGroup var dataLocation: DataLocationOptions

    @Option(help: "Training samples whose activations set the input scales (default: 1000, or all if fewer).")
    var calibration: Int?

    @Option(help: "Where the int8 model goes (a new folder, or one without a model.safetensors).")
    var out: String

    @OptionGroup var testSet: TestSetOptions
    var testLimit: Int? { testSet.testLimit }
    var batchSize: Int { testSet.batchSize }

    @OptionGroup var resources: ThreadOptions

    func validate() throws {
        if let calibration, calibration < 1 { throw ValidationError("--calibration must be at least 1 sample, got \(calibration)") }
        if out.isEmpty || checkpoint.isEmpty { throw ValidationError("--out and --checkpoint need directories") }
    }

    func run() throws {
        let communicator = try resources.makeJobCommunicator()
        try runCollectively(communicator) {
            let (saved, folder) = try loadSavedModel(checkpoint, communicator: communicator)
            let data = try loadData(saved, folder: folder)
            let summary = try quantize(saved, folder: folder, data: data, communicator: communicator)
            if communicator.isCoordinator { report(summary) }
        }
    }

    /// The training split (calibration) and the test split (the comparison), as the checkpoint saw them.
    private func loadData(_ saved: CheckpointModel, folder: String) throws -> DatasetSplits {
        if saved.isQuantized {
            throw ValidationError("\(folder) is already an int8 model; quantize the float checkpoint it came from")
        }
        if !saved.objective.judgesAnswers {
            throw ValidationError("\(folder) is a \(saved.objective.task) model; quantize reports accuracy and takes classification "
                + "checkpoints only")
        }
        let data = try dataLocation.load(dataset, like: saved)
        try requireFits(saved, folder: folder, data: data.test, datasetName: dataset)
        if let calibration, calibration > data.train.count {
            throw ValidationError("--calibration \(calibration) is more than the \(data.train.count) training samples "
                + "of \(dataset); use at most \(data.train.count)")
        }
        return data
    }

    private func quantize(_ saved: CheckpointModel, folder: String, data: DatasetSplits,
        communicator: Communicator) throws -> QuantizationSummary {
        let source = "\(folder)/\(CheckpointFile.model)", target = "\(out)/\(CheckpointFile.model)"
        try communicator.onCoordinator {
            if FileManager.default.fileExists(atPath: target) {
                throw ValidationError("\(target) already exists; choose another --out or remove it")
            }
            // A run's checkpoint folder: its own model.safetensors would shadow the run's checkpoints (evaluate,
            // predict and export read a folder's model.safetensors before its best and latest).
            let pointers = ["best", "latest"].filter { CheckpointWriter.pointer($0, in: out) != nil }
            if !CheckpointWriter.checkpointNames(in: out).isEmpty || !pointers.isEmpty {
                throw ValidationError("--out \(out) holds a training run's checkpoints; an int8 model.safetensors there would "
                    + "take their place in evaluate, predict and export: choose a folder of its own")
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        }
        let calibration = self.calibration ?? min(1000, data.train.count)
        let ranges = try calibrationRanges(model: saved.model, dataset: data.train, normalization: saved.normalization,
                                           samples: calibration, batchSize: batchSize)
        let sourceFile = try SafeTensors.decode(try readFileBytes(source), path: source)
        var metadata = sourceFile.metadata
        metadata[QuantizedCheckpoint.metadataKey] = JSONValue.object([
            ("scheme", .string(QuantizedCheckpoint.scheme)), ("calibration_samples", .integer(Int64(calibration))),
            ("quantized_from", .string(folder)),
        ]).serialized
        let bytes = QuantizedCheckpoint.tensors(of: saved.model, inputRanges: ranges).encoded(metadata: metadata)
        try communicator.onCoordinator { try writeFileAtomically(bytes, to: target) }
        // The written file, loaded as evaluate loads it: what is measured is what was saved.
        let (int8, _) = try loadSavedModel(out, communicator: communicator)
        let test = data.test.prefix(testLimit)
        func accuracy(_ model: CheckpointModel) throws -> Double {
            try evaluate(model: model.model, dataset: test, normalization: model.normalization, communicator: communicator,
                         batchSize: batchSize, testTimeAugmentation: model.testTimeAugmentation).accuracy
        }
        let summary = QuantizationSummary(
            checkpoint: folder, out: out, scheme: QuantizedCheckpoint.scheme, calibrationSamples: calibration,
            testSamples: test.count, fp32Bytes: fileSize(source), int8Bytes: bytes.count,
            fp32Accuracy: try accuracy(saved), int8Accuracy: try accuracy(int8),
            layers: int8.model.layers.compactMap { LayerQuantization($0, float: saved.model) })
        try communicator.onCoordinator { try writeJSONAtomically(summary, to: "\(out)/\(CheckpointFile.quantization)") }
        return summary
    }

    private func report(_ s: QuantizationSummary) {
        print("quantized \(s.checkpoint) → \(s.out)/\(CheckpointFile.model)")
        print("  \(s.scheme); \(s.calibrationSamples) calibration samples")
        func column(_ text: String) -> String { text.padding(toLength: 12, withPad: " ", startingAt: 0) }
        print("  " + column("") + column("fp32") + column("int8"))
        print("  " + column("file size") + column(megabytes(s.fp32Bytes)) + column(megabytes(s.int8Bytes))
              + String(format: "(%.2f× smaller)", Double(s.fp32Bytes) / Double(s.int8Bytes)))
        print("  " + column("accuracy") + column(String(format: "%.4f", s.fp32Accuracy)) + column(String(format: "%.4f", s.int8Accuracy))
              + String(format: "(%+.2f points on %d \(dataset) test samples)", 100 * (s.int8Accuracy - s.fp32Accuracy), s.testSamples))
        for layer in s.layers {
            print("  " + column(layer.weight)
                + String(format: "weight scales %.3g…%.3g, max |w − ŵ| %.3g; input scale %.3g, zero point %d",
                         layer.weightScaleMin, layer.weightScaleMax, layer.weightMaxError, layer.inputScale, layer.inputZeroPoint))
        }
        fflush(nil)
    }

    private func megabytes(_ bytes: Int) -> String { String(format: "%.2f MB", Double(bytes) / 1e6) }
}


/// OUT/quantization.json.
struct QuantizationSummary: Codable {
    var checkpoint: String
    var out: String
    var scheme: String
    var calibrationSamples: Int
    var testSamples: Int
    var fp32Bytes: Int
    var int8Bytes: Int
    var fp32Accuracy: Double
    var int8Accuracy: Double
    var layers: [LayerQuantization]
}

/// One int8 layer's scales and how far its dequantized weights lie from the float ones.
struct LayerQuantization: Codable {
    var weight: String
    var weightScaleMin: Float
    var weightScaleMax: Float
    var weightMaxError: Float
    var inputScale: Float
    var inputZeroPoint: Int32

    init?(_ layer: Layer, float: Sequential) {
        let kernel: Int8Kernel, name: String
        if let linear = layer as? QuantizedLinear { (kernel, name) = (linear.kernel, linear.name) }
        else if let convolution = layer as? QuantizedConv2D { (kernel, name) = (convolution.kernel, convolution.name) }
        else { return nil }
        weight = "\(name).weight"
        let weightName = weight
        let slice = float.parameters.slices.first { $0.name == weightName }!
        let dequantized = kernel.weights.dequantized()
        var largest: Float = 0
        for (index, value) in dequantized.enumerated() {
            largest = max(largest, abs(value - float.parameters.values[slice.offset + index]))
        }
        weightMaxError = largest
        weightScaleMin = kernel.weights.scales.min() ?? 0
        weightScaleMax = kernel.weights.scales.max() ?? 0
        inputScale = kernel.input.scale
        inputZeroPoint = kernel.input.zeroPoint
    }
}
