import CKernels
import Tensors
import XCTest

final class ElementwiseTests: XCTestCase {
    /// The finiteness scan (the portable gradient sum's last pass) sees a NaN or ±Inf at any position —
    /// in the 16-lane body and in the tail.
    func testFinitenessCheckFindsEveryNonFiniteValue() {
        for count in [1, 5, 16, 37] {
            let values = (0..<count).map { Float($0) * 3 - 40 }
            XCTAssertTrue(allFinite(values, count: count))
            for position in [0, count / 2, count - 1] {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var poisoned = values
                    poisoned[position] = bad
                    XCTAssertFalse(allFinite(poisoned, count: count), "\(bad) at \(position) of \(count)")
                }
            }
        }
        XCTAssertTrue(allFinite([], count: 0))
        // Finite values whose sum would overflow are still finite one by one.
        XCTAssertTrue(allFinite([Float](repeating: .greatestFiniteMagnitude, count: 40), count: 40))
    }
}
