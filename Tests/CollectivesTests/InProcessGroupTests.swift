import XCTest
@testable import Collectives
import _TestSupport

final class InProcessGroupTests: XCTestCase {
    func testAllreduceSumAndMaxForEveryScalarType() throws {
        let group = InProcessGroup(size: 4, timeoutSeconds: 30)
        let results = try group.run { comm -> ([Float], [Double], [Int64], [Int64]) in
            let r = comm.rank
            var floats: [Float] = [Float(r), 1.5, -Float(r) * 2]
            var doubles: [Double] = [Double(r) * 0.25]
            var sums: [Int64] = [Int64(r) << 40, 1]
            var maxima: [Int64] = [Int64(r * 7 % 4), -Int64(r)]
            try comm.allreduce(&floats, .sum)
            try comm.allreduce(&doubles, .sum)
            try comm.allreduce(&sums, .sum)
            try comm.allreduce(&maxima, .max)
            return (floats, doubles, sums, maxima)
        }
        for result in results {
            XCTAssertEqual(result.0, [6, 6, -12])
            XCTAssertEqual(result.1, [1.5])
            XCTAssertEqual(result.2, [6 << 40, 4])
            XCTAssertEqual(result.3, [3, 0])
        }
    }

    func testBroadcastFromNonZeroRoot() throws {
        let group = InProcessGroup(size: 3, timeoutSeconds: 30)
        let results = try group.run { comm -> [Int32] in
            var values: [Int32] = comm.rank == 2 ? [9, 8, 7] : [0, 0, 0]
            try values.withUnsafeMutableBytes { try comm.broadcast($0, root: 2) }
            return values
        }
        XCTAssertEqual(results, [[9, 8, 7], [9, 8, 7], [9, 8, 7]])
    }

    func testAllGatherText() throws {
        let group = InProcessGroup(size: 3, timeoutSeconds: 30)
        let results = try group.run { comm in try comm.allGather(text: "rank \(comm.rank) é") }
        XCTAssertEqual(results[1], ["rank 0 é", "rank 1 é", "rank 2 é"])
    }

    func testCollectivelyAndOnCoordinatorAgreeOnEveryRank() throws {
        struct Failure: Error, CustomStringConvertible { let description: String }
        let group = InProcessGroup(size: 3, timeoutSeconds: 30)
        let outcomes = try group.run { comm -> [String] in
            let everywhere = (try? comm.collectively { comm.rank * 10 }).map(String.init) ?? "threw"
            let oneFails = (try? comm.collectively { () -> Int in
                if comm.rank == 2 { throw Failure(description: "no disk") }
                return comm.rank
            }).map(String.init) ?? "threw"
            var ran = false
            let coordinator = try comm.onCoordinator { () -> String in ran = true; return "read" }
            var message = ""
            do { try comm.onCoordinator { throw Failure(description: "cannot write") } } catch { message = "\(error)" }
            return [everywhere, oneFails, coordinator ?? "nil", "\(ran)", message]
        }
        XCTAssertEqual(outcomes.map { $0[0] }, ["0", "10", "20"], "each rank's own value")
        XCTAssertEqual(outcomes.map { $0[1] }, ["threw", "threw", "threw"], "one rank's failure ends every rank")
        XCTAssertEqual(outcomes.map { $0[2] }, ["read", "nil", "nil"])
        XCTAssertEqual(outcomes.map { $0[3] }, ["true", "false", "false"], "only the coordinator runs it")
        XCTAssertEqual(Set(outcomes.map { $0[4] }), ["rank 0: cannot write"], "every rank throws the coordinator's error")
    }

    func testAgreeOnSuccessNamesLowestFailingRankOnEveryRank() throws {
        struct Failure: Error, CustomStringConvertible { let description: String }
        let group = InProcessGroup(size: 4, timeoutSeconds: 30)
        let messages = try group.run { comm -> String in
            let local: Error? = comm.rank == 1 || comm.rank == 3 ? Failure(description: "bad file on \(comm.rank)") : nil
            do {
                try comm.agreeOnSuccess(local)
                return "passed"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(Set(messages), ["rank 1: bad file on 1 (ranks 1, 3 failed)"])
        // And when nobody fails, everyone passes.
        let passed = try InProcessGroup(size: 3, timeoutSeconds: 30).run { comm -> Bool in
            try comm.agreeOnSuccess(nil)
            return true
        }
        XCTAssertEqual(passed, [true, true, true])
    }

    func testMissingRankTimesOutInsteadOfHanging() {
        let group = InProcessGroup(size: 2, timeoutSeconds: 0.5)
        let start = Date()
        XCTAssertThrowsError(try group.run { comm -> Int in
            if comm.rank == 0 {
                var x: [Float] = [1]
                try comm.allreduce(&x, .sum)  // rank 1 never joins
            }
            return 0
        })
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    func testThrowingRankReleasesItsPeers() {
        struct Boom: Error {}
        let group = InProcessGroup(size: 3, timeoutSeconds: 60)
        let start = Date()
        XCTAssertThrowsError(try group.run { comm -> Int in
            if comm.rank == 2 { throw Boom() }
            try comm.barrier()
            return 0
        })
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "peers must not wait for the deadline")
    }

    func testSingleIsLocalAndReduceIsIdentity() throws {
        let comm = InProcessCommunicator.single()
        XCTAssertEqual(comm.size, 1)
        XCTAssertEqual(comm.kind, "local")
        var values: [Double] = [1, 2]
        try comm.allreduce(&values, .sum)
        XCTAssertEqual(values, [1, 2])
    }
}
