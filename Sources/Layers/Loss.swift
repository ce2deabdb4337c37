/// Totals of a training loss over one batch.
public struct LossTotals: Sendable, Equatable {
    /// Σ over samples of -log softmax(logits)[label], in Double.
    public var lossSum: Double
    /// Predictions that were right, where the loss defines one (a class's arg-max logit is the label).
    public var correct: Int

    public init(lossSum: Double, correct: Int) {
        self.lossSum = lossSum
        self.correct = correct
    }
}

/// Numerically stable softmax cross-entropy for (B, classes) logits.
///
/// Writes dLogits = (softmax - onehot) · `gradientScale` per sample when `dLogits` is given. Training
/// passes 1 / (global batch count), as a mean-reduced loss would: backward then produces each rank's
/// share of the mean gradient, and the sum over ranks needs no scaling pass of its own.
/// Ties in the arg-max go to the lowest class index, as torch.argmax.
///
/// With `labelSmoothing` ε (nn.CrossEntropyLoss's label_smoothing) the target is (1 − ε)·onehot + ε/classes:
/// the loss is (1 − ε)·(−log p[label]) + ε·mean over classes of (−log p[c]), and dLogits = p − target.
public func softmaxCrossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, classes: Int,
                                dLogits: UnsafeMutablePointer<Float>?, gradientScale: Float = 1, labelSmoothing: Float = 0) -> LossTotals {
    var totals = LossTotals(lossSum: 0, correct: 0)
    for s in 0..<batch {
        let row = logits + s * classes
        let label = Int(labels[s])
        precondition(label >= 0 && label < classes, "label \(label) out of range for \(classes) classes")
        var maximum = row[0], argmax = 0
        for c in 1..<classes where row[c] > maximum { maximum = row[c]; argmax = c }
        var denominator: Float = 0
        for c in 0..<classes { denominator += expf(row[c] - maximum) }
        let logDenominator = logf(denominator)
        // -log p[label] = log Σ exp(z - max) - (z[label] - max)
        let labelLoss = logDenominator - (row[label] - maximum)
        if labelSmoothing == 0 {
            totals.lossSum += Double(labelLoss)
        } else {
            var sum: Float = 0
            for c in 0..<classes { sum += row[c] }
            let meanLoss = logDenominator - (sum / Float(classes) - maximum)
            totals.lossSum += Double((1 - labelSmoothing) * labelLoss + labelSmoothing * meanLoss)
        }
        if argmax == label { totals.correct += 1 }
        if let dLogits {
            let grad = dLogits + s * classes
            let inverse = 1 / denominator
            for c in 0..<classes { grad[c] = expf(row[c] - maximum) * inverse }
            if labelSmoothing == 0 {
                grad[label] -= 1
            } else {
                let floor = labelSmoothing / Float(classes)
                for c in 0..<classes { grad[c] -= floor }
                grad[label] -= 1 - labelSmoothing
            }
            if gradientScale != 1 { for c in 0..<classes { grad[c] *= gradientScale } }
        }
    }
    return totals
}

/// Mean squared error of one output per sample against `targets` (nn.MSELoss): returns Σ (y − t)² in
/// `lossSum`; writes dOutputs = 2 (y − t) · `gradientScale` (training passes 1 / global batch count).
public func meanSquaredError(outputs: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int,
                             dOutputs: UnsafeMutablePointer<Float>?, gradientScale: Float = 1) -> LossTotals {
    var sum = 0.0
    for s in 0..<batch {
        let difference = outputs[s] - targets[s]
        sum += Double(difference) * Double(difference)
        dOutputs?[s] = 2 * difference * gradientScale
    }
    return LossTotals(lossSum: sum, correct: 0)
}

#if canImport(Glibc)
import Glibc
#endif
