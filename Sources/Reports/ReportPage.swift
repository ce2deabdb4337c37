import DurableFiles
import Foundation

/// The whole report: one self-contained XHTML page (inline SVG and CSS, no scripts, fonts or network).
/// Several runs are overlaid in each chart, one colour per run; train, validation and test are told
/// apart by dash pattern.
public func reportPage(runs: [RunHistory], sweeps: [SweepHistory] = [], crossValidations: [CrossValidationHistory] = [],
                       prunings: [PruningHistory] = [], generatedAt: Date = Date()) -> String {
    let contents = reportContents(runs: runs.count, sweeps: sweeps.count, crossValidations: crossValidations.count,
                                  prunings: prunings.count)
    var body = "<h1>distrain report</h1><p class=\"meta\">\(contents), "
        + "made \(escaped(ISO8601DateFormatter().string(from: generatedAt)))</p>"
    if !sweeps.isEmpty { body += section("sweep", "Sweeps", sweeps.map(sweepSection).joined()) }
    if !crossValidations.isEmpty { body += section("cross-validation", "Cross-validation",
        crossValidations.map(crossValidationSection).joined()) }
    if !prunings.isEmpty { body += section("pruning", "Pruning", prunings.map(pruningSection).joined()) }
    guard !runs.isEmpty else { return page(body) }
    body += runsSection(runs)
    let splits: [(key: String, label: String, dash: String)] = [("train", "train", ""), ("val", "validation", "2 3"),
        ("test", "test", "7 4")]
    func perEpoch(_ keys: [(String, String, String)], title: String, yLabel: String) -> String {
        var series: [Series] = []
        for (index, run) in runs.enumerated() {
            for (key, label, dash) in keys where run.epochs.contains(where: { $0.values[key] != nil }) {
                series.append(Series(label: runs.count == 1 ? label : "\(shortName(run, index)) \(label)",
                    color: palette[index % palette.count],
                                     dash: dash, points: run.epochs.map { (Double($0.epoch), $0.value(key)) }))
            }
        }
        return lineChart(title: title, xLabel: "epoch", yLabel: yLabel, series: series)
    }
    body += section("loss", "Loss", perEpoch(splits.map { ("\($0.key)_loss", $0.label, $0.dash) },
        title: "Cross-entropy loss per epoch", yLabel: "mean loss (nats per sample)"))
    body += section("accuracy", "Accuracy", perEpoch(splits.map { ("\($0.key)_accuracy", $0.label, $0.dash) },
        title: "Accuracy per epoch", yLabel: "accuracy (fraction correct)"))
    // Language models: perplexity and bits per byte, where the runs logged them.
    if runs.contains(where: { $0.epochs.contains { $0.values["test_perplexity"] != nil || $0.values["val_perplexity"] != nil } }) {
        body += section("perplexity", "Perplexity", perEpoch(splits.dropFirst().map { ("\($0.key)_perplexity", $0.label, $0.dash) },
            title: "Perplexity per epoch", yLabel: "perplexity (e^loss)")
            + perEpoch(splits.dropFirst().map { ("\($0.key)_bits_per_byte", $0.label, $0.dash) },
                       title: "Bits per byte of text per epoch", yLabel: "bits per byte"))
    }
    body += section("learning-rate", "Learning rate", perEpoch([("lr", "lr", "")],
        title: "Learning rate at the end of each epoch", yLabel: "learning rate"))
    // samples_per_second; files written before the objectives redesign call it images_per_second.
    var throughput = perEpoch([("samples_per_second", "samples/s", ""), ("images_per_second", "images/s", "")],
                              title: "Training throughput", yLabel: "samples per second (all ranks)")
    for (index, run) in runs.enumerated() where run.epochs.contains(where: { $0.value("compute_seconds") != nil }) {
        let ranks = run.setting("world_size") ?? "?", threads = run.setting("threads_per_rank") ?? "?"
        throughput += barChart(title: "\(shortName(run, index)): where each epoch's time went (\(ranks) "
            + "rank\(ranks == "1" ? "" : "s") × \(threads) thread\(threads == "1" ? "" : "s"))",
                               yLabel: "seconds (slowest rank)", categories: run.epochs.map { "epoch \($0.epoch)" },
                               groups: [("compute", run.epochs.map { $0.value("compute_seconds") ?? .nan }),
                                        ("communication", run.epochs.map { $0.value("communication_seconds") ?? .nan }),
                                        ("data", run.epochs.map { $0.value("data_seconds") ?? .nan })])
    }
    body += section("throughput", "Throughput and time split", throughput)
    let finished = runs.enumerated().filter { $0.element.confusion != nil }
    if !finished.isEmpty {
        body += section("confusion", "Confusion matrix (test set, final model)", finished.map { index, run in
            heatMap(title: shortName(run, index), matrix: run.confusion!, classNames: run.classNames)
        }.joined())
        body += section("per-class", "Per-class precision, recall and F1", finished.map { index, run in
            let scores = perClassScores(run.confusion!)
            return barChart(title: shortName(run, index), yLabel: "score (0–1)",
                            categories: run.classNames.count == scores.count ? run.classNames : (0..<scores.count).map { "class \($0)" },
                            groups: [("precision", scores.map(\.precision)), ("recall", scores.map(\.recall)), ("F1", scores.map(\.f1))])
        }.joined())
    }
    return page(body)
}

private func page(_ body: String) -> String {
    """
    <!DOCTYPE html>
    <html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/><title>distrain report</title>
    <meta name="viewport" content="width=device-width, initial-scale=1"/>
    <style>\(css)</style></head><body>\(body)</body></html>

    """
}

