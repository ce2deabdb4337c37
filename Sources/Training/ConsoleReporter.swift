#if canImport(Glibc)
import Glibc
#endif

/// The coordinator's human-readable output: a run header, a progress bar with ETA on a terminal
/// (plain lines otherwise), one line per epoch and the final report.
public final class ConsoleReporter: TrainingReporter {
    private let isTerminal: Bool
    private var lastDraw = 0.0
    private var epochStart = 0.0
    private var barVisible = false
    /// Epoch lines and the headline only: one run among many (a sweep's trial, a fold).
    private let brief: Bool

    public init(isTerminal: Bool = isatty(STDOUT_FILENO) != 0, brief: Bool = false) {
        self.isTerminal = isTerminal
        self.brief = brief
    }

    private func say(_ line: String) {
        if barVisible { print("\r\u{1B}[2K", terminator: ""); barVisible = false }
        print(line)
        fflush(nil)
    }

    public func started(_ r: StartRecord) throws {
        if brief { epochStart = monotonicSeconds(); return }
        say("distrain: \(r.model) on \(r.dataset) — \(r.trainSamples) training / \(r.testSamples) test samples, "
            + "\(r.parameters) parameters")
        let ranks = r.worldSize == 1 ? "1 rank (\(r.communicator) mode)" : "\(r.worldSize) ranks (\(r.communicator); "
            + "gradients: \(r.gradientSum))"
        let micro = r.microBatches > 1
            ? " in \(r.microBatches) micro-batches of up to \((r.perRankBatch + r.microBatches - 1) / r.microBatches)" : ""
        let stages = ["optimizer": "optimizer state", "gradients": "optimizer state and gradients",
                      "parameters": "optimizer state, gradients and parameters"]
        let shards = r.sharding.map { ", \(stages[$0] ?? $0) sharded over the ranks" } ?? ""
        say("  \(ranks)\(shards), global batch \(r.globalBatch) = up to \(r.perRankBatch) per rank\(micro), \(r.threadsPerRank) BLAS "
            + "thread\(r.threadsPerRank == 1 ? "" : "s") per rank, \(r.stepsPerEpoch) steps per epoch")
        let crop = r.augmentPadding > 0 ? "random crop (pad \(r.augmentPadding)) + " : ""
        let augmentation = r.augment ? ", augmentation: " + crop + "horizontal flip" : ""
        let flips = r.testTimeAugmentation == .flip ? ", evaluation averages each image with its mirror image (--tta flip)" : ""
        let cadence = r.evaluationInterval > 1 ? ", evaluated every \(r.evaluationInterval) epochs and after the last" : ""
        say("  \(r.optimizer) lr \(r.learningRate) (\(r.schedule) schedule), \(r.epochs) epochs, seed \(r.seed)"
            + augmentation + flips + cadence)
        say("  BLAS: \(r.blas)")
        for line in r.modelSummary.split(separator: "\n") { say("  " + line) }
        epochStart = monotonicSeconds()
    }

    public func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double?) {
        guard isTerminal else { return }
        let now = monotonicSeconds()
        if step == 1 { epochStart = now }
        if now - lastDraw < 0.1 && step < steps { return }
        lastDraw = now
        let fraction = Double(step) / Double(max(steps, 1))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let elapsed = now - epochStart
        let eta = fraction > 0 ? elapsed / fraction - elapsed : 0
        let accuracy = runningAccuracy.map { "  acc \(percent($0))" } ?? ""
        print("\r\u{1B}[2Kepoch \(epoch + 1) \(bar) \(step)/\(steps)  loss \(format(runningLoss, 4))\(accuracy)  ETA "
            + "\(format(eta, 1)) s", terminator: "")
        barVisible = true
        fflush(nil)
    }

    public func epochCompleted(_ r: EpochRecord) throws {
        let total = max(r.computeSeconds + r.communicationSeconds + r.dataSeconds, 1e-9)
        func share(_ seconds: Double) -> String { String(Int((100 * seconds / total).rounded())) + "%" }
        let splits = [("train", r.train), ("val", r.validation), ("test", r.test)].compactMap { name, metrics in
            metrics.map { "  \(name) " + metricsText($0) }
        }.joined()
        let mfu = r.modelFlopsUtilization.map { ", MFU \(format(100 * $0, 1))%" } ?? ""
        let positions = r.positionsPerSample > 1
            ? " (\(grouped(r.samplesPerSecond * Double(r.positionsPerSample))) positions/s\(mfu))" : ""
        let time = "(compute \(share(r.computeSeconds)), communication \(share(r.communicationSeconds)), data \(share(r.dataSeconds)))"
        say("epoch \(r.epoch)/\(r.epochs)\(splits)  \(grouped(r.samplesPerSecond)) samples/s\(positions)  "
            + "\(format(r.seconds, 1)) s  \(time)")
    }

    public func evaluatedAtStep(_ r: StepEvaluationRecord) throws {
        say("step \(r.step) (epoch \(r.epoch))  \(r.split) " + metricsText(r.metrics))
    }

    public func checkpointWritten(path: String, seconds: Double) {
        if brief { return }
        say("  checkpoint \(path) written in \(format(seconds, 2)) s")
    }

    public func finished(_ r: FinalRecord) throws {
        for line in finalReport(r.result, classNames: r.classNames).prefix(brief ? 1 : .max) { say(line) }
        say("done in \(format(r.seconds, 1)) s")
    }
}

