import CKernels
import Tensors
import XCTest

final class ElementwiseTests: XCTestCase {
    /// The finiteness scans see a NaN or ±Inf at any position — in the 16-lane body and in the tail —
    /// and the fused scale-and-check (the portable gradient sum's last pass) scales every element once.
    func testFinitenessChecksFindEveryNonFiniteValueAndScaleOnce() {
        for count in [1, 5, 16, 37] {
            let values = (0..<count).map { Float($0) * 3 - 40 }
            var scaled = values
            XCTAssertEqual(distrain_scale_all_finite(&scaled, count, 0.25), 1)
            XCTAssertEqual(scaled, values.map { $0 * 0.25 })
            XCTAssertTrue(allFinite(values, count: count))
            for position in [0, count / 2, count - 1] {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var poisoned = values
                    poisoned[position] = bad
                    XCTAssertFalse(allFinite(poisoned, count: count), "\(bad) at \(position) of \(count)")
                    XCTAssertEqual(distrain_scale_all_finite(&poisoned, count, 0.5), 0, "\(bad) at \(position) of \(count)")
                }
            }
        }
        XCTAssertTrue(allFinite([], count: 0))
        // Finite values whose sum would overflow are still finite one by one.
        XCTAssertTrue(allFinite([Float](repeating: .greatestFiniteMagnitude, count: 40), count: 40))
    }
}
