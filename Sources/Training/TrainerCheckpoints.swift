import Compression
import Collectives
import Foundation
import Tensors

/// Resuming from and writing checkpoints, and the run's start record.
extension Trainer {
    /// The settings a checkpoint cannot be resumed without (they change the model, data or step).
    static func definingSettings(_ c: TrainingConfiguration) -> [(String, String)] {
        [("dataset", c.dataset), ("--model", c.modelIdentity), ("--optimizer", c.optimizer.rawValue),
         ("--batch-size", String(c.globalBatchSize)), ("--seed", String(c.seed)),
         ("--train-limit", c.trainLimit.map(String.init) ?? "none"), ("--augment",
             c.augmentation.map { "pad \($0.padding) + flip" } ?? "false"),
         ("--val-split", c.validationSplit.map { "\($0)" } ?? "none"),
         ("--kfold fold", c.fold.map { "\($0) of \(c.foldCount ?? 0)" } ?? "none")]
    }

    /// Two specs' first differing module line, each with its file ("line 3 'Linear(64, 10)' of a.spec").
    static func firstDifference(_ saved: ModelFile, _ requested: ModelFile) -> (saved: String, requested: String) {
        let a = saved.significantLines, b = requested.significantLines
        let index = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        func describe(_ lines: [String], _ file: ModelFile) -> String {
            index < lines.count ? "\(file.path) with module line \(index + 1) '\(lines[index].prefix(80))'"
                : "\(file.path) with \(lines.count) module lines"
        }
        return (describe(a, saved), describe(b, requested))
    }

    /// Restores on every rank; every rank holds the same checkpoint bytes, so every rank reaches the
    /// same verdict, and agrees on it.
    func restoreCollectively(from checkpoint: LoadedCheckpoint) throws {
        try communicator.collectively { try restore(from: checkpoint) }
    }

    /// Loads weights, optimizer state and the position in training from a checkpoint.
    private func restore(from checkpoint: LoadedCheckpoint) throws {
        for (mine, theirs) in zip(Self.definingSettings(configuration), Self.definingSettings(checkpoint.state.configuration))
        where mine.1 != theirs.1 {
            if let ours = configuration.modelFile, let saved = checkpoint.state.configuration.modelFile, mine.0 == "--model" {
                throw CheckpointError.incompatible(setting: mine.0, checkpoint: Self.firstDifference(saved, ours).saved,
                                                   requested: Self.firstDifference(saved, ours).requested)
            }
            throw CheckpointError.incompatible(setting: mine.0, checkpoint: theirs.1, requested: mine.1)
        }
        let state = checkpoint.state
        let statePath = "\(checkpoint.directory)/\(CheckpointFile.state)"
        guard state.nextBatch <= stepsPerEpoch else {
            throw CheckpointError.invalid(path: statePath, problem: "nextBatch \(state.nextBatch) is beyond the "
                + "\(stepsPerEpoch) batches of an epoch")
        }
        // Batch size and data are the same (checked above), so the position is fully determined: every
        // epoch before `epoch` took stepsPerEpoch steps. Values are < 2^40 (checked on load): no overflow.
        let expectedStep = state.epoch * stepsPerEpoch + state.nextBatch
        let expectedSamples = min(state.nextBatch * configuration.globalBatchSize, data.train.count)
        // A language model counts correct predictions per position: up to targetsPerSample per window seen.
        guard state.globalStep == expectedStep, state.samplesDoneInEpoch == expectedSamples,
              state.partialSeen <= expectedSamples, state.partialCorrect <= state.partialSeen * targetsPerSample else {
            throw CheckpointError.invalid(path: statePath, problem: "its position is inconsistent (epoch "
                + "\(state.epoch), batch \(state.nextBatch), step \(state.globalStep), samples "
                + "\(state.samplesDoneInEpoch), \(state.partialCorrect) correct of \(state.partialSeen) seen, with "
                + "\(stepsPerEpoch) batches per epoch); the file is damaged — use "
                + "an earlier checkpoint")
        }
        // Stage 3 keeps only its slice: the rest of the values is never held.
        try checkpoint.restoreParameters(into: model.parameters,
                                         in: shardingStage == .parameters ? optimizer.ownedRange : nil)
        try checkpoint.restoreOptimizer(optimizer, store: model.parameters)
        let epochFinished = state.nextBatch == stepsPerEpoch
        startEpoch = epochFinished ? state.epoch + 1 : state.epoch
        startBatch = epochFinished ? 0 : state.nextBatch
        globalStep = state.globalStep
        selection = state.selection ?? SelectionState()
        if communicator.isCoordinator && startBatch > 0 {
            restoredPartial = EpochTotals(lossSum: state.partialLossSum, correct: state.partialCorrect, seen: state.partialSeen)
        }
    }

