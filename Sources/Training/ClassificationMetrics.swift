/// Precision, recall and F1 from a confusion matrix (rows: true class, columns: predicted class).
public struct ClassificationMetrics: Sendable, Equatable {
    /// classes × classes counts, row-major.
    public let confusion: [Int64]
    public let classCount: Int

    public init(confusion: [Int64], classCount: Int) {
        precondition(confusion.count == classCount * classCount, "confusion matrix must be \(classCount)x\(classCount)")
        self.confusion = confusion
        self.classCount = classCount
    }

    public func count(trueClass: Int, predicted: Int) -> Int64 { confusion[trueClass * classCount + predicted] }

    /// Samples counted.
    public var total: Int64 { confusion.reduce(0, +) }
    /// Correct predictions (the diagonal).
    public var correct: Int64 { (0..<classCount).reduce(0) { $0 + count(trueClass: $1, predicted: $1) } }
    /// correct / total.
    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    /// TP / (TP + FP) of one class; 0 when it was never predicted (scikit-learn's zero_division=0).
    public func precision(of c: Int) -> Double {
        let predicted = (0..<classCount).reduce(Int64(0)) { $0 + count(trueClass: $1, predicted: c) }
        return predicted == 0 ? 0 : Double(count(trueClass: c, predicted: c)) / Double(predicted)
    }

    /// TP / (TP + FN) of one class; 0 when the class has no samples.
    public func recall(of c: Int) -> Double {
        let actual = (0..<classCount).reduce(Int64(0)) { $0 + count(trueClass: c, predicted: $1) }
        return actual == 0 ? 0 : Double(count(trueClass: c, predicted: c)) / Double(actual)
    }

    /// Harmonic mean of the class's precision and recall; 0 when both are 0.
    public func f1(of c: Int) -> Double {
        let p = precision(of: c), r = recall(of: c)
        return p + r == 0 ? 0 : 2 * p * r / (p + r)
    }

    /// Samples whose true class is `c`.
    public func support(of c: Int) -> Int64 {
        (0..<classCount).reduce(Int64(0)) { $0 + count(trueClass: c, predicted: $1) }
    }

    /// Unweighted means over classes.
    public var precisionMacro: Double { mean { precision(of: $0) } }
    public var recallMacro: Double { mean { recall(of: $0) } }
    public var f1Macro: Double { mean { f1(of: $0) } }
    /// Micro averages equal the accuracy for single-label classification.
    public var precisionMicro: Double { accuracy }
    public var recallMicro: Double { accuracy }
    public var f1Micro: Double { accuracy }

    private func mean(_ value: (Int) -> Double) -> Double {
        classCount == 0 ? 0 : (0..<classCount).map(value).reduce(0, +) / Double(classCount)
    }

    /// The confusion matrix as rows of counts.
    public var rows: [[Int64]] {
        (0..<classCount).map { Array(confusion[($0 * classCount)..<(($0 + 1) * classCount)]) }
    }
}
