import CKernels
import Tensors

/// Multi-head causal self-attention as nanoGPT's `CausalSelfAttention` (no dropout): a fused QKV projection
/// `c_attn`, softmax(q·kᵀ/√d) over the positions at or before each one, and the output projection `c_proj`.
///
/// c_attn.weight: (3C, C), c_attn.bias: (3C), c_proj.weight: (C, C), c_proj.bias: (C).
/// x, y: (B, T, C). Keeps for backward: qkv (B, T, 3C), the heads' outputs (B, T, C) and the attention
/// probabilities (B, H, T, T). A plain (T, T) score buffer per head rather than a tiled (flash) kernel: at the
/// context lengths trained here (64–256) a head's scores are 16–256 KB and one GEMM computes them.
public final class CausalSelfAttention: Layer {
    public let positions: Int
    public let features: Int
    public let heads: Int
    public let hasBias: Bool
    public let name: String
    private var store: ParameterStore!
    private var slices: [ParameterSlice] = []
    private var capacity = 0
    /// What forward keeps for backward, and backward's scratch: this layer's own, or with `--recompute` one set every
    /// attention layer of the model shares (each block's forward runs again just before its backward).
    private var buffers = AttentionBuffers()

    /// How c_attn's and c_proj's weights start (nil: PyTorch's Kaiming-uniform, also for the biases; else
    /// zero biases): GPT-2 draws both from N(0, 0.02²), c_proj — a residual projection — with 0.02/√(2·layers).
    private let initializers: (attention: Initializer, projection: Initializer)?

    public init(positions: Int, features: Int, heads: Int, bias: Bool = true, name: String,
                initializers: (attention: Initializer, projection: Initializer)? = nil) {
        precondition(positions > 0 && features > 0 && heads > 0 && features % heads == 0,
                     "attention needs heads dividing the width, got \(features) over \(heads) heads")
        self.positions = positions
        self.features = features
        self.heads = heads
        hasBias = bias
        self.name = name
        self.initializers = initializers
    }

    /// Uses `shared` for the buffers (`--recompute`; before `reserve`).
    func shareBuffers(_ shared: AttentionBuffers) { buffers = shared }

    private var headSize: Int { features / heads }
    public var summary: String { "CausalSelfAttention(\(features), \(heads) heads)" }
    public private(set) lazy var inputShape: [Int] = [positions, features]
    public var outputShape: [Int] { inputShape }
    /// The projections (4·C² per position) and the scores and weighted sums (2·T·C per position, halved by causality).
    public var multiplyAccumulatesPerSample: Int { positions * (4 * features * features + positions * features) }
    public var parameterSpecs: [ParameterSpec] {
        let c = features
        let pytorch = Initializer.kaimingUniform(fanIn: c), bias = initializers == nil ? pytorch : .zeros
        var specs = [ParameterSpec(name: "\(name).c_attn.weight", shape: [3 * c, c], initializer: initializers?.attention ?? pytorch)]
        if hasBias { specs.append(ParameterSpec(name: "\(name).c_attn.bias", shape: [3 * c], initializer: bias)) }
        specs.append(ParameterSpec(name: "\(name).c_proj.weight", shape: [c, c], initializer: initializers?.projection ?? pytorch))
        if hasBias { specs.append(ParameterSpec(name: "\(name).c_proj.bias", shape: [c], initializer: bias)) }
        return specs
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        self.store = store
        self.slices = slices
    }

    private var attentionWeight: UnsafeMutablePointer<Float> { store.valuePointer(slices[0]) }
    private var projectionWeight: UnsafeMutablePointer<Float> { store.valuePointer(slices[hasBias ? 2 : 1]) }
    /// The biases' slices, nil when the layer has none (then nothing is added and no gradient is summed).
    private var attentionBias: ParameterSlice? { hasBias ? slices[1] : nil }
    private var projectionBias: ParameterSlice? { hasBias ? slices[3] : nil }

