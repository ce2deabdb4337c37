import Foundation
import Tensors
import XCTest
import _TestSupport

/// `BLAS.precision = .bf16`: large GEMMs with bf16 operands and fp32 accumulation, against fp32 products of the
/// same operands rounded to bf16 (equal up to summation order) and of the unrounded ones (bf16's 8-bit mantissa).
final class BF16MatmulTests: XCTestCase {
    override func tearDown() { BLAS.precision = .fp32 }

    /// x rounded to bf16 (nearest-even), back in fp32.
    private func bf16(_ x: Float) -> Float {
        let bits = x.bitPattern
        return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
    }

    func testEveryTransposeWithAlphaAndBetaMatchesRoundedOperands() throws {
        try XCTSkipUnless(BLAS.supportsBF16, "this CPU has no bf16 dot products (AVX512-BF16/AMX); the CLI refuses bf16 here")
        let (m, n, k) = (96, 80, 72)  // above oneDNN's size threshold
        var generator = SeededGenerator(seed: 11)
        for ta in [Transpose.none, .transposed] {
            for tb in [Transpose.none, .transposed] {
                let a = (0..<(m * k)).map { _ in generator.nextFloat(in: -1, 1) }
                let b = (0..<(k * n)).map { _ in generator.nextFloat(in: -1, 1) }
                let c = (0..<(m * n)).map { _ in generator.nextFloat(in: -1, 1) }
                var exact = c, rounded = c, mixed = c
                BLAS.precision = .fp32
                gemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: 2, c: &exact)
                gemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a.map(bf16), b: b.map(bf16), beta: 2, c: &rounded)
                BLAS.precision = .bf16
                gemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: 2, c: &mixed)
                assertClose(mixed, rounded, relative: 1e-5, absolute: 1e-4, "transA \(ta) transB \(tb): fp32 sums of bf16")
                XCTAssertGreaterThan(zip(mixed, exact).map { abs($0 - $1) }.max()!, 1e-4, "the operands really are rounded")
                assertClose(mixed, exact, relative: 2e-2, absolute: 2e-2, "within bf16's precision of the fp32 product")
            }
        }
    }
}
