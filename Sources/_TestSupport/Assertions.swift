import XCTest

/// Asserts |actual − expected| ≤ absolute + relative·|expected| elementwise, reporting the worst element.
public func assertClose<A: Collection, B: Collection>(
    _ actual: A, _ expected: B, relative: Double = 1e-5, absolute: Double = 1e-6,
    _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) where A.Element: BinaryFloatingPoint, B.Element: BinaryFloatingPoint {
    XCTAssertEqual(actual.count, expected.count, "count differs \(message)", file: file, line: line)
    var worst = 0.0, worstIndex = -1, worstPair = (0.0, 0.0)
    for (index, (a, e)) in zip(actual, expected).enumerated() {
        let x = Double(a), y = Double(e)
        let excess = abs(x - y) - (absolute + relative * abs(y))
        if excess > worst || (x.isNaN != y.isNaN) {
            worst = x.isNaN != y.isNaN ? .infinity : excess
            worstIndex = index
            worstPair = (x, y)
        }
    }
    if worstIndex >= 0 {
        XCTFail("not close at index \(worstIndex): \(worstPair.0) vs expected \(worstPair.1) (|diff| \(abs(worstPair.0 - worstPair.1)), tolerance \(absolute) + \(relative)·|expected|) \(message)", file: file, line: line)
    }
}

/// Asserts two scalars are close (see the collection form).
public func assertClose<T: BinaryFloatingPoint>(_ actual: T, _ expected: T, relative: Double = 1e-5, absolute: Double = 1e-6,
                                                _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    assertClose([actual], [expected], relative: relative, absolute: absolute, message, file: file, line: line)
}

/// Largest relative difference max|a−b| / max(max|b|, tiny) between two arrays.
public func maximumRelativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "arrays differ in length: \(a.count) vs \(b.count)")
    var diff = 0.0, scale = 1e-12
    for (x, y) in zip(a, b) {
        diff = max(diff, abs(Double(x) - Double(y)))
        scale = max(scale, abs(Double(y)))
    }
    return diff / scale
}
