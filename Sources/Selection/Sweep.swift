import Foundation
import Tensors

/// The values a swept flag takes: a list (grid search, or chosen from in random search) or a numeric
/// range (random search; log-uniform when both ends are positive).
public enum SweepValues: Sendable, Equatable {
    case list([String])
    case range(low: Double, high: Double, integer: Bool)
}

/// A training command line whose flag values may be lists (`--lr 3e-4,1e-3,3e-3`) or ranges
/// (`--lr 1e-4:1e-2`), expanded into one ordinary command line per trial.
public struct SweepSpecification: Sendable {
    /// The dataset (the command line's first word).
    public let dataset: String
    /// Flags every trial gets as written, in order.
    public let fixed: [String]
    /// The swept flags in command-line order, each with its values.
    public let swept: [(flag: String, values: SweepValues)]

    /// Parses "DATASET --flag value --switch --flag a,b,c --flag low:high …".
    public init(arguments: [String]) throws {
        guard let dataset = arguments.first, !dataset.hasPrefix("-") else {
            throw SelectionError(message: "sweep needs a training command after --: a dataset name, then its flags (e.g. -- fashion-mnist --lr 3e-4,1e-3)")
        }
        var fixed: [String] = [], swept: [(String, SweepValues)] = []
        var index = 1
        while index < arguments.count {
            let flag = arguments[index]
            guard flag.hasPrefix("--") else { throw SelectionError(message: "sweep: '\(flag)' is not a flag; write --name value") }
            let value = index + 1 < arguments.count && !arguments[index + 1].hasPrefix("--") ? arguments[index + 1] : nil
            index += value == nil ? 1 : 2
            guard let value else { fixed.append(flag); continue }
            if let values = try Self.values(of: value, flag: flag) {
                if swept.contains(where: { $0.0 == flag }) { throw SelectionError(message: "sweep: \(flag) is swept twice") }
                swept.append((flag, values))
            } else {
                fixed += [flag, value]
            }
        }
        self.dataset = dataset
        self.fixed = fixed
        self.swept = swept
    }

    /// A list or a range, or nil for a single value.
    static func values(of text: String, flag: String) throws -> SweepValues? {
        if text.contains(",") {
            let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !items.contains(where: \.isEmpty) else { throw SelectionError(message: "sweep: \(flag) \(text) has an empty value") }
            return .list(items)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        guard let low = Double(parts[0]), let high = Double(parts[1]), low.isFinite, high.isFinite, low < high else {
            throw SelectionError(message: "sweep: \(flag) \(text) is not a range low:high with low < high")
        }
        let integer = !parts.joined().contains(where: { ".eE".contains($0) })
        return .range(low: low, high: high, integer: integer)
    }

    /// Each trial's swept (flag, value) pairs: the whole grid in order (the first flag varies slowest), or
    /// with `randomTrials` that many random draws, seeded, log-uniform over positive ranges.
    public func trials(randomTrials: Int?, seed: UInt64) throws -> [[(flag: String, value: String)]] {
        guard let count = randomTrials else {
            var grid: [[(String, String)]] = [[]]
            for (flag, values) in swept {
                guard case let .list(items) = values else {
                    throw SelectionError(message: "sweep: \(flag) is a range; ranges need --trials N (random search)")
                }
                grid = grid.flatMap { prefix in items.map { prefix + [(flag, $0)] } }
            }
            return grid
        }
        return (0..<count).map { trial in
            swept.enumerated().map { position, entry -> (String, String) in
                var generator = SeededGenerator(seed: seed, keys: 0x5357_4550, UInt64(trial), UInt64(position))
                switch entry.values {
                case let .list(items):
                    return (entry.flag, items[Int(generator.next() % UInt64(items.count))])
                case let .range(low, high, integer):
                    let u = Double(generator.next() >> 11) / Double(1 << 53)
                    let value = low > 0 ? exp(log(low) + u * (log(high) - log(low))) : low + u * (high - low)
                    return (entry.flag, integer ? String(Int(value.rounded())) : String(format: "%.3g", value))
                }
            }
        }
    }

    /// The full training command line of a trial: dataset, fixed flags, then the trial's values.
    public func arguments(for trial: [(flag: String, value: String)]) -> [String] {
        [dataset] + fixed + trial.flatMap { [$0.flag, $0.value] }
    }
}

/// One trial's outcome, written to `trial-NNN/result.json` when it ends.
public struct TrialResult: Codable, Sendable {
    public var trial: Int
    /// The swept values, "--lr 0.001 --batch-size 64".
    public var values: String
    /// The trial's whole training command line.
    public var arguments: [String]
    /// "ok", or why the trial failed (a NaN stop): a failed trial ranks last.
    public var status: String
    /// The monitored metric's best value (val_loss or val_accuracy) and its epoch.
    public var monitor: String
    public var bestValue: Double?
    public var bestEpoch: Int
    public var finalValidationAccuracy: Double?
    public var finalValidationLoss: Double?
    /// Scored once, at the end; shown, never used to rank.
    public var testAccuracy: Double?
    public var seconds: Double

    public init(trial: Int, values: String, arguments: [String], status: String, monitor: String, bestValue: Double?,
                bestEpoch: Int, finalValidationAccuracy: Double?, finalValidationLoss: Double?, testAccuracy: Double?, seconds: Double) {
        self.trial = trial
        self.values = values
        self.arguments = arguments
        self.status = status
        self.monitor = monitor
        self.bestValue = bestValue
        self.bestEpoch = bestEpoch
        self.finalValidationAccuracy = finalValidationAccuracy
        self.finalValidationLoss = finalValidationLoss
        self.testAccuracy = testAccuracy
        self.seconds = seconds
    }
}

/// Trials best first by their monitored validation metric (lower val_loss, higher val_accuracy); failed
/// trials last.
public func rankTrials(_ trials: [TrialResult]) -> [TrialResult] {
    trials.sorted { a, b in
        switch (a.bestValue, b.bestValue) {
        case let (x?, y?): return a.monitor == "val_loss" ? x < y : x > y
        case (_?, nil): return true
        case (nil, _?): return false
        case (nil, nil): return a.trial < b.trial
        }
    }
}
