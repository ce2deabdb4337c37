import Foundation

/// Where one named parameter tensor lives inside the flat arenas.
public struct ParameterSlice: Sendable, Equatable {
    /// Name in PyTorch's convention, e.g. "1.weight".
    public let name: String
    /// Shape in PyTorch's layout (Linear [out, in], Conv2d [out, in, kh, kw], bias [out]).
    public let shape: [Int]
    /// First element inside the arena.
    public let offset: Int
    /// Number of elements (product of shape).
    public var count: Int { shape.reduce(1, *) }
}

/// How a parameter's values start.
public enum Initializer: Sendable, Equatable {
    /// PyTorch's default for Linear and Conv2d weights and biases: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    case kaimingUniform(fanIn: Int)
    /// N(0, standardDeviation²): nn.Embedding's default (1), GPT-2's weights (0.02).
    case normal(standardDeviation: Float)
    /// Every element the same (BatchNorm's weight 1; biases and LayerNorm shifts 0).
    case constant(Float)

    /// Every element 0.
    public static let zeros = Initializer.constant(0)
}

/// A parameter a layer asks for: its name, shape and how it starts.
public struct ParameterSpec: Sendable {
    public let name: String
    public let shape: [Int]
    public let initializer: Initializer

    public init(name: String, shape: [Int], initializer: Initializer) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
    }

    /// A Kaiming-uniform parameter with this fan-in.
    public init(name: String, shape: [Int], fanIn: Int) {
        self.init(name: name, shape: shape, initializer: .kaimingUniform(fanIn: fanIn))
    }

    /// A parameter that starts at `constant` everywhere.
    public init(name: String, shape: [Int], constant: Float) {
        self.init(name: name, shape: shape, initializer: .constant(constant))
    }
}

/// A tensor a layer keeps that is not trained (BatchNorm's running statistics): saved and restored with
/// the parameters, broadcast from rank 0 with them, never touched by the optimizer or the gradient sum.
public struct BufferSpec: Sendable {
    public let name: String
    public let shape: [Int]
    /// Every element's value at initialization (running_var starts at 1, the others at 0).
    public let initialValue: Float

    public init(name: String, shape: [Int], initialValue: Float) {
        self.name = name
        self.shape = shape
        self.initialValue = initialValue
    }
}

/// All parameters in one flat allocation and all gradients in another, as in llm.c:
/// zeroing is one memset, the optimizer is one loop and the gradient allreduce one call.
public final class ParameterStore {
    /// Named slices in registration order.
    public let slices: [ParameterSlice]
    /// Total number of parameters.
    public let count: Int
    /// Parameter values, `count` floats.
    public let values: UnsafeMutableBufferPointer<Float>
    /// Gradients, `count` floats; backward passes accumulate into them. Own memory until
    /// `Sequential.moveGradients(to:owner:)` moves them into the gradient synchronizer's arena.
    public private(set) var gradients: UnsafeMutableBufferPointer<Float>
    /// With `--exact-sums`: where backward adds its gradient terms instead (sample by sample, as exact integers),
    /// rounded into `gradients` after the sum over ranks; nil otherwise.
    public var exactGradients: ExactSums?
    /// Keeps the memory of moved gradients alive; nil while the store owns them.
    private var gradientOwner: AnyObject?

    /// Names under which a parameter is used a second time (a head tied to the embedding: "head.weight" for
    /// "wte.weight"), with the slice they share. Checkpoints write them, as PyTorch's state_dict holds them.
    public private(set) var aliases: [(name: String, slice: ParameterSlice)] = []

    /// Records that `name` is `slice` used again.
    package func addAlias(_ name: String, of slice: ParameterSlice) {
        precondition(slices.contains(slice) && !slices.contains { $0.name == name }, "alias \(name) of \(slice.name)")
        aliases.append((name, slice))
    }

