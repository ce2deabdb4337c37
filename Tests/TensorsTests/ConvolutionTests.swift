import Tensors
import XCTest
import _TestSupport

final class ConvolutionTests: XCTestCase {
    /// Stride 1 (the vectorized row copies) and 2 and 3, padding 0–2, square and non-square kernels,
    /// a kernel wider than the padded row's valid part, odd sizes, planes smaller than the kernel.
    private let geometries = [
        WindowGeometry(channels: 2, height: 5, width: 4, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1),
        WindowGeometry(channels: 3, height: 6, width: 5, kernelHeight: 3, kernelWidth: 2, stride: 2, padding: 1),
        WindowGeometry(channels: 2, height: 7, width: 9, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        WindowGeometry(channels: 1, height: 6, width: 11, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 2),
        WindowGeometry(channels: 2, height: 5, width: 5, kernelHeight: 1, kernelWidth: 1, stride: 1, padding: 0),
        WindowGeometry(channels: 2, height: 8, width: 7, kernelHeight: 4, kernelWidth: 3, stride: 3, padding: 2),
        WindowGeometry(channels: 1, height: 3, width: 3, kernelHeight: 3, kernelWidth: 5, stride: 1, padding: 2),
        WindowGeometry(channels: 2, height: 2, width: 2, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        WindowGeometry(channels: 3, height: 3, width: 4, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 2),
    ]

    /// The input position (iy, ix) column (b, oy, ox) of row (c, ki, kj) reads, or nil in the padding.
    private func source(_ g: WindowGeometry, ki: Int, kj: Int, oy: Int, ox: Int) -> (Int, Int)? {
        let iy = oy * g.stride - g.padding + ki, ix = ox * g.stride - g.padding + kj
        return (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) ? nil : (iy, ix)
    }

    func testIm2colMatchesDirectIndexingWithPaddingAndStride() {
        XCTAssertEqual(geometries[0].outputHeight, 3)
        XCTAssertEqual(geometries[0].outputWidth, 2)
        for g in geometries {
            let batch = 2
            let x = (0..<(batch * g.inputCount)).map { Float($0) + 1 }
            var columns = [Float](repeating: -99, count: g.patchSize * batch * g.outputPixels)
            im2col(x, batch: batch, geometry: g, columns: &columns)
            for c in 0..<g.channels { for ki in 0..<g.kernelHeight { for kj in 0..<g.kernelWidth {
                for b in 0..<batch { for oy in 0..<g.outputHeight { for ox in 0..<g.outputWidth {
                    let expected: Float = source(g, ki: ki, kj: kj, oy: oy, ox: ox).map { x[((b * g.channels + c) * g.height + $0.0) * g.width + $0.1] } ?? 0
                    let row = (c * g.kernelHeight + ki) * g.kernelWidth + kj
                    let column = b * g.outputPixels + oy * g.outputWidth + ox
                    XCTAssertEqual(columns[row * batch * g.outputPixels + column], expected, "\(g) row \(row) column \(column)")
                } } }
            } } }
        }
    }

    /// col2im against a naive scatter, accumulating into a dx that already holds values.
    func testCol2imAddsEveryEntryWhereItCameFrom() {
        for g in geometries {
            let batch = 2
            var generator = SeededGenerator(seed: 5)
            let columns = (0..<(g.patchSize * batch * g.outputPixels)).map { _ in generator.nextFloat(in: -1, 1) }
            let start = (0..<(batch * g.inputCount)).map { _ in generator.nextFloat(in: -1, 1) }
            var expected = start.map(Double.init)
            for c in 0..<g.channels { for ki in 0..<g.kernelHeight { for kj in 0..<g.kernelWidth {
                for b in 0..<batch { for oy in 0..<g.outputHeight { for ox in 0..<g.outputWidth {
                    guard let (iy, ix) = source(g, ki: ki, kj: kj, oy: oy, ox: ox) else { continue }
                    let row = (c * g.kernelHeight + ki) * g.kernelWidth + kj
                    let column = b * g.outputPixels + oy * g.outputWidth + ox
                    expected[((b * g.channels + c) * g.height + iy) * g.width + ix] += Double(columns[row * batch * g.outputPixels + column])
                } } }
            } } }
            var dx = start
            col2imAccumulate(columns, batch: batch, geometry: g, dx: &dx)
            for i in dx.indices { XCTAssertEqual(Double(dx[i]), expected[i], accuracy: 1e-5, "\(g) element \(i)") }
        }
    }

    func testCol2imIsTheAdjointOfIm2col() {
        // <im2col(x), y> == <x, col2im(y)> for random x, y: the defining property of the backward pass.
        for g in geometries {
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
}
