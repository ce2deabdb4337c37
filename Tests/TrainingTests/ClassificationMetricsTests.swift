import XCTest
@testable import Training
import _TestSupport

final class ClassificationMetricsTests: XCTestCase {
    /// Three classes, 10 samples, worked by hand:
    ///            predicted 0  1  2
    ///   true 0             3  1  0     support 4
    ///   true 1             0  2  1     support 3
    ///   true 2             1  0  2     support 3
    /// precision: 3/4, 2/3, 2/3;  recall: 3/4, 2/3, 2/3;  accuracy 7/10.
    func testHandWorkedExample() {
        let metrics = ClassificationMetrics(confusion: [3, 1, 0, 0, 2, 1, 1, 0, 2], classCount: 3)
        XCTAssertEqual(metrics.total, 10)
        XCTAssertEqual(metrics.correct, 7)
        XCTAssertEqual(metrics.accuracy, 0.7)
        assertClose([metrics.precision(of: 0), metrics.precision(of: 1), metrics.precision(of: 2)], [0.75, 2.0 / 3, 2.0 / 3])
        assertClose([metrics.recall(of: 0), metrics.recall(of: 1), metrics.recall(of: 2)], [0.75, 2.0 / 3, 2.0 / 3])
        assertClose(metrics.f1(of: 0), 0.75)
        assertClose(metrics.precisionMacro, (0.75 + 4.0 / 3) / 3)
        assertClose(metrics.f1Macro, (0.75 + 4.0 / 3) / 3)
        XCTAssertEqual(metrics.support(of: 1), 3)
        XCTAssertEqual(metrics.f1Micro, 0.7)
        XCTAssertEqual(metrics.rows, [[3, 1, 0], [0, 2, 1], [1, 0, 2]])
    }

    /// Asymmetric case where precision and recall differ, and a class never predicted.
    func testNeverPredictedClassHasZeroPrecision() {
        //            predicted 0  1
        //   true 0             4  0
        //   true 1             2  0
        let metrics = ClassificationMetrics(confusion: [4, 0, 2, 0], classCount: 2)
        assertClose(metrics.precision(of: 0), 4.0 / 6)
        XCTAssertEqual(metrics.recall(of: 0), 1)
        assertClose(metrics.f1(of: 0), 2 * (4.0 / 6) / (4.0 / 6 + 1))
        XCTAssertEqual(metrics.precision(of: 1), 0)
        XCTAssertEqual(metrics.recall(of: 1), 0)
        XCTAssertEqual(metrics.f1(of: 1), 0)
        assertClose(metrics.recallMacro, 0.5)
    }
}