    /// The aliases with the values they share, as `namedTensors` gives the parameters.
    public var aliasTensors: [(name: String, slice: ParameterSlice, values: UnsafeMutableBufferPointer<Float>)] {
        aliases.map { alias in
            let range = alias.slice.offset..<(alias.slice.offset + alias.slice.count)
            return (alias.name, alias.slice, UnsafeMutableBufferPointer(rebasing: values[range]))
        }
    }

    /// Non-trained tensors (see `BufferSpec`), laid out in their own arena.
    public let bufferSlices: [ParameterSlice]
    /// Their values, `bufferSlices` one after the other (at least one float: an empty arena has an address).
    public let buffers: UnsafeMutableBufferPointer<Float>
    /// The buffers' values, however many there are (zero for a model without buffers).
    public var bufferValueCount: Int { bufferSlices.last.map { $0.offset + $0.count } ?? 0 }

    /// Lays out the given specs one after the other and zero-fills both arenas; buffers get their initial values.
    public init(specs: [ParameterSpec], bufferSpecs: [BufferSpec] = []) {
        var bufferOffset = 0
        var bufferSlices: [ParameterSlice] = []
        for spec in bufferSpecs {
            bufferSlices.append(ParameterSlice(name: spec.name, shape: spec.shape, offset: bufferOffset))
            bufferOffset += bufferSlices.last!.count
        }
        self.bufferSlices = bufferSlices
        buffers = .allocate(capacity: max(bufferOffset, 1))
        buffers.initialize(repeating: 0)
        for (slice, spec) in zip(bufferSlices, bufferSpecs) {
            (buffers.baseAddress! + slice.offset).update(repeating: spec.initialValue, count: slice.count)
        }
        var offset = 0
        var slices: [ParameterSlice] = []
        for spec in specs {
            let slice = ParameterSlice(name: spec.name, shape: spec.shape, offset: offset)
            slices.append(slice)
            offset += slice.count
        }
        self.slices = slices
        self.count = offset
        // Zeroed pages that cost nothing until written: sharded training keeps most of them out of memory.
        values = allocateZeroedPages(offset)
        gradients = allocateZeroedPages(offset)
        initializers = specs.map(\.initializer)
    }

    private let initializers: [Initializer]

    /// The values the last `initializeKaimingUniform` wrote (all of them unless it was given a slice).
    public private(set) var initializedRange: Range<Int>? = nil

    deinit {
        buffers.deallocate()
        freeZeroedPages(values)
        if gradientOwner == nil { freeZeroedPages(gradients) }
    }

    /// Moves the gradients into `storage` (`count` zeroed floats, kept alive by `owner`), where they stay: the
    /// arena the gradient sum over ranks works in, so backward writes straight into it. Nothing is copied: every
    /// training step zeroes the gradients before its backward, and an untouched arena costs no memory.
    ///
    /// Package-internal: only `Sequential.moveGradients` calls it, and it binds every layer again right
    /// after, so a layer that keeps pointers from `bind` never writes into the freed buffer.
    package func moveGradients(to storage: UnsafeMutableBufferPointer<Float>, owner: AnyObject) {
        precondition(storage.count == count, "gradient storage holds \(storage.count) floats, the model has \(count)")
        if gradientOwner == nil { freeZeroedPages(gradients) }
        gradients = storage
        gradientOwner = owner
    }

    /// Every parameter as its spec's initializer says, each from its own random stream keyed by its
    /// index (so adding a parameter never changes another's values). Kaiming-uniform is PyTorch's
    /// default for Linear and Conv2d (Kaiming-uniform with a = sqrt(5) reduces to ±1/sqrt(fan_in)).
    ///
    /// - Parameter range: the values to write (a `--shard parameters` rank's own slice); the others stay untouched
    ///   zero pages. Each written value is the one a whole initialization gives it: the streams before the range
    ///   are drawn and dropped.
    public func initializeKaimingUniform(seed: UInt64, in range: Range<Int>? = nil) {
        let range = range ?? 0..<count
        initializedRange = range
        for (index, slice) in slices.enumerated() {
            let kept = (slice.offset..<(slice.offset + slice.count)).clamped(to: range)
            if kept.isEmpty { continue }
            let start = values.baseAddress! + slice.offset
            let first = kept.lowerBound - slice.offset, end = kept.upperBound - slice.offset  // within the tensor
            var generator = SeededGenerator(seed: seed, keys: 0x494E_4954, UInt64(index))
            switch initializers[index] {
            case let .constant(value): (start + first).update(repeating: value, count: end - first)
            case let .kaimingUniform(fanIn):
                let bound = 1 / Float(fanIn).squareRoot()
                for _ in 0..<first { _ = generator.nextFloat(in: -bound, bound) }
                for i in first..<end { start[i] = generator.nextFloat(in: -bound, bound) }
            case let .normal(standardDeviation):
                fillNormal(start, first..<end, standardDeviation: standardDeviation, generator: &generator)
            }
        }
    }

