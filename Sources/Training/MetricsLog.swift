#if canImport(Glibc)
import Glibc
#endif

/// Why a file could not be written.
public enum OutputError: Error, CustomStringConvertible {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason); choose a writable path"
        }
    }
}

/// The pairs whose value is known (a split not scored this epoch is left out, not written as null).
func optionalNumbers(_ pairs: [(String, Double?)]) -> [(String, JSONValue)] {
    pairs.compactMap { key, value in value.map { (key, .number($0)) } }
}

/// Opens a log for writing, refusing non-regular files by name before the open could block.
func openLogFile(_ path: String, appending: Bool) throws -> UnsafeMutablePointer<FILE> {
    var info = stat()
    if stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG {
        throw OutputError.cannotWrite(path: path, reason: (info.st_mode & S_IFMT) == S_IFIFO ? "it is a FIFO (named "
            + "pipe), not a regular file" : "it is not a regular file")
    }
    // A fresh run replaces only a metrics file distrain wrote (its first line a start event or the CSV header).
    if !appending, stat(path, &info) == 0, info.st_size > 0 {
        var head = [UInt8](repeating: 0, count: 200)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        let count = descriptor >= 0 ? read(descriptor, &head, head.count) : 0
        if descriptor >= 0 { close(descriptor) }
        let text = String(decoding: head.prefix(max(count, 0)), as: UTF8.self)
        guard text.hasPrefix("{\"event\":\"start\"") || text.hasPrefix("epoch,") else {
            throw OutputError.cannotWrite(path: path, reason: "it exists and is not a distrain metrics file; distrain does "
                + "not replace it: choose another --metrics or move the file")
        }
    }
    guard let file = fopen(path, appending ? "a" : "w") else {
        throw OutputError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
    }
    return file
}

/// `--metrics FILE.csv`: one row per epoch with a header, as Keras' CSVLogger; appending (a resumed run)
/// writes the header only into an empty file. The columns follow the objective's metrics.
public final class CSVMetricsLog: TrainingReporter {
    private let file: UnsafeMutablePointer<FILE>
    public let path: String
    private var trainNames: [String] = [], evaluationNames: [String] = []
    static let timingColumns = ["lr", "seconds", "samples_per_second", "compute_seconds", "communication_seconds", "data_seconds",
                                "skipped_steps"]

    public init(path: String, appending: Bool = false) throws {
        file = try openLogFile(path, appending: appending)
        self.path = path
    }

    deinit { fclose(file) }

    private func writeLine(_ line: String) throws {
        if (line + "\n").withCString({ fputs($0, file) }) < 0 || fflush(file) != 0 {
            throw OutputError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }

    public func started(_ record: StartRecord) throws {
        trainNames = record.trainingMetricNames
        evaluationNames = record.evaluationMetricNames
        guard ftell(file) == 0 else { return }
        let columns = ["epoch"] + trainNames.map { "train_" + $0 } + evaluationNames.map { "val_" + $0 }
            + evaluationNames.map { "test_" + $0 } + Self.timingColumns
        try writeLine(columns.joined(separator: ","))
    }

    public func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double?) {}
    public func finished(_ record: FinalRecord) throws {}

    public func epochCompleted(_ r: EpochRecord) throws {
        // Values not computed this epoch, and non-finite ones, are left empty, as the JSON log leaves them out or writes null.
        func values(_ metrics: [Metric]?, _ names: [String]) -> [Double] { names.map { metrics?.value($0) ?? .nan } }
        let numbers = values(r.train, trainNames) + values(r.validation, evaluationNames) + values(r.test, evaluationNames)
            + [Double("\(r.learningRate)") ?? Double(r.learningRate), r.seconds, r.samplesPerSecond, r.computeSeconds,
               r.communicationSeconds, r.dataSeconds]
        try writeLine(([String(r.epoch)] + numbers.map { $0.isFinite ? "\($0)" : "" } + [String(r.skippedSteps)]).joined(separator: ","))
    }
}

/// `--metrics FILE`: one JSON object per line, flushed as it is written so a crash loses nothing.
///
/// Keys of the start, epoch and end events are an interface that scripts read.
public final class MetricsLog: TrainingReporter {
    private let file: UnsafeMutablePointer<FILE>
    public let path: String
    /// The command that reproduces the run, recorded in the start event (for `distrain report`).
    public var commandLine: String?

    /// Creates (truncates) the file, or with `appending` adds to it (a resumed run); throws if it cannot
    /// be written or is not a regular file (a FIFO would block the open).
    public init(path: String, appending: Bool = false) throws {
        file = try openLogFile(path, appending: appending)
        self.path = path
    }

