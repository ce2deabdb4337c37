import Tensors

/// Layers run one after the other over preallocated buffers, with all parameters in one store.
///
/// Buffers are planned once by `reserve(batchCapacity:)`; forward and backward allocate nothing.
public final class Sequential {
    /// The layers, input to output.
    public let layers: [Layer]
    /// Per-sample input shape, e.g. [1, 28, 28].
    public let inputShape: [Int]
    /// The flat parameter and gradient arenas.
    public let parameters: ParameterStore
    /// Largest batch the buffers hold.
    public private(set) var batchCapacity = 0

    /// activations[i] is the input of layer i; activations[layers.count] the logits. (B, shape) each.
    private var activations: [UnsafeMutablePointer<Float>] = []
    /// gradients[i] is dLoss/d(activations[i]); gradients[0] is never computed.
    private var activationGradients: [UnsafeMutablePointer<Float>] = []
    private var owned: [UnsafeMutablePointer<Float>] = []
    /// needsInputGradient[i]: some layer before i has parameters, so layer i must compute dInput.
    private let needsInputGradient: [Bool]

    /// Builds the model, laying out every layer's parameters in one store.
    public init(inputShape: [Int], layers: [Layer]) {
        precondition(!layers.isEmpty, "a model needs at least one layer")
        var shape = inputShape
        for (index, layer) in layers.enumerated() {
            precondition(layer.inputShape == shape,
                         "layer \(index) (\(layer.summary)) expects \(layer.inputShape) but receives \(shape)")
            shape = layer.outputShape
        }
        self.layers = layers
        self.inputShape = inputShape
        parameters = ParameterStore(specs: layers.flatMap(\.parameterSpecs), bufferSpecs: layers.flatMap(\.bufferSpecs))
        var bufferCursor = 0
        var buffersByLayer: [[ParameterSlice]] = []
        for layer in layers {
            let count = layer.bufferSpecs.count
            buffersByLayer.append(Array(parameters.bufferSlices[bufferCursor..<(bufferCursor + count)]))
            bufferCursor += count
        }
        self.buffersByLayer = buffersByLayer
        synchronizedLayers = layers.indices.filter { layers[$0].synchronizesOverRanks }
        var cursor = 0
        var slicesByLayer: [[ParameterSlice]] = []
        for layer in layers {
            slicesByLayer.append(Array(parameters.slices[cursor..<(cursor + layer.parameterSpecs.count)]))
            cursor += slicesByLayer.last!.count
        }
        self.slicesByLayer = slicesByLayer
        let ownRanges = slicesByLayer.map { slices in
            (slices.first?.offset ?? 0)..<(slices.last.map { $0.offset + $0.count } ?? 0)
        }
        gradientRanges = ownRanges
        let tied = Self.bindTiedParameters(layers, store: parameters, ownSlices: slicesByLayer)
        rangesUsed = layers.indices.map { index in
            (ownRanges[index].isEmpty ? [] : [ownRanges[index]]) + tied[index].map { $0.offset..<($0.offset + $0.count) }
        }
        isSynchronized = layers.map(\.synchronizesOverRanks)
        // A tied layer has parameters: backward must run it, and the layers before it must pass gradients back.
        let hasParameters = layers.map { !$0.parameterSpecs.isEmpty || !$0.tiedParameters.isEmpty }
        var seenParameters = false
        var needs: [Bool] = []
        for index in layers.indices {
            needs.append(seenParameters)
            if hasParameters[index] { seenParameters = true }
        }
        needsInputGradient = needs
        self.hasParameters = hasParameters
        bindLayers()
    }

    /// Hands each tied layer the slices of the earlier layers' parameters it names, and records the names it
    /// exports them under as aliases in the store. A tie to a later layer would add to gradients whose sum may
    /// already have started (`--overlap`), so only earlier layers' parameters can be tied.
    /// Returns each layer's tied slices.
    private static func bindTiedParameters(_ layers: [Layer], store: ParameterStore,
                                           ownSlices: [[ParameterSlice]]) -> [[ParameterSlice]] {
        var tied = [[ParameterSlice]](repeating: [], count: layers.count)
        for (index, layer) in layers.enumerated() where !layer.tiedParameters.isEmpty {
            let earlier = ownSlices[..<index].joined()
            let slices = layer.tiedParameters.map { tie in
                guard let slice = earlier.first(where: { $0.name == tie.tiedTo }) else {
                    preconditionFailure("layer \(index) (\(layer.summary)) is tied to \(tie.tiedTo), no earlier layer's parameter")
                }
                store.addAlias(tie.name, of: slice)
                return slice
            }
            layer.bindTied(slices)
            tied[index] = slices
        }
        return tied
    }

