import CKernels
import XCTest
@testable import Collectives

/// The gradient sum's arithmetic (distrain_sum_spread, used by the MPI shared-memory arena) and the
/// portable allreduce arena. The MPI arena itself runs under mpirun in distrainTests (MPIRunTests,
/// EmulatedClusterTests, BenchCommandTests), which check that it is the one in use.
final class SumArenaTests: XCTestCase {
    /// Three sources, the targets include two of them; a range with a 16-float body and a tail, inside
    /// longer arrays whose outside must stay untouched.
    func testSumSpreadSumsInOrderAndWritesEveryTarget() {
        let length = 64, begin = 5, end = 5 + 16 + 7
        var original: [[Float]] = (0..<3).map { s in (0..<length).map { i in Float(i * 3 + s) * 0.5 - 10 } }
        original.append([Float](repeating: -1, count: length))  // a target only
        let storage = (0..<4).map { s -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: length)
            p.initialize(from: original[s], count: length)
            return p
        }
        defer { storage.forEach { $0.deallocate() } }
        let sources: [UnsafePointer<Float>?] = storage[0..<3].map { UnsafePointer($0) }
        let targets: [UnsafeMutablePointer<Float>?] = [storage[0], storage[2], storage[3]]
        let finite = distrain_sum_spread(sources, 3, targets, 3, begin, end)
        XCTAssertEqual(finite, 1)
        for i in 0..<length {
            let expected = (original[0][i] + original[1][i]) + original[2][i]
            let inside = (begin..<end).contains(i)
            XCTAssertEqual(storage[0][i], inside ? expected : original[0][i], "target 0 at \(i)")
            XCTAssertEqual(storage[1][i], original[1][i], "a source that is not a target is never written (\(i))")
            XCTAssertEqual(storage[2][i], inside ? expected : original[2][i], "target 2 at \(i)")
            XCTAssertEqual(storage[3][i], inside ? expected : -1, "target 3 at \(i)")
        }
    }

    /// A NaN or an infinity in any source, in the vector body or the tail, makes the verdict 0.
    func testSumSpreadReportsNonFiniteValuesAnywhere() {
        for position in [0, 7, 15, 16, 20] {
            for bad in [Float.nan, .infinity, -.infinity] {
                let a = UnsafeMutablePointer<Float>.allocate(capacity: 21), b = UnsafeMutablePointer<Float>.allocate(capacity: 21)
                defer { a.deallocate(); b.deallocate() }
                a.initialize(repeating: 1, count: 21)
                b.initialize(repeating: 2, count: 21)
                b[position] = bad
                let sources: [UnsafePointer<Float>?] = [UnsafePointer(a), UnsafePointer(b)]
                let targets: [UnsafeMutablePointer<Float>?] = [a]
                XCTAssertEqual(distrain_sum_spread(sources, 2, targets, 1, 0, 21), 0, "\(bad) at \(position)")
            }
        }
        // Finite inputs whose sum overflows are not finite either.
        let big = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        defer { big.deallocate() }
        big.initialize(to: .greatestFiniteMagnitude)
        XCTAssertEqual(distrain_sum_spread([UnsafePointer(big), UnsafePointer(big)], 2, [big], 1, 0, 1), 0)
    }

    /// The portable arena: every rank ends with Σ contributions and the same verdict.
    func testAllreduceArenaSumsAndAgreesOnFiniteness() throws {
        let group = InProcessGroup(size: 3, timeoutSeconds: 30)
        let count = 2_500  // three buckets of 1,024
        let results = try group.run { comm -> ([Float], Bool, Bool, [Int]) in
            let arena = try comm.makeSumArena(count: count, bucketElements: 1024, method: .auto)
            XCTAssertEqual(arena.summary, "allreduce")
            for i in 0..<count { arena.buffer[i] = Float(comm.rank + 1) * Float(i % 17) }
            var buckets: [Int] = []
            let finite = try arena.sumOverRanks { buckets.append($0) }
            let values = Array(arena.buffer)
            if comm.rank == 1 { arena.buffer[count - 1] = .nan }
            let secondFinite = try arena.sumOverRanks { _ in }
            return (values, finite, secondFinite, buckets)
        }
        for (values, finite, secondFinite, buckets) in results {
            XCTAssertTrue(finite)
            XCTAssertFalse(secondFinite, "a NaN on rank 1 reaches every rank's verdict")
            XCTAssertEqual(buckets, [0, 1, 2])
            for i in 0..<count { XCTAssertEqual(values[i], 6 * Float(i % 17), "element \(i)") }
        }
    }
}
