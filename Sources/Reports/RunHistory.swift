import Foundation

/// One epoch of a run as its metrics file recorded it. Values the run could not compute (NaN losses are
/// written as null) are nil, and charts draw them as gaps.
public struct EpochRow: Sendable {
    public var epoch: Int
    public var values: [String: Double?]

    public func value(_ key: String) -> Double? { values[key] ?? nil }
}

/// A training run read from a `--metrics` file (JSON Lines or CSV): its start record, epochs, final
/// evaluation, and what was wrong with the file.
public struct RunHistory: Sendable {
    /// What the report calls the run (the file name, and a suffix when a file holds several runs).
    public var name: String
    /// The start event's fields as text (dataset, model, world_size, …), in file order.
    public var settings: [(String, String)] = []
    public var epochs: [EpochRow] = []
    /// The end event: confusion matrix and class names, when the run finished.
    public var confusion: [[Int]]?
    public var classNames: [String] = []
    /// Whether the file holds the run's end event (it finished).
    public var finished = false
    /// Problems found while reading (non-JSON lines, a truncated end, …), each one line for the page.
    public var notes: [String] = []

    public func setting(_ key: String) -> String? { settings.first { $0.0 == key }?.1 }
}

/// Why a metrics file could not be read at all.
public struct ReportError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Reads a metrics file into runs. A file whose lines come from different runs (a `start` event with
/// other settings than the previous one) gives one run per start; a resumed run (same settings)
/// continues the previous one. Lines that are not JSON, and a last line cut off by a crash, are
/// skipped and noted, never fatal; a file with no usable line at all is an error.
public func readRunHistories(path: String) throws -> [RunHistory] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ReportError(message: "\(path) does not exist; pass a --metrics file or a --checkpoint-dir")
    }
    let file = isDirectory.boolValue ? "\(path)/metrics.jsonl" : path
    // distrain's metrics lines are short (a 1,000-epoch run writes about a megabyte): a larger file is not one.
    if let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int, size > maximumMetricsBytes {
        throw ReportError(message: "\(file) is \(size >> 20) MiB, larger than any metrics file distrain writes "
            + "(\(maximumMetricsBytes >> 20) MiB); pass a --metrics file of a run")
    }
    guard let data = FileManager.default.contents(atPath: file) else {
        throw ReportError(message: isDirectory.boolValue
            ? "\(path) holds no metrics.jsonl; pass a --metrics file or a --checkpoint-dir written by this version"
            : "cannot read \(file)")
    }
    let text = String(decoding: data, as: UTF8.self)
    // A checkpoint folder's run is called by the folder's name.
    let base = ((isDirectory.boolValue ? path : file) as NSString).lastPathComponent
    let runs = file.hasSuffix(".csv") ? readCSVMetrics(text, name: base) : readJSONLines(text, name: base)
    guard !runs.isEmpty, runs.contains(where: { !$0.epochs.isEmpty || !$0.settings.isEmpty }) else {
        throw ReportError(message: "\(file) holds no metrics (it is empty or none of its lines is a distrain event)")
    }
    return runs
}

/// The largest metrics file `report` reads.
let maximumMetricsBytes = 64 << 20
/// The largest confusion matrix a run writes (classification objectives keep one up to 256 classes).
let maximumConfusionClasses = 256

/// The settings that identify a run: a start event with other values begins a different run.
private let identifyingSettings = ["dataset", "model", "optimizer", "lr", "global_batch", "seed", "schedule"]

