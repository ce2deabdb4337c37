import Foundation

/// A sweep folder's ranked trials (`summary.json`, written by `distrain sweep`).
public struct SweepHistory: Sendable {
    public struct Trial: Sendable {
        public var number: Int
        /// The swept values in order: [("--lr", "0.001"), ("--batch-size", "64")].
        public var values: [(flag: String, value: String)]
        public var best: Double?
        public var testAccuracy: Double?
        public var status: String
    }
    public var name: String
    public var monitor: String
    public var trials: [Trial]
}

/// A cross-validation folder's folds (`kfold.json`, written by `--kfold`).
public struct CrossValidationHistory: Sendable {
    public var name: String
    public var accuracies: [Double]
    public var mean: Double
    public var standardDeviation: Double
}

/// A pruning folder's sparsity/accuracy curve (`pruning.json`, written by `distrain prune`).
public struct PruningHistory: Sendable {
    public struct Point: Sendable {
        public var sparsity: Double
        public var before: Double
        public var pruned: Double
        public var finetuned: Double
    }
    public var name: String
    public var points: [Point]
}

/// What a report input holds.
public enum ReportInput: Sendable {
    case runs([RunHistory])
    case sweep(SweepHistory)
    case crossValidation(CrossValidationHistory)
    case pruning(PruningHistory)
}

/// Reads a report input: a sweep folder, a cross-validation folder, or runs (see `readRunHistories`).
public func readReportInput(path: String) throws -> ReportInput {
    let name = (path as NSString).lastPathComponent
    if let data = FileManager.default.contents(atPath: "\(path)/summary.json") {
        guard let rows = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            throw ReportError(message: "\(path)/summary.json is not a sweep summary distrain wrote")
        }
        let trials = rows.map { row -> SweepHistory.Trial in
            let words = (row["values"] as? String ?? "").split(separator: " ").map(String.init)
            let pairs = stride(from: 0, to: words.count - 1, by: 2).map { (flag: words[$0], value: words[$0 + 1]) }
            return .init(number: row["trial"] as? Int ?? 0, values: pairs, best: (row["bestValue"] as? NSNumber)?.doubleValue,
                         testAccuracy: (row["testAccuracy"] as? NSNumber)?.doubleValue, status: row["status"] as? String ?? "?")
        }
        return .sweep(SweepHistory(name: name, monitor: rows.first?["monitor"] as? String ?? "val_loss", trials: trials))
    }
    if let data = FileManager.default.contents(atPath: "\(path)/kfold.json") {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let folds = object["folds"] as? [[String: Any]] else {
            throw ReportError(message: "\(path)/kfold.json is not a cross-validation summary distrain wrote")
        }
        return .crossValidation(CrossValidationHistory(
            name: name, accuracies: folds.compactMap { ($0["validationAccuracy"] as? NSNumber)?.doubleValue },
            mean: (object["meanValidationAccuracy"] as? NSNumber)?.doubleValue ?? .nan,
            standardDeviation: (object["standardDeviationValidationAccuracy"] as? NSNumber)?.doubleValue ?? .nan))
    }
    if let data = FileManager.default.contents(atPath: "\(path)/pruning.json") {
        guard let rows = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            throw ReportError(message: "\(path)/pruning.json is not a pruning summary distrain wrote")
        }
        let points = try rows.map { row -> PruningHistory.Point in
            let numbers = ["sparsity", "accuracyBefore", "accuracyPruned", "accuracyFinetuned"].map { (row[$0] as? NSNumber)?.doubleValue }
            guard numbers.allSatisfy({ $0?.isFinite == true }) else {
                throw ReportError(message: "\(path)/pruning.json has a row without a number for sparsity or accuracy; is it distrain's?")
            }
            return .init(sparsity: numbers[0]!, before: numbers[1]!, pruned: numbers[2]!, finetuned: numbers[3]!)
        }
        return .pruning(PruningHistory(name: name, points: points.sorted { $0.sparsity < $1.sparsity }))
    }
    return .runs(try readRunHistories(path: path))
}

