import XCTest
@testable import Selection

final class SweepTests: XCTestCase {
    func testAGridIsTheCartesianProductFirstFlagSlowest() throws {
        let sweep = try SweepSpecification(arguments: ["fashion-mnist", "--epochs", "5", "--lr", "3e-4,1e-3,3e-3", "--nesterov", "--batch-size", "64,256"])
        XCTAssertEqual(sweep.fixed, ["--epochs", "5", "--nesterov"])
        let trials = try sweep.trials(randomTrials: nil, seed: 1)
        XCTAssertEqual(trials.map { $0.map(\.value) }, [["3e-4", "64"], ["3e-4", "256"], ["1e-3", "64"], ["1e-3", "256"], ["3e-3", "64"], ["3e-3", "256"]])
        XCTAssertEqual(sweep.arguments(for: trials[3]), ["fashion-mnist", "--epochs", "5", "--nesterov", "--lr", "1e-3", "--batch-size", "256"])
    }

    func testRandomSearchIsSeededAndLogUniformWithinTheRange() throws {
        let sweep = try SweepSpecification(arguments: ["mnist", "--lr", "1e-4:1e-1", "--batch-size", "16:256", "--optimizer", "sgd,adam"])
        let trials = try sweep.trials(randomTrials: 400, seed: 7)
        XCTAssertEqual(trials.map { $0.map(\.value) }, try sweep.trials(randomTrials: 400, seed: 7).map { $0.map(\.value) })
        let rates = trials.map { Double($0[0].value)! }
        XCTAssertTrue(rates.allSatisfy { $0 >= 1e-4 * 0.999 && $0 <= 1e-1 * 1.001 })
        // Log-uniform: about a third of the draws in each decade.
        let decades = [1e-4, 1e-3, 1e-2, 1e-1]
        for d in 0..<3 {
            let share = Double(rates.filter { $0 >= decades[d] && $0 < decades[d + 1] }.count) / 400
            XCTAssertEqual(share, 1.0 / 3, accuracy: 0.08, "decade \(d)")
        }
        XCTAssertTrue(trials.allSatisfy { Int($0[1].value) != nil && (16...256).contains(Int($0[1].value)!) }, "integers for an integer range")
        XCTAssertEqual(Set(trials.map { $0[2].value }), ["sgd", "adam"])
    }

    func testBadSweepsAreRefusedNamingTheProblem() {
        func message(_ arguments: [String], trials: Int? = nil) -> String {
            do { _ = try SweepSpecification(arguments: arguments).trials(randomTrials: trials, seed: 1); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(["fashion-mnist", "--lr", "1e-4:1e-2"]).contains("ranges need --trials N"))
        XCTAssertTrue(message(["fashion-mnist", "--lr", "1e-2:1e-4"], trials: 3).contains("not a range low:high with low < high"))
        XCTAssertTrue(message(["fashion-mnist", "--lr", "1e-3,,2e-3"]).contains("has an empty value"))
        XCTAssertTrue(message(["--lr", "1e-3,2e-3"]).contains("needs a training command"))
        XCTAssertTrue(message(["fashion-mnist", "--lr", "1,2", "--lr", "3,4"]).contains("swept twice"))
    }

    func testRankingIsByTheValidationMonitorWithFailuresLast() {
        func trial(_ n: Int, _ value: Double?, monitor: String = "val_loss") -> TrialResult {
            TrialResult(trial: n, values: "", arguments: [], status: value == nil ? "failed" : "ok", monitor: monitor, bestValue: value,
                        bestEpoch: 1, finalValidationAccuracy: nil, finalValidationLoss: nil, testAccuracy: 0.99 - Double(n) / 100, seconds: 1)
        }
        XCTAssertEqual(rankTrials([trial(1, 0.5), trial(2, nil), trial(3, 0.3)]).map(\.trial), [3, 1, 2])
        XCTAssertEqual(rankTrials([trial(1, 0.8, monitor: "val_accuracy"), trial(2, 0.9, monitor: "val_accuracy")]).map(\.trial), [2, 1])
    }

    func testTheRangeTestGrowsTheRateAndStopsOnDivergence() {
        var finder = LearningRateFinder(start: 1e-6, end: 1, steps: 100)
        XCTAssertEqual(finder.rate(at: 0), 1e-6, accuracy: 1e-18)
        XCTAssertEqual(finder.rate(at: 99), 1, accuracy: 1e-12)
        XCTAssertEqual(finder.rate(at: 33) / finder.rate(at: 32), pow(1e6, 1.0 / 99), accuracy: 1e-12)
        // A loss that falls fastest near 1e-3, bottoms out near 3e-2, then explodes.
        var step = 0
        while step < 100 {
            let x = log10(finder.rate(at: step))
            let loss = x < -1.5 ? 2.3 - 2 / (1 + exp(-3 * (x + 3))) : 0.3 + pow(10, 2 * (x + 1.5)) - 1
            if !finder.record(step: step, loss: loss) { break }
            step += 1
        }
        XCTAssertLessThan(step, 100, "stops once the loss has grown past 4× its minimum")
        let suggestion = finder.suggestion!
        XCTAssertTrue(suggestion.steepest > 1e-4 && suggestion.steepest < 1e-2, "\(suggestion)")
        XCTAssertFalse(finder.record(step: step + 1, loss: .nan), "a non-finite loss ends the test")
        XCTAssertFalse(finder.lowestNearStart)
    }

    func testALossThatOnlyRisesSuggestsNoRateBelowTheRange() {
        var finder = LearningRateFinder(start: 1e-3, end: 1, steps: 40)
        for step in 0..<40 where !finder.record(step: step, loss: 1 + Double(step) * 0.01) { break }
        let suggestion = finder.suggestion!
        XCTAssertTrue(finder.lowestNearStart)
        XCTAssertGreaterThanOrEqual(suggestion.steepest, 1e-3, "never a rate the test did not try")
    }
}
