import XCTest
import Compression
import Layers
import SafeTensors
import Tensors
import _TestSupport

/// int8 quantization: the per-channel and per-tensor schemes against hand-computed values, the int8
/// layers (oneDNN's integer GEMM) against float references on random data, and the checkpoint format's checks.
final class QuantizationTests: XCTestCase {
    private var seed: UInt64 = 7
    private func random(_ count: Int, scale: Float = 1, offset: Float = 0) -> [Float] {
        (0..<count).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return offset + scale * (Float(seed >> 40) / Float(1 << 24) * 2 - 1)
        }
    }

    /// Each channel's largest |w| maps to ±127 and every weight lies within half a step of its code; a
    /// zero channel (pruned) keeps scale 1 and codes 0.
    func testWeightsAreQuantizedPerChannelWithinHalfAStep() {
        let magnitudes: [Float] = [0.01, 1, 30, 0]
        let weights = magnitudes.flatMap { random(50, scale: $0) }
        let q = weights.withUnsafeBufferPointer { ChannelQuantizedWeights(quantizing: $0, outputChannels: 4) }
        let restored = q.dequantized()
        for channel in 0..<3 {
            let row = Array(weights[(channel * 50)..<((channel + 1) * 50)])
            let largest = row.map(abs).max()!
            XCTAssertEqual(q.scales[channel], largest / 127, accuracy: largest * 1e-7)
            XCTAssertEqual(q.values[(channel * 50)..<((channel + 1) * 50)].map { abs(Int($0)) }.max(), 127)
            for k in 0..<50 {
                XCTAssertLessThanOrEqual(abs(restored[channel * 50 + k] - row[k]), q.scales[channel] / 2 * 1.0001)
            }
        }
        XCTAssertEqual(q.scales[3], 1)
        XCTAssertTrue(q.values[150...].allSatisfy { $0 == 0 })
        XCTAssertEqual(q.channelSums[0], q.values[0..<50].reduce(Int32(0)) { $0 + Int32($1) })
    }

    /// [-1, 3] over 127 codes: scale 4/127, zero point round(1 / (4/127)) = round(31.75) = 32; the value 0
    /// is exact; outside values clamp; an all-positive range gets zero point 0.
    func testActivationsAreQuantizedAffinelyOverTheCalibratedRange() {
        let q = ActivationQuantization(minimum: -1, maximum: 3)
        XCTAssertEqual(q.scale, 4 / 127, accuracy: 1e-9)
        XCTAssertEqual(q.zeroPoint, 32)
        XCTAssertEqual(q.value(q.code(0)), 0)
        XCTAssertEqual(q.code(100), 127)
        XCTAssertEqual(q.code(-100), 0)
        XCTAssertEqual(q.value(q.code(1.5)), 1.5, accuracy: q.scale / 2)
        let positive = ActivationQuantization(minimum: 0.5, maximum: 2)
        XCTAssertEqual(positive.zeroPoint, 0)
        XCTAssertEqual(positive.scale, 2 / 127, accuracy: 1e-9)
        XCTAssertEqual(ActivationQuantization(minimum: 0, maximum: 0), ActivationQuantization(scale: 1, zeroPoint: 0))
        var observer = RangeObserver()
        let values: [Float] = [0.5, -2, .nan, 7, .infinity]
        observer.observe(values, count: values.count)
        XCTAssertEqual(observer.minimum, -2)
        XCTAssertEqual(observer.maximum, 7)
    }

    /// The C kernel that quantizes activations agrees with the scheme's own definition, element by element.
    func testTheQuantizeKernelAgreesWithTheScheme() {
        let q = ActivationQuantization(minimum: -1.3, maximum: 2.2)
        let x = random(1000, scale: 2) + [0, -0.5 * q.scale, 0.5 * q.scale, 1e30, -1e30]
        let kernel = Int8Kernel(weights: ChannelQuantizedWeights(values: [1], scales: [1], outputChannels: 1), input: q)
        var codes = [UInt8](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xs in codes.withUnsafeMutableBufferPointer { kernel.quantizeForTesting(xs.baseAddress!, into: $0.baseAddress!, count: x.count) } }
        XCTAssertEqual(codes.map(Int32.init), x.map(q.code))
    }

    /// A model's float layer with given weights and bias, its int8 twin, and the twin's inputs as
    /// fake-quantized floats: the int8 layer must equal the float layer run on dequantized weights and
    /// fake-quantized inputs up to float rounding (the integer sums are exact), and be close to the float layer.
    private func compare(float layer: Layer, int8 quantized: Layer, input: ActivationQuantization, batch: Int,
                         x: [Float], weightName: String, weights: ChannelQuantizedWeights, floatWeights: [Float], bias: [Float]) {
        let floatModel = Sequential(inputShape: layer.inputShape, layers: [layer])
        let int8Model = Sequential(inputShape: layer.inputShape, layers: [quantized])
        let weightSlice = floatModel.parameters.slices.first { $0.name == weightName }!
        let biasName = weightName.replacingOccurrences(of: ".weight", with: ".bias")
        for (i, v) in bias.enumerated() {
            floatModel.parameters.values[floatModel.parameters.slices.first { $0.name == biasName }!.offset + i] = v
            int8Model.parameters.values[i] = v
        }
        floatModel.reserve(batchCapacity: batch)
        int8Model.reserve(batchCapacity: batch)
        func runFloat(weights w: [Float], inputs: [Float]) -> [Float] {
            for (i, v) in w.enumerated() { floatModel.parameters.values[weightSlice.offset + i] = v }
            for (i, v) in inputs.enumerated() { floatModel.input[i] = v }
            let out = floatModel.forward(batch: batch, context: .inference)
            return Array(UnsafeBufferPointer(start: out, count: batch * layer.outputCount))
        }
        for (i, v) in x.enumerated() { int8Model.input[i] = v }
        let int8Output = Array(UnsafeBufferPointer(start: int8Model.forward(batch: batch, context: .inference), count: batch * layer.outputCount))
        let reference = runFloat(weights: weights.dequantized(), inputs: x.map { input.value(input.code($0)) })
        let largest = reference.map(abs).max()!
        XCTAssertGreaterThan(largest, 0.1)
        for (a, b) in zip(int8Output, reference) { XCTAssertEqual(a, b, accuracy: 1e-5 * largest) }
        let exact = runFloat(weights: floatWeights, inputs: x)
        let error = zip(int8Output, exact).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(error, 0.03 * largest, "int8 stays within a few percent of the float layer")
        XCTAssertGreaterThan(error, 0, "the int8 layer really rounds")
    }

    func testInt8LinearEqualsTheFloatLayerOnQuantizedValues() {
        let (batch, inputs, outputs) = (5, 37, 11)
        let w = random(outputs * inputs, scale: 0.3), b = random(outputs, scale: 0.1), x = random(batch * inputs, scale: 1.5, offset: 0.4)
        let weights = w.withUnsafeBufferPointer { ChannelQuantizedWeights(quantizing: $0, outputChannels: outputs) }
        var observer = RangeObserver()
        observer.observe(x, count: x.count)
        let input = observer.quantization
        XCTAssertGreaterThan(input.zeroPoint, 0, "negative inputs exercise the zero-point correction")
        for activation in [Activation.identity, .relu] {
            let float = Linear(inputFeatures: inputs, outputFeatures: outputs, activation: activation, name: "fc")
            let int8 = QuantizedLinear(float, kernel: Int8Kernel(weights: weights, input: input))
            compare(float: float, int8: int8, input: input, batch: batch, x: x, weightName: "fc.weight", weights: weights, floatWeights: w, bias: b)
        }
    }

    /// Stride 2 and padding 1 with a non-zero zero point: the padding must hold the code of 0.
    func testInt8ConvolutionEqualsTheFloatLayerOnQuantizedValues() {
        let (batch, channels, outputs) = (3, 3, 8)
        let w = random(outputs * channels * 9, scale: 0.4), b = random(outputs, scale: 0.1)
        let x = random(batch * channels * 9 * 9, scale: 1, offset: 0.3)
        let weights = w.withUnsafeBufferPointer { ChannelQuantizedWeights(quantizing: $0, outputChannels: outputs) }
        var observer = RangeObserver()
        observer.observe(x, count: x.count)
        for (stride, padding, chunk) in [(1, 1, nil), (2, 1, nil), (1, 0, nil), (1, 1, 2)] as [(Int, Int, Int?)] {
            let float = Conv2D(inputShape: [channels, 9, 9], outputChannels: outputs, kernelSize: 3, stride: stride, padding: padding,
                               activation: .relu, name: "conv")
            let int8 = QuantizedConv2D(float, kernel: Int8Kernel(weights: weights, input: observer.quantization), imagesPerChunk: chunk)
            XCTAssertEqual(int8.imagesPerChunk, chunk ?? int8.imagesPerChunk)
            XCTAssertTrue(chunk != nil || int8.imagesPerChunk >= batch, "one GEMM for the 3 small images, or (2) two of them")
            compare(float: float, int8: int8, input: observer.quantization, batch: batch, x: x, weightName: "conv.weight",
                    weights: weights, floatWeights: w, bias: b)
        }
    }

    /// The int8 checkpoint of a small model: written, read back into int8 layers that compute as the
    /// in-memory ones; then each kind of damage is refused naming the tensor.
    func testQuantizedCheckpointsRoundTripAndRefuseBadScalesAndShapes() throws {
        let layers: [Layer] = [Linear(inputFeatures: 6, outputFeatures: 5, activation: .relu, name: "0"), Linear(inputFeatures: 5, outputFeatures: 3, name: "2")]
        let model = Sequential(inputShape: [6], layers: layers)
        for i in 0..<model.parameters.count { model.parameters.values[i] = random(1, scale: 0.5)[0] }
        var ranges = [0: RangeObserver(), 1: RangeObserver()]
        let x = random(12, scale: 2)
        ranges[0]!.observe(x, count: 12)
        let y = random(10, scale: 1, offset: 1)
        ranges[1]!.observe(y, count: 10)
        let bytes = QuantizedCheckpoint.tensors(of: model, inputRanges: ranges).encoded(metadata: ["model": "test"])
        let file = try SafeTensors.decode(bytes, path: "q.safetensors")
        XCTAssertEqual(file.entries["0.weight"]?.dtype, .i8)
        XCTAssertEqual(file.entries["0.weight_scale"]?.shape, [5])
        XCTAssertEqual(file.entries["0.bias"]?.dtype, .f32)
        let (int8, consumed) = try QuantizedCheckpoint.int8Layers(layers, file: file)
        XCTAssertTrue(int8[0] is QuantizedLinear && int8[1] is QuantizedLinear)
        XCTAssertEqual(consumed, ["0.weight", "0.weight_scale", "0.input_scale", "0.input_zero_point",
                                  "2.weight", "2.weight_scale", "2.input_scale", "2.input_zero_point"])
        let first = int8[0] as! QuantizedLinear
        XCTAssertEqual(first.kernel.input, ranges[0]!.quantization)
        let firstWeights = Array(model.parameters.values[0..<30])
        XCTAssertEqual(first.kernel.weights.values, firstWeights.withUnsafeBufferPointer {
            ChannelQuantizedWeights(quantizing: $0, outputChannels: 5).values
        })

        func damaged(_ name: String, float: [Float]? = nil, int8: [Int8]? = nil, shape: [Int]? = nil, drop: Bool = false) -> SafeTensorsFile {
            let stored = StoredTensors()
            for (entryName, entry) in file.entries.sorted(by: { $0.key < $1.key }) {
                if entryName == name && drop { continue }
                let entryShape = entryName == name ? (shape ?? entry.shape) : entry.shape
                if entryName == name, let float {
                    stored.append(name: entryName, shape: entryShape, float: float)
                } else if entryName == name, let int8 {
                    stored.append(name: entryName, shape: entryShape, int8: int8)
                } else if entry.dtype == .i8 {
                    stored.append(name: entryName, shape: entryShape, int8: try! file.int8Values(entryName, shape: entry.shape))
                } else {
                    stored.append(name: entryName, shape: entryShape, float: try! file.values(entryName))
                }
            }
            return try! SafeTensors.decode(stored.encoded(metadata: [:]), path: "bad.safetensors")
        }
        let cases: [(SafeTensorsFile, String)] = [
            (damaged("0.weight_scale", float: [1, 1, 0, 1, 1]), "0.weight_scale holds the scale 0.0"),
            (damaged("0.weight_scale", float: [1, -2, 1, 1, 1]), "0.weight_scale holds the scale -2.0"),
            (damaged("2.input_scale", float: [.nan]), "2.input_scale holds the scale nan"),
            (damaged("2.weight_scale", drop: true), "missing tensor 2.weight_scale"),
            (damaged("2.weight", int8: [Int8](repeating: 1, count: 16), shape: [4, 4]), "tensor 2.weight is I8 of shape [4, 4] but the model needs I8 of shape [3, 5]"),
            (damaged("0.input_zero_point", int8: [-3]), "0.input_zero_point is -3"),
            (damaged("0.weight", float: [Float](repeating: 0, count: 30)), "tensor 0.weight is F32 of shape [5, 6] but the model needs I8"),
        ]
        for (file, message) in cases {
            XCTAssertThrowsError(try QuantizedCheckpoint.int8Layers(layers, file: file)) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error) lacks '\(message)'")
            }
        }
    }
}
