import XCTest
@testable import Training

/// Every Double a run can produce prints (issue 34, "numbers that trap"): the console once ended a run with
/// SIGILL converting an MSE of 1e16 to Int64.
final class NumberFormattingTests: XCTestCase {
    func testFixedPointTextHandlesEveryDouble() {
        XCTAssertEqual(format(3.14159, 2), "3.14")
        XCTAssertEqual(format(-0.0004, 3), "0.000")
        XCTAssertEqual(format(-2.5, 0), "-3")
        XCTAssertEqual(format(1.5e16, 4), "1.5000e+16")
        XCTAssertEqual(format(-1e38, 2), "-1.00e+38")
        XCTAssertEqual(format(Double.greatestFiniteMagnitude, 4), "1.7977e+308")
        XCTAssertEqual(format(.infinity, 4), "inf")
        XCTAssertEqual(format(-.infinity, 4), "-inf")
        XCTAssertEqual(format(.nan, 4), "nan")
        XCTAssertEqual(percent(1e20), "1.00e+22%")
    }

    func testGroupedNumbersHandleEveryDouble() {
        XCTAssertEqual(grouped(63_000.4), "63,000")
        XCTAssertEqual(grouped(-1_234_567), "-1,234,567")
        XCTAssertEqual(grouped(1e30), "1.000e+30")
        XCTAssertEqual(grouped(.nan), "nan")
        XCTAssertEqual(grouped(.infinity), "inf")
    }
}
