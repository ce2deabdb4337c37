import XCTest
@testable import Training

/// Buckets for the sum between hosts: whole layers, from the output back, each at least the bucket size
/// but the last; layers without parameters add nothing.
final class GradientBucketTests: XCTestCase {
    func testBucketsAreLayerAlignedFromTheOutputBack() {
        // Layers: Flatten (none), Linear 0..<100, ReLU (none), Linear 100..<130, ReLU, Linear 130..<135.
        let layers = [0..<0, 0..<100, 100..<100, 100..<130, 130..<130, 130..<135]
        let small = GradientSynchronizer.buckets(layers, elements: 20)
        XCTAssertEqual(small.ranges, [100..<135, 0..<100])
        XCTAssertEqual(small.firstLayers, [3, 1], "bucket 0 is complete once layer 3's backward is done")
        let large = GradientSynchronizer.buckets(layers, elements: 1000)
        XCTAssertEqual(large.ranges, [0..<135])
        XCTAssertEqual(large.firstLayers, [1])
        let each = GradientSynchronizer.buckets(layers, elements: 1)
        XCTAssertEqual(each.ranges, [130..<135, 100..<130, 0..<100])
        XCTAssertEqual(GradientSynchronizer.buckets([0..<0], elements: 1).ranges, [])
    }
}
