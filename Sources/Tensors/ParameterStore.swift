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

/// A parameter a layer asks for: its name, shape and the fan-in used by its initializer.
public struct ParameterSpec: Sendable {
    public let name: String
    public let shape: [Int]
    /// Fan-in for Kaiming-uniform initialization: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    public let fanIn: Int

    public init(name: String, shape: [Int], fanIn: Int) {
        self.name = name
        self.shape = shape
        self.fanIn = fanIn
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
    /// Keeps the memory of moved gradients alive; nil while the store owns them.
    private var gradientOwner: AnyObject?

    /// Lays out the given specs one after the other and zero-fills both arenas.
    public init(specs: [ParameterSpec]) {
        var offset = 0
        var slices: [ParameterSlice] = []
        for spec in specs {
            let slice = ParameterSlice(name: spec.name, shape: spec.shape, offset: offset)
            slices.append(slice)
            offset += slice.count
        }
        self.slices = slices
        self.count = offset
        values = .allocate(capacity: max(offset, 1))
        gradients = .allocate(capacity: max(offset, 1))
        values.initialize(repeating: 0)
        gradients.initialize(repeating: 0)
        fanIns = specs.map(\.fanIn)
    }

    private let fanIns: [Int]

    deinit {
        values.deallocate()
        if gradientOwner == nil { gradients.deallocate() }
    }

    /// Moves the gradients into `storage` (`count` floats, kept alive by `owner`), where they stay: the
    /// arena the gradient sum over ranks works in, so backward writes straight into it.
    ///
    /// Package-internal: only `Sequential.moveGradients` calls it, and it binds every layer again right
    /// after, so a layer that keeps pointers from `bind` never writes into the freed buffer.
    package func moveGradients(to storage: UnsafeMutableBufferPointer<Float>, owner: AnyObject) {
        precondition(storage.count == count, "gradient storage holds \(storage.count) floats, the model has \(count)")
        if count > 0 { storage.baseAddress!.update(from: gradients.baseAddress!, count: count) }
        if gradientOwner == nil { gradients.deallocate() }
        gradients = storage
        gradientOwner = owner
    }

    /// PyTorch's default initialization for Linear and Conv2d, weights and biases alike:
    /// uniform in ±1/sqrt(fan_in) (Kaiming-uniform with a = sqrt(5) reduces to this).
    public func initializeKaimingUniform(seed: UInt64) {
        for (index, slice) in slices.enumerated() {
            var generator = SeededGenerator(seed: seed, keys: 0x494E_4954, UInt64(index))
            let bound = 1 / Float(fanIns[index]).squareRoot()
            for i in slice.offset..<(slice.offset + slice.count) {
                values[i] = generator.nextFloat(in: -bound, bound)
            }
        }
    }

    /// Sets every gradient to zero.
    public func zeroGradients() {
        gradients.update(repeating: 0)
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

    /// A hash of names and shapes: ranks compare it before training to be sure they built the same model.
    public var shapeFingerprint: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ value: UInt64) { hash = (hash ^ value) &* 0x100_0000_01B3 }
        for slice in slices {
            for byte in slice.name.utf8 { mix(UInt64(byte)) }
            for dimension in slice.shape { mix(UInt64(dimension)) }
            mix(0xFF)
        }
        return hash
    }
}
