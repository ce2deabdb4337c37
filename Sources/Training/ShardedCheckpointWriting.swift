import Collectives
import DurableFiles
import Foundation
import Optimizers
import SafeTensors
import Tensors

/// Sharded checkpoints written in parallel: the coordinator lays out the files — safetensors headers, the buffers,
/// state.json — in a temporary folder, every rank writes its own slice of the parameters and of the optimizer state
/// straight into them at their offsets, and once every rank has synced its part the coordinator renames the folder
/// into place. The files are a replicated run's, byte for byte (any world size and sharding reads them), complete
/// or absent; no rank gathers anything.
extension CheckpointWriter {
    /// Tests: every rank behaves as if it could not see the coordinator's folder (no shared file system).
    nonisolated(unsafe) static var pretendsFoldersAreInvisible = false

    /// Writes one checkpoint of a run sharded in `communicator.ownedShard` slices (`owned` on this rank, whose values
    /// hold the current parameters). Collective; returns the checkpoint's path on every rank, or nil when some rank
    /// cannot see the temporary folder (no shared file system: the caller gathers onto the coordinator instead).
    func writeSharded(state: CheckpointState, store: ParameterStore, optimizer: Optimizer, owned: Range<Int>,
                      model: ModelDescription, dataMetadata: [String: String], communicator: Communicator) throws -> String? {
        let name = Self.name(step: state.globalStep), final = "\(settings.directory)/\(name)"
        let layout = try communicator.onCoordinator { () -> ShardedFileLayout in
            let layout = ShardedFileLayout(store: store, optimizer: optimizer,
                                           modelMetadata: modelMetadata(model: model, dataMetadata: dataMetadata,
                                                                        dataset: state.configuration.dataset),
                                           optimizerMetadata: Self.optimizerMetadata(optimizer))
            let (temporary, _) = try makeTemporaryFolder(name)
            do {
                try layout.createFiles(in: temporary, store: store)
                try writeState(state, into: temporary)
            } catch {
                try? FileManager.default.removeItem(atPath: temporary)
                throw CheckpointError.cannotWrite(path: final, reason: "\(error)")
            }
            return layout.placed(in: temporary)
        }
        // Every rank learns the folder and where the data start from the coordinator (its headers hold the metadata).
        let placement = try ShardedFileLayout.Placement(communicator.broadcast(bytes: layout?.placement.encoded ?? [], root: 0))
        let sees = placement.isVisible() && !Self.pretendsFoldersAreInvisible
        guard try communicator.allGather([sees ? 1 : 0]).allSatisfy({ $0[0] == 1 }) else {
            if communicator.isCoordinator { try? FileManager.default.removeItem(atPath: placement.folder) }
            return nil
        }
        do {
            try communicator.collectively { try placement.writeSlice(owned, of: store, optimizer: optimizer) }
            try communicator.onCoordinator { try moveIntoPlace(placement.folder, final) }
        } catch {
            if communicator.isCoordinator { try? FileManager.default.removeItem(atPath: placement.folder) }
            throw error is CheckpointError ? error : CheckpointError.cannotWrite(path: final, reason: "\(error)")
        }
        try communicator.onCoordinator { try updatePointers(name: name, state: state) }
        return final
    }
}

/// A checkpoint's two files as `CheckpointWriter.write` lays them out: model.safetensors holds the parameters in arena
/// order, then the buffers, then the tied aliases (each a copy of a range of the arena); optimizer.safetensors each
/// state buffer's tensors in arena order, one buffer after the other.
struct ShardedFileLayout {
    let modelHeader: [UInt8]
    let modelBytes: Int
    let optimizerHeader: [UInt8]
    let optimizerBytes: Int
    var placement: Placement

    init(store: ParameterStore, optimizer: Optimizer, modelMetadata: [String: String], optimizerMetadata: [String: String]) {
        let model = store.namedTensors.map { ($0.slice.name, $0.slice.shape, TensorDType.f32) }
            + store.aliasTensors.map { ($0.name, $0.slice.shape, TensorDType.f32) }
        let states = optimizer.stateBuffers.flatMap { buffer in
            store.slices.map { ("\($0.name).\(buffer.name)", $0.shape, TensorDType.f32) }
        }
        (modelHeader, modelBytes) = SafeTensors.header(model, metadata: modelMetadata)
        (optimizerHeader, optimizerBytes) = SafeTensors.header(states, metadata: optimizerMetadata)
        placement = Placement(folder: "", modelData: modelHeader.count, optimizerData: optimizerHeader.count,
                              modelFileBytes: modelHeader.count + modelBytes,
                              optimizerFileBytes: optimizerHeader.count + optimizerBytes)
    }

