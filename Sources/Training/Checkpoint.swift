import DurableFiles
import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import SafeTensors
import Tensors

/// Everything that can be wrong with a checkpoint, each naming the file or setting.
public enum CheckpointError: Error, CustomStringConvertible {
    case invalid(path: String, problem: String)
    case cannotWrite(path: String, reason: String)
    case notFound(path: String, hint: String)
    case incompatible(setting: String, checkpoint: String, requested: String)
    /// `--checkpoint-dir` cannot be used (not a directory, read-only, locked by another job, …).
    case unusableDirectory(path: String, problem: String)
    /// `evaluate` (or prediction) on data the checkpoint was not trained for.
    case wrongData(checkpoint: String, trainedOn: String, given: String)

    public var description: String {
        switch self {
        case let .invalid(path, problem): return "\(path): \(problem)"
        case let .cannotWrite(path, reason): return "cannot write checkpoint \(path): \(reason); check the disk and --checkpoint-dir"
        case let .notFound(path, hint): return "no checkpoint at \(path): \(hint)"
        case let .incompatible(setting, checkpoint, requested):
            return "cannot resume: the checkpoint was trained with \(setting) \(checkpoint) but this run asks for "
                + "\(requested); use the same \(setting) or a new --checkpoint-dir"
        case let .unusableDirectory(path, problem): return "--checkpoint-dir \(path) \(problem)"
        case let .wrongData(checkpoint, trainedOn, given):
            return "cannot evaluate \(checkpoint): it was trained on \(trainedOn), not on \(given); pass the dataset it was trained on"
        }
    }
}

/// The three files of a checkpoint directory.
public enum CheckpointFile {
    public static let model = "model.safetensors"
    public static let optimizer = "optimizer.safetensors"
    public static let state = "state.json"
    /// Beside the model of an int8 checkpoint (`distrain quantize`): how it was made and what it measured.
    public static let quantization = "quantization.json"
}

/// A checkpoint read from disk and validated as files (not yet against a model).
public struct LoadedCheckpoint {
    public let directory: String
    public let state: CheckpointState
    public let model: SafeTensorsFile
    public let optimizer: SafeTensorsFile

    /// Parses the three files' bytes (identical on every rank after a broadcast).
    public init(directory: String, stateBytes: [UInt8], modelBytes: [UInt8], optimizerBytes: [UInt8]) throws {
        try self.init(directory: directory, stateBytes: stateBytes) {
            (try SafeTensors.decode(modelBytes, path: "\(directory)/\(CheckpointFile.model)"),
             try SafeTensors.decode(optimizerBytes, path: "\(directory)/\(CheckpointFile.optimizer)"))
        }
    }

    /// Parses state.json's bytes, then (once it is valid) the two tensor files `tensorFiles` opens.
    init(directory: String, stateBytes: [UInt8],
         tensorFiles: () throws -> (model: SafeTensorsFile, optimizer: SafeTensorsFile)) throws {
        self.directory = directory
        let statePath = "\(directory)/\(CheckpointFile.state)"
        guard String(validating: stateBytes, as: UTF8.self) != nil else {
            throw CheckpointError.invalid(path: statePath, problem: "is not valid UTF-8")
        }
        do {
            state = try JSONDecoder().decode(CheckpointState.self, from: Data(stateBytes))
        } catch let DecodingError.keyNotFound(key, _) {
            throw CheckpointError.invalid(path: statePath, problem: "lacks the field \(key.stringValue)")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw CheckpointError.invalid(path: statePath, problem: "field "
                + "\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw CheckpointError.invalid(path: statePath, problem: "field "
                + "\(context.codingPath.map(\.stringValue).joined(separator: ".")) has an invalid value")
        } catch {
            throw CheckpointError.invalid(path: statePath, problem: "is not valid JSON")
        }
        guard state.formatVersion == 1 else {
            throw CheckpointError.invalid(path: statePath, problem: "has format version \(state.formatVersion); this "
                + "distrain reads version 1")
        }
        if let problem = state.rangeProblem {
            throw CheckpointError.invalid(path: statePath, problem: problem)
        }
        (model, optimizer) = try tensorFiles()
    }

