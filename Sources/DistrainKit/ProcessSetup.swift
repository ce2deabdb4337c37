import Collectives
import Compression
import Foundation
import Tensors

/// BLAS threads per rank: --threads, else cores on this host ÷ ranks on this host (at least 1).
public func threadsPerRank(requested: Int?, communicator: Communicator,
                           localRanks threadRanks: Int = 1) -> (threads: Int, warning: String?) {
    let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    let localRanks = max(1, communicator.localSize) * max(1, threadRanks)
    var threads = requested ?? max(1, cores / localRanks)
    var warning: String?
    if threads > cores {
        // More BLAS threads than cores only adds contention: cap it, and say so (the header shows the real number).
        warning = "warning: --threads \(threads) is more than the \(cores) cores of host \(communicator.hostName); using \(cores)"
        threads = cores
    }
    if threads * localRanks > cores {
        let ranks = "\(localRanks) rank\(localRanks == 1 ? "" : "s")", blas = "\(threads) BLAS thread\(threads == 1 ? "" : "s")"
        warning = (warning.map { $0 + "\n" } ?? "") + "warning: \(ranks) × \(blas) on host \(communicator.hostName) exceed its "
            + "\(cores) cores; expect contention (lower --threads or -n)"
    }
    return (threads, warning)
}

/// The words joined for a shell, each quoted when it needs to be.
public func shellQuoted(_ words: [String]) -> String {
    words.map { word in
        word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@".contains($0) } && !word.isEmpty
            ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

/// Threads for both kernel libraries: OpenBLAS (float GEMM) and oneDNN (int8 GEMM of quantized models).
public func setKernelThreads(_ threads: Int) {
    BLAS.setThreadCount(threads)
    Int8Kernels.setThreadCount(threads)
}
