import Foundation
import CKernels
import CDNNL
import COpenBLAS

/// Whether a GEMM operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed

    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    /// oneDNN's spelling: "N" or "T".
    var character: CChar { self == .none ? 78 : 84 }
}

/// Row-major C = alpha * op(A) * op(B) + beta * C, with op(A) m×k and op(B) k×n.
///
/// Leading dimensions follow from the stored (not transposed) shapes of row-major operands.
@inline(__always)
public func gemm(
    _ transA: Transpose, _ transB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, b: UnsafePointer<Float>,
    beta: Float,
    c: UnsafeMutablePointer<Float>
) {
    let lda = transA == .none ? k : m
    let ldb = transB == .none ? n : k
    gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: n)
}

/// Row-major GEMM with explicit leading dimensions.
@inline(__always)
public func gemm(
    _ transA: Transpose, _ transB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm dimensions must be non-negative: m=\(m) n=\(n) k=\(k)")
    if m == 0 || n == 0 { return }
    // Marked so the allocation counter can tell the library's allocations from distrain's own.
    distrain_enter_library(Int32(DISTRAIN_LIBRARY_BLAS.rawValue))
    defer { distrain_leave_library(Int32(DISTRAIN_LIBRARY_BLAS.rawValue)) }
    // OpenMP's thread count is per calling thread, and in-process ranks each call from their own.
    if BLAS.precision == .bf16 {
        // Every product, whatever its size: which GEMMs round their operands must not depend on a rank's share.
        omp_set_num_threads(kernelThreads)
        return bf16Gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
                        c: c, ldc: ldc)
    }
    if m * n * k >= oneDNNMinimumMultiplyAdds && min(m, n, k) >= oneDNNMinimumSide {
        omp_set_num_threads(kernelThreads)
        let status = dnnl_sgemm(transA.character, transB.character, dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k),
                                alpha, a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
        precondition(status == dnnl_success, "oneDNN sgemm refused m=\(m) n=\(n) k=\(k) (status \(status))")
        return
    }
    cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas,
                blasint(m), blasint(n), blasint(k), alpha,
                a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// y(rows) = A(rows × columns) · x + beta·y, A row-major with leading dimension `lda`: one pass over A, where a
/// one-row GEMM packs A first (generating a token multiplies one position by every weight matrix: twice as fast).
public func matrixVector(_ a: UnsafePointer<Float>, rows: Int, columns: Int, lda: Int, x: UnsafePointer<Float>, beta: Float,
                         y: UnsafeMutablePointer<Float>) {
    if rows == 0 { return }
    distrain_enter_library(Int32(DISTRAIN_LIBRARY_BLAS.rawValue))
    defer { distrain_leave_library(Int32(DISTRAIN_LIBRARY_BLAS.rawValue)) }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(rows), blasint(columns), 1, a, blasint(lda), x, 1, beta, y, 1)
}

/// GEMMs of at least this many multiply-adds go to oneDNN's sgemm, smaller ones to OpenBLAS. Measured on
/// 2 vCPUs (BENCHMARKS.md, "GEMM libraries"): on a transformer's (768, 128…512, 128…768) shapes OpenBLAS 0.3.21
/// gains nothing from a second thread (~120 GFLOP/s on 1 or 2) where oneDNN reaches 190; on one thread oneDNN
/// is 0–20% faster; on the attention's per-head (64, 64, 32) products OpenBLAS is faster.
let oneDNNMinimumMultiplyAdds = 262_144
/// oneDNN mallocs a packing buffer on every call for skinny products (a batch of 4 through a 784-wide layer);
/// OpenBLAS does not, and at those shapes it is as fast.
let oneDNNMinimumSide = 32

/// Threads each GEMM may use (`BLAS.setThreadCount`), for OpenBLAS's global setting and OpenMP's per-thread one.
nonisolated(unsafe) private var kernelThreads: Int32 = 1

/// Facts about the BLAS library and control of its threads.
public enum BLAS {
    /// Sets how many threads a GEMM may use (OpenBLAS's and oneDNN's) in this process.
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
        kernelThreads = Int32(max(1, count))
    }

    /// Threads OpenBLAS currently uses.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64".
    public static var configuration: String {
        guard let text = openblas_get_config() else { return "OpenBLAS" }
        return String(cString: text).trimmingCharacters(in: " ")
    }

    /// The CPU core type OpenBLAS chose its kernels for.
    public static var coreName: String {
        guard let text = openblas_get_corename() else { return "unknown" }
        return String(cString: text)
    }

    /// The `OPENBLAS_CORETYPE` to restart with when OpenBLAS took its generic x86-64 kernels (Prescott) on a
    /// CPU it did not recognize but that has AVX2 or AVX-512 — nil otherwise. OpenBLAS 0.3.21 does not know
    /// Intel's model 207 (Emerald Rapids) and falls back to SSE3 code: sgemm 25 GFLOP/s against 150–190 with
    /// the Cooperlake kernels on the same 2 vCPUs. The choice follows the CPU flags, never the model number.
    public static func unrecognizedCPUCoreType(core: String = coreName, cpuFlags: Set<Substring>? = nil) -> String? {
        guard core.lowercased() == "prescott", let flags = cpuFlags ?? linuxCPUFlags() else { return nil }
        if flags.contains("avx512_bf16") && flags.contains("avx512f") { return "Cooperlake" }
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The first processor's flags in /proc/cpuinfo (nil where there is no such file).
    private static func linuxCPUFlags() -> Set<Substring>? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return nil }
        return Set(line[line.index(after: colon)...].split(separator: " "))
    }

    /// One line naming the library and kernels, for logs.
    public static var summary: String {
        "\(configuration) (core \(coreName))" + (precision == .bf16 ? "; large GEMMs in bf16 with fp32 accumulation" : "")
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.first == set { text = text.dropFirst() }
        while text.last == set { text = text.dropLast() }
        return String(text)
    }
}
