import Foundation
import Datasets
import Layers

/// A language model's objective: softmax cross-entropy of each position's logits over the vocabulary
/// against the next token, averaged over every position of the global batch (nanoGPT's and llm.c's
/// loss). Metrics: loss (nats per token), perplexity, next-token accuracy and, when the data says how
/// many bytes of text its tokens encode, bits per byte — comparable across tokenizers.
public struct NextTokenObjective: Objective {
    public let vocabularySize: Int
    public let positions: Int
    /// UTF-8 bytes of text per token of the evaluated split (nil when unknown).
    public let bytesPerToken: Double?

    public init(vocabularySize: Int, positions: Int, bytesPerToken: Double? = nil) {
        precondition(vocabularySize >= 1 && positions >= 1, "next-token prediction needs a vocabulary and positions")
        self.vocabularySize = vocabularySize
        self.positions = positions
        self.bytesPerToken = bytesPerToken
    }

    public var judgesAnswers: Bool { true }

    public var task: String { "next-token" }
    public var outputShape: [Int] { [positions, vocabularySize] }
    public var selectionMetric: String { "loss" }
    public var checkpointMetadata: [String: String] {
        ["task": "next-token", "vocab_size": "\(vocabularySize)", "context": "\(positions)"]
    }

    public func loss(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int,
                     dOutputs: UnsafeMutablePointer<Float>?, gradientScale: Float) -> LossTotals {
        softmaxCrossEntropy(logits: outputs, labels: targets.indices, batch: rows * positions, classes: vocabularySize,
                            dLogits: dOutputs, gradientScale: gradientScale)
    }

    public func trainingMetrics(lossSum: Double, correct: Double, targetCount: Double) -> [Metric] {
        let loss = targetCount > 0 ? lossSum / targetCount : 0
        return [Metric("loss", loss), Metric("accuracy", targetCount > 0 ? correct / targetCount : 0,
                                             higherIsBetter: true, isFraction: true)]
    }

    /// [Σ loss, correct next tokens, tokens].
    public var evaluationSumCount: Int { 3 }

    public func accumulate(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int,
                           into sums: UnsafeMutablePointer<Double>) {
        let totals = softmaxCrossEntropy(logits: outputs, labels: targets.indices, batch: rows * positions,
                                         classes: vocabularySize, dLogits: nil)
        sums[0] += totals.lossSum
        sums[1] += Double(totals.correct)
        sums[2] += Double(rows * positions)
    }

    public func evaluation(sums: [Double]) -> EvaluationResult {
        let tokens = sums[2], loss = tokens > 0 ? sums[0] / tokens : 0
        var metrics = [Metric("loss", loss), Metric("perplexity", exp(min(loss, 700))),
                       Metric("accuracy", tokens > 0 ? sums[1] / tokens : 0, higherIsBetter: true, isFraction: true)]
        if let bytesPerToken, bytesPerToken > 0 {
            metrics.append(Metric("bits_per_byte", loss / log(2) / bytesPerToken))
        }
        var result = EvaluationResult(lossSum: sums[0], sampleCount: Int64(tokens), metrics: metrics)
        result.countUnit = "positions"
        return result
    }
}
