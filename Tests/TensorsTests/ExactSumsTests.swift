import Tensors
import XCTest

/// `ExactSums`: the sum's bits do not depend on the order or grouping of its terms, and it is the exact sum
/// rounded once.
final class ExactSumsTests: XCTestCase {
    /// Terms k·2^-20 (k a random integer): their exact sum is an Int64 times 2^-20, whose correct rounding is
    /// `Float(Int64)` — the exact sums give exactly that, in any order and split over any number of "ranks"
    /// (their limbs added as integers, as an allreduce does).
    func testSumsInAnyOrderAndGroupingAreTheExactSumRoundedOnce() {
        var generator = SystemRandomNumberGenerator()
        let values = 7, termsPerValue = 301
        var terms: [[Float]] = []
        var exact = [Int64](repeating: 0, count: values)
        for v in 0..<values {
            terms.append((0..<termsPerValue).map { _ in
                let k = Int64.random(in: -(1 << 23)...(1 << 23), using: &generator) << Int64.random(in: 0...20, using: &generator)
                exact[v] += k
                return Float(k) * 0x1p-20  // exact: k has at most 24 significant bits
            })
        }
        let expected = exact.map { Float($0) * 0x1p-20 }
        for ranks in [1, 2, 3, 5] {
            let shares = (0..<ranks).map { _ in ExactSums(count: values) }
            let order = (0..<termsPerValue).shuffled(using: &generator)
            for (position, t) in order.enumerated() {
                let share = shares[position * ranks / termsPerValue]
                for v in 0..<values { terms[v].withUnsafeBufferPointer { share.add($0.baseAddress! + t, count: 1, at: v) } }
            }
            for other in shares.dropFirst() {
                for i in 0..<shares[0].storage.count { shares[0].storage[i] += other.storage[i] }
            }
            var result = [Float](repeating: 0, count: values)
            shares[0].round(into: &result)
            XCTAssertEqual(result, expected, "\(ranks) ranks")
        }
    }

    /// Where float and double sums lose a small term next to a large one, the exact sum keeps it; terms below
    /// 2^-80 are dropped; a value of 0 rounds to +0.
    func testSmallTermsNextToLargeOnesAreKept() {
        let sums = ExactSums(count: 3)
        for term in [1.0, 0x1p-70, -1.0] { sums.add(term, at: 0) }
        for term in [0x1p39, 0x1p-79, -0x1p39, 0x1p-79] { sums.add(term, at: 1) }
        sums.add(0x1p-81, at: 2)
        var doubles = [Double](repeating: -1, count: 3)
        sums.round(into: &doubles)
        XCTAssertEqual(doubles, [0x1p-70, 0x1p-78, 0])
        XCTAssertEqual(doubles[2].sign, .plus)
    }

    /// Terms of 2^40 and beyond, Inf and NaN are counted, not added, and the sum rounds to NaN everywhere.
    func testOutOfRangeTermsMakeTheSumNaN() {
        for bad in [0x1p40, -0x1p41, Double.infinity, -.infinity, .nan] {
            let sums = ExactSums(count: 2)
            sums.add(1.5, at: 0)
            sums.add(bad, at: 1)
            XCTAssertEqual(sums.outOfRangeTerms, 1, "\(bad)")
            var floats: [Float] = [0, 0]
            sums.round(into: &floats)
            XCTAssertTrue(floats.allSatisfy(\.isNaN), "\(bad)")
        }
        // 0·NaN and 0·Inf are NaN in an outer product too (a zero row is skipped, but not silently past them).
        for bad in [Float.nan, .infinity] {
            let outer = ExactSums(count: 4)
            outer.addOuterProduct([0, 0], rows: 2, [1, bad], columns: 2, at: 0)
            XCTAssertEqual(outer.outOfRangeTerms, 2, "\(bad)")
        }
        let largest = ExactSums(count: 1)
        largest.add(0x1p40.nextDown, at: 0)
        largest.add(0x1p40.nextDown, at: 0)
        XCTAssertEqual(largest.outOfRangeTerms, 0)
        var twice: [Double] = [0]
        largest.round(into: &twice)
        XCTAssertEqual(twice[0], 2 * 0x1p40.nextDown)
    }

    /// The outer product adds a[i]·b[j], each product exact: equal to adding the products one by one in double.
    func testOuterProductAddsEveryProductExactly() {
        let a: [Float] = [0.1, -3, 0, 7e-5], b: [Float] = [1.25, -0.3, 1e6]
        let outer = ExactSums(count: 12), single = ExactSums(count: 12)
        outer.addOuterProduct(a, rows: 4, b, columns: 3, at: 0)
        outer.addOuterProduct(a, rows: 4, b, columns: 3, at: 0)
        for i in 0..<4 {
            for j in 0..<3 {
                single.add(Double(a[i]) * Double(b[j]), at: i * 3 + j)
                single.add(Double(a[i]) * Double(b[j]), at: i * 3 + j)
            }
        }
        XCTAssertEqual(Array(outer.storage), Array(single.storage))
        var result = [Double](repeating: 0, count: 12)
        outer.round(into: &result)
        XCTAssertEqual(result[1], 2 * Double(a[0]) * Double(b[1]))
        XCTAssertEqual(result[8], 2e6 * 0)
    }

    /// Negative sums, and sums whose carries cross every limb, round to the right value.
    func testCarriesAndSignsRoundCorrectly() {
        let sums = ExactSums(count: 2)
        for _ in 0..<1000 { sums.add(-0x1p-50 * 3, at: 0) }
        for _ in 0..<4096 { sums.add(0x1p-48 - 0x1p-80, at: 1) }
        var result: [Double] = [0, 0]
        sums.round(into: &result)
        XCTAssertEqual(result[0], -3000 * 0x1p-50)
        XCTAssertEqual(result[1], 4096 * (0x1p-48 - 0x1p-80))
    }
}