    /// Writes a checkpoint; every rank learns whether it worked. Sharded, every rank writes its slice in parallel
    /// (`writeSharded`); otherwise — or without a file system every rank sees — the coordinator writes it all.
    func writeCheckpoint(epoch: Int, nextBatch: Int, samplesDone: Int, partial: EpochTotals, testAccuracy: Double?,
                         selectionScore: Double? = nil) throws {
        guard let writer = checkpointWriter else { return }
        tracker.enter(.checkpoint)
        var sums = [partial.lossSum, Double(partial.correct), Double(partial.seen)]
        if nextBatch > 0 { try communicator.allreduce(&sums, .sum) }
        let start = monotonicSeconds()
        let state = CheckpointState(
            distrainVersion: distrainVersion, epoch: epoch, nextBatch: nextBatch, globalStep: globalStep,
            samplesDoneInEpoch: samplesDone, seed: configuration.seed, partialLossSum: sums[0],
            partialCorrect: Int(sums[1]), partialSeen: Int(sums[2]), testAccuracy: testAccuracy,
            configuration: configuration, worldSize: communicator.size,
            writtenAt: Double(time(nil)), selectionScore: selectionScore, selection: selection)
        if isSharded, let path = try writer.writeSharded(state: state, store: model.parameters, optimizer: optimizer,
                                                         owned: optimizer.ownedRange, model: modelDescription,
                                                         dataMetadata: checkpointDataMetadata, communicator: communicator) {
            reporter?.checkpointWritten(path: path, seconds: monotonicSeconds() - start)
            lastCheckpoint = path
            return
        }
        let fullState = try gatheredOptimizerState()
        defer { fullState?.forEach { $0.values.deallocate() } }
        try gatherValuesOnCoordinator()
        defer { shardedPasses?.releaseOtherSlices() }
        try communicator.onCoordinator {
            let path = try writer.write(state: state, store: model.parameters, optimizer: optimizer,
                                        model: modelDescription, dataMetadata: checkpointDataMetadata,
                                        optimizerState: fullState)
            reporter?.checkpointWritten(path: path, seconds: monotonicSeconds() - start)
            lastCheckpoint = path
        }
        lastCheckpoint = try communicator.broadcast(bytes: Array((lastCheckpoint ?? "").utf8), root: 0)
            .withUnsafeBufferPointer { $0.isEmpty ? nil : String(decoding: $0, as: UTF8.self) }
    }

    /// With a sharded optimizer: every state buffer whole, on the coordinator (nil elsewhere, and when not sharded),
    /// so that checkpoints are the same files whatever the world size or sharding. Collective.
    private func gatheredOptimizerState() throws -> [(name: String, values: UnsafeMutableBufferPointer<Float>)]? {
        guard isSharded else { return nil }
        var gathered: [(name: String, values: UnsafeMutableBufferPointer<Float>)] = []
        for buffer in optimizer.stateBuffers {
            let full = communicator.isCoordinator ? UnsafeMutableBufferPointer<Float>.allocate(capacity: model.parameters.count) : nil
            try communicator.gatherShards(UnsafeBufferPointer(buffer.values), count: model.parameters.count, into: full)
            if let full { gathered.append((buffer.name, full)) }
        }
        return communicator.isCoordinator ? gathered : nil
    }

