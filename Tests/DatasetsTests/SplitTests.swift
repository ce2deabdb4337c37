import XCTest
@testable import Datasets

final class SplitTests: XCTestCase {
    /// 3 classes of 10, 20 and 7 samples, interleaved.
    private let labels: [UInt8] = (0..<37).map { i in i < 30 ? UInt8(i % 3 == 0 ? 0 : (i % 3 == 1 ? 1 : 1)) : 2 }
    private var names: [String] { ["a", "b", "c"] }

    func testHoldOutIsStratifiedDeterministicAndDisjoint() throws {
        let counts = [0, 1, 2].map { c in labels.filter { $0 == c }.count }  // 10, 20, 7
        let split = try StratifiedSplit.holdOut(labels: labels, classNames: names, fraction: 0.2, seed: 5)
        XCTAssertEqual(Set(split.train).intersection(split.validation), [])
        XCTAssertEqual(Set(split.train + split.validation), Set(0..<37))
        for c in 0..<3 {
            let held = split.validation.filter { labels[$0] == UInt8(c) }.count
            XCTAssertEqual(held, Int((0.2 * Double(counts[c])).rounded()), "class \(c): round(0.2 × \(counts[c]))")
        }
        XCTAssertEqual(try StratifiedSplit.holdOut(labels: labels, classNames: names, fraction: 0.2, seed: 5).validation, split.validation)
        XCTAssertNotEqual(try StratifiedSplit.holdOut(labels: labels, classNames: names, fraction: 0.2, seed: 6).validation, split.validation)
        XCTAssertEqual(split.validation, split.validation.sorted())
    }

    func testASplitThatEmptiesAClassIsRefusedNamingIt() {
        XCTAssertThrowsError(try StratifiedSplit.holdOut(labels: labels, classNames: names, fraction: 0.05, seed: 1)) {
            XCTAssertTrue("\($0)".contains("class 'c' (7 samples) with no validation samples"), "\($0)")
        }
        XCTAssertThrowsError(try StratifiedSplit.folds(labels: labels, classNames: names, k: 8, seed: 1)) {
            XCTAssertTrue("\($0)".contains("class 'c' has 7"), "\($0)")
        }
    }

    func testFoldsAreDisjointCoverEverythingAndAreStratified() throws {
        let folds = try StratifiedSplit.folds(labels: labels, classNames: names, k: 5, seed: 3)
        XCTAssertEqual(folds.flatMap { $0 }.sorted(), Array(0..<37))
        XCTAssertEqual(Set(folds.flatMap { $0 }).count, 37, "no sample in two folds")
        for fold in folds {
            XCTAssertEqual(fold.filter { labels[$0] == 0 }.count, 2)            // 10 / 5
            XCTAssertEqual(fold.filter { labels[$0] == 1 }.count, 4)            // 20 / 5
            XCTAssertTrue([1, 2].contains(fold.filter { labels[$0] == 2 }.count))  // 7 / 5
        }
    }

    func testSubsetCopiesTheChosenSamples() throws {
        let data = ImageDataset(shape: [1, 1, 2], pixels: [0, 1, 10, 11, 20, 21], labels: [0, 1, 2], classNames: names)
        let subset = try data.subset([2, 0])
        XCTAssertEqual(try subset.allPixels(), [20, 21, 0, 1])
        XCTAssertEqual(subset.labels, [2, 0])
    }
}
