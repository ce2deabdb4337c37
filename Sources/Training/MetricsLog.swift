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
        throw OutputError.cannotWrite(path: path, reason: (info.st_mode & S_IFMT) == S_IFIFO ? "it is a FIFO (named pipe), not a regular file" : "it is not a regular file")
    }
    guard let file = fopen(path, appending ? "a" : "w") else {
        throw OutputError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
    }
    return file
}

/// `--metrics FILE.csv`: one row per epoch with a header, as Keras' CSVLogger; appending (a resumed run)
/// writes the header only into an empty file.
public final class CSVMetricsLog: TrainingReporter {
    private let file: UnsafeMutablePointer<FILE>
    public let path: String
    static let columns = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "lr", "seconds",
                          "images_per_second", "compute_seconds", "communication_seconds", "data_seconds", "skipped_steps"]

    public init(path: String, appending: Bool = false) throws {
        file = try openLogFile(path, appending: appending)
        self.path = path
        if ftell(file) == 0 { try writeLine(Self.columns.joined(separator: ",")) }
    }

    deinit { fclose(file) }

    private func writeLine(_ line: String) throws {
        if (line + "\n").withCString({ fputs($0, file) }) < 0 || fflush(file) != 0 {
            throw OutputError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }

    public func started(_ record: StartRecord) throws {}
    public func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double) {}
    public func finished(_ record: FinalRecord) throws {}

    public func epochCompleted(_ r: EpochRecord) throws {
        // Non-finite values are left empty, as the JSON log writes null.
        let values: [Double] = [r.trainLoss, r.trainAccuracy, r.validationLoss ?? .nan, r.validationAccuracy ?? .nan,
                                r.testLoss ?? .nan, r.testAccuracy ?? .nan, Double("\(r.learningRate)") ?? Double(r.learningRate),
                                r.seconds, r.imagesPerSecond, r.computeSeconds, r.communicationSeconds, r.dataSeconds]
        try writeLine(([String(r.epoch)] + values.map { $0.isFinite ? "\($0)" : "" } + [String(r.skippedSteps)]).joined(separator: ","))
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
            ("optimizer", .string(r.optimizer)), ("lr", .number(r.learningRate)),
            ("schedule", .string(r.schedule)), ("epochs", .int(r.epochs)),
            ("seed", .integer(Int64(bitPattern: r.seed))), ("augment", .bool(r.augment)), ("augment_padding", .int(r.augmentPadding)), ("tta", .string(r.testTimeAugmentation.rawValue)), ("eval_every", .int(r.evaluationInterval)), ("threads_per_rank", .int(r.threadsPerRank)),
            ("blas", .string(r.blas)), ("communicator", .string(r.communicator)),
            ("gradient_sum", .string(r.gradientSum)),
            ("train_samples", .int(r.trainSamples)), ("test_samples", .int(r.testSamples)),
            ("steps_per_epoch", .int(r.stepsPerEpoch)),
        ] + (commandLine.map { [("command_line", JSONValue.string($0))] } ?? [])))
    }

    public func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double) {}

    public func epochCompleted(_ r: EpochRecord) throws {
        try write(.object([
            ("event", .string("epoch")), ("epoch", .int(r.epoch)),
            ("train_loss", .number(r.trainLoss)), ("train_accuracy", .number(r.trainAccuracy)),
        ] + optionalNumbers([("val_loss", r.validationLoss), ("val_accuracy", r.validationAccuracy),
                             ("test_loss", r.testLoss), ("test_accuracy", r.testAccuracy)]) + [
            ("seconds", .number(r.seconds)), ("images_per_second", .number(r.imagesPerSecond)),
            ("compute_seconds", .number(r.computeSeconds)),
            ("communication_seconds", .number(r.communicationSeconds)),
            ("data_seconds", .number(r.dataSeconds)), ("lr", .number(r.learningRate)),
            ("skipped_steps", .int(r.skippedSteps)),
        ]))
    }

    public func finished(_ r: FinalRecord) throws {
        if let m = r.regression {
            return try write(.object([("event", .string("end")), ("test_loss", .number(r.testLoss)), ("rmse", .number(m.rootMeanSquaredError)),
                                      ("mae", .number(m.meanAbsoluteError)), ("r2", .number(m.rSquared)), ("samples", .int(m.count)),
                                      ("seconds", .number(r.seconds))]))
        }
        let m = r.metrics
        try write(.object([
            ("event", .string("end")), ("test_accuracy", .number(m.accuracy)), ("test_loss", .number(r.testLoss)),
            ("precision_macro", .number(m.precisionMacro)), ("recall_macro", .number(m.recallMacro)),
            ("f1_macro", .number(m.f1Macro)),
            ("precision_micro", .number(m.precisionMicro)), ("recall_micro", .number(m.recallMicro)),
            ("f1_micro", .number(m.f1Micro)),
            ("confusion_matrix", .array(m.rows.map { .array($0.map { .integer($0) }) })),
            ("class_names", .array(r.classNames.map { .string($0) })),
            ("seconds", .number(r.seconds)),
        ]))
    }
}