    /// Every rank maps the files itself when every rank sees them as the coordinator does (one host, or a shared file
    /// system): a rank then reads only the tensors it restores, from pages the ranks of a host share. Otherwise the
    /// coordinator reads them and hands identical bytes to every rank (ranks on hosts without the files still resume,
    /// each holding the files whole for a moment). Every rank throws the same error.
    public static func load(directory: String, communicator: Communicator) throws -> LoadedCheckpoint {
        let names = [CheckpointFile.state, CheckpointFile.model, CheckpointFile.optimizer]
        let sizes = try communicator.allGather(names.map { Int64(fileSize("\(directory)/\($0)") ?? -1) })
        if sizes.allSatisfy({ $0 == sizes[0] && !$0.contains(-1) }) {
            return try communicator.collectively {
                let stateBytes = try readFiles(directory, only: [CheckpointFile.state])[0]
                return try LoadedCheckpoint(directory: directory, stateBytes: stateBytes) {
                    (try SafeTensors.map(path: "\(directory)/\(CheckpointFile.model)"),
                     try SafeTensors.map(path: "\(directory)/\(CheckpointFile.optimizer)"))
                }
            }
        }
        var files = try communicator.onCoordinator { try readFiles(directory) } ?? [[], [], []]
        for index in files.indices { files[index] = try communicator.broadcast(bytes: files[index], root: 0) }
        return try LoadedCheckpoint(directory: directory, stateBytes: files[0], modelBytes: files[1], optimizerBytes: files[2])
    }

    /// state.json, model.safetensors and optimizer.safetensors of a checkpoint folder, each named when missing.
    private static func readFiles(_ directory: String, only names: [String] = [CheckpointFile.state, CheckpointFile.model,
                                                                               CheckpointFile.optimizer]) throws -> [[UInt8]] {
        guard isDirectory(directory) else {
            throw CheckpointError.notFound(path: directory, hint: "pass a checkpoint directory (one holding "
                + "state.json) or --resume auto with --checkpoint-dir")
        }
        return try names.map { name in
            let path = "\(directory)/\(name)"
            guard pathExists(path) else {
                if pathExists("\(directory)/\(CheckpointFile.quantization)") {
                    throw CheckpointError.invalid(path: directory, problem: "is an int8 model written by "
                        + "distrain quantize; it serves evaluate, predict and compare — resume, prune and "
                        + "quantize need the float checkpoint it came from")
                }
                throw CheckpointError.invalid(path: path, problem: "is missing; the checkpoint is incomplete")
            }
            do { return try readFileBytes(path) } catch { throw CheckpointError.invalid(path: path, problem: "\(error)") }
        }
    }

    /// Copies the weights into `store`, checking every tensor's name and shape against the model.
    ///
    /// - Parameter range: the values to write (a `--shard parameters` rank's slice); each tensor is still read and
    ///   checked whole, one at a time, and the rest of the store is left as it was.
    public func restoreParameters(into store: ParameterStore, in range: Range<Int>? = nil) throws {
        try Self.restore(model, into: store, in: range)
    }