    /// qkv and its gradient (B·T·3C each), the heads' outputs and their gradient (B·T·C each), the probabilities
    /// (B·H·T²) and one head's score gradient (T²).
    public func workspaceBytes(batchCapacity: Int) -> Int {
        let rows = batchCapacity * positions
        return 4 * (8 * rows * features + batchCapacity * heads * positions * positions + positions * positions)
    }

    public func reserve(batchCapacity: Int) {
        guard batchCapacity > capacity else { return }
        let rows = batchCapacity * positions
        buffers.qkv.reserve(rows * 3 * features)
        buffers.headOutputs.reserve(rows * features)
        buffers.probabilities.reserve(batchCapacity * heads * positions * positions)
        buffers.dQKV.reserve(rows * 3 * features)
        buffers.dHeadOutputs.reserve(rows * features)
        buffers.dScores.reserve(positions * positions)
        capacity = batchCapacity
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        precondition(batch <= capacity, "attention: batch \(batch) exceeds the reserved \(capacity)")
        let t = positions, c = features, d = headSize, rows = batch * t
        let qkv = buffers.qkv.base, out = buffers.headOutputs.base
        // Under --exact-sums one GEMM per sample: OpenBLAS's rows can depend on how many share the call.
        let rowsPerCall = context.sumsExactly ? t : rows
        // qkv(B·T, 3C) = x · c_attnᵀ + b
        multiplyRows(x, rows: rows, perCall: rowsPerCall, by: attentionWeight, transposed: true, k: c, n: 3 * c, into: qkv)
        if let bias = attentionBias { addRowBias(qkv, rows: rows, columns: 3 * c, bias: store.valuePointer(bias)) }
        let scale = 1 / Float(d).squareRoot()
        for b in 0..<batch {
            for h in 0..<heads {
                let q = qkv + b * t * 3 * c + h * d, k = q + c, v = q + 2 * c
                let p = buffers.probabilities.base + (b * heads + h) * t * t
                // scores(T, T) = q · kᵀ / √d, then a softmax over j ≤ i on each row i.
                gemm(.none, .transposed, m: t, n: t, k: d, alpha: scale, a: q, lda: 3 * c, b: k, ldb: 3 * c, beta: 0,
                     c: p, ldc: t)
                distrain_causal_softmax(p, t)
                // head output(T, d) = P · v
                gemm(.none, .none, m: t, n: d, k: t, a: p, lda: t, b: v, ldb: 3 * c, beta: 0,
                     c: out + b * t * c + h * d, ldc: c)
            }
        }
        // y(B·T, C) = heads · c_projᵀ + b
        multiplyRows(out, rows: rows, perCall: rowsPerCall, by: projectionWeight, transposed: true, k: c, n: c, into: y)
        if let bias = projectionBias { addRowBias(y, rows: rows, columns: c, bias: store.valuePointer(bias)) }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        let t = positions, c = features, d = headSize, rows = batch * t
        let qkv = buffers.qkv.base, dQKV = buffers.dQKV.base, dOut = buffers.dHeadOutputs.base, dS = buffers.dScores.base
        let exact = store.exactGradients, rowsPerCall = exact == nil ? rows : t
        // c_proj: dW(C, C) += dyᵀ · heads, db += Σ dy, d heads(B·T, C) = dy · W
        addWeightGradient(slices[hasBias ? 2 : 1], bias: projectionBias, dOutput: dy, input: buffers.headOutputs.base,
                          outputs: c, batch: batch)
        multiplyRows(dy, rows: rows, perCall: rowsPerCall, by: projectionWeight, transposed: false, k: c, n: c, into: dOut)
        let scale = 1 / Float(d).squareRoot()
        for b in 0..<batch {
            for h in 0..<heads {
                let q = qkv + b * t * 3 * c + h * d, k = q + c, v = q + 2 * c
                let dq = dQKV + b * t * 3 * c + h * d, dk = dq + c, dv = dq + 2 * c
                let p = buffers.probabilities.base + (b * heads + h) * t * t, dHead = dOut + b * t * c + h * d
                // dP(T, T) = d head · vᵀ;  dv(T, d) = Pᵀ · d head
                gemm(.none, .transposed, m: t, n: t, k: d, a: dHead, lda: c, b: v, ldb: 3 * c, beta: 0, c: dS, ldc: t)
                gemm(.transposed, .none, m: t, n: d, k: t, a: p, lda: t, b: dHead, ldb: c, beta: 0, c: dv, ldc: 3 * c)
                // dScores = P ⊙ (dP − Σ_j dP·P) / √d  (zero above the diagonal, where P is)
                distrain_causal_softmax_backward(p, dS, t, scale)
                // dq(T, d) = dScores · k;  dk(T, d) = dScoresᵀ · q
                gemm(.none, .none, m: t, n: d, k: t, a: dS, lda: t, b: k, ldb: 3 * c, beta: 0, c: dq, ldc: 3 * c)
                gemm(.transposed, .none, m: t, n: d, k: t, a: dS, lda: t, b: q, ldb: 3 * c, beta: 0, c: dk, ldc: 3 * c)
            }
        }
        // c_attn: dW(3C, C) += dqkvᵀ · x, db += Σ dqkv, dx(B·T, C) = dqkv · W
        addWeightGradient(slices[0], bias: attentionBias, dOutput: dQKV, input: x, outputs: 3 * c, batch: batch)
        if let dx {
            multiplyRows(dQKV, rows: rows, perCall: rowsPerCall, by: attentionWeight, transposed: false, k: 3 * c, n: c, into: dx)
        }
    }

