import Tensors

/// A residual block, y = body(x) + shortcut(x), the shortcut the identity when it has no layers (as
/// ResNet's basic block; a 1x1 Conv2d with stride, often with a BatchNorm2d, is the usual projection).
/// In PyTorch it is the `Residual(body, shortcut)` module the export defines, so parameters are named
/// "<block>.body.<i>.weight" and "<block>.shortcut.<i>.weight".
///
/// Every inner layer's output has its own buffer (backward needs them all, and the sum must not
/// overwrite the last body layer's output); x: (B, inputShape), y: (B, outputShape).
public final class Residual: Layer {
    public let body: [Layer]
    public let shortcut: [Layer]
    public let inputShape: [Int]
    public let outputShape: [Int]
    /// The inner layers' outputs and gradients: this block's own, or — with `--recompute` — buffers every block of
    /// the model shares (`Sequential.recomputeResidualBlocks`), refilled by running the block forward again just
    /// before its backward.
    private var buffers = ResidualBuffers()
    /// Whether backward first runs this block's forward again (its buffers were overwritten by later blocks).
    public private(set) var recomputes = false
    /// The context of the last training forward, for the recomputation (dropout draws the same masks from it).
    private var lastContext = ForwardContext.inference

    /// - Precondition: both paths map `inputShape` to the same shape (the identity shortcut: the body keeps
    ///   it), no inner layer aliases its input (Flatten), and the body has a layer.
    public init(inputShape: [Int], body: [Layer], shortcut: [Layer] = []) {
        precondition(!body.isEmpty, "a residual block needs a body")
        precondition(!(body + shortcut).contains { $0.aliasesInput }, "Flatten cannot sit inside a residual block")
        self.inputShape = inputShape
        self.body = body
        self.shortcut = shortcut
        outputShape = body.last!.outputShape
        precondition((shortcut.last?.outputShape ?? inputShape) == outputShape, "the two paths of a residual block must give one shape")
        buffers.grow(body: body.count, shortcut: shortcut.count)
    }

    /// Uses `shared` for the inner outputs and gradients and recomputes them before backward (`--recompute`).
    /// Before `reserve`; a block whose layers reduce over ranks (BatchNorm) cannot: running it twice would count
    /// its statistics twice.
    func shareBuffers(_ shared: ResidualBuffers) {
        precondition(!synchronizesOverRanks, "a block with BatchNorm cannot be recomputed")
        shared.grow(body: body.count, shortcut: shortcut.count)
        buffers = shared
        recomputes = true
    }

    /// The attention layers on its paths (`--recompute` shares their buffers too).
    public var attentionLayers: [CausalSelfAttention] { layers.compactMap { $0 as? CausalSelfAttention } }

    /// Bytes of the inner outputs and gradients (what `--recompute` shares between blocks).
    public func bufferBytes(batchCapacity: Int) -> Int {
        let paths = layers.reduce(0) { $0 + batchCapacity * ($1.outputCount + $1.inputCount) }
        return 4 * (paths + batchCapacity * (inputCount + outputCount))
    }