/// "loss 0.3120 acc 88.95%": a split's metrics in one line (accuracy as "acc", fractions as percentages).
public func metricsText(_ metrics: [Metric]) -> String {
    metrics.map { m in
        (m.name == "accuracy" ? "acc" : m.name) + " " + (m.isFraction ? percent(m.value) : format(m.value, 4))
    }.joined(separator: " ")
}

/// The end-of-run report of an evaluation: a classification's per-class table and confusion matrix, a
/// regression's errors, else the named metrics.
public func finalReport(_ result: EvaluationResult, classNames: [String]) -> [String] {
    if let m = result.classification { return classificationReport(m, classNames: classNames) }
    if let m = result.regression {
        let errors = "RMSE \(format(m.rootMeanSquaredError, 4))  MAE \(format(m.meanAbsoluteError, 4))  R² \(format(m.rSquared, 4))"
        return ["test \(errors)  (\(m.count) samples; loss = mean squared error \(format(m.meanSquaredError, 4)))"]
    }
    return ["test " + metricsText(result.metrics) + "  (\(result.sampleCount) \(result.countUnit))"]
}

/// The final report: headline metrics, a per-class table and the confusion matrix with class names.
public func classificationReport(_ m: ClassificationMetrics, classNames: [String]) -> [String] {
    var lines: [String] = []
    lines.append("test accuracy \(percent(m.accuracy))  precision (macro) \(format(m.precisionMacro, 4))  recall "
        + "(macro) \(format(m.recallMacro, 4))  F1 (macro) \(format(m.f1Macro, 4))")
    let nameWidth = max(12, classNames.map(\.count).max() ?? 0)
    lines.append(pad("class", nameWidth) + "  precision  recall      F1  support")
    for c in 0..<m.classCount {
        lines.append(pad(classNames[c], nameWidth) + "  " + padLeft(format(m.precision(of: c), 4), 9) + "  "
                     + padLeft(format(m.recall(of: c), 4), 6) + "  " + padLeft(format(m.f1(of: c), 4), 6) + "  "
                     + padLeft(String(m.support(of: c)), 7))
    }
    lines.append("confusion matrix (rows: true class, columns: predicted class)")
    let cell = max(5, String(m.confusion.max() ?? 0).count + 1)
    lines.append(pad("", nameWidth) + (0..<m.classCount).map { padLeft(String($0), cell) }.joined())
    for (c, row) in m.rows.enumerated() {
        lines.append(pad("\(c) \(classNames[c])", nameWidth) + row.map { padLeft(String($0), cell) }.joined())
    }
    return lines
}

/// Fixed-point text with `digits` decimals.
/// Any Double prints: beyond what Int64 holds exactly (a regression's MSE of 1e16, a cell of 1e38) it is
/// written in exponent form instead of trapping in the conversion.
public func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    guard rounded < 9e15 else { return String(format: "%.\(max(digits, 1))e", value) }
    let whole = Int64(rounded / scale)
    var fraction = String(Int64(rounded) - whole * Int64(scale))
    fraction = String(repeating: "0", count: max(0, digits - fraction.count)) + fraction
    let sign = value < 0 && rounded != 0 ? "-" : ""
    return digits == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
}

/// "87.95%".
public func percent(_ fraction: Double) -> String { format(100 * fraction, 2) + "%" }

/// "63,000" for 63000.4.
public func grouped(_ value: Double) -> String {
    guard value.isFinite, abs(value) < 9e18 else { return value.isFinite ? String(format: "%.3e", value) : "\(value)" }
    let digits = String(Int64(value.rounded()))
    var result = ""
    for (i, character) in digits.reversed().enumerated() {
        if i > 0 && i % 3 == 0 && character != "-" { result.append(",") }
        result.append(character)
    }
    return String(result.reversed())
}

public func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
public func padLeft(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }

/// Sends every event to several reporters (console and metrics file).
public final class ReporterGroup: TrainingReporter {
    let reporters: [TrainingReporter]
    public init(_ reporters: [TrainingReporter]) { self.reporters = reporters }
    public func started(_ r: StartRecord) throws { for x in reporters { try x.started(r) } }
    public func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double?) {
        for x in reporters { x.stepCompleted(epoch: epoch, step: step, of: steps, runningLoss: runningLoss,
            runningAccuracy: runningAccuracy) }
    }
    public func epochCompleted(_ r: EpochRecord) throws { for x in reporters { try x.epochCompleted(r) } }
    public func evaluatedAtStep(_ r: StepEvaluationRecord) throws { for x in reporters { try x.evaluatedAtStep(r) } }
    public func finished(_ r: FinalRecord) throws { for x in reporters { try x.finished(r) } }
    public func checkpointWritten(path: String,
        seconds: Double) { for x in reporters { x.checkpointWritten(path: path, seconds: seconds) } }
}
