import Layers
import Tensors
import XCTest
import _TestSupport

/// Checks a layer's backward against central differences of L = Σ y ⊙ r for a fixed random r.
func checkLayerGradients(_ layer: Layer, batch: Int, seed: UInt64 = 1, inputRange: Float = 1,
                         tolerance: Double = 2e-2, checkInput: Bool = true,
                         file: StaticString = #filePath, line: UInt = #line) {
    // A parameterless layer in front makes the model compute the checked layer's input gradient.
    let model = Sequential(inputShape: layer.inputShape, layers: [layer])
    model.parameters.initializeKaimingUniform(seed: seed)
    model.reserve(batchCapacity: batch)
    var generator = SeededGenerator(seed: seed, keys: 99)
    let inputCount = batch * layer.inputCount, outputCount = batch * layer.outputCount
    var x = (0..<inputCount).map { _ in generator.nextFloat(in: -inputRange, inputRange) }
    let r = (0..<outputCount).map { _ in generator.nextFloat(in: -1, 1) }
    let context = ForwardContext(isTraining: true, seed: 5)

    func loss() -> Double {
        x.withUnsafeBufferPointer { model.input.update(from: $0.baseAddress!, count: inputCount) }
        let y = layer.aliasesInput ? model.input : model.forward(batch: batch, context: context)
        var total = 0.0
        for i in 0..<outputCount { total += Double(y[i]) * Double(r[i]) }
        return total
    }

    // Analytic gradients.
    _ = loss()
    model.parameters.zeroGradients()
    var dx = [Float](repeating: 0, count: inputCount)
    var dy = r
    let output = model.output
    dx.withUnsafeMutableBufferPointer { dxBuffer in
        dy.withUnsafeMutableBufferPointer { dyBuffer in
            layer.backward(input: model.input, output: output, dOutput: dyBuffer.baseAddress!,
                           dInput: dxBuffer.baseAddress!, batch: batch)
        }
    }
    let analyticParameters = Array(model.parameters.gradients)

    let store = model.parameters
    if store.count > 0 {
        let numeric = centralDifferences(count: store.count, epsilon: 1e-3, get: { store.values[$0] },
                                         set: { store.values[$0] = $1 }, loss: loss)
        assertCloseAwayFromKinks(Array(analyticParameters.prefix(store.count)), numeric, tolerance: tolerance,
                                 "parameter gradients of \(layer.summary)", file: file, line: line)
    }
    if checkInput {
        let numeric = centralDifferences(count: inputCount, epsilon: 1e-3, get: { x[$0] }, set: { x[$0] = $1 }, loss: loss)
        assertCloseAwayFromKinks(dx, numeric, tolerance: tolerance, "input gradient of \(layer.summary)",
                                 file: file, line: line)
    }
}

/// Compares analytic gradients with finite differences where those exist (not at kinks), and insists
/// that kinks are rare, so the check cannot pass by skipping everything.
func assertCloseAwayFromKinks(_ analytic: [Float], _ numeric: [Double?], tolerance: Double, _ message: String,
                              file: StaticString, line: UInt) {
    let checked = numeric.indices.filter { numeric[$0] != nil }
    XCTAssertGreaterThanOrEqual(checked.count * 10, numeric.count * 7, "too many kinks skipped: \(message)", file: file, line: line)
    assertClose(checked.map { analytic[$0] }, checked.map { numeric[$0]! }, relative: tolerance, absolute: tolerance,
                message, file: file, line: line)
}
