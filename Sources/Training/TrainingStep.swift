import Collectives
import Datasets
import Layers
import Tensors

/// This rank's share of one global batch.
struct StepBatch {
    /// Epoch (0-based) and batch within it.
    let epoch: Int
    let index: Int
    /// Global indices of this rank's samples (may be empty when ranks outnumber the samples).
    let samples: UnsafeBufferPointer<Int32>
    /// Global indices of every sample of the global batch: the loss gradient carries 1 / its count.
    let global: UnsafeBufferPointer<Int32>

    var count: Int { samples.count }
    var globalCount: Int { global.count }

    /// Micro-batch `part` of `parts` (`--accumulate`) on `rank` of `ranks`: the rank's share of the global batch's
    /// part — so a micro-batch holds the same samples whatever the world size, and BatchNorm, which normalizes each
    /// micro-batch by its statistics, sees the same groups on N ranks as on one.
    func microBatch(_ part: Int, of parts: Int, rank: Int, ranks: Int) -> StepBatch {
        let range = Self.microShare(count: global.count, part: part, of: parts, rank: rank, ranks: ranks)
        return StepBatch(epoch: epoch, index: index, samples: UnsafeBufferPointer(rebasing: global[range]), global: global)
    }

    /// Offsets in a global batch of `count` samples of `rank`'s share of micro-batch `part`.
    static func microShare(count: Int, part: Int, of parts: Int, rank: Int, ranks: Int) -> Range<Int> {
        let micro = shardRange(count: count, parts: parts, part: part)
        let share = shardRange(count: micro.count, parts: ranks, part: rank)
        return (micro.lowerBound + share.lowerBound)..<(micro.lowerBound + share.upperBound)
    }
}

/// Running sums of an epoch on this rank (the coordinator also carries a resumed epoch's reduced sums).
struct EpochTotals {
    var lossSum = 0.0
    var correct = 0
    /// Samples whose update was applied, and all samples this rank processed.
    var seen = 0
    var locallySeen = 0
    var skipped = 0

    /// Counts one step: its loss totals, or nil when its update was skipped.
    mutating func add(_ loss: LossTotals?, samples: Int) {
        if let loss {
            lossSum += loss.lossSum
            correct += loss.correct
            seen += samples
        } else {
            skipped += 1
        }
        locallySeen += samples
    }

    var meanLoss: Double { seen > 0 ? lossSum / Double(seen) : 0 }
    var accuracy: Double { seen > 0 ? Double(correct) / Double(seen) : 0 }
}

/// The pieces of the training step (`Trainer.trainStep`); each enters its own phase.
extension Trainer {
    /// This rank's samples (normalized and, if configured, augmented by the dataset) into the model's
    /// input buffer, their targets alongside.
    func gather(_ batch: StepBatch) throws {
        tracker.enter(.data)
        let augmentation = configuration.augmentation.map { AugmentationKey($0, seed: configuration.seed, epoch: batch.epoch) }
        try data.train.gather(batch.samples, into: model.input, targets: targets, augmentation: augmentation)
    }

    /// Forward pass and the objective's loss; leaves dLoss/dOutputs (scaled by 1 / the global count of
    /// targets) for backward.
    func forwardAndLoss(_ batch: StepBatch) -> LossTotals {
        tracker.enter(.forward)
        fault?.injectIfDue(rank: communicator.rank, step: globalStep + 1, input: model.input, batch: batch.count)
        let context = ForwardContext(isTraining: true, seed: configuration.seed, epoch: batch.epoch,
                                     sampleIndices: batch.samples.baseAddress, sumOverRanks: layerSumOverRanks,
                                     addsReducedGradients: communicator.isCoordinator,
                                     sumsExactly: model.parameters.exactGradients != nil,
                                     sumExactlyOverRanks: layerSumExactlyOverRanks)
        guard batch.count > 0 else {
            // An empty share still takes part in the reductions of layers like BatchNorm, and in sharded gathers.
            if model.synchronizesOverRanks || shardedPasses != nil { model.forward(batch: 0, context: context) }
            return LossTotals(lossSum: 0, correct: 0)
        }
        let outputs = model.forward(batch: batch.count, context: context)
        return objective.loss(outputs: outputs, targets: targets, rows: batch.count, dOutputs: model.outputGradient,
                              gradientScale: 1 / Float(max(batch.globalCount * targetsPerSample, 1)))
    }

