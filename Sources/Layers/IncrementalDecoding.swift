import Tensors

/// One sequence being extended a few positions at a time (generation): where the next rows sit, and the
/// keys and values each attention layer keeps for the positions before them (the KV cache).
///
/// A pass over new rows costs what those rows cost: a token generated at position t reads the t cached keys
/// and values of each layer instead of recomputing t positions through the whole model (nanoGPT, llm.c).
public final class DecodingState {
    /// Positions the caches hold: the model's context.
    public let capacity: Int
    /// Position of the first row of the next pass (= positions cached so far).
    public internal(set) var position = 0
    /// Each attention layer's (capacity, 2·C) keys then values, made on its first pass.
    private var caches: [ObjectIdentifier: UnsafeMutablePointer<Float>] = [:]

    public init(capacity: Int) {
        precondition(capacity > 0, "a decoding state needs room for a position")
        self.capacity = capacity
    }

    deinit { caches.values.forEach { $0.deallocate() } }

    /// Forgets every cached position (the memory stays for the next sequence).
    public func reset() { position = 0 }

    /// The cache of `layer`, `floatsPerPosition` floats for each of `capacity` positions.
    func cache(of layer: AnyObject, floatsPerPosition: Int) -> UnsafeMutablePointer<Float> {
        if let cache = caches[ObjectIdentifier(layer)] { return cache }
        let cache = UnsafeMutablePointer<Float>.allocate(capacity: capacity * floatsPerPosition)
        cache.initialize(repeating: 0, count: capacity * floatsPerPosition)
        caches[ObjectIdentifier(layer)] = cache
        return cache
    }
}

/// A layer that can run on `rows` new positions of one sequence, continuing where the last pass stopped
/// (`state.position`). Rows are (rows, features) row-major; what the layer needs of earlier positions it keeps
/// in `state`. The results equal the rows of a whole-window forward, up to the GEMMs' summation order.
public protocol IncrementalLayer: Layer {
    /// y = f(x) for positions state.position ..< state.position + rows.
    func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState)
    /// One new position of each of several sequences (a batched decode step): row b of x (states.count, features)
    /// continues the sequence of `states[b]`, at its own position. Positions advance in the decoder, not here.
    func forwardSteps(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, states: [DecodingState])
}

extension IncrementalLayer {
    /// Row by row, each with its own state: right for every layer; position-free layers override it with one
    /// pass over all rows (one GEMM instead of many matrix-vector products).
    public func forwardSteps(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, states: [DecodingState]) {
        let inputs = inputShape.last ?? 1, outputs = featuresPerPosition
        for (row, state) in states.enumerated() {
            forwardIncrement(x + row * inputs, y + row * outputs, rows: 1, state: state)
        }
    }
}

/// A layer whose rows depend neither on their position nor on earlier positions (Linear, LayerNorm,
/// activations, token embeddings): a decode step over many sequences is one pass over all rows.
public protocol PositionFreeLayer: IncrementalLayer {}

extension PositionFreeLayer {
    public func forwardSteps(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, states: [DecodingState]) {
        forwardIncrement(x, y, rows: states.count, state: states[0])
    }
}

extension Layer {
    /// Features of one position of the output ((T, C) → C).
    var featuresPerPosition: Int { outputShape.last ?? 1 }
}

/// Runs a model that maps T token ids to (T, V) logits over new positions of one sequence, with a KV cache.
public final class IncrementalDecoder {
    public let model: Sequential
    public let state: DecodingState
    private let layers: [IncrementalLayer]
    /// Two (T, widest layer) buffers the layers' outputs alternate between.
    private var buffers: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
    private let width: Int

    /// Throws when some layer cannot run incrementally (the error names it).
    public init(model: Sequential) throws {
        guard model.inputShape.count == 1, let context = model.inputShape.first else {
            throw IncrementalDecodingError(reason: "the model's input is \(model.inputShape), not a window of token ids")
        }
        var layers: [IncrementalLayer] = []
        for layer in model.layers {
            guard let incremental = layer as? IncrementalLayer, (layer as? Residual)?.canDecodeIncrementally ?? true else {
                throw IncrementalDecodingError(reason: "its layer \(layer.summary) cannot run one position at a time")
            }
            layers.append(incremental)
        }
        self.model = model
        self.layers = layers
        model.reserve(batchCapacity: 1)
        state = DecodingState(capacity: context)
        width = max(1, layers.map(\.featuresPerPosition).max() ?? 1)
        buffers = (.allocate(capacity: context * width), .allocate(capacity: context * width))
    }

    deinit {
        buffers.0.deallocate()
        buffers.1.deallocate()
    }

    /// Tokens the model's window holds (its context).
    public var context: Int { state.capacity }
    /// Logits per position (the vocabulary).
    public var vocabularySize: Int { layers.last!.featuresPerPosition }

    /// Feeds `tokens` at the next positions; returns the logits of the last one, (V), valid until the next call.
    /// - Precondition: the tokens fit in the context after the positions already cached.
    public func append(_ tokens: UnsafeBufferPointer<Int32>) -> UnsafePointer<Float> { append(tokens, to: state) }

    /// `append` for another sequence: its own `state` (of this model's context), this decoder's buffers.
    public func append(_ tokens: UnsafeBufferPointer<Int32>, to state: DecodingState) -> UnsafePointer<Float> {
        let rows = tokens.count
        precondition(state.capacity == context && rows > 0 && state.position + rows <= context,
                     "\(rows) tokens after \(state.position) exceed the context of \(context)")
        for r in 0..<rows { buffers.0[r] = Float(tokens[r]) }
        var input = buffers.0, output = buffers.1
        for layer in layers {
            layer.forwardIncrement(input, output, rows: rows, state: state)
            swap(&input, &output)
        }
        state.position += rows
        return UnsafePointer(input + (rows - 1) * vocabularySize)
    }

    /// One token for each of several sequences (continuous batching): `tokens[b]` continues `states[b]`.
    /// Returns the (B, V) logits, valid until the next call. B ≤ context (the buffers' rows).
    public func step(_ tokens: UnsafeBufferPointer<Int32>, states: [DecodingState]) -> UnsafePointer<Float> {
        let rows = tokens.count
        precondition(rows > 0 && rows == states.count && rows <= context, "\(rows) tokens for \(states.count) sequences")
        for (row, state) in states.enumerated() {
            precondition(state.capacity == context && state.position < context, "a sequence is at the end of its context")
            buffers.0[row] = Float(tokens[row])
        }
        var input = buffers.0, output = buffers.1
        for layer in layers {
            layer.forwardSteps(input, output, states: states)
            swap(&input, &output)
        }
        for state in states { state.position += 1 }
        return UnsafePointer(input)
    }
}

/// Why a model cannot generate with a KV cache.
public struct IncrementalDecodingError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "this model cannot generate text: \(reason)" }
}
