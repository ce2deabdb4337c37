import Tensors
import XCTest
import _TestSupport

final class GEMMTests: XCTestCase {
    /// Naive row-major reference: C = alpha·op(A)·op(B) + beta·C.
    func naive(_ ta: Transpose, _ tb: Transpose, m: Int, n: Int, k: Int, alpha: Float,
               a: [Float], b: [Float], beta: Float, c: [Float]) -> [Float] {
        var out = c
        for i in 0..<m {
            for j in 0..<n {
                var sum: Double = 0
                for p in 0..<k {
                    let av = ta == .none ? a[i * k + p] : a[p * m + i]
                    let bv = tb == .none ? b[p * n + j] : b[j * k + p]
                    sum += Double(av) * Double(bv)
                }
                out[i * n + j] = alpha * Float(sum) + beta * c[i * n + j]
            }
        }
        return out
    }

    /// Small products (OpenBLAS) and ones above the size that goes to oneDNN, every transpose.
    func testEveryTransposeMatchesNaiveLoops() {
        for (m, n, k) in [(5, 7, 3), (70, 65, 61)] { checkEveryTranspose(m: m, n: n, k: k) }
    }

    private func checkEveryTranspose(m: Int, n: Int, k: Int) {
        var generator = SeededGenerator(seed: 7)
        for ta in [Transpose.none, .transposed] {
            for tb in [Transpose.none, .transposed] {
                let a = (0..<(m * k)).map { _ in generator.nextFloat(in: -1, 1) }
                let b = (0..<(k * n)).map { _ in generator.nextFloat(in: -1, 1) }
                let c = (0..<(m * n)).map { _ in generator.nextFloat(in: -1, 1) }
                var result = c
                gemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: 2, c: &result)
                let expected = naive(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: 2, c: c)
                assertClose(result, expected, relative: 1e-5, absolute: 1e-4, "\(m)x\(n)x\(k) transA \(ta) transB \(tb)")
            }
        }
    }

    /// Operands inside wider rows (the attention's per-head q, k, v in a (T, 3C) buffer), above oneDNN's size.
    func testLeadingDimensionsWiderThanTheOperands() {
        var generator = SeededGenerator(seed: 3)
        let (m, n, k, pad) = (80, 72, 50, 5)
        for ta in [Transpose.none, .transposed] {
            for tb in [Transpose.none, .transposed] {
                let (aRows, aColumns) = ta == .none ? (m, k) : (k, m), (bRows, bColumns) = tb == .none ? (k, n) : (n, k)
                let lda = aColumns + pad, ldb = bColumns + pad, ldc = n + pad
                let a = (0..<(aRows * lda)).map { _ in generator.nextFloat(in: -1, 1) }
                let b = (0..<(bRows * ldb)).map { _ in generator.nextFloat(in: -1, 1) }
                var c = (0..<(m * ldc)).map { _ in generator.nextFloat(in: -1, 1) }
                let before = c
                gemm(ta, tb, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: &c, ldc: ldc)
                for i in 0..<m {
                    for j in 0..<ldc {
                        guard j < n else { XCTAssertEqual(c[i * ldc + j], before[i * ldc + j], "padding is kept"); continue }
                        var sum = Double(before[i * ldc + j])
                        for p in 0..<k {
                            let x = ta == .none ? a[i * lda + p] : a[p * lda + i], y = tb == .none ? b[p * ldb + j] : b[j * ldb + p]
                            sum += Double(x) * Double(y)
                        }
                        XCTAssertEqual(Double(c[i * ldc + j]), sum, accuracy: 1e-4, "\(ta) \(tb) (\(i), \(j))")
                    }
                }
            }
        }
    }

    func testThreadCountIsSettable() {
        BLAS.setThreadCount(1)
        XCTAssertEqual(BLAS.threadCount, 1)
        XCTAssertTrue(BLAS.configuration.contains("OpenBLAS"), BLAS.configuration)
    }

    /// Only OpenBLAS's generic fallback is replaced, and only by kernels the CPU's flags support.
    func testUnrecognizedCPUGetsTheKernelsItsFlagsSupport() {
        let zen4OrEmeraldRapids: Set<Substring> = ["sse3", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"]
        XCTAssertEqual(BLAS.unrecognizedCPUCoreType(core: "Prescott", cpuFlags: zen4OrEmeraldRapids), "Cooperlake")
        XCTAssertEqual(BLAS.unrecognizedCPUCoreType(core: "Prescott", cpuFlags: ["avx2", "fma", "avx512f", "avx512bw",
                                                                                "avx512vl"]), "SkylakeX")
        XCTAssertEqual(BLAS.unrecognizedCPUCoreType(core: "Prescott", cpuFlags: ["avx", "avx2", "fma"]), "Haswell")
        XCTAssertNil(BLAS.unrecognizedCPUCoreType(core: "Prescott", cpuFlags: ["sse3", "avx"]))
        XCTAssertNil(BLAS.unrecognizedCPUCoreType(core: "Zen", cpuFlags: zen4OrEmeraldRapids))
        XCTAssertNil(BLAS.unrecognizedCPUCoreType(core: "Cooperlake", cpuFlags: zen4OrEmeraldRapids))
    }
}