    /// Data, forward and backward over this rank's share in `--accumulate` micro-batches (one when not
    /// accumulating): the rank's shares of contiguous parts of the global batch, their gradients summed in the arena,
    /// every loss scaled by the whole global batch — so the sum is the step's mean gradient. Every rank runs all K
    /// parts (a part may be empty: layers that reduce over ranks still take part). Only the last part's backward may
    /// start the sum.
    func accumulateGradients(_ batch: StepBatch, startingSum: Bool) throws -> (loss: LossTotals, finite: Bool) {
        let parts = configuration.microBatches
        var total = LossTotals(lossSum: 0, correct: 0), finite = true
        for part in 0..<parts {
            let micro = parts == 1 ? batch : batch.microBatch(part, of: parts, rank: communicator.rank, ranks: communicator.size)
            try gather(micro)
            let loss = forwardAndLoss(micro)
            finite = backward(micro, startingSum: startingSum && part == parts - 1, zeroing: part == 0) && finite
            total.lossSum += loss.lossSum
            total.correct += loss.correct
        }
        return (total, finite)
    }

    /// Accumulates this rank's share of the mean gradient (after zeroing the gradients, unless `zeroing` is false:
    /// a later micro-batch). Returns whether they are finite when backward checks them (one rank), else true: the
    /// sum's pass checks. With `startingSum`, the gradient sum may start buckets between layers (`--overlap`); a
    /// backward recomputed after the sum (the non-finite path) must not.
    func backward(_ batch: StepBatch, startingSum: Bool = false, zeroing: Bool = true) -> Bool {
        tracker.enter(.backward)
        if startingSum { synchronizer.beginStep() }
        if zeroing {  // sharded gradients: only this rank's slice holds anything (the scatters zero the rest)
            if shardedPasses == nil {
                model.parameters.zeroGradients()
            } else {
                model.parameters.zeroGradients(in: optimizer.ownedRange)
            }
        }
        guard batch.count > 0 else {
            if model.synchronizesOverRanks || shardedPasses != nil { model.backward(batch: 0) }
            return true
        }
        return model.backward(batch: batch.count, checkingFiniteness: synchronizer.finitenessIsCheckedInBackward)
    }

    /// The rare path after a non-finite sum: finds which ranks produced it, then stops or skips as
    /// `--on-nonfinite` says, identically on every rank.
    func skipOrStopNonFiniteStep(_ batch: StepBatch, plan: BatchPlan) throws {
        // The sum replaced this rank's own gradients: recompute them (deterministic) to check its share,
        // so ordinary steps never pay a scan of their own gradients before the sum.
        var ownShareFinite = false
        // (Sharded gradients leave no rank its own share to check: the message says so.)
        if communicator.size > 1 && shardedPasses == nil {
            let (loss, _) = try accumulateGradients(batch, startingSum: false)
            ownShareFinite = loss.lossSum.isFinite && (model.parameters.exactGradients.map { $0.outOfRangeTerms == 0 }
                ?? allFinite(model.parameters.gradients.baseAddress!, count: model.parameters.count))
            tracker.enter(.optimizer)
        }
        let flags = try communicator.allGather([ownShareFinite ? 0 : 1]).map { $0[0] }
        let ranks = flags.indices.filter { flags[$0] == 1 }
        let global = plan.globalRange(batch: batch.index)
        func samples(of rank: Int) -> String {
            let parts = configuration.microBatches
            let shares = (0..<parts).map {
                StepBatch.microShare(count: global.count, part: $0, of: parts, rank: rank, ranks: communicator.size)
            }
            let indices = shares.flatMap { plan.order[(global.lowerBound + $0.lowerBound)..<(global.lowerBound + $0.upperBound)] }
            let shown = indices.prefix(16).map(String.init).joined(separator: ",")
            return indices.count > 16 ? "\(shown),… (\(indices.count) samples)" : shown
        }
        let culprits = shardedPasses != nil
            ? "the sharded gradient sum (no rank keeps its own share to check; --shard optimizer would name the rank)"
            : ranks.isEmpty
            ? "the sum of the gradients overflowed (every rank's own values were finite)"
            : ranks.map { "rank \($0) (global samples \(samples(of: $0)))" }.joined(separator: "; ")
        try nonFiniteGuard.skipOrStop(location: "at epoch \(batch.epoch + 1), step \(globalStep + 1)", culprits: culprits)
    }
}
