import Tensors

/// Fully connected layer, y = x·Wᵀ + b (optionally followed by a fused ReLU), as torch.nn.Linear.
///
/// weight: (out, in), bias: (out). x: (B, in), y: (B, out); or, applied per position as PyTorch applies
/// nn.Linear to the last axis, x: (B, T, in), y: (B, T, out) with rows = B·T.
public final class Linear: Layer {
    public let inputFeatures: Int
    public let outputFeatures: Int
    /// Positions per sample (T of a (T, in) input; 1 for a flat one).
    public let positions: Int
    public let activation: Activation
    public let name: String
    private var store: ParameterStore!
    private var weight: ParameterSlice!
    private var bias: ParameterSlice?
    /// Whether the layer has a bias (PyTorch's bias=False leaves it out of the parameters).
    public let hasBias: Bool
    /// The (out, in) parameter of an earlier layer used as this layer's weight (a language-model head tied to
    /// the token embedding, whose (V, C) table is the head's (out, in) weight), or nil for its own.
    public let tiedWeightName: String?
    private var tiedWeight: ParameterSlice?
    /// How the weight starts: nil for PyTorch's Kaiming-uniform (and its bias), else this (and a zero bias).
    private let weightInitializer: Initializer?
    /// (out) zeros standing in for a missing bias before a fused ReLU.
    private let zeroBias: UnsafeMutablePointer<Float>

    /// - Parameter name: prefix of the parameter names ("1" gives "1.weight" and "1.bias").
    /// - Parameter positions: T for a (T, in) input, 0 for a flat (in) one.
    /// - Parameter tiedTo: the name of an earlier layer's (out, in) parameter to use as the weight.
    public init(inputFeatures: Int, outputFeatures: Int, activation: Activation = .identity, name: String, bias: Bool = true,
                positions: Int = 0, tiedTo: String? = nil, weightInitializer: Initializer? = nil) {
        precondition(inputFeatures > 0 && outputFeatures > 0, "Linear needs positive sizes, got \(inputFeatures)→\(outputFeatures)")
        self.positions = max(positions, 1)
        isPerPosition = positions > 0
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        self.activation = activation
        self.name = name
        hasBias = bias
        tiedWeightName = tiedTo
        self.weightInitializer = weightInitializer
        zeroBias = .allocate(capacity: outputFeatures)
        zeroBias.initialize(repeating: 0, count: outputFeatures)
    }

    deinit { zeroBias.deallocate() }

    private var biasValues: UnsafeMutablePointer<Float> { bias.map { store.valuePointer($0) } ?? zeroBias }

    private let isPerPosition: Bool
    public var multiplyAccumulatesPerSample: Int { positions * inputFeatures * outputFeatures }
    public var summary: String {
        "Linear(\(inputFeatures) → \(outputFeatures))" + (activation == .relu ? " + ReLU" : "")
            + (tiedWeightName.map { ", weight tied to \($0)" } ?? "")
    }
    // Stored: read in every step.
    public private(set) lazy var inputShape: [Int] = isPerPosition ? [positions, inputFeatures] : [inputFeatures]
    public private(set) lazy var outputShape: [Int] = isPerPosition ? [positions, outputFeatures] : [outputFeatures]
    public var parameterSpecs: [ParameterSpec] {
        let weight = weightInitializer ?? .kaimingUniform(fanIn: inputFeatures)
        let bias = weightInitializer == nil ? Initializer.kaimingUniform(fanIn: inputFeatures) : .zeros
        return (tiedWeightName == nil ? [ParameterSpec(name: "\(name).weight", shape: [outputFeatures, inputFeatures],
                                                       initializer: weight)] : [])
            + (hasBias ? [ParameterSpec(name: "\(name).bias", shape: [outputFeatures], initializer: bias)] : [])
    }

    public var tiedParameters: [(name: String, tiedTo: String)] { tiedWeightName.map { [("\(name).weight", $0)] } ?? [] }