    /// `alsoHolding`: tensors the file holds beyond the store's, read by someone else (int8 weights and scales).
    static func restore(_ file: SafeTensorsFile, into store: ParameterStore, alsoHolding: Set<String> = [],
                        in range: Range<Int>? = nil) throws {
        let range = range ?? 0..<store.count
        let partial = range.count < store.count
        let largest = partial ? store.slices.map(\.count).max() ?? 0 : 0
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(largest, 1))  // [largest tensor]
        defer { scratch.deallocate() }
        /// A tensor's values as the file holds them: in the store, or (restoring a slice) in the scratch.
        func readWhole(_ name: String, _ slice: ParameterSlice, _ values: UnsafeMutableBufferPointer<Float>) throws
            -> UnsafeMutableBufferPointer<Float> {
            let destination = partial ? scratch.extracting(0..<slice.count) : values
            try file.read(name, shape: slice.shape, into: destination)
            return destination
        }
        for (slice, destination) in store.namedTensors {
            // Every rank checks every tensor, so that all reach the same verdict on a damaged file.
            let kept = (slice.offset..<(slice.offset + slice.count)).clamped(to: range)
            let whole = try readWhole(slice.name, slice, destination)
            try requireFinite(whole, tensor: slice.name, in: file)
            if partial && !kept.isEmpty {
                destination.extracting((kept.lowerBound - slice.offset)..<(kept.upperBound - slice.offset))
                    .update(fromContentsOf: whole.extracting((kept.lowerBound - slice.offset)..<(kept.upperBound - slice.offset)))
            }
        }
        // A tied parameter's second name (the head's weight) holds the same values when present, as in a
        // PyTorch state_dict; Hugging Face's files leave it out.
        for (name, slice, stored) in store.aliasTensors where file.entries[name] != nil {
            let values = partial ? try readWhole(slice.name, slice, stored) : stored
            let copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: slice.count)
            defer { copy.deallocate() }
            try file.read(name, shape: slice.shape, into: copy)
            guard copy.elementsEqual(values, by: { $0.bitPattern == $1.bitPattern }) else {
                throw CheckpointError.invalid(path: file.path, problem: "\(name) differs from \(slice.name), which it is "
                    + "tied to; write the same tensor under both names")
            }
        }
        let expected = Set(store.namedTensors.map(\.slice.name) + store.aliases.map(\.name)).union(alsoHolding)
        if let extra = file.entries.keys.sorted().first(where: { !expected.contains($0) }) {
            throw CheckpointError.invalid(path: file.path, problem: "holds tensor \(extra), which the model does not "
                + "have; is this checkpoint of another model?")
        }
    }

    /// Refuses NaN and infinite values: a model holding them still "evaluates" (ReLU hides NaNs) to
    /// chance accuracy, and training from them only spreads them.
    static func requireFinite(_ values: UnsafeMutableBufferPointer<Float>, tensor: String, in file: SafeTensorsFile) throws {
        guard values.isEmpty || allFinite(values.baseAddress!, count: values.count) else {
            throw CheckpointError.invalid(path: file.path, problem: "tensor \(tensor) holds NaN or infinite values; "
                + "the checkpoint is damaged — use an earlier one")
        }
    }

    /// Restores the optimizer's buffers and step count.
    public func restoreOptimizer(_ optimizer: Optimizer, store: ParameterStore) throws {
        guard optimizer.name == self.optimizer.metadata["optimizer"] else {
            throw CheckpointError.invalid(path: self.optimizer.path, problem: "holds "
                + "\(self.optimizer.metadata["optimizer"] ?? "no") optimizer state, this run uses \(optimizer.name)")
        }
        guard let steps = self.optimizer.metadata["step_count"].flatMap(Int.init), steps >= 0 else {
            throw CheckpointError.invalid(path: self.optimizer.path, problem: "lacks a valid step_count in __metadata__")
        }
        // The file holds every parameter's state; a sharded optimizer takes its slice of it.
        let owned = optimizer.ownedRange
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, store.slices.map(\.count).max() ?? 1))
        defer { scratch.deallocate() }
        for buffer in optimizer.stateBuffers {
            for slice in store.slices {
                let range = (slice.offset..<(slice.offset + slice.count)).clamped(to: owned)
                if range.isEmpty { continue }
                let tensor = scratch.extracting(0..<slice.count)
                try self.optimizer.read("\(slice.name).\(buffer.name)", shape: slice.shape, into: tensor)
                try Self.requireFinite(tensor, tensor: "\(slice.name).\(buffer.name)", in: self.optimizer)
                buffer.values.extracting((range.lowerBound - owned.lowerBound)..<(range.upperBound - owned.lowerBound))
                    .update(fromContentsOf: tensor.extracting((range.lowerBound - slice.offset)..<(range.upperBound - slice.offset)))
            }
        }
        optimizer.stepCount = steps
    }
}