    private var layers: [Layer] { body + shortcut }
    public var summary: String { "Residual(\(body.count) + \(shortcut.isEmpty ? "identity" : "\(shortcut.count)"))" }
    public var parameterSpecs: [ParameterSpec] { layers.flatMap(\.parameterSpecs) }
    public var bufferSpecs: [BufferSpec] { layers.flatMap(\.bufferSpecs) }
    public var synchronizesOverRanks: Bool { layers.contains { $0.synchronizesOverRanks } }
    public var sumsGradientsExactly: Bool { layers.allSatisfy(\.sumsGradientsExactly) }
    public var multiplyAccumulatesPerSample: Int { layers.reduce(0) { $0 + $1.multiplyAccumulatesPerSample } }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        hand(slices, counting: { $0.parameterSpecs.count }) { $0.bind(to: store, slices: $1) }
    }

    public func bindBuffers(to store: ParameterStore, slices: [ParameterSlice]) {
        hand(slices, counting: { $0.bufferSpecs.count }) { $0.bindBuffers(to: store, slices: $1) }
    }

    /// Gives each inner layer, in order, its run of `slices` (as many as `counting` says it owns).
    private func hand(_ slices: [ParameterSlice], counting: (Layer) -> Int, _ give: (Layer, [ParameterSlice]) -> Void) {
        var cursor = 0
        for layer in layers {
            let count = counting(layer)
            give(layer, Array(slices[cursor..<(cursor + count)]))
            cursor += count
        }
    }

    /// Each inner layer's output and input gradient, the shortcut's input gradient and the body's copy of dy, and
    /// the inner layers' own workspaces.
    public func workspaceBytes(batchCapacity: Int) -> Int {
        bufferBytes(batchCapacity: batchCapacity) + layers.reduce(0) { $0 + $1.workspaceBytes(batchCapacity: batchCapacity) }
    }

    public func reserve(batchCapacity: Int) {
        for (index, layer) in body.enumerated() {
            buffers.bodyOutputs[index].reserveZeroed(batchCapacity * layer.outputCount)
            buffers.bodyGradients[index].reserveZeroed(batchCapacity * layer.inputCount)
            layer.reserve(batchCapacity: batchCapacity)
        }
        for (index, layer) in shortcut.enumerated() {
            buffers.shortcutOutputs[index].reserveZeroed(batchCapacity * layer.outputCount)
            buffers.shortcutGradients[index].reserveZeroed(batchCapacity * layer.inputCount)
            layer.reserve(batchCapacity: batchCapacity)
        }
        buffers.shortcutInputGradient.reserveZeroed(batchCapacity * inputCount)
        buffers.bodyTopGradient.reserveZeroed(batchCapacity * outputCount)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        if recomputes && context.isTraining { lastContext = context }
        runPaths(x, batch: batch, context: context)
        if batch == 0 { return }
        let count = batch * outputCount
        let bodyOut = UnsafePointer(buffers.bodyOutputs[body.count - 1].base)
        let other = shortcut.isEmpty ? x : UnsafePointer(buffers.shortcutOutputs[shortcut.count - 1].base)
        for i in 0..<count { y[i] = bodyOut[i] + other[i] }
    }

    private func runPaths(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) {
        run(body, outputs: buffers.bodyOutputs, from: x, batch: batch, context: context)
        run(shortcut, outputs: buffers.shortcutOutputs, from: x, batch: batch, context: context)
    }

    /// One path forward; with an empty batch only the layers that reduce over ranks run (every rank
    /// must take part in their reductions, in the same order).
    private func run(_ path: [Layer], outputs: [Workspace<Float>], from x: UnsafePointer<Float>, batch: Int, context: ForwardContext) {
        var input = x
        for index in 0..<path.count {
            if batch > 0 || path[index].synchronizesOverRanks {
                path[index].forward(input, outputs[index].base, batch: batch, context: context)
            }
            input = UnsafePointer(outputs[index].base)
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        // Recomputing: the shared buffers hold a later block's values; this block's forward refills them (the same
        // arithmetic on the same input and dropout masks: the same bits).
        if recomputes && batch > 0 { runPaths(x, batch: batch, context: lastContext) }
        let count = batch * outputCount
        let bodyTop = buffers.bodyTopGradient.base
        if count > 0 { bodyTop.update(from: dy, count: count) }
        back(body, outputs: buffers.bodyOutputs, gradients: buffers.bodyGradients, input: x, dTop: bodyTop, dInput: dx,
             batch: batch)
        if shortcut.isEmpty {
            if let dx, batch > 0 { for i in 0..<count { dx[i] += dy[i] } }  // identity: its input gradient is dy
            return
        }
        back(shortcut, outputs: buffers.shortcutOutputs, gradients: buffers.shortcutGradients, input: x, dTop: dy,
             dInput: dx == nil ? nil : buffers.shortcutInputGradient.base, batch: batch)
        if let dx, batch > 0 {
            let other = buffers.shortcutInputGradient.base
            for i in 0..<(batch * inputCount) { dx[i] += other[i] }
        }
    }

    /// One path backward, last layer first; gradients[i] receives layer i's input gradient, and the first
    /// layer writes into `dInput` (skipped when nil). With an empty batch, only the reducing layers run.
    private func back(_ path: [Layer], outputs: [Workspace<Float>], gradients: [Workspace<Float>], input x: UnsafePointer<Float>,
                      dTop: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int) {
        var index = path.count
        var dOutput = dTop
        while index > 0 {
            index -= 1
            let layer = path[index]
            let layerInput = index == 0 ? x : UnsafePointer(outputs[index - 1].base)
            let target: UnsafeMutablePointer<Float>? = index == 0 ? dInput : gradients[index].base
            if batch > 0 || layer.synchronizesOverRanks {
                layer.backward(input: layerInput, output: outputs[index].base, dOutput: dOutput, dInput: target, batch: batch)
            }
            if let target { dOutput = target }
        }
    }
}