    public func bindTied(_ slices: [ParameterSlice]) {
        precondition(slices.count == 1 && slices[0].shape == [outputFeatures, inputFeatures],
                     "Linear \(name): its tied weight must be (\(outputFeatures), \(inputFeatures))")
        tiedWeight = slices[0]
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        self.store = store
        let own = tiedWeight == nil ? 1 : 0
        weight = tiedWeight ?? slices[0]
        bias = hasBias ? slices[own] : nil
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch samples: Int, context: ForwardContext) {
        guard context.sumsExactly else { return forwardRows(x, y, rows: samples * positions) }
        // One GEMM per sample: OpenBLAS's result for a row can depend on how many rows share the call (its
        // Haswell kernels: half of a 32-row product's values differ from 11 + 11 + 10 rows), and a rank's
        // rows are its share of the batch.
        for s in 0..<samples {
            forwardRows(x + s * positions * inputFeatures, y + s * positions * outputFeatures, rows: positions)
        }
    }

    /// y(rows, out) for rows of `inputFeatures` each.
    private func forwardRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows batch: Int) {
        let w = store.valuePointer(weight), b = biasValues
        // y(B, out) = x(B, in) · W(out, in)ᵀ
        gemm(.none, .transposed, m: batch, n: outputFeatures, k: inputFeatures, a: x, b: w, beta: 0, c: y)
        switch activation {
        case .identity: if hasBias { addRowBias(y, rows: batch, columns: outputFeatures, bias: b) }
        case .relu: addRowBiasReLU(y, rows: batch, columns: outputFeatures, bias: b)
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch samples: Int) {
        let batch = samples * positions
        if activation == .relu {
            reluBackward(output: y, dOutput: dy, dInput: dy, count: batch * outputFeatures)
        }
        if let exact = store.exactGradients {
            addGradientsExactly(exact, input: x, dOutput: dy, samples: samples)
        } else {
            // dW(out, in) += dy(B, out)ᵀ · x(B, in)
            gemm(.transposed, .none, m: outputFeatures, n: inputFeatures, k: batch,
                 a: dy, b: x, beta: 1, c: store.gradientPointer(weight))
            if let bias { accumulateColumnSums(dy, rows: batch, columns: outputFeatures, into: store.gradientPointer(bias)) }
        }
        guard let dx else { return }
        // dx(B, in) = dy(B, out) · W(out, in); per sample under --exact-sums, as in forward.
        let perCall = store.exactGradients == nil ? batch : positions
        for first in stride(from: 0, to: batch, by: max(perCall, 1)) {
            gemm(.none, .none, m: perCall, n: inputFeatures, k: outputFeatures,
                 a: dy + first * outputFeatures, b: store.valuePointer(weight), beta: 0, c: dx + first * inputFeatures)
        }
    }

    public var sumsGradientsExactly: Bool { true }

    /// `--exact-sums`: each sample's terms added exactly — a flat sample's dW as the exact products dy ⊗ x, a
    /// sequence's as its own (out, in) GEMM over its T positions — and each row's dy to the bias, so the sum
    /// over samples does not depend on which rank holds which.
    private func addGradientsExactly(_ exact: ExactSums, input x: UnsafePointer<Float>, dOutput dy: UnsafePointer<Float>,
                                     samples: Int) {
        let weightCount = outputFeatures * inputFeatures
        for s in 0..<samples {
            let sampleX = x + s * positions * inputFeatures, sampleDy = dy + s * positions * outputFeatures
            if positions == 1 {
                exact.addOuterProduct(sampleDy, rows: outputFeatures, sampleX, columns: inputFeatures, at: weight.offset)
            } else {
                // dW_s(out, in) = dy_s(T, out)ᵀ · x_s(T, in)
                gemm(.transposed, .none, m: outputFeatures, n: inputFeatures, k: positions,
                     a: sampleDy, b: sampleX, beta: 0, c: exact.scratch)
                exact.add(exact.scratch, count: weightCount, at: weight.offset)
            }
            guard let bias else { continue }
            for row in 0..<positions { exact.add(sampleDy + row * outputFeatures, count: outputFeatures, at: bias.offset) }
        }
    }
}

extension Linear: PositionFreeLayer {
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        guard rows == 1 else { return forwardRows(x, y, rows: rows) }
        matrixVector(store.valuePointer(weight), rows: outputFeatures, columns: inputFeatures, lda: inputFeatures, x: x,
                     beta: 0, y: y)
        switch activation {
        case .identity: if hasBias { addRowBias(y, rows: 1, columns: outputFeatures, bias: biasValues) }
        case .relu: addRowBiasReLU(y, rows: 1, columns: outputFeatures, bias: biasValues)
        }
    }
}