/// The size of the regular file at `path`, nil when there is none.
func fileSize(_ path: String) -> Int? {
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int(info.st_size)
}

extension UnsafeMutableBufferPointer {
    /// A view of `range` of this buffer.
    func extracting(_ range: Range<Int>) -> UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(rebasing: self[range])
    }
}

/// How and where the coordinator writes checkpoints.
public struct CheckpointSettings: Sendable {
    public var directory: String
    /// Also write every N optimizer steps (nil: only after each epoch).
    public var everySteps: Int?
    /// Keep the newest K checkpoints (plus the best).
    public var keep: Int

    public init(directory: String, everySteps: Int? = nil, keep: Int = 3) {
        self.directory = directory
        self.everySteps = everySteps
        self.keep = keep
    }
}

/// What a checkpoint records about the model besides its tensors.
public struct ModelDescription: Sendable {
    /// The preset's name or the spec file's path.
    public var label: String
    /// The canonical spec (every module named and sized), from which `evaluate` and resume rebuild it.
    public var spec: String?
    /// Python source binding `model` to the equivalent torch.nn module.
    public var pytorchSource: String
    /// More `__metadata__` entries (a pruned model's mask and settings); the fields above take precedence.
    public var extraMetadata: [String: String] = [:]

    public init(label: String, spec: String?, pytorchSource: String) {
        self.label = label
        self.spec = spec
        self.pytorchSource = pytorchSource
    }
}

/// Writes complete checkpoints atomically into a directory and maintains `latest` and `best`.
///
/// Layout: DIR/step-00001234/{model.safetensors, optimizer.safetensors, state.json}, each written
/// into DIR/.tmp-step-00001234-PID, fsynced, then renamed; `latest` and `best` are small files naming
/// a checkpoint, replaced atomically after it is complete. A crash leaves only complete checkpoints.
public struct CheckpointWriter {
    public let settings: CheckpointSettings

    public init(settings: CheckpointSettings) { self.settings = settings }

