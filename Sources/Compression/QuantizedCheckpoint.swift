import Foundation
import Layers
import SafeTensors
import Tensors

/// The int8 checkpoint format: for every Linear and Conv2d named L,
/// - `L.weight` I8, the float weight's shape: codes, symmetric per output channel;
/// - `L.weight_scale` F32 (out): each channel's scale;
/// - `L.input_scale` F32 (1) and `L.input_zero_point` I8 (1): the input's affine uint8 quantization;
/// - `L.bias` F32 as before. Every other tensor (BatchNorm's parameters and running statistics) stays F32.
/// The metadata keeps the float checkpoint's (spec, dataset, normalization…) and adds `quantization`,
/// a JSON object whose `scheme` is `QuantizedCheckpoint.scheme`.
public enum QuantizedCheckpoint {
    /// The metadata key that marks an int8 checkpoint.
    public static let metadataKey = "quantization"
    /// The one scheme distrain writes and reads.
    public static let scheme = "int8: weights symmetric per output channel [-127, 127]; inputs affine uint8 per tensor [0, 127], min/max calibration"

    /// Whether a checkpoint's metadata marks it as quantized.
    public static func isQuantized(_ metadata: [String: String]) -> Bool { metadata[metadataKey] != nil }

    /// The layers int8 inference computes in integers (a head tied to an embedding stays float: its weight is
    /// also the embedding's table).
    public static func isQuantizable(_ layer: Layer) -> Bool {
        (layer is Linear && (layer as! Linear).tiedWeightName == nil) || layer is Conv2D
    }

    private static func outputChannels(_ layer: Layer) -> Int {
        (layer as? Linear)?.outputFeatures ?? (layer as! Conv2D).outputChannels
    }

    private static func layerName(_ layer: Layer) -> String {
        (layer as? Linear)?.name ?? (layer as! Conv2D).name
    }

    /// The float checkpoint's tensors as int8 ones: every quantizable layer's weight quantized per channel,
    /// with its input's quantization from `inputRanges[layer index]`; every other tensor as it is.
    public static func tensors(of model: Sequential, inputRanges: [Int: RangeObserver]) -> StoredTensors {
        let stored = StoredTensors()
        var replaced = Set<String>()
        for (index, layer) in model.layers.enumerated() where isQuantizable(layer) {
            let name = layerName(layer), weight = layer.parameterSpecs[0]
            let slice = model.parameters.slices.first { $0.name == weight.name }!
            let values = UnsafeBufferPointer(rebasing: model.parameters.values[slice.offset..<(slice.offset + slice.count)])
            let quantized = ChannelQuantizedWeights(quantizing: values, outputChannels: outputChannels(layer))
            let input = (inputRanges[index] ?? RangeObserver()).quantization
            stored.append(name: weight.name, shape: weight.shape, int8: quantized.values)
            stored.append(name: "\(name).weight_scale", shape: [quantized.outputChannels], float: quantized.scales)
            stored.append(name: "\(name).input_scale", shape: [1], float: [input.scale])
            stored.append(name: "\(name).input_zero_point", shape: [1], int8: [Int8(input.zeroPoint)])
            replaced.insert(weight.name)
        }
        for (slice, values) in model.parameters.namedTensors where !replaced.contains(slice.name) {
            stored.append(name: slice.name, shape: slice.shape, float: Array(values))
        }
        return stored
    }

    /// The model's layers with every Linear and Conv2D replaced by its int8 version read from `file`, and
    /// the names of the tensors those read (the caller restores the rest, F32, into the new model's store).
    /// Throws, naming the tensor, on a missing or misshapen tensor or a scale that is not positive and finite.
    public static func int8Layers(_ layers: [Layer], file: SafeTensorsFile) throws -> (layers: [Layer], consumed: Set<String>) {
        var consumed = Set<String>()
        let replaced = try layers.map { layer -> Layer in
            guard isQuantizable(layer) else { return layer }
            let name = layerName(layer), weight = layer.parameterSpecs[0]
            let channels = outputChannels(layer)
            let codes = try file.int8Values(weight.name, shape: weight.shape)
            let scales = try positiveScales("\(name).weight_scale", count: channels, file: file)
            let inputScale = try positiveScales("\(name).input_scale", count: 1, file: file)[0]
            let zeroPoint = try file.int8Values("\(name).input_zero_point", shape: [1])[0]
            guard zeroPoint >= 0 else {
                throw SafeTensorsError(path: file.path, problem: "tensor \(name).input_zero_point is \(zeroPoint); a zero point lies in [0, 127]. The file is damaged: quantize the float checkpoint again")
            }
            if codes.contains(Int8.min) {
                throw SafeTensorsError(path: file.path, problem: "tensor \(weight.name) holds the code -128, which distrain's symmetric [-127, 127] scheme never writes. The file is damaged: quantize the float checkpoint again")
            }
            consumed.formUnion([weight.name, "\(name).weight_scale", "\(name).input_scale", "\(name).input_zero_point"])
            let kernel = Int8Kernel(weights: ChannelQuantizedWeights(values: codes, scales: scales, outputChannels: channels),
                                    input: ActivationQuantization(scale: inputScale, zeroPoint: Int32(zeroPoint)))
            if let linear = layer as? Linear { return QuantizedLinear(linear, kernel: kernel) }
            return QuantizedConv2D(layer as! Conv2D, kernel: kernel)
        }
        return (replaced, consumed)
    }

    private static func positiveScales(_ name: String, count: Int, file: SafeTensorsFile) throws -> [Float] {
        guard file.entries[name] != nil else {
            throw SafeTensorsError(path: file.path, problem: "missing tensor \(name), a scale of the int8 model. The file is damaged: quantize the float checkpoint again")
        }
        guard file.entries[name]?.shape == [count] else {
            throw SafeTensorsError(path: file.path, problem: "tensor \(name) has shape \(file.entries[name]!.shape) but the model needs [\(count)]")
        }
        let values = try file.values(name)
        if let bad = values.first(where: { !($0 > 0 && $0.isFinite) }) {
            throw SafeTensorsError(path: file.path, problem: "tensor \(name) holds the scale \(bad); scales must be positive and finite. The file is damaged: quantize the float checkpoint again")
        }
        return values
    }
}

/// Tensors to encode as safetensors, owning their values until written.
public final class StoredTensors {
    private enum Values {
        case float([Float])
        case int8([Int8])
    }
    private var tensors: [(name: String, shape: [Int], values: Values)] = []

    public init() {}

    public func append(name: String, shape: [Int], float values: [Float]) { tensors.append((name, shape, .float(values))) }
    public func append(name: String, shape: [Int], int8 values: [Int8]) { tensors.append((name, shape, .int8(values))) }

    /// The safetensors bytes of every tensor, in the order appended, with `metadata`.
    public func encoded(metadata: [String: String]) -> [UInt8] {
        var remaining = tensors[...], written: [TensorToWrite] = []
        // Each array's buffer stays valid only inside its closure, so encode from the innermost one.
        func borrow() -> [UInt8] {
            guard let tensor = remaining.popFirst() else { return SafeTensors.encode(written, metadata: metadata) }
            switch tensor.values {
            case .float(let values):
                return values.withUnsafeBufferPointer { pointer in
                    written.append(TensorToWrite(name: tensor.name, shape: tensor.shape, values: pointer))
                    return borrow()
                }
            case .int8(let values):
                return values.withUnsafeBufferPointer { pointer in
                    written.append(TensorToWrite(name: tensor.name, shape: tensor.shape, int8: pointer))
                    return borrow()
                }
            }
        }
        return borrow()
    }
}