    deinit { fclose(file) }

    /// Appends one event line.
    public func write(_ object: JSONValue) throws {
        let line = object.serialized + "\n"
        let written = line.withCString { fputs($0, file) }
        if written < 0 || fflush(file) != 0 {
            throw OutputError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }

    public func started(_ r: StartRecord) throws {
        try write(.object([
            ("event", .string("start")), ("dataset", .string(r.dataset)), ("model", .string(r.model)),
            ("parameters", .int(r.parameters)), ("world_size", .int(r.worldSize)),
            ("global_batch", .int(r.globalBatch)), ("per_rank_batch", .int(r.perRankBatch)),
            ("accumulate", .int(r.microBatches)), ("shard", .string(r.sharding ?? "none")),
            ("optimizer", .string(r.optimizer)), ("lr", .number(r.learningRate)),
            ("schedule", .string(r.schedule)), ("epochs", .int(r.epochs)),
            ("seed", .integer(Int64(bitPattern: r.seed))), ("augment", .bool(r.augment)), ("augment_padding",
                .int(r.augmentPadding)), ("tta", .string(r.testTimeAugmentation.rawValue)),
            ("eval_every", .int(r.evaluationInterval)), ("threads_per_rank", .int(r.threadsPerRank)),
            ("blas", .string(r.blas)), ("communicator", .string(r.communicator)),
            ("gradient_sum", .string(r.gradientSum)),
            ("train_samples", .int(r.trainSamples)), ("test_samples", .int(r.testSamples)),
            ("steps_per_epoch", .int(r.stepsPerEpoch)), ("task", .string(r.task)),
        ] + (commandLine.map { [("command_line", JSONValue.string($0))] } ?? [])))
    }

    public func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double?) {}

    public func epochCompleted(_ r: EpochRecord) throws {
        func fields(_ prefix: String, _ metrics: [Metric]?) -> [(String, JSONValue)] {
            (metrics ?? []).map { (prefix + $0.name, JSONValue.number($0.value)) }
        }
        let positions: [(String, JSONValue)] = r.positionsPerSample > 1
            ? [("positions_per_second", .number(r.samplesPerSecond * Double(r.positionsPerSample)))]
                + (r.modelFlopsUtilization.map { [("mfu", JSONValue.number($0))] } ?? []) : []
        try write(.object([("event", .string("epoch")), ("epoch", .int(r.epoch))]
            + fields("train_", r.train) + fields("val_", r.validation) + fields("test_", r.test) + [
            ("seconds", .number(r.seconds)), ("samples_per_second", .number(r.samplesPerSecond))] + positions + [
            ("compute_seconds", .number(r.computeSeconds)),
            ("communication_seconds", .number(r.communicationSeconds)),
            ("data_seconds", .number(r.dataSeconds)), ("lr", .number(r.learningRate)),
            ("skipped_steps", .int(r.skippedSteps)),
        ]))
    }

    public func evaluatedAtStep(_ r: StepEvaluationRecord) throws {
        try write(.object([("event", .string("eval")), ("step", .int(r.step)), ("epoch", .int(r.epoch))]
            + r.metrics.map { (r.split + "_" + $0.name, JSONValue.number($0.value)) }))
    }

    public func finished(_ r: FinalRecord) throws {
        let seconds = ("seconds", JSONValue.number(r.seconds))
        if let m = r.result.regression {
            return try write(.object([("event", .string("end")), ("test_loss", .number(r.testLoss)), ("rmse",
                .number(m.rootMeanSquaredError)),
                                      ("mae", .number(m.meanAbsoluteError)), ("r2", .number(m.rSquared)), ("samples",
                                          .int(m.count)), seconds]))
        }
        guard let m = r.result.classification else {
            return try write(.object([("event", .string("end"))] + r.result.metrics.map { ("test_" + $0.name, JSONValue.number($0.value)) }
                                     + [("samples", .integer(r.result.sampleCount)), seconds]))
        }
        try write(.object([
            ("event", .string("end")), ("test_accuracy", .number(m.accuracy)), ("test_loss", .number(r.testLoss)),
            ("precision_macro", .number(m.precisionMacro)), ("recall_macro", .number(m.recallMacro)),
            ("f1_macro", .number(m.f1Macro)),
            ("precision_micro", .number(m.precisionMicro)), ("recall_micro", .number(m.recallMicro)),
            ("f1_micro", .number(m.f1Micro)),
            ("confusion_matrix", .array(m.rows.map { .array($0.map { .integer($0) }) })),
            ("class_names", .array(r.classNames.map { .string($0) })), seconds,
        ]))
    }
}