    public var sumsGradientsExactly: Bool { true }

    /// y(rows, n) = x(rows, k) · W (W (k, n)) or · Wᵀ (W (n, k)), `perCall` rows per GEMM.
    private func multiplyRows(_ x: UnsafePointer<Float>, rows: Int, perCall: Int, by w: UnsafePointer<Float>,
                              transposed: Bool, k: Int, n: Int, into y: UnsafeMutablePointer<Float>) {
        for first in stride(from: 0, to: rows, by: max(perCall, 1)) {
            gemm(.none, transposed ? .transposed : .none, m: min(perCall, rows - first), n: n, k: k, a: x + first * k, b: w,
                 beta: 0, c: y + first * n)
        }
    }

    /// A projection's dW(outputs, C) += dyᵀ · x and db += Σ dy over the batch's rows — under --exact-sums each
    /// sample's as exact terms (its own (T) GEMM into the scratch, its rows of dy one by one).
    private func addWeightGradient(_ weight: ParameterSlice, bias: ParameterSlice?, dOutput dy: UnsafePointer<Float>,
                                   input x: UnsafePointer<Float>, outputs: Int, batch: Int) {
        let t = positions, c = features
        guard let exact = store.exactGradients else {
            gemm(.transposed, .none, m: outputs, n: c, k: batch * t, a: dy, b: x, beta: 1, c: store.gradientPointer(weight))
            if let bias { accumulateColumnSums(dy, rows: batch * t, columns: outputs, into: store.gradientPointer(bias)) }
            return
        }
        for s in 0..<batch {
            let sampleDy = dy + s * t * outputs
            gemm(.transposed, .none, m: outputs, n: c, k: t, a: sampleDy, b: x + s * t * c, beta: 0, c: exact.scratch)
            exact.add(exact.scratch, count: outputs * c, at: weight.offset)
            guard let bias else { continue }
            for row in 0..<t { exact.add(sampleDy + row * outputs, count: outputs, at: bias.offset) }
        }
    }
}