    /// Each layer's slices of the store, in its `parameterSpecs` order, and of its buffers.
    private let slicesByLayer: [[ParameterSlice]]
    private let buffersByLayer: [[ParameterSlice]]
    /// Layers whose training passes reduce over ranks (BatchNorm).
    private let synchronizedLayers: [Int]
    /// Whether every rank must run training passes, even on an empty share of a batch.
    public var synchronizesOverRanks: Bool { !synchronizedLayers.isEmpty }

    /// The first layer (its summary) whose backward cannot add its gradients as exact sums, or nil when every
    /// layer can (`--exact-sums`).
    public var firstLayerWithoutExactSums: String? { layers.first { !$0.sumsGradientsExactly }?.summary }

    /// Floats of scratch `--exact-sums` needs for one sample's gradient terms: the most parameters one layer has.
    public var exactSumsScratchCount: Int { parameterRanges.map(\.count).max() ?? 0 }

    /// Hands every layer its slices; again whenever the store's memory moves, so pointers a layer keeps
    /// from `bind` stay valid.
    private func bindLayers() {
        for (index, layer) in layers.enumerated() {
            layer.bind(to: parameters, slices: slicesByLayer[index])
            layer.bindBuffers(to: parameters, slices: buffersByLayer[index])
        }
    }

    /// Moves the gradients into `storage` (`parameters.count` floats, kept alive by `owner`) — the arena
    /// the gradient sum over ranks works in — and binds every layer again to the new memory.
    public func moveGradients(to storage: UnsafeMutableBufferPointer<Float>, owner: AnyObject) {
        parameters.moveGradients(to: storage, owner: owner)
        bindLayers()
    }

    /// Called with a layer's index right after its backward in a training pass (batch > 0): the gradient
    /// sum starts buckets whose layers are done while backward goes on. Set once; nil: nothing to do.
    public var afterLayerBackward: ((Int) -> Void)?

    /// Each layer's parameters (and gradients) as one range of the store, input to output (empty if none).
    public var parameterRanges: [Range<Int>] { gradientRanges }

    /// The parameter ranges each layer reads: its own, then those it is tied to (what `--shard parameters` gathers).
    public let rangesUsed: [[Range<Int>]]
    /// Whether each layer reduces over ranks in training passes (BatchNorm).
    private let isSynchronized: [Bool]

    /// Told before and after every layer's forward and backward when set (sharded training gathers a layer's
    /// parameters and scatters its gradients there). Every rank then runs every layer's hooks in the same order,
    /// also on an empty share, so the collectives they make line up.
    public var passObserver: LayerPassObserver?

    /// Whether each layer has parameters (decided once: `parameterSpecs` builds arrays and strings).
    private let hasParameters: [Bool]
    /// Each layer's parameters as one range of the store (its slices are consecutive; empty if none).
    private let gradientRanges: [Range<Int>]

    deinit { owned.forEach { $0.deallocate() } }

    /// Per-sample output shape (the number of classes for a classifier).
    public var outputShape: [Int] { layers.last!.outputShape }
    /// Elements of one input sample.
    public var inputCount: Int { inputShape.reduce(1, *) }
    /// Elements of one output sample.
    public var outputCount: Int { outputShape.reduce(1, *) }

    /// Bytes `reserve(batchCapacity:)` allocates for `layers` on inputs of `inputCount` floats: the input, each
    /// layer's output and its gradient (none for layers that alias their input), and the layers' workspaces — with
    /// `recomputing`, the residual blocks' inner buffers once for all of them.
    public static func activationBytes(_ layers: [Layer], inputCount: Int, batchCapacity: Int, recomputing: Bool = false) -> Int {
        var floats = batchCapacity * inputCount, bytes = 0, sharedBlock = 0, sharedAttention = 0
        for layer in layers {
            if !layer.aliasesInput { floats += 2 * batchCapacity * layer.outputCount }
            bytes += layer.workspaceBytes(batchCapacity: batchCapacity)
            guard recomputing, let block = layer as? Residual else { continue }
            let inner = block.bufferBytes(batchCapacity: batchCapacity)
            bytes -= inner
            sharedBlock = max(sharedBlock, inner)
            for attention in block.attentionLayers {
                let kept = attention.workspaceBytes(batchCapacity: batchCapacity)
                bytes -= kept
                sharedAttention = max(sharedAttention, kept)
            }
        }
        return 4 * floats + bytes + sharedBlock + sharedAttention
    }

