import XCTest
@testable import Datasets
import _TestSupport

final class BatchPlanTests: XCTestCase {
    /// Every sample is seen exactly once per epoch, across all ranks, whatever the world size,
    /// even when neither the batch nor the dataset divide evenly.
    func testShardsCoverEachSampleOnceAndMatchTheGlobalBatch() {
        let samples = 103, batch = 10
        for world in 1...4 {
            let plans = (0..<world).map { BatchPlan(sampleCount: samples, globalBatchSize: batch, worldSize: world, rank: $0, seed: 5, epoch: 2) }
            var seen: [Int32] = []
            for step in 0..<plans[0].batchCount {
                var stepSamples: [Int32] = []
                for plan in plans {
                    let local = plan.localRange(batch: step)
                    XCTAssertLessThanOrEqual(local.count, plan.largestLocalBatch)
                    stepSamples += plan.order[local]
                }
                // Rank shares concatenated in rank order are exactly the global batch.
                XCTAssertEqual(stepSamples, Array(plans[0].order[plans[0].globalRange(batch: step)]))
                seen += stepSamples
            }
            XCTAssertEqual(seen.sorted(), (0..<Int32(samples)).map { $0 }, "world \(world)")
            XCTAssertEqual(plans[0].batchCount, 11)
        }
    }

    func testPermutationDependsOnSeedAndEpochOnly() {
        let a = BatchPlan(sampleCount: 50, globalBatchSize: 8, worldSize: 1, rank: 0, seed: 1, epoch: 0)
        let b = BatchPlan(sampleCount: 50, globalBatchSize: 8, worldSize: 3, rank: 2, seed: 1, epoch: 0)
        let c = BatchPlan(sampleCount: 50, globalBatchSize: 8, worldSize: 1, rank: 0, seed: 1, epoch: 1)
        XCTAssertEqual(a.order, b.order)
        XCTAssertNotEqual(a.order, c.order)
        XCTAssertNotEqual(a.order, (0..<50).map { Int32($0) })
    }

    func testShardRangeSizesDifferByAtMostOne() {
        let sizes = (0..<4).map { shardRange(count: 10, parts: 4, part: $0).count }
        XCTAssertEqual(sizes.reduce(0, +), 10)
        XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1)
        XCTAssertEqual(shardRange(count: 2, parts: 4, part: 0).count + shardRange(count: 2, parts: 4, part: 1).count, 1)
    }
}

final class NormalizationTests: XCTestCase {
    func testMeasuredMeanAndStandardDeviationAndGather() throws {
        // Two 1x1x2 images: pixels 0, 255, 255, 255 → mean 0.75, std sqrt(0.75·0.25)
        let data = ImageDataset(shape: [1, 1, 2], pixels: [0, 255, 255, 255], labels: [3, 4], classNames: mnistClassNames)
        let normalization = try Normalization.measured(on: data)
        assertClose(normalization.mean, [0.75])
        assertClose(normalization.standardDeviation, [(0.75 * 0.25).squareRoot()])
        let gatherer = BatchGatherer(dataset: data, normalization: normalization)
        var inputs = [Float](repeating: 0, count: 4)
        var labels = [UInt8](repeating: 0, count: 2)
        let indices: [Int32] = [1, 0]
        try indices.withUnsafeBufferPointer { idx in
            try inputs.withUnsafeMutableBufferPointer { x in
                try labels.withUnsafeMutableBufferPointer { y in try gatherer.gather(indices: idx, into: x.baseAddress!, labels: y.baseAddress!) }
            }
        }
        let s = Float((0.75 * 0.25).squareRoot())
        assertClose(inputs, [0.25 / s, 0.25 / s, -0.75 / s, 0.25 / s])
        XCTAssertEqual(labels, [4, 3])
    }
}