private func readJSONLines(_ text: String, name: String) -> [RunHistory] {
    var runs: [RunHistory] = []
    var current = RunHistory(name: name)
    var badLines: [Int] = []
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
              let event = object["event"] as? String else {
            if index == lines.count - 1 || (index == lines.count - 2 && lines.last == "") {
                current.notes.append("the last line (\(index + 1)) is cut off: the run was interrupted while writing it")
            } else {
                badLines.append(index + 1)
            }
            continue
        }
        switch event {
        case "start":
            let settings = object.keys.sorted().filter { $0 != "event" }.map { ($0, settingText(of: object[$0])) }
            if !current.settings.isEmpty || !current.epochs.isEmpty {
                let same = identifyingSettings.allSatisfy { key in current.setting(key) == settings.first { $0.0 == key }?.1 }
                if !same {
                    runs.append(current)
                    current = RunHistory(name: "\(name) (run \(runs.count + 1))")
                    if runs.count == 1 { runs[0].name = "\(name) (run 1)" }
                } else {
                    current.notes.append("resumed at line \(index + 1)")
                }
            }
            current.settings = settings
        case "epoch":
            guard let epoch = object["epoch"] as? Int else { badLines.append(index + 1); continue }
            var values: [String: Double?] = [:]
            for (key, value) in object where key != "event" && key != "epoch" { values[key] = (value as? NSNumber)?.doubleValue }
            current.epochs.removeAll { $0.epoch >= epoch }  // a resumed run repeats from its checkpoint
            current.epochs.append(EpochRow(epoch: epoch, values: values))
        case "end":
            current.finish(object)
        default:
            continue
        }
    }
    if !badLines.isEmpty {
        let plural = badLines.count == 1 ? "" : "s", shown = badLines.prefix(5).map(String.init).joined(separator: ", ")
        current.notes.append("skipped \(badLines.count) line\(plural) that are not distrain events (line\(plural) \(shown)"
            + "\(badLines.count > 5 ? ", …" : ""))")
    }
    runs.append(current)
    for index in runs.indices where !runs[index].finished && !runs[index].epochs.isEmpty {
        runs[index].notes.append("no end event: the run stops after epoch \(runs[index].epochs.last!.epoch) (it crashed, was "
            + "stopped, or is still running)")
    }
    return runs
}

extension RunHistory {
    /// An end event: finished, with its confusion matrix when it is one distrain writes (square, bounded).
    mutating func finish(_ object: [String: Any]) {
        finished = true
        let matrix = object["confusion_matrix"] as? [[Any]]
        if let matrix, matrix.count > maximumConfusionClasses || matrix.contains(where: { $0.count != matrix.count }) {
            notes.append("the end event's confusion matrix (\(matrix.count) rows) is not one distrain writes "
                + "(square, at most \(maximumConfusionClasses) classes): not drawn")
        } else {
            confusion = matrix?.map { $0.map { ($0 as? NSNumber)?.intValue ?? 0 } }
            let names = object["class_names"] as? [String] ?? []
            classNames = names.prefix(maximumConfusionClasses).map { String($0.prefix(200)) }
        }
    }
}

/// A CSV written by `--metrics FILE.csv`: a header row, then one row per epoch.
private func readCSVMetrics(_ text: String, name: String) -> [RunHistory] {
    var run = RunHistory(name: name)
    let rows = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    guard let header = rows.first, header.first == "epoch" else { return [] }
    for (index, row) in rows.dropFirst().enumerated() {
        if row == header { run.notes.append("resumed at line \(index + 2)"); continue }
        guard row.count == header.count, let epoch = Int(row[0]) else {
            run.notes.append("line \(index + 2) is not a row of \(header.count) values: skipped")
            continue
        }
        var values: [String: Double?] = [:]
        for (key, cell) in zip(header.dropFirst(), row.dropFirst()) { values[key] = Double(cell).flatMap { $0.isFinite ? $0 : nil } }
        run.epochs.removeAll { $0.epoch >= epoch }
        run.epochs.append(EpochRow(epoch: epoch, values: values))
    }
    run.notes.append("a CSV metrics file has no confusion matrix or settings (use a .jsonl --metrics file for those)")
    return [run]
}

private func settingText(of value: Any?) -> String {
    switch value {
    case let string as String: return string
    case let number as NSNumber: return number.stringValue
    case let array as [Any]: return "[" + array.map { settingText(of: $0) }.joined(separator: ", ") + "]"
    case nil, is NSNull: return "—"
    default: return "\(value!)"
    }
}
