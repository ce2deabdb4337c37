import Tensors
import XCTest
import _TestSupport

final class ConvolutionTests: XCTestCase {
    func testIm2colMatchesDirectIndexingWithPaddingAndStride() {
        let g = WindowGeometry(channels: 2, height: 5, width: 4, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1)
        XCTAssertEqual(g.outputHeight, 3)
        XCTAssertEqual(g.outputWidth, 2)
        let batch = 2
        let x = (0..<(batch * g.inputCount)).map { Float($0) + 1 }
        var columns = [Float](repeating: -99, count: g.patchSize * batch * g.outputPixels)
        im2col(x, batch: batch, geometry: g, columns: &columns)
        for c in 0..<2 { for ki in 0..<3 { for kj in 0..<3 { for b in 0..<batch { for oy in 0..<3 { for ox in 0..<2 {
            let iy = oy * 2 - 1 + ki, ix = ox * 2 - 1 + kj
            let expected: Float = (iy < 0 || iy >= 5 || ix < 0 || ix >= 4) ? 0 : x[((b * 2 + c) * 5 + iy) * 4 + ix]
            let row = (c * 3 + ki) * 3 + kj
            let column = b * g.outputPixels + oy * 2 + ox
            XCTAssertEqual(columns[row * batch * g.outputPixels + column], expected, "row \(row) column \(column)")
        } } } } } }
    }

    func testCol2imIsTheAdjointOfIm2col() {
        // <im2col(x), y> == <x, col2im(y)> for random x, y: the defining property of the backward pass.
        let g = WindowGeometry(channels: 3, height: 6, width: 5, kernelHeight: 3, kernelWidth: 2, stride: 2, padding: 1)
        let batch = 2
        var generator = SeededGenerator(seed: 3)
        let x = (0..<(batch * g.inputCount)).map { _ in generator.nextFloat(in: -1, 1) }
        let y = (0..<(g.patchSize * batch * g.outputPixels)).map { _ in generator.nextFloat(in: -1, 1) }
        var columns = [Float](repeating: 0, count: y.count)
        im2col(x, batch: batch, geometry: g, columns: &columns)
        var folded = [Float](repeating: 0, count: x.count)
        col2imAccumulate(y, batch: batch, geometry: g, dx: &folded)
        let left = zip(columns, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let right = zip(x, folded).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        assertClose(left, right, relative: 1e-5)
    }
}