/// Writes the page to `path` atomically (a temporary file beside it, then rename): never a half-written report.
public func writeReport(_ html: String, to path: String, inputs: [String] = []) throws {
    try checkReportOutput(path, inputs: inputs)
    do {
        try writeFileAtomically(html, to: path)
    } catch let error as FileWriteError {
        throw ReportError(message: "cannot write report \(path): \(error.reason); choose a writable --out path")
    }
}

/// "3 runs, 1 sweep, 2 pruning curves": what a report holds (kinds other than runs only when present).
public func reportContents(runs: Int, sweeps: Int, crossValidations: Int, prunings: Int) -> String {
    func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
    let others = [(sweeps, "sweep"), (crossValidations, "cross-validation"), (prunings, "pruning curve")]
        .filter { $0.0 > 0 }.map { counted($0.0, $0.1) }
    return ([counted(runs, "run")] + others).joined(separator: ", ")
}

/// The page's `--out` may replace only a report distrain wrote: never a device or FIFO, never one of the
/// report's own inputs, never another file.
func checkReportOutput(_ path: String, inputs: [String]) throws {
    var target = stat()
    guard stat(path, &target) == 0 else { return }
    guard target.st_mode & S_IFMT == S_IFREG else {
        throw ReportError(message: "--out \(path) is not a regular file (a device, FIFO or folder); distrain writes "
            + "reports only to files: choose another --out")
    }
    for input in inputs {
        var other = stat()
        if stat(input, &other) == 0 && other.st_dev == target.st_dev && other.st_ino == target.st_ino {
            throw ReportError(message: "--out \(path) is one of the report's inputs; choose another --out")
        }
    }
    let head = FileManager.default.contents(atPath: path).map { String(decoding: $0.prefix(300), as: UTF8.self) } ?? ""
    guard head.isEmpty || head.contains("<title>distrain report</title>") else {
        throw ReportError(message: "--out \(path) exists and is not a distrain report; distrain does not replace it: "
            + "choose another --out or move the file")
    }
}

private let css = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
section{margin:2em 0;page-break-inside:avoid}svg{width:100%;max-width:720px;height:auto;display:block;margin:1em 0}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.meta,.note{color:#555}.note{font-size:13px}code{font-size:13px;word-break:break-all}
@media print{body{margin:0}svg{max-width:100%}}
"""

private func section(_ id: String, _ heading: String, _ content: String) -> String {
    "<section id=\"\(id)\" class=\"chart\"><h2>\(escaped(heading))</h2>\(content)</section>"
}

private func shortName(_ run: RunHistory, _ index: Int) -> String {
    let model = run.setting("model").map { " · \($0)" } ?? ""
    return "\(index + 1): \(run.name)\(model)"
}

private func runsSection(_ runs: [RunHistory]) -> String {
    var html = "<section id=\"runs\"><h2>Runs</h2><table><tr><th>run</th><th>dataset</th><th>model</th><th>ranks × "
        + "threads</th><th>epochs</th><th>final test accuracy</th><th>final test loss</th><th>time</th></tr>"
    for (index, run) in runs.enumerated() {
        let last = run.epochs.last
        let accuracy = last?.value("test_accuracy").map { String(format: "%.2f%%", 100 * $0) } ?? "—"
        let loss = last?.value("test_loss").map { String(format: "%.4f", $0) } ?? "—"
        let seconds = run.epochs.compactMap { $0.value("seconds") }.reduce(0, +)
        let color = palette[index % palette.count], name = escaped(shortName(run, index))
        let dataset = escaped(run.setting("dataset") ?? "—"), model = escaped(run.setting("model") ?? "—")
        let ranks = escaped(run.setting("world_size") ?? "?"), threads = escaped(run.setting("threads_per_rank") ?? "?")
        let epochs = (last.map { String($0.epoch) } ?? "0") + (run.setting("epochs").map { " of \(escaped($0))" } ?? "")
        html += "<tr><td><span style=\"color:\(color)\">■</span> \(name)</td><td>\(dataset)</td>"
        html += "<td>\(model)</td><td>\(ranks) × \(threads)</td>"
        html += "<td>\(epochs)</td><td>\(accuracy)</td><td>\(loss)</td><td>\(String(format: "%.1f", seconds)) s</td></tr>"
    }
    html += "</table>"
    for (index, run) in runs.enumerated() {
        html += "<h3>\(escaped(shortName(run, index)))</h3>"
        if let command = run.setting("command_line") { html += "<p>Reproduce: <code>\(escaped(command))</code></p>" }
        for note in run.notes { html += "<p class=\"note\">Note: \(escaped(note)).</p>" }
        if !run.settings.isEmpty {
            html += "<details><summary>configuration</summary><table>" + run.settings.filter { $0.0 != "command_line" }
                .map { "<tr><th>\(escaped($0.0))</th><td>\(escaped($0.1))</td></tr>" }.joined() + "</table></details>"
        }
    }
    return html + "</section>"
}

/// Precision, recall and F1 of each class from a confusion matrix (rows: true class, columns: predicted).
func perClassScores(_ matrix: [[Int]]) -> [(precision: Double, recall: Double, f1: Double)] {
    let n = matrix.count
    return (0..<n).map { c in
        let hit = Double(matrix[c][c])
        let predicted = Double((0..<n).reduce(0) { $0 + matrix[$1][c] }), actual = Double(matrix[c].reduce(0, +))
        let precision = predicted > 0 ? hit / predicted : 0, recall = actual > 0 ? hit / actual : 0
        return (precision, recall, precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0)
    }
}
