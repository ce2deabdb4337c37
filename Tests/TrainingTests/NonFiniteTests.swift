import XCTest
import Collectives
@testable import Training
import _TestSupport

/// A NaN on one rank is seen by all ranks in the same step.
final class NonFiniteTests: XCTestCase {
    private let data = syntheticSplits(train: 80, test: 10)

    private func run(_ policy: NonFinitePolicy, fault: Fault?, ranks: Int = 4,
                     exactSums: Bool = false) throws -> [Result<([Float], Int), Error>] {
        var configuration = TrainingConfiguration(dataset: "synthetic", epochs: 2, globalBatchSize: 16, onNonFinite: policy)
        configuration.exactSums = exactSums ? true : nil
        let group = InProcessGroup(size: ranks, timeoutSeconds: 60)
        let results = ResultBox()
        _ = try? group.run { comm -> Int in
            do {
                let trainer = try makeTrainer(configuration: configuration, data: self.data, communicator: comm, reporter: nil, fault: fault)
                try trainer.run()
                results.set(comm.rank, .success((Array(trainer.model.parameters.values), trainer.skippedSteps)))
            } catch {
                results.set(comm.rank, .failure(error))
            }
            return 0
        }
        return results.all(ranks)
    }

    /// Alone, the check runs inside backward (layer by layer) instead of in the sum: same outcomes.
    func testLocalTrainingStopsOrSkipsOnANaN() throws {
        guard case let .failure(error) = try run(.stop, fault: Fault(rank: 0, step: 4, kind: .nan), ranks: 1)[0] else {
            return XCTFail("the run must stop")
        }
        XCTAssertTrue("\(error)".contains("at epoch 1, step 4 from rank 0 (global samples "), "\(error)")
        let (parameters, skipped) = try run(.skip, fault: Fault(rank: 0, step: 4, kind: .nan), ranks: 1)[0].get()
        XCTAssertEqual(skipped, 1)
        XCTAssertTrue(parameters.allSatisfy(\.isFinite))
    }

    func testStopEndsEveryRankAtTheSameStepNamingTheRankAndSamples() throws {
        let results = try run(.stop, fault: Fault(rank: 3, step: 4, kind: .nan))
        var messages = Set<String>()
        for result in results {
            guard case let .failure(error) = result else { return XCTFail("every rank must stop") }
            XCTAssertTrue(error is NonFiniteError, "\(error)")
            messages.insert("\(error)")
        }
        XCTAssertEqual(messages.count, 1, "\(messages)")
        let message = messages.first!
        XCTAssertTrue(message.contains("at epoch 1, step 4 from rank 3 (global samples "), message)
    }

    func testSkipDropsTheUpdateEverywhereAndReplicasStayIdentical() throws {
        let results = try run(.skip, fault: Fault(rank: 3, step: 4, kind: .nan))
        let outcomes = try results.map { try $0.get() }
        for outcome in outcomes {
            XCTAssertEqual(outcome.0, outcomes[0].0)
            XCTAssertEqual(outcome.1, 1)
            XCTAssertTrue(outcome.0.allSatisfy(\.isFinite))
        }
    }

    /// Under `--exact-sums` a NaN is an out-of-range term: the same verdict on every rank, the culprit named, and a
    /// skipped step leaves every replica finite and identical — alone too.
    func testExactSumsSeeANaNOnAnyRank() throws {
        for (ranks, rank) in [(4, 3), (1, 0)] {
            guard case let .failure(error) = try run(.stop, fault: Fault(rank: rank, step: 4, kind: .nan), ranks: ranks,
                                                     exactSums: true)[0] else { return XCTFail("the run must stop") }
            XCTAssertTrue("\(error)".contains("at epoch 1, step 4 from rank \(rank) (global samples "), "\(error)")
            let outcomes = try run(.skip, fault: Fault(rank: rank, step: 4, kind: .nan), ranks: ranks, exactSums: true)
                .map { try $0.get() }
            for outcome in outcomes {
                XCTAssertEqual(outcome.0, outcomes[0].0)
                XCTAssertEqual(outcome.1, 1)
                XCTAssertTrue(outcome.0.allSatisfy(\.isFinite))
            }
        }
    }

    func testFaultSpecificationParsing() throws {
        XCTAssertEqual(try Fault(parsing: "1:20:crash"), Fault(rank: 1, step: 20, kind: .crash))
        for bad in ["", "1:20", "1:0:crash", "-1:3:hang", "1:3:explode", "a:b:c"] {
            XCTAssertThrowsError(try Fault(parsing: bad)) { XCTAssertTrue("\($0)".contains("rank:step:kind")) }
        }
    }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Result<([Float], Int), Error>] = [:]
    func set(_ rank: Int, _ value: Result<([Float], Int), Error>) { lock.lock(); values[rank] = value; lock.unlock() }
    func all(_ count: Int) -> [Result<([Float], Int), Error>] { (0..<count).map { values[$0]! } }
}
