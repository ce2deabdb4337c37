import ArgumentParser
import Foundation
import Reports

/// `distrain report RUN... [--out report.html]`: one self-contained HTML page of the runs' curves.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML page (inline SVG) with the runs' curves, time split, confusion "
            + "matrix and per-class scores.",
        discussion: """
        Each RUN is a --metrics file (.jsonl, or .csv for the curves only), a --checkpoint-dir (its
        metrics.jsonl), a sweep's --out folder, a --kfold --checkpoint-dir or a prune --out folder (its sparsity
        curve). Several runs are overlaid.
        Open the page in any browser; it loads nothing.
        Example: distrain report runs/cnn runs/mlp.jsonl --out compare.html
        """)

    @Argument(help: "Metrics files or checkpoint directories.")
    var runs: [String]

    @Option(help: "The HTML file to write.")
    var out = "report.html"

    func validate() throws {
        if runs.isEmpty { throw ValidationError("report needs at least one metrics file or checkpoint directory") }
        if out.isEmpty { throw ValidationError("--out needs a file name") }
    }

    func run() throws {
        let start = Date()
        do {
            var histories: [RunHistory] = [], sweeps: [SweepHistory] = []
            var crossValidations: [CrossValidationHistory] = [], prunings: [PruningHistory] = []
            for path in runs {
                switch try readReportInput(path: path) {
                case let .runs(found): histories += found
                case let .sweep(sweep): sweeps.append(sweep)
                case let .crossValidation(cv): crossValidations.append(cv)
                case let .pruning(pruning): prunings.append(pruning)
                }
            }
            let page = reportPage(runs: histories, sweeps: sweeps, crossValidations: crossValidations, prunings: prunings)
            try writeReport(page, to: out, inputs: runs.flatMap { [$0, $0 + "/metrics.jsonl"] })
            let notes = histories.reduce(0) { $0 + $1.notes.count }
            let contents = reportContents(runs: histories.count, sweeps: sweeps.count, crossValidations: crossValidations.count,
                                          prunings: prunings.count)
            let seconds = String(format: "%.2f", Date().timeIntervalSince(start))
            let noted = notes > 0 ? " (\(notes) note\(notes == 1 ? "" : "s") about the input on the page)" : ""
            print("wrote \(out): \(contents), \(page.utf8.count / 1024) KB, in \(seconds) s\(noted)")
        } catch let error as ReportError {
            printError(error.message)
            throw ExitCode.failure
        }
    }
}
