import Foundation
import Training

/// A model-selection request that cannot be carried out (flags that contradict earlier results, …).
public struct SelectionError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// One fold's outcome, written to `fold-k/result.json` when the fold finishes.
public struct FoldResult: Codable, Sendable, Equatable {
    public var fold: Int
    public var validationAccuracy: Double
    public var validationLoss: Double
    public var epochs: Int
    public var stoppedEarly: Bool
    public var configuration: TrainingConfiguration

    public init(fold: Int, validationAccuracy: Double, validationLoss: Double, epochs: Int, stoppedEarly: Bool,
                configuration: TrainingConfiguration) {
        self.fold = fold
        self.validationAccuracy = validationAccuracy
        self.validationLoss = validationLoss
        self.epochs = epochs
        self.stoppedEarly = stoppedEarly
        self.configuration = configuration
    }
}

/// Mean and sample standard deviation (n − 1) of some values.
public func meanAndStandardDeviation(_ values: [Double]) -> (mean: Double, standardDeviation: Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let mean = values.reduce(0, +) / Double(values.count)
    guard values.count > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    return (mean, variance.squareRoot())
}

/// All folds of a cross-validation: per fold and mean ± sd.
public struct CrossValidationSummary: Codable, Sendable {
    public var folds: [FoldResult]
    public var meanValidationAccuracy: Double
    public var standardDeviationValidationAccuracy: Double
    public var meanValidationLoss: Double
    public var standardDeviationValidationLoss: Double

    public init(folds: [FoldResult]) {
        self.folds = folds
        (meanValidationAccuracy, standardDeviationValidationAccuracy) = meanAndStandardDeviation(folds.map(\.validationAccuracy))
        (meanValidationLoss, standardDeviationValidationLoss) = meanAndStandardDeviation(folds.map(\.validationLoss))
    }

    /// The printed table.
    public var table: [String] {
        var lines = ["fold  val accuracy  val loss  epochs"]
        for f in folds {
            lines.append(String(format: "%-5d %10.2f%%  %8.4f  %6d", f.fold, 100 * f.validationAccuracy, f.validationLoss, f.epochs)
                         + (f.stoppedEarly ? " (early stop)" : ""))
        }
        lines.append(String(format: "mean  %10.2f%% ± %.2f  %8.4f ± %.4f  (± one sample standard deviation over %d folds)",
                            100 * meanValidationAccuracy, 100 * standardDeviationValidationAccuracy,
                            meanValidationLoss, standardDeviationValidationLoss, folds.count))
        return lines
    }
}