    /// Stage 3: the whole parameter values on the coordinator, for the checkpoint (released again after it).
    private func gatherValuesOnCoordinator() throws {
        guard shardingStage == .parameters else { return }
        let values = model.parameters.values, owned = optimizer.ownedRange
        // In place: each piece of the values is written only after the owned values it reads.
        try communicator.gatherShards(UnsafeBufferPointer(rebasing: values[owned]), count: values.count,
                                      into: communicator.isCoordinator ? values : nil)
    }

    /// A pruned checkpoint (`distrain prune`) keeps its mask when training continues from it: the mask
    /// and the pruning settings come back from its metadata, so the zeros stay zero and stay recorded.
    func restorePruning(from checkpoint: LoadedCheckpoint) throws {
        guard let encoded = checkpoint.model.metadata["pruning_mask"] else { return }
        guard let mask = PruningMask(encoded: encoded, count: model.parameters.count) else {
            throw CheckpointError.invalid(path: checkpoint.model.path, problem: "has a pruning_mask that does not fit "
                + "the model's \(model.parameters.count) parameters; the metadata is damaged — use another checkpoint")
        }
        checkpointMetadata = checkpoint.model.metadata.filter { $0.key.hasPrefix("pruning_") || $0.key == "pruned_from" }
        updateMask = mask.keep
        installUpdateMask()  // (observers do not run while the initializer is still running)
    }

    /// What a checkpoint records of the data and the objective, to read inputs again the same way.
    var checkpointDataMetadata: [String: String] {
        data.allCheckpointMetadata.merging(objective.checkpointMetadata) { own, _ in own }
    }

    /// The model as checkpoints record it.
    var modelDescription: ModelDescription {
        let rows = model.specRows
        let built = rows.map { rows in (spec: rows.canonicalSpec, python: rows.pytorchSource) }
        var description = ModelDescription(label: configuration.modelLabel, spec: built?.spec,
                                           pytorchSource: built?.python ?? configuration.model.pytorchEquivalent)
        description.extraMetadata = checkpointMetadata
        if let tta = configuration.testTimeAugmentation, tta != .none {
            description.extraMetadata[CheckpointModel.testTimeAugmentationKey] = tta.rawValue
        }
        return description
    }

    /// What the run header and the metrics' start event say.
    var startRecord: StartRecord {
        var record = StartRecord(
            dataset: data.name, model: configuration.modelLabel, modelSummary: model.summary,
            parameters: model.parameters.count, worldSize: communicator.size,
            globalBatch: configuration.globalBatchSize, perRankBatch: perRankBatch,
            optimizer: optimizer.name, learningRate: configuration.learningRate,
            schedule: configuration.schedule.rawValue, epochs: configuration.epochs, seed: configuration.seed,
            augment: configuration.augment, augmentPadding: configuration.augmentation?.padding ?? 0,
            threadsPerRank: threadsPerRank, blas: BLAS.summary, communicator: communicator.kind,
            gradientSum: gradientSumSummary,
            trainSamples: data.train.count, testSamples: data.test.count, stepsPerEpoch: stepsPerEpoch)
        record.task = objective.task
        record.trainingMetricNames = objective.trainingMetrics(lossSum: 0, correct: 0, targetCount: 0).map(\.name)
        let noSums = [Double](repeating: 0, count: objective.evaluationSumCount)
        record.evaluationMetricNames = objective.evaluation(sums: noSums).metrics.map(\.name)
        record.testTimeAugmentation = configuration.evaluationAugmentation
        record.evaluationInterval = configuration.evaluationInterval ?? 1
        record.microBatches = configuration.microBatches
        record.sharding = shardingStage?.rawValue
        return record
    }
}
