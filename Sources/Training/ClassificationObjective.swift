import Datasets
import Layers

/// Softmax cross-entropy over class logits (nn.CrossEntropyLoss, with label smoothing); metrics loss and
/// accuracy, and at evaluation macro/micro precision, recall and F1 from the confusion matrix.
public struct ClassificationObjective: Objective {
    public let classes: Int
    /// `--label-smoothing ε` of the training loss (evaluation scores the plain cross-entropy).
    public let labelSmoothing: Float
    /// Classes up to which evaluation counts the whole confusion matrix (classes² sums); beyond it
    /// (a vocabulary, say) only the correct predictions.
    public static let confusionLimit = 256

    public init(classes: Int, labelSmoothing: Float = 0) {
        precondition(classes >= 1, "a classification needs classes, got \(classes)")
        self.classes = classes
        self.labelSmoothing = labelSmoothing
    }

    public var task: String { "classification" }
    public var outputShape: [Int] { [classes] }
    public var selectionMetric: String { "accuracy" }
    public var judgesAnswers: Bool { true }
    public var presentationKeys: (name: String, value: String) { ("class", "probability") }
    var keepsConfusion: Bool { classes <= Self.confusionLimit }

    /// The `topK` most probable classes (softmax of the logits), as `distrain predict` prints them.
    public func present(_ outputs: UnsafePointer<Float>, names: [String], topK: Int) -> [(name: String, value: Float)] {
        var probabilities = [Float](repeating: 0, count: classes)
        probabilities.withUnsafeMutableBufferPointer { softmaxRows(outputs, rows: 1, classes: classes, into: $0.baseAddress!) }
        return probabilities.withUnsafeBufferPointer { row in
            rankedOutputs(row.baseAddress!, count: classes, topK: topK).map { (names[$0], row[$0]) }
        }
    }

    public func loss(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int,
                     dOutputs: UnsafeMutablePointer<Float>?, gradientScale: Float) -> LossTotals {
        softmaxCrossEntropy(logits: outputs, labels: targets.indices, batch: rows, classes: classes, dLogits: dOutputs,
                            gradientScale: gradientScale, labelSmoothing: labelSmoothing)
    }

    public func trainingMetrics(lossSum: Double, correct: Double, targetCount: Double) -> [Metric] {
        let n = max(targetCount, 1)
        return [Metric("loss", targetCount > 0 ? lossSum / n : 0),
                Metric("accuracy", targetCount > 0 ? correct / n : 0, higherIsBetter: true, isFraction: true)]
    }

    /// [Σ loss, then the confusion matrix (true class, predicted) — or correct and total beyond the limit].
    public var evaluationSumCount: Int { 1 + (keepsConfusion ? classes * classes : 2) }

    public func accumulate(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int, into sums: UnsafeMutablePointer<Double>) {
        sums[0] += softmaxCrossEntropy(logits: outputs, labels: targets.indices, batch: rows, classes: classes, dLogits: nil).lossSum
        for s in 0..<rows {
            let label = Int(targets.indices[s]), predicted = predictedClass(outputs + s * classes)
            if keepsConfusion {
                sums[1 + label * classes + predicted] += 1
            } else {
                sums[1] += label == predicted ? 1 : 0
                sums[2] += 1
            }
        }
    }

    /// The arg-max of one row of logits (lowest index on ties, as torch.argmax).
    public func predictedClass(_ row: UnsafePointer<Float>) -> Int {
        var maximum = row[0], argmax = 0
        for c in 1..<classes where row[c] > maximum { maximum = row[c]; argmax = c }
        return argmax
    }

    public func evaluation(sums: [Double]) -> EvaluationResult {
        if keepsConfusion {
            let metrics = ClassificationMetrics(confusion: sums[1...].map { Int64($0) }, classCount: classes)
            return EvaluationResult(lossSum: sums[0], sampleCount: metrics.total, objective: self, classification: metrics)
        }
        let total = Int64(sums[2])
        return EvaluationResult(lossSum: sums[0], sampleCount: total,
                                metrics: [Metric("loss", total > 0 ? sums[0] / Double(total) : 0),
                                          Metric("accuracy", total > 0 ? sums[1] / Double(total) : 0,
                                              higherIsBetter: true, isFraction: true)])
    }
}

/// Mean squared error of one output per sample (nn.MSELoss); metrics loss (the MSE), and at evaluation
/// RMSE, MAE and R².
public struct RegressionObjective: Objective {
    public init() {}

    public var task: String { "regression" }
    public var outputShape: [Int] { [1] }
    public var selectionMetric: String { "loss" }
    public var checkpointMetadata: [String: String] { ["task": "regression"] }

    public func loss(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int,
                     dOutputs: UnsafeMutablePointer<Float>?, gradientScale: Float) -> LossTotals {
        meanSquaredError(outputs: outputs, targets: targets.values, batch: rows, dOutputs: dOutputs, gradientScale: gradientScale)
    }

    public func trainingMetrics(lossSum: Double, correct: Double, targetCount: Double) -> [Metric] {
        [Metric("loss", targetCount > 0 ? lossSum / targetCount : 0)]
    }

    /// [Σ (y − t)², Σ |y − t|, Σ t, Σ t², n].
    public var evaluationSumCount: Int { 5 }

    public func accumulate(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int, into sums: UnsafeMutablePointer<Double>) {
        for i in 0..<rows {
            let t = Double(targets.values[i]), error = Double(outputs[i]) - t
            sums[0] += error * error
            sums[1] += abs(error)
            sums[2] += t
            sums[3] += t * t
            sums[4] += 1
        }
    }

    public func evaluation(sums: [Double]) -> EvaluationResult {
        let count = Int(sums[4])
        let metrics = RegressionMetrics(squaredErrors: sums[0], absoluteErrors: sums[1], targetSum: sums[2],
                                        targetSquares: sums[3], count: count)
        return EvaluationResult(lossSum: sums[0], sampleCount: Int64(count), regression: metrics)
    }
}