/// Test accuracy against sparsity: the unpruned model, right after pruning, and after fine-tuning.
func pruningSection(_ pruning: PruningHistory) -> String {
    let series = [("before pruning", "", \PruningHistory.Point.before), ("right after pruning", "2 3", \.pruned), ("after fine-tuning", "7 4", \.finetuned)]
        .enumerated().map { index, line in
            Series(label: line.0, color: palette[index % palette.count], dash: line.1,
                   points: pruning.points.map { (x: $0.sparsity, y: $0[keyPath: line.2]) })
        }
    var html = "<h3>\(escaped(pruning.name)): \(pruning.points.count) sparsit\(pruning.points.count == 1 ? "y" : "ies")</h3>"
    html += lineChart(title: "Test accuracy against sparsity", xLabel: "sparsity (fraction of prunable weights set to zero)",
                      yLabel: "test accuracy", series: series, forceLog: false)
    html += "<table><tr><th>sparsity</th><th>before</th><th>pruned</th><th>fine-tuned</th></tr>"
    for point in pruning.points {
        html += "<tr>" + [point.sparsity, point.before, point.pruned, point.finetuned].map { "<td>\(String(format: "%.4f", $0))</td>" }.joined() + "</tr>"
    }
    return html + "</table>"
}

/// The sweep's chart: the best validation value per trial against the first swept flag with numeric values
/// (a log axis when they span decades, as learning rates do), one line per combination of the others.
func sweepSection(_ sweep: SweepHistory) -> String {
    let ok = sweep.trials.filter { $0.best != nil }
    let flags = ok.first?.values.map(\.flag) ?? []
    let numeric = flags.first { flag in
        let values = ok.compactMap { $0.values.first { $0.flag == flag }.flatMap { Double($0.value) } }
        return values.count == ok.count && Set(values).count > 1
    }
    var html = "<h3>\(escaped(sweep.name)): \(sweep.trials.count) trials, ranked by best \(escaped(sweep.monitor)) (validation)</h3>"
    if let x = numeric {
        let groups = Dictionary(grouping: ok) { trial in trial.values.filter { $0.flag != x }.map { "\($0.flag) \($0.value)" }.joined(separator: " ") }
        let series = groups.keys.sorted().enumerated().map { index, key -> Series in
            let points = groups[key]!.map { trial in (Double(trial.values.first { $0.flag == x }!.value)!, trial.best) }.sorted { $0.0 < $1.0 }
            return Series(label: key.isEmpty ? sweep.monitor : key, color: palette[index % palette.count], points: points.map { (x: $0.0, y: $0.1) })
        }
        let xs = ok.compactMap { $0.values.first { $0.flag == x }.flatMap { Double($0.value) } }
        let logX = (xs.min() ?? 0) > 0 && (xs.max() ?? 0) / (xs.min() ?? 1) >= 10
        html += lineChart(title: "Best \(sweep.monitor) per trial", xLabel: x + (logX ? " (log scale)" : ""), yLabel: sweep.monitor,
                          series: series, logX: logX)
    } else {
        html += barChart(title: "Best \(sweep.monitor) per trial", yLabel: sweep.monitor,
                         categories: ok.map { "trial \($0.number)" }, groups: [(sweep.monitor, ok.map { $0.best! })])
    }
    html += "<table><tr><th>rank</th><th>trial</th><th>values</th><th>best \(escaped(sweep.monitor))</th><th>test accuracy (not used to rank)</th></tr>"
    for (rank, trial) in sweep.trials.enumerated() {
        html += "<tr><td>\(rank + 1)</td><td>\(trial.number)</td><td><code>\(escaped(trial.values.map { "\($0.flag) \($0.value)" }.joined(separator: " ")))</code></td>"
        html += "<td>\(trial.best.map { String(format: "%.4f", $0) } ?? escaped(trial.status))</td><td>\(trial.testAccuracy.map { String(format: "%.2f%%", 100 * $0) } ?? "—")</td></tr>"
    }
    return html + "</table>"
}

/// Per-fold validation accuracy as bars, with the mean ± one standard deviation as a last bar and whisker.
func crossValidationSection(_ cv: CrossValidationHistory) -> String {
    barChart(title: "\(cv.name): validation accuracy per fold — mean " + String(format: "%.2f%% ± %.2f", 100 * cv.mean, 100 * cv.standardDeviation),
             yLabel: "validation accuracy", categories: cv.accuracies.indices.map { "fold \($0 + 1)" } + ["mean ± sd"],
             groups: [("validation accuracy", cv.accuracies + [cv.mean])],
             whisker: (category: cv.accuracies.count, value: cv.mean, spread: cv.standardDeviation))
}