    /// The coordinator's part: both files at their full size with their headers, and the buffers (the same on every
    /// rank). The rest of each file is the ranks' slices.
    func createFiles(in folder: String, store: ParameterStore) throws {
        for (file, header, size) in [(CheckpointFile.model, modelHeader, placement.modelFileBytes),
                                     (CheckpointFile.optimizer, optimizerHeader, placement.optimizerFileBytes)] {
            try writeDurably(header, to: "\(folder)/\(file)")
            guard truncate("\(folder)/\(file)", off_t(size)) == 0 else {
                throw FileWriteError(path: "\(folder)/\(file)", reason: String(cString: strerror(errno)))
            }
        }
        try writeParts(to: "\(folder)/\(CheckpointFile.model)") { write in
            let buffers = UnsafeRawBufferPointer(start: store.buffers.baseAddress, count: 4 * store.bufferValueCount)
            if !buffers.isEmpty { try write(buffers, modelHeader.count + 4 * store.count) }
        }
    }

    func placed(in folder: String) -> ShardedFileLayout {
        var copy = self
        copy.placement.folder = folder
        return copy
    }

    /// What every rank needs to write its slice: the folder, where each file's data start, the files' sizes.
    struct Placement {
        var folder: String
        let modelData: Int
        let optimizerData: Int
        let modelFileBytes: Int
        let optimizerFileBytes: Int

        init(folder: String, modelData: Int, optimizerData: Int, modelFileBytes: Int, optimizerFileBytes: Int) {
            self.folder = folder
            self.modelData = modelData
            self.optimizerData = optimizerData
            self.modelFileBytes = modelFileBytes
            self.optimizerFileBytes = optimizerFileBytes
        }

        /// "folder\nmodelData optimizerData modelFileBytes optimizerFileBytes" (a path holds no newline here:
        /// the checkpoint directory's own, with a name distrain made).
        var encoded: [UInt8] {
            Array("\(folder)\n\(modelData) \(optimizerData) \(modelFileBytes) \(optimizerFileBytes)".utf8)
        }

        init(_ bytes: [UInt8]) throws {
            let text = String(decoding: bytes, as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let numbers = lines.count == 2 ? lines[1].split(separator: " ").compactMap { Int($0) } : []
            guard numbers.count == 4 else { throw CheckpointError.cannotWrite(path: text, reason: "garbled placement") }
            self.init(folder: String(lines[0]), modelData: numbers[0], optimizerData: numbers[1], modelFileBytes: numbers[2],
                      optimizerFileBytes: numbers[3])
        }

        /// Whether this rank sees the coordinator's files at their full size (a shared file system).
        func isVisible() -> Bool {
            func size(_ file: String) -> Int? {
                var info = stat()
                return stat("\(folder)/\(file)", &info) == 0 ? Int(info.st_size) : nil
            }
            return size(CheckpointFile.model) == modelFileBytes && size(CheckpointFile.optimizer) == optimizerFileBytes
        }

        /// This rank's slice `owned` of the parameters (and of the tied aliases that copy them) and of every optimizer
        /// state buffer, written at their offsets and synced.
        func writeSlice(_ owned: Range<Int>, of store: ParameterStore, optimizer: Optimizer) throws {
            guard !owned.isEmpty else { return }
            let values = store.values.baseAddress!, float = MemoryLayout<Float>.stride
            try writeParts(to: "\(folder)/\(CheckpointFile.model)") { write in
                try write(UnsafeRawBufferPointer(start: values + owned.lowerBound, count: owned.count * float),
                          modelData + float * owned.lowerBound)
                var aliasStart = modelData + float * (store.count + store.bufferValueCount)
                for alias in store.aliases {
                    let range = alias.slice.offset..<(alias.slice.offset + alias.slice.count), part = range.clamped(to: owned)
                    if !part.isEmpty {
                        try write(UnsafeRawBufferPointer(start: values + part.lowerBound, count: part.count * float),
                                  aliasStart + float * (part.lowerBound - range.lowerBound))
                    }
                    aliasStart += float * range.count
                }
            }
            try writeParts(to: "\(folder)/\(CheckpointFile.optimizer)") { write in
                for (index, buffer) in optimizer.stateBuffers.enumerated() {
                    try write(UnsafeRawBufferPointer(buffer.values), optimizerData + float * (index * store.count + owned.lowerBound))
                }
            }
        }
    }
}