extension CausalSelfAttention: IncrementalLayer {
    /// The new rows' keys and values join the cache; each row attends to every cached position up to its own.
    /// Cache: keys (capacity, C), then values (capacity, C). Scratch: qkv (rows, 3C), scores (rows, positions so far).
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        let start = state.position, total = start + rows, c = features
        precondition(rows <= capacity * positions && total <= state.capacity,
                     "attention: rows \(start)..<\(total) do not fit the context \(state.capacity)")
        let qkv = buffers.qkv.base, out = buffers.headOutputs.base
        project(x, rows: rows, weight: attentionWeight, outputs: 3 * c, into: qkv)
        if let bias = attentionBias { addRowBias(qkv, rows: rows, columns: 3 * c, bias: store.valuePointer(bias)) }
        attendCached(qkv, rows: rows, state: state, into: out)
        project(out, rows: rows, weight: projectionWeight, outputs: c, into: y)
        if let bias = projectionBias { addRowBias(y, rows: rows, columns: c, bias: store.valuePointer(bias)) }
    }

    /// A decode step of several sequences: the projections over all rows at once, the attention of each row
    /// over its own sequence's cache.
    public func forwardSteps(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, states: [DecodingState]) {
        let rows = states.count, c = features
        precondition(rows <= capacity * positions, "attention: \(rows) sequences exceed \(capacity * positions) rows")
        let qkv = buffers.qkv.base, out = buffers.headOutputs.base
        project(x, rows: rows, weight: attentionWeight, outputs: 3 * c, into: qkv)
        if let bias = attentionBias { addRowBias(qkv, rows: rows, columns: 3 * c, bias: store.valuePointer(bias)) }
        for (row, state) in states.enumerated() {
            attendCached(qkv + row * 3 * c, rows: 1, state: state, into: out + row * c)
        }
        project(out, rows: rows, weight: projectionWeight, outputs: c, into: y)
        if let bias = projectionBias { addRowBias(y, rows: rows, columns: c, bias: store.valuePointer(bias)) }
    }

    /// New rows' keys and values (in `qkv`, (rows, 3C)) join `state`'s cache at its position; each row's heads
    /// attend to every cached position up to its own, into `out` (rows, C).
    private func attendCached(_ qkv: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState,
                              into out: UnsafeMutablePointer<Float>) {
        let start = state.position, total = start + rows, c = features, d = headSize
        let cache = state.cache(of: self, floatsPerPosition: 2 * c)
        let keys = cache, values = cache + state.capacity * c, scores = buffers.probabilities.base
        for r in 0..<rows {
            (keys + (start + r) * c).update(from: qkv + r * 3 * c + c, count: c)
            (values + (start + r) * c).update(from: qkv + r * 3 * c + 2 * c, count: c)
        }
        let scale = 1 / Float(d).squareRoot()
        for h in 0..<heads {
            // scores(rows, total) = q · Kᵀ / √d; row r sees positions 0 … start + r.
            gemm(.none, .transposed, m: rows, n: total, k: d, alpha: scale, a: qkv + h * d, lda: 3 * c, b: keys + h * d,
                 ldb: c, beta: 0, c: scores, ldc: total)
            distrain_causal_softmax_rows(scores, rows, total, start)
            // head output(rows, d) = P · V
            gemm(.none, .none, m: rows, n: d, k: total, a: scores, lda: total, b: values + h * d, ldb: c, beta: 0,
                 c: out + h * d, ldc: c)
        }
    }

    /// y(rows, outputs) = x(rows, C) · weightᵀ; one row by a matrix-vector product (a single pass over the weight).
    private func project(_ x: UnsafePointer<Float>, rows: Int, weight: UnsafePointer<Float>, outputs: Int,
                         into y: UnsafeMutablePointer<Float>) {
        if rows == 1 {
            matrixVector(weight, rows: outputs, columns: features, lda: features, x: x, beta: 0, y: y)
        } else {
            gemm(.none, .transposed, m: rows, n: outputs, k: features, a: x, b: weight, beta: 0, c: y)
        }
    }
}

/// An attention layer's kept values and scratch (`CausalSelfAttention`), shared by every attention layer of a model
/// trained with `--recompute`; each grows to the most any layer using it needs.
final class AttentionBuffers {
    var qkv = Workspace<Float>()            // (B, T, 3C)
    var headOutputs = Workspace<Float>()    // (B, T, C)
    var probabilities = Workspace<Float>()  // (B, H, T, T)
    var dQKV = Workspace<Float>()           // (B, T, 3C)
    var dHeadOutputs = Workspace<Float>()   // (B, T, C)
    var dScores = Workspace<Float>()        // (T, T)

    deinit { [qkv, headOutputs, probabilities, dQKV, dHeadOutputs, dScores].forEach { $0.free() } }
}
