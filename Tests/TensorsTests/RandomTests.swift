import Tensors
import XCTest

final class RandomTests: XCTestCase {
    func testSameSeedAndKeysGiveTheSameStream() {
        var a = SeededGenerator(seed: 9, keys: 1, 2)
        var b = SeededGenerator(seed: 9, keys: 1, 2)
        var c = SeededGenerator(seed: 9, keys: 2, 1)
        let sa = (0..<5).map { _ in a.next() }, sb = (0..<5).map { _ in b.next() }, sc = (0..<5).map { _ in c.next() }
        XCTAssertEqual(sa, sb)
        XCTAssertNotEqual(sa, sc)
    }

    func testPermutationIsAPermutationAndDependsOnEpoch() {
        let p0 = seededPermutation(count: 1000, seed: 1, epoch: 0)
        let p1 = seededPermutation(count: 1000, seed: 1, epoch: 1)
        XCTAssertEqual(Set(p0).count, 1000)
        XCTAssertEqual(p0.sorted(), (0..<1000).map(Int32.init))
        XCTAssertNotEqual(p0, p1)
        XCTAssertEqual(p0, seededPermutation(count: 1000, seed: 1, epoch: 0))
    }

    func testUniformFloatsStayInRangeWithTheRightMean() {
        var g = SeededGenerator(seed: 5)
        var sum = 0.0
        for _ in 0..<100_000 {
            let x = g.nextFloat(in: -2, 3)
            XCTAssert(x >= -2 && x < 3)
            sum += Double(x)
        }
        XCTAssertEqual(sum / 100_000, 0.5, accuracy: 0.02)
    }

    func testParameterStoreInitializationIsBoundedBySquareRootOfFanIn() {
        let store = ParameterStore(specs: [ParameterSpec(name: "w", shape: [10, 25], fanIn: 25)])
        store.initializeKaimingUniform(seed: 1)
        let values = Array(store.values)
        XCTAssert(values.allSatisfy { abs($0) <= 0.2 })
        XCTAssertGreaterThan(values.map { abs($0) }.max()!, 0.18)
        XCTAssertEqual(store.slice(named: "w")?.shape, [10, 25])
    }

    /// `--shard parameters` initializes only a rank's slice: every value in it is the whole initialization's
    /// (uniform, normal — drawn in pairs, so slices that start or end inside a pair — and constant tensors), and
    /// every value outside it is never written.
    func testInitializingASliceWritesTheWholeInitializationsValuesThereOnly() {
        let specs = [ParameterSpec(name: "a", shape: [7, 3], fanIn: 3),
                     ParameterSpec(name: "n", shape: [13], initializer: .normal(standardDeviation: 0.02)),
                     ParameterSpec(name: "c", shape: [5], constant: 1),
                     ParameterSpec(name: "m", shape: [4, 4], initializer: .normal(standardDeviation: 1))]
        let whole = ParameterStore(specs: specs)
        whole.initializeKaimingUniform(seed: 9)
        for (lower, upper) in [(0, 55), (1, 22), (22, 23), (23, 30), (24, 41), (33, 44), (40, 55), (30, 30)] {
            let part = ParameterStore(specs: specs)
            part.initializeKaimingUniform(seed: 9, in: lower..<upper)
            XCTAssertEqual(part.initializedRange, lower..<upper)
            for i in 0..<whole.count {
                XCTAssertEqual(part.values[i], lower..<upper ~= i ? whole.values[i] : 0, "value \(i) of slice \(lower)..<\(upper)")
            }
        }
    }

    /// The array-free three- and four-key initializers give exactly the streams of `init(seed:keys:)`
    /// (dropout masks and augmentation choices, and so resumed runs, depend on it).
    func testFixedKeyInitializersMatchTheKeyList() {
        var listed3 = SeededGenerator(seed: 42, keys: 0xA46, 3, 12_345)
        var fixed3 = SeededGenerator(seed: 42, 0xA46, 3, 12_345)
        var listed4 = SeededGenerator(seed: 7, keys: 0x4452_4F50, 12, 0, 99)
        var fixed4 = SeededGenerator(seed: 7, 0x4452_4F50, 12, 0, 99)
        for _ in 0..<16 {
            XCTAssertEqual(listed3.next(), fixed3.next())
            XCTAssertEqual(listed4.next(), fixed4.next())
        }
        var other = SeededGenerator(seed: 7, 0x4452_4F50, 12, 0, 98), same = SeededGenerator(seed: 7, 0x4452_4F50, 12, 0, 99)
        XCTAssertNotEqual(same.next(), other.next())
    }
}