    /// Box–Muller pairs from 24-bit uniforms, in Double, written where they fall in `range` (the tensor's stream
    /// from its start, so a partial fill writes what a whole one would).
    private func fillNormal(_ start: UnsafeMutablePointer<Float>, _ range: Range<Int>, standardDeviation: Float,
                            generator: inout SeededGenerator) {
        var i = range.lowerBound & ~1  // the pair the range starts in
        for _ in 0..<(i / 2) { _ = (generator.nextFloat(in: 0, 1), generator.nextFloat(in: 0, 1)) }
        while i < range.upperBound {
            let u1 = 1 - Double(generator.nextFloat(in: 0, 1)), u2 = Double(generator.nextFloat(in: 0, 1))
            let radius = (-2 * Foundation.log(u1)).squareRoot() * Double(standardDeviation)
            if i >= range.lowerBound { start[i] = Float(radius * Foundation.cos(2 * Double.pi * u2)) }
            if i + 1 < range.upperBound { start[i + 1] = Float(radius * Foundation.sin(2 * Double.pi * u2)) }
            i += 2
        }
    }

    /// Sets every gradient to zero.
    public func zeroGradients() {
        gradients.update(repeating: 0)
        exactGradients?.zero()
    }

    /// Sets the gradients in `range` to zero (a sharded rank's own slice: the rest is kept zero by the sum).
    public func zeroGradients(in range: Range<Int>) {
        guard !range.isEmpty else { return }
        (gradients.baseAddress! + range.lowerBound).update(repeating: 0, count: range.count)
    }

    /// The slice with this name, if any.
    public func slice(named name: String) -> ParameterSlice? {
        slices.first { $0.name == name }
    }

    /// Pointer to the first value of a slice.
    public func valuePointer(_ slice: ParameterSlice) -> UnsafeMutablePointer<Float> {
        values.baseAddress! + slice.offset
    }

    /// Pointer to the first gradient of a slice.
    public func gradientPointer(_ slice: ParameterSlice) -> UnsafeMutablePointer<Float> {
        gradients.baseAddress! + slice.offset
    }

    /// Pointer to the first value of a buffer slice.
    public func bufferPointer(_ slice: ParameterSlice) -> UnsafeMutablePointer<Float> {
        buffers.baseAddress! + slice.offset
    }

    /// Every named tensor, parameters then buffers, with where its values live: what a checkpoint holds.
    public var namedTensors: [(slice: ParameterSlice, values: UnsafeMutableBufferPointer<Float>)] {
        slices.map { ($0, UnsafeMutableBufferPointer(rebasing: values[$0.offset..<($0.offset + $0.count)])) }
            + bufferSlices.map { ($0, UnsafeMutableBufferPointer(rebasing: buffers[$0.offset..<($0.offset + $0.count)])) }
    }

    /// A hash of names and shapes: ranks compare it before training to be sure they built the same model.
    public var shapeFingerprint: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ value: UInt64) { hash = (hash ^ value) &* 0x100_0000_01B3 }
        for slice in slices + bufferSlices {
            for byte in slice.name.utf8 { mix(UInt64(byte)) }
            for dimension in slice.shape { mix(UInt64(dimension)) }
            mix(0xFF)
        }
        return hash
    }
}
