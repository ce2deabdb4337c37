import DistrainKit
import Foundation
import XCTest
import _TestSupport

/// A kind of task distrain does not ship — multi-label tagging, K independent yes/no targets per sample
/// with a sigmoid cross-entropy (nn.BCEWithLogitsLoss) — and a data source of its own, defined here
/// outside the library through its public protocols only, and trained by the ordinary Trainer.
final class OpenProtocolTests: XCTestCase {
    /// K sigmoid outputs per sample against K 0/1 targets (in `TargetBuffer.values`).
    struct MultiLabelObjective: Objective {
        let labels: Int
        var task: String { "multi-label" }
        var outputShape: [Int] { [labels] }
        var selectionMetric: String { "hamming_accuracy" }
        var targetsPerSample: Int { labels }  // the mean is over every label of the batch

        func loss(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int,
                  dOutputs: UnsafeMutablePointer<Float>?, gradientScale: Float) -> LossTotals {
            var sum = 0.0, correct = 0
            for i in 0..<(rows * labels) {
                let z = outputs[i], t = targets.values[i]
                // log(1 + e^−|z|) + max(z, 0) − z·t: the stable form of BCE with logits.
                sum += Double(log1pf(expf(-abs(z))) + max(z, 0) - z * t)
                if (z > 0) == (t > 0.5) { correct += 1 }
                dOutputs?[i] = (1 / (1 + expf(-z)) - t) * gradientScale
            }
            return LossTotals(lossSum: sum, correct: correct)
        }

        func trainingMetrics(lossSum: Double, correct: Double, targetCount: Double) -> [Metric] {
            let n = max(targetCount, 1)
            return [Metric("loss", lossSum / n), Metric("hamming_accuracy", correct / n, higherIsBetter: true, isFraction: true)]
        }

        var evaluationSumCount: Int { 3 }  // Σ loss, correct labels, labels scored

        func accumulate(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int, into sums: UnsafeMutablePointer<Double>) {
            let totals = loss(outputs: outputs, targets: targets, rows: rows, dOutputs: nil, gradientScale: 1)
            sums[0] += totals.lossSum
            sums[1] += Double(totals.correct)
            sums[2] += Double(rows * labels)
        }

        func evaluation(sums: [Double]) -> EvaluationResult {
            let n = max(sums[2], 1)
            return EvaluationResult(lossSum: sums[0], sampleCount: Int64(sums[2]) / Int64(labels),
                                    metrics: [Metric("loss", sums[0] / n),
                                              Metric("hamming_accuracy", sums[1] / n, higherIsBetter: true, isFraction: true)])
        }
    }

    /// D random features per sample; label k is on when feature k exceeds feature k + 1 (a learnable rule).
    struct TaggedVectors: Dataset {
        let features: [Float]  // (count, D)
        let width: Int, labels: Int

        init(count: Int, width: Int = 6, labels: Int = 3, seed: UInt64) {
            var generator = SeededGenerator(seed: seed)
            features = (0..<(count * width)).map { _ in Float(generator.next() % 2001) / 1000 - 1 }
            self.width = width
            self.labels = labels
        }

        private init(features: [Float], width: Int, labels: Int) {
            self.features = features
            self.width = width
            self.labels = labels
        }

        var count: Int { features.count / width }
        var sampleShape: [Int] { [width, 1, 1] }
        var targetKind: TargetKind { .values((0..<labels).map { "tag\($0)" }) }
        var stratificationLabels: [UInt8]? { nil }
        var gatherScratchBytes: Int { 0 }
        var checkpointMetadata: [String: String] { ["input_shape": "\(width)x1x1"] }

        func gather(_ indices: UnsafeBufferPointer<Int32>, into inputs: UnsafeMutablePointer<Float>,
                    targets: TargetBuffer, augmentation: AugmentationKey?) throws {
            for (row, index) in indices.enumerated() {
                let sample = Int(index) * width
                for j in 0..<width { inputs[row * width + j] = features[sample + j] }
                for k in 0..<labels { targets.values[row * labels + k] = features[sample + k] > features[sample + k + 1] ? 1 : 0 }
            }
        }

        func firstSamples(_ limit: Int?) -> any Dataset {
            guard let limit, limit < count else { return self }
            return TaggedVectors(features: Array(features[0..<(limit * width)]), width: width, labels: labels)
        }

        func samples(at indices: [Int]) throws -> any Dataset {
            TaggedVectors(features: indices.flatMap { features[($0 * width)..<(($0 + 1) * width)] }, width: width, labels: labels)
        }

        func checksum() throws -> UInt64 {
            features.reduce(UInt64(0xCBF2_9CE4_8422_2325)) { ($0 ^ UInt64($1.bitPattern)) &* 0x100_0000_01B3 }
        }
    }

    private func train(world: Int, steps epochs: Int) throws -> (parameters: [Float], result: EvaluationResult) {
        // 41 samples in batches of 8: the last batch has one sample, so ranks 1… have an empty share.
        let data = TrainingData(name: "tagged", train: TaggedVectors(count: 41, seed: 1), test: TaggedVectors(count: 60, seed: 2))
        let objective = MultiLabelObjective(labels: 3)
        let configuration = TrainingConfiguration(dataset: "tagged", epochs: epochs, globalBatchSize: 8, optimizer: .sgd,
                                                  learningRate: 0.1)
        return try InProcessGroup(size: world, timeoutSeconds: 120).run { communicator in
            let model = Sequential(inputShape: [6, 1, 1], layers: [
                Flatten(inputShape: [6, 1, 1]),
                Linear(inputFeatures: 6, outputFeatures: 16, activation: .relu, name: "1"),
                Linear(inputFeatures: 16, outputFeatures: 3, name: "3"),
            ])
            model.parameters.initializeKaimingUniform(seed: 3)
            let trainer = try Trainer(model: model, optimizer: SGD(parameterCount: model.parameters.count), data: data,
                                      objective: objective, configuration: configuration, communicator: communicator)
            let result = try trainer.run()
            return (Array(model.parameters.values), result)
        }[0]
    }

    func testANewObjectiveAndDataSourceTrainOnThreeRanksAsOnOne() throws {
        let one = try train(world: 1, steps: 6), three = try train(world: 3, steps: 6)  // 6 epochs × 6 steps
        assertClose(three.parameters, one.parameters, relative: 1e-5, "parameters")
        XCTAssertEqual(three.result.metrics.map(\.name), ["loss", "hamming_accuracy"])
        XCTAssertEqual(three.result.metric("hamming_accuracy")!, one.result.metric("hamming_accuracy")!, accuracy: 1e-12)
        XCTAssertEqual(three.result.sampleCount, 60)
        let longer = try train(world: 1, steps: 40)
        XCTAssertGreaterThan(longer.result.metric("hamming_accuracy")!, 0.8, "the rule is learned (chance 0.5)")
        XCTAssertLessThan(longer.result.meanLoss, one.result.meanLoss)
    }
}