extension Residual: IncrementalLayer {
    /// Every inner layer must decode incrementally (checked when the decoder is made, by `canDecodeIncrementally`).
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        var bodyOut = x
        for index in 0..<body.count {
            (body[index] as! IncrementalLayer).forwardIncrement(bodyOut, buffers.bodyOutputs[index].base, rows: rows, state: state)
            bodyOut = UnsafePointer(buffers.bodyOutputs[index].base)
        }
        var other = x
        for index in 0..<shortcut.count {
            (shortcut[index] as! IncrementalLayer).forwardIncrement(other, buffers.shortcutOutputs[index].base, rows: rows, state: state)
            other = UnsafePointer(buffers.shortcutOutputs[index].base)
        }
        for i in 0..<(rows * featuresPerPosition) { y[i] = bodyOut[i] + other[i] }
    }

    /// The decode step of each path (attention inside reads each row's own cache), then the sum.
    public func forwardSteps(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, states: [DecodingState]) {
        var bodyOut = x
        for index in 0..<body.count {
            (body[index] as! IncrementalLayer).forwardSteps(bodyOut, buffers.bodyOutputs[index].base, states: states)
            bodyOut = UnsafePointer(buffers.bodyOutputs[index].base)
        }
        var other = x
        for index in 0..<shortcut.count {
            (shortcut[index] as! IncrementalLayer).forwardSteps(other, buffers.shortcutOutputs[index].base, states: states)
            other = UnsafePointer(buffers.shortcutOutputs[index].base)
        }
        for i in 0..<(states.count * featuresPerPosition) { y[i] = bodyOut[i] + other[i] }
    }

    /// Whether every layer on both paths can run incrementally.
    public var canDecodeIncrementally: Bool { (body + shortcut).allSatisfy { $0 is IncrementalLayer } }
}

/// A residual block's inner outputs and gradients (one set per block, or one set every block shares with
/// `--recompute`), grown to the most any block using them needs.
final class ResidualBuffers {
    var bodyOutputs: [Workspace<Float>] = []
    var bodyGradients: [Workspace<Float>] = []
    var shortcutOutputs: [Workspace<Float>] = []
    var shortcutGradients: [Workspace<Float>] = []
    /// (B, inputShape): the shortcut path's input gradient before it is added to the body's.
    var shortcutInputGradient = Workspace<Float>()
    /// (B, outputShape): the body's copy of dy (its last layer may use it as scratch; the shortcut needs dy).
    var bodyTopGradient = Workspace<Float>()

    /// At least `body` and `shortcut` layers' buffers.
    func grow(body: Int, shortcut: Int) {
        while bodyOutputs.count < body {
            bodyOutputs.append(Workspace())
            bodyGradients.append(Workspace())
        }
        while shortcutOutputs.count < shortcut {
            shortcutOutputs.append(Workspace())
            shortcutGradients.append(Workspace())
        }
    }

    deinit {
        (bodyOutputs + shortcutOutputs + bodyGradients + shortcutGradients).forEach { $0.free() }
        shortcutInputGradient.free()
        bodyTopGradient.free()
    }
}
