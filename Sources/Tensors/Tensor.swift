/// A shape and contiguous row-major Float storage.
///
/// Kernels run on raw pointers; `Tensor` is the convenient owner for inputs, tests and results.
public struct Tensor: Sendable, Equatable {
    /// Dimensions, outermost first (batch, channels, height, width).
    public var shape: [Int]
    /// Elements in row-major order; `storage.count == shape.reduce(1, *)`.
    public var storage: [Float]

    /// A tensor of the given shape filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.storage = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor over existing storage, whose count must match the shape.
    public init(shape: [Int], storage: [Float]) {
        precondition(shape.reduce(1, *) == storage.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// Number of elements.
    public var count: Int { storage.count }

    /// Element at a multi-dimensional index.
    public subscript(_ index: Int...) -> Float {
        get { storage[flatIndex(index)] }
        set { storage[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) does not match shape \(shape)")
        var flat = 0
        for (i, dimension) in zip(index, shape) {
            precondition(i >= 0 && i < dimension, "index \(index) out of bounds for shape \(shape)")
            flat = flat * dimension + i
        }
        return flat
    }
}