    /// Name of the checkpoint written at `step`.
    public static func name(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Writes one checkpoint; returns its directory.
    @discardableResult
    ///
    /// - Parameter dataMetadata: what the data and objective record (input shape, classes, normalization,
    ///   task, …: `Dataset.checkpointMetadata`, `Objective.checkpointMetadata`).
    /// - Parameter optimizerState: the optimizer's state buffers whole, when the optimizer holds only a slice.
    public func write(state: CheckpointState, store: ParameterStore, optimizer: Optimizer, model: ModelDescription,
                      dataMetadata: [String: String],
                      optimizerState: [(name: String, values: UnsafeMutableBufferPointer<Float>)]? = nil) throws -> String {
        let name = Self.name(step: state.globalStep)
        let (temporary, final) = try makeTemporaryFolder(name)
        do {
            try writeDurably(modelFileBytes(store: store, model: model, dataMetadata: dataMetadata, dataset: state.configuration.dataset),
                             to: "\(temporary)/\(CheckpointFile.model)")
            try writeDurably(optimizerFileBytes(store: store, optimizer: optimizer, state: optimizerState ?? optimizer.stateBuffers),
                             to: "\(temporary)/\(CheckpointFile.optimizer)")
            try writeState(state, into: temporary)
            try moveIntoPlace(temporary, final)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            if error is CheckpointError { throw error }
            throw CheckpointError.cannotWrite(path: final, reason: "\(error)")
        }
        try updatePointers(name: name, state: state)
        return final
    }

    /// An empty `.tmp-NAME-PID` folder in the checkpoint directory (created if need be), and the checkpoint's path.
    func makeTemporaryFolder(_ name: String) throws -> (temporary: String, final: String) {
        let root = settings.directory
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.cannotWrite(path: root, reason: "cannot create the directory")
        }
        let final = "\(root)/\(name)", temporary = "\(root)/.tmp-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        } catch {
            throw CheckpointError.cannotWrite(path: temporary, reason: "\(error)")
        }
        return (temporary, final)
    }

    /// state.json, durably, into a checkpoint's temporary folder.
    func writeState(_ state: CheckpointState, into temporary: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeDurably(Array(try encoder.encode(state)), to: "\(temporary)/\(CheckpointFile.state)")
    }

    /// Renames a complete temporary folder to its checkpoint's name, durably.
    func moveIntoPlace(_ temporary: String, _ final: String) throws {
        syncDirectory(temporary)
        if pathExists(final) { try FileManager.default.removeItem(atPath: final) }
        guard rename(temporary, final) == 0 else {
            throw CheckpointError.cannotWrite(path: final, reason: String(cString: strerror(errno)))
        }
        syncDirectory(settings.directory)
    }

    /// After a checkpoint is in place: `best` (when it scores better), `latest`, and the older ones pruned.
    func updatePointers(name: String, state: CheckpointState) throws {
        let root = settings.directory
        if let score = state.selectionScore ?? state.testAccuracy, score > bestScore() ?? -.infinity {
            try writeFileAtomically(Array((name + "\n").utf8), to: "\(root)/best")
        }
        try writeFileAtomically(Array((name + "\n").utf8), to: "\(root)/latest")
        prune()
    }

    /// The selection score (or, for older checkpoints, the test accuracy) of the checkpoint `best` names.
    func bestScore() -> Double? {
        guard let name = Self.pointer("best", in: settings.directory),
              let data = FileManager.default.contents(atPath: "\(settings.directory)/\(name)/\(CheckpointFile.state)"),
              let state = try? JSONDecoder().decode(CheckpointState.self, from: data) else { return nil }
        return state.selectionScore ?? state.testAccuracy
    }

    /// Deletes all but the `keep` most recently written checkpoints, never the ones `best` and `latest`
    /// name. Write order, not step order: after a resume from an older checkpoint the abandoned run's
    /// higher steps must not outlive the continued run's. Each folder is first renamed to `.pruning-*`,
    /// so a prune killed midway leaves no partial `step-*` folder (the next job removes the rest).
    func prune() {
        let root = settings.directory
        let kept = Set([Self.pointer("best", in: root), Self.pointer("latest", in: root)].compactMap { $0 })
        let byWriteTime = Self.checkpointNamesByWriteTime(in: root)
        for name in byWriteTime.dropLast(settings.keep) where !kept.contains(name) {
            let doomed = "\(root)/.pruning-\(name)"
            if rename("\(root)/\(name)", doomed) == 0 { try? FileManager.default.removeItem(atPath: doomed) }
        }
    }

    /// Complete checkpoints in `root`, oldest written first (ties — file times are coarse — by step).
    static func checkpointNamesByWriteTime(in root: String) -> [String] {
        checkpointNames(in: root).map { ($0, writeTime("\(root)/\($0)")) }
            .sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.map(\.0)
    }

    /// When a checkpoint folder was completed (the modification time of its state.json), in nanoseconds.
    static func writeTime(_ folder: String) -> Int {
        var info = stat()
        guard stat("\(folder)/\(CheckpointFile.state)", &info) == 0 else { return 0 }
        return Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
    }

    /// Whether `name` is one `name(step:)` makes: "step-" and at least eight digits.
    public static func isCheckpointName(_ name: String) -> Bool {
        guard name.hasPrefix("step-") else { return false }
        let digits = name.dropFirst(5)
        return digits.count >= 8 && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Whether a checkpoint folder holds all three files (a folder a killed writer or prune left does not).
    static func isComplete(_ folder: String) -> Bool {
        [CheckpointFile.state, CheckpointFile.model, CheckpointFile.optimizer].allSatisfy { pathExists("\(folder)/\($0)") }
    }

    /// Complete checkpoints in `root`, by step, oldest first.
    public static func checkpointNames(in root: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { isCheckpointName($0) && isComplete("\(root)/\($0)") }.sorted()
    }

    /// The checkpoint a pointer file (`latest`, `best`) names, if it exists.
    public static func pointer(_ file: String, in root: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "\(root)/\(file)") else { return nil }
        let name = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard name.hasPrefix("step-"), !name.contains("/"), isComplete("\(root)/\(name)") else { return nil }
        return name
    }

    /// The directory `--resume` means: a checkpoint directory, or with "auto" the newest complete one
    /// in `checkpointRoot` (nil when there is none yet: a fresh start).
    public static func resolveResume(_ resume: String, checkpointRoot: String?) throws -> String? {
        guard resume == "auto" else {
            if pathExists("\(resume)/\(CheckpointFile.state)") || !isDirectory(resume) { return resume }
            // A checkpoint root was given: take its newest.
            if let name = pointer("latest", in: resume) ?? checkpointNames(in: resume).last { return "\(resume)/\(name)" }
            return resume
        }
        guard let root = checkpointRoot else {
            throw CheckpointError.notFound(path: "auto", hint: "--resume auto needs --checkpoint-dir DIR")
        }
        // `latest` names the checkpoint the run that last wrote here continued from: after a resume from an
        // older checkpoint, higher steps of the abandoned run may still exist and must not be taken.
        // Without `latest` (a writer killed before its first pointer), the last written one.
        guard let chosen = pointer("latest", in: root) ?? checkpointNamesByWriteTime(in: root).last else { return nil }
        return "\(root)/\(chosen)"
    }

    private func modelFileBytes(store: ParameterStore, model: ModelDescription, dataMetadata: [String: String],
                                dataset: String) -> [UInt8] {
        let tensors = store.namedTensors.map { TensorToWrite(name: $0.slice.name, shape: $0.slice.shape,
            values: UnsafeBufferPointer($0.values)) }
            + store.aliasTensors.map { TensorToWrite(name: $0.name, shape: $0.slice.shape, values: UnsafeBufferPointer($0.values)) }
        return SafeTensors.encode(tensors, metadata: modelMetadata(model: model, dataMetadata: dataMetadata, dataset: dataset))
    }

    /// model.safetensors' `__metadata__`.
    func modelMetadata(model: ModelDescription, dataMetadata: [String: String], dataset: String) -> [String: String] {
        var metadata: [String: String] = [
            "format": "pt",
            "model": model.label,
            "architecture": model.pytorchSource,
            "dataset": dataset,
            "distrain_version": distrainVersion,
        ]
        metadata.merge(dataMetadata) { own, _ in own }
        metadata.merge(model.extraMetadata) { own, _ in own }
        if let spec = model.spec { metadata["spec"] = spec }
        return metadata
    }

    private func optimizerFileBytes(store: ParameterStore, optimizer: Optimizer,
                                    state: [(name: String, values: UnsafeMutableBufferPointer<Float>)]) -> [UInt8] {
        var tensors: [TensorToWrite] = []
        for buffer in state {
            for slice in store.slices {
                tensors.append(TensorToWrite(name: "\(slice.name).\(buffer.name)", shape: slice.shape,
                                             values: UnsafeBufferPointer(
                                                 buffer.values.extracting(slice.offset..<(slice.offset + slice.count)))))
            }
        }
        return SafeTensors.encode(tensors, metadata: Self.optimizerMetadata(optimizer))
    }

    /// optimizer.safetensors' `__metadata__`.
    static func optimizerMetadata(_ optimizer: Optimizer) -> [String: String] {
        ["optimizer": optimizer.name, "step_count": String(optimizer.stepCount)]
    }
}