    /// `--recompute`: every residual block shares one set of inner buffers and runs its forward again just before its
    /// backward, so the model keeps each block's input and output but the blocks' insides (their layers' outputs
    /// and gradients, and the attention layers' kept values) only once — a third more forward arithmetic for that
    /// memory. Call before `reserve`. Returns why it cannot, or nil: a block with BatchNorm would count its
    /// statistics twice.
    public func recomputeResidualBlocks() -> String? {
        let blocks = layers.compactMap { $0 as? Residual }
        if blocks.isEmpty { return "the model has no residual blocks to recompute" }
        if blocks.contains(where: \.synchronizesOverRanks) { return "a residual block holds BatchNorm, whose statistics would count twice" }
        precondition(batchCapacity == 0, "recompute before reserving buffers")
        let shared = ResidualBuffers(), attention = AttentionBuffers()
        for block in blocks {
            block.shareBuffers(shared)
            block.attentionLayers.forEach { $0.shareBuffers(attention) }
        }
        return nil
    }

    /// Allocates every buffer for batches of up to `batchCapacity` samples.
    public func reserve(batchCapacity capacity: Int) {
        precondition(capacity > 0, "batch capacity must be positive, got \(capacity)")
        if capacity <= batchCapacity { return }
        owned.forEach { $0.deallocate() }
        owned = []
        func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
            owned.append(pointer)
            return pointer
        }
        activations = [allocate(capacity * inputCount)]
        activationGradients = [activations[0]]  // placeholder: the input gradient is never computed
        for (index, layer) in layers.enumerated() {
            if layer.aliasesInput {
                activations.append(activations[index])
                activationGradients.append(activationGradients[index])
            } else {
                activations.append(allocate(capacity * layer.outputCount))
                activationGradients.append(allocate(capacity * layer.outputCount))
            }
            layer.reserve(batchCapacity: capacity)
        }
        // An aliasing first layer would otherwise share the placeholder; give it real storage.
        for index in 1...layers.count where activationGradients[index] == activations[0] {
            activationGradients[index] = allocate(capacity * layers[index - 1].outputCount)
        }
        batchCapacity = capacity
    }

    /// Buffer for the next batch's inputs, (batchCapacity, inputShape).
    public var input: UnsafeMutablePointer<Float> {
        precondition(batchCapacity > 0, "call reserve(batchCapacity:) first")
        return activations[0]
    }

    /// The input layer `index` received in the last forward pass, (B, layers[index].inputShape) — what
    /// int8 calibration observes.
    public func layerInput(_ index: Int) -> UnsafePointer<Float> { UnsafePointer(activations[index]) }

    /// Logits of the last forward pass, (B, outputCount).
    public var output: UnsafeMutablePointer<Float> { activations[layers.count] }

    /// Where the loss writes dLoss/dLogits before `backward`, (B, outputCount).
    public var outputGradient: UnsafeMutablePointer<Float> { activationGradients[layers.count] }

    /// Runs every layer on the first `batch` samples of `input`; returns `output`.
    @discardableResult
    public func forward(batch: Int, context: ForwardContext) -> UnsafeMutablePointer<Float> {
        precondition(batch <= batchCapacity, "batch \(batch) exceeds the reserved capacity \(batchCapacity)")
        if let passObserver { return observedForward(batch: batch, context: context, passObserver) }
        if batch == 0 {  // an empty share: only the layers that reduce over ranks take part
            for index in synchronizedLayers {
                layers[index].forward(activations[index], activations[index + 1], batch: 0, context: context)
            }
            return output
        }
        // Plain index loops in the step: `enumerated()` and `reversed()` iterate through generic
        // accessors that allocate in debug builds, and the step must not allocate in any build.
        for index in 0..<layers.count {
            let layer = layers[index]
            if layer.aliasesInput { continue }
            layer.forward(activations[index], activations[index + 1], batch: batch, context: context)
        }
        return output
    }

    /// Accumulates every parameter gradient from `outputGradient`, skipping work no parameter needs.
    ///
    /// With `checkingFiniteness`, also returns whether every gradient is finite, checking each layer's
    /// right after its backward wrote them — while they are still in cache, where one pass over the
    /// whole store afterwards would read them back from memory (local training's only check).
    @discardableResult
    public func backward(batch: Int, checkingFiniteness: Bool = false) -> Bool {
        precondition(batch <= batchCapacity, "batch \(batch) exceeds the reserved capacity \(batchCapacity)")
        if let passObserver { return observedBackward(batch: batch, checkingFiniteness: checkingFiniteness, passObserver) }
        if batch == 0 {
            var index = synchronizedLayers.count
            while index > 0 {
                index -= 1
                let layerIndex = synchronizedLayers[index]
                layers[layerIndex].backward(input: activations[layerIndex], output: activations[layerIndex + 1],
                                            dOutput: activationGradients[layerIndex + 1], dInput: activationGradients[layerIndex], batch: 0)
            }
            return true
        }
        var finite = true
        var index = layers.count
        while index > 0 {
            index -= 1
            let layer = layers[index]
            let needsInput = needsInputGradient[index]
            if !hasParameters[index] && !needsInput { break }
            if layer.aliasesInput { continue }
            layer.backward(input: activations[index], output: activations[index + 1],
                           dOutput: activationGradients[index + 1],
                           dInput: needsInput ? activationGradients[index] : nil, batch: batch)
            if checkingFiniteness && hasParameters[index] {
                let range = gradientRanges[index]
                finite = finite && allFinite(parameters.gradients.baseAddress! + range.lowerBound, count: range.count)
            }
            afterLayerBackward?(index)
        }
        return finite
    }

    /// `forward` with the observer told around every layer, on every rank alike (an empty share runs only the
    /// layers that reduce over ranks, but every hook).
    private func observedForward(batch: Int, context: ForwardContext, _ observer: LayerPassObserver) -> UnsafeMutablePointer<Float> {
        for index in 0..<layers.count {
            observer.willRun(index, backward: false)
            let layer = layers[index]
            if !layer.aliasesInput && (batch > 0 || isSynchronized[index]) {
                layer.forward(activations[index], activations[index + 1], batch: batch, context: context)
            }
            observer.didRun(index, backward: false)
        }
        return output
    }

    /// `backward` with the observer told around every layer it reaches, on every rank alike.
    private func observedBackward(batch: Int, checkingFiniteness: Bool, _ observer: LayerPassObserver) -> Bool {
        var finite = true
        var index = layers.count
        while index > 0 {
            index -= 1
            let layer = layers[index]
            if !hasParameters[index] && !needsInputGradient[index] { break }
            observer.willRun(index, backward: true)
            if !layer.aliasesInput && (batch > 0 || isSynchronized[index]) {
                layer.backward(input: activations[index], output: activations[index + 1],
                               dOutput: activationGradients[index + 1],
                               dInput: needsInputGradient[index] || batch == 0 ? activationGradients[index] : nil, batch: batch)
                if batch > 0 && checkingFiniteness && hasParameters[index] {
                    let range = gradientRanges[index]
                    finite = finite && allFinite(parameters.gradients.baseAddress! + range.lowerBound, count: range.count)
                }
            }
            observer.didRun(index, backward: true)
        }
        return finite
    }

    /// Floating-point operations of one training sample: forward, the weight gradients, and the input
    /// gradients the backward pass actually computes (none for the input layer), 2 per multiply-add.
    public var trainingFlopsPerSample: Int {
        var multiplyAccumulates = 0
        for (index, layer) in layers.enumerated() {
            let forward = layer.multiplyAccumulatesPerSample
            multiplyAccumulates += 2 * forward + (needsInputGradient[index] ? forward : 0)
        }
        return 2 * multiplyAccumulates
    }

    /// The spec modules this model was built from (nil for a model assembled in code): the summary table.
    public var specRows: [ModelSummaryRow]?

    /// A multi-line description: the spec's table (module, output shape, parameters, share of the
    /// FLOPs) when the model came from a spec, else one line per layer; then the parameter count.
    public var summary: String {
        if let specRows { return summaryTable(specRows, inputShape: inputShape, trainingFlops: trainingFlopsPerSample) }
        var lines = ["input \(inputShape.map(String.init).joined(separator: "x"))"]
        for layer in layers {
            lines.append("  \(layer.summary) → \(layer.outputShape.map(String.init).joined(separator: "x"))")
        }
        lines.append("\(parameters.count) parameters")
        return lines.joined(separator: "\n")
    }
}

/// What `Sequential.passObserver` is told: layer `index` is about to run, or has run, its forward or backward pass.
public protocol LayerPassObserver: AnyObject {
    func willRun(_ index: Int, backward: Bool)
    func didRun(_ index: Int, backward: Bool)
}
