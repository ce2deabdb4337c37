import Layers
import Tensors
import XCTest

/// y = w · x elementwise with one scalar weight; keeps raw pointers from `bind`, as a new layer naturally would.
private final class PointerKeepingScale: Layer {
    let inputShape: [Int]
    var outputShape: [Int] { inputShape }
    var summary: String { "Scale" }
    var parameterSpecs: [ParameterSpec] { [ParameterSpec(name: "scale.weight", shape: [1], fanIn: 1)] }
    private var weight: UnsafeMutablePointer<Float>!
    private var weightGradient: UnsafeMutablePointer<Float>!

    init(shape: [Int]) { inputShape = shape }

    func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        weight = store.valuePointer(slices[0])
        weightGradient = store.gradientPointer(slices[0])
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        for i in 0..<(batch * inputCount) { y[i] = weight[0] * x[i] }
    }

    func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                  dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        for i in 0..<(batch * inputCount) { weightGradient[0] += x[i] * dy[i] }
        if let dx { for i in 0..<(batch * inputCount) { dx[i] = weight[0] * dy[i] } }
    }
}

final class SequentialBindingTests: XCTestCase {
    /// Moving the gradients into the sum arena binds every layer again: a layer that cached its
    /// gradient pointer in `bind` writes into the new memory, never into the freed buffer.
    func testLayersKeepingPointersFollowMovedGradients() {
        let model = Sequential(inputShape: [3], layers: [PointerKeepingScale(shape: [3])])
        model.parameters.values[0] = 2
        let arena = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1)
        arena.initialize(repeating: 0)
        defer { arena.deallocate() }
        let owner = ArenaOwner()
        model.moveGradients(to: arena, owner: owner)
        model.reserve(batchCapacity: 2)
        let x: [Float] = [1, 2, 3, 4, 5, 6]
        for i in 0..<6 { model.input[i] = x[i] }
        model.forward(batch: 2, context: .inference)
        XCTAssertEqual((0..<6).map { model.output[$0] }, x.map { 2 * $0 })
        for i in 0..<6 { model.outputGradient[i] = 1 }
        model.backward(batch: 2)
        // dL/dw = Σ x · dy = 21, written where the store now keeps its gradients.
        XCTAssertEqual(arena[0], 21)
        XCTAssertEqual(model.parameters.gradients.baseAddress, arena.baseAddress)
    }
}

/// Stands for the sum arena that owns moved gradients.
private final class ArenaOwner {}
