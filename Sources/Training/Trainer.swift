import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import Tensors

/// The one place that knows the order of a training step (DESIGN.md): gather, forward and loss,
/// backward, sum over ranks, finiteness decision, update. The same code runs on one rank or many.
public final class Trainer {
    public let configuration: TrainingConfiguration
    /// The splits, ready to gather (cut and, for images, normalized by the training split's statistics).
    public let data: TrainingData
    /// What the model is trained to do: its loss, evaluation sums and metrics.
    public let objective: any Objective
    public let communicator: Communicator
    public let model: Sequential
    public let optimizer: Optimizer
    public let threadsPerRank: Int
    /// Where this rank is: the watchdog reads it, and its phase durations are the run's one clock
    /// (epoch metrics and `distrain bench` both read them).
    public let tracker: PhaseTracker
    let reporter: TrainingReporter?
    let synchronizer: GradientSynchronizer
    let checkpointWriter: CheckpointWriter?
    /// Read once: the step must not build them (building allocates in debug builds).
    let schedule: LearningRateSchedule
    /// Targets per sample (1; a window's length for tokens): the gradient's scale counts targets.
    let targetsPerSample: Int
    /// Whether the optimizer keeps only this rank's slice (`--shard`): its update is all-gathered (stages 1 and 2)
    /// or stays there until a layer gathers it (stage 3).
    let isSharded: Bool
    /// What is sharded (nil: nothing — one rank, or a replicated run).
    /// The ZeRO stage this run shards at (nil: replicated, also for `--shard` on one rank).
    public let shardingStage: ShardingStage?
    /// Stages 2 and 3: the model's pass observer that scatters gradients and gathers parameters layer by layer.
    let shardedPasses: ShardedPasses?
    /// Stages 2 and 3: the squared gradient norm as it is summed over ranks (clipping; preallocated).
    private let normScratch = UnsafeMutablePointer<Double>.allocate(capacity: 1)
    /// The coordinator's SGEMM speed on one rank's threads, FLOP/s, when the run reports MFU (language models).
    private let peakFlopsPerRank: Double?
    /// Whether the objective's training metrics include an accuracy (read once for the progress line).
    let reportsAccuracy: Bool
    let fault: Fault?
    var nonFiniteGuard: NonFiniteGuard
    /// Targets of this rank's share of the current batch (and the dataset's gather scratch).
    let targets: TargetBuffer
    /// What layers like BatchNorm call to sum their statistics over ranks (nil alone): made once, so the
    /// step allocates nothing. A failure is kept and thrown after the pass (`throwIfReductionFailed`).
    private(set) var layerSumOverRanks: ((UnsafeMutableBufferPointer<Double>) -> Void)?
    /// `--exact-sums`: the same for layers' exact integer sums (nil alone or without the flag).
    private(set) var layerSumExactlyOverRanks: ((UnsafeMutableBufferPointer<Int64>) -> Void)?
    var reductionError: Error?
    /// The stop-signal flag as it is reduced over ranks (1 value, preallocated: the step must not allocate).
    private let stopFlag = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
    /// Ranks agree on a stop signal every this many steps (one 8-byte allreduce); alone, every step.
    static let stopCheckInterval = 16
    /// Whether this run reacts to `StopSignals` (the CLI installs them; tests and library users opt in).
    public var stopsOnSignals = false

    /// The test-set evaluation after the last epoch that scored it (and at the end of `run`).
    public private(set) var lastEvaluation: EvaluationResult?
    /// The validation evaluation after the last completed epoch (with `--val-split` or `--kfold`).
    public private(set) var lastValidation: EvaluationResult?
    /// Epochs completed so far, resumed ones included.
    public var epochsCompleted: Int { stepsPerEpoch > 0 ? globalStep / stepsPerEpoch : 0 }
    /// Where training continues: epoch, first batch in it, optimizer steps taken so far.
    public internal(set) var startEpoch = 0
    var startBatch = 0
    public internal(set) var globalStep = 0
    /// Reduced running sums of a resumed, unfinished epoch (counted once, on the coordinator).
    var restoredPartial = EpochTotals()
    /// Pruning: one value per parameter (1 kept, 0 pruned); after every update the parameters and the
    /// optimizer's state are multiplied by it, so pruned weights and their state stay exactly zero on every
    /// rank. Setting it applies it at once.
    public var updateMask: [Float]? {
        didSet { installUpdateMask() }
    }
    private var maskBuffer: UnsafeMutableBufferPointer<Float>?
    private var maskedState: [UnsafeMutableBufferPointer<Float>] = []

    /// Copies `updateMask` where the step reads it and applies it at once (idempotent).
    func installUpdateMask() {
        maskBuffer?.deallocate()
        maskBuffer = updateMask.map { mask in
            precondition(mask.count == model.parameters.count, "mask of \(mask.count) for \(model.parameters.count) parameters")
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: mask.count)
            _ = buffer.initialize(from: mask)
            return buffer
        }
        maskedState = optimizer.stateBuffers.map(\.values)  // read once: building the list allocates
        applyUpdateMask()
    }

    /// Parameters and optimizer state ← themselves ⊙ mask (no allocation: the step calls it). The state covers the
    /// optimizer's own range; at stage 3 so do the values (the rest are another rank's).
    func applyUpdateMask() {
        guard let mask = maskBuffer else { return }
        let values = model.parameters.values, owned = optimizer.ownedRange
        for i in (shardingStage == .parameters ? owned : 0..<values.count) { values[i] *= mask[i] }
        for b in 0..<maskedState.count {
            let state = maskedState[b]
            for i in 0..<state.count { state[i] *= mask[owned.lowerBound + i] }
        }
    }

    /// Global-norm clipping (`--clip-grad-norm`); sharded gradients (stages 2, 3) sum their slices' squares over ranks.
    func clipGradients(maximumNorm: Float) throws {
        guard shardedPasses != nil else {
            GradientClipping.clip(model.parameters, maximumNorm: maximumNorm)
            return
        }
        let owned = optimizer.ownedRange, gradients = model.parameters.gradients.baseAddress! + owned.lowerBound
        normScratch[0] = GradientClipping.sumOfSquares(gradients, count: owned.count)
        try communicator.allreduce(UnsafeMutableBufferPointer(start: normScratch, count: 1), .sum)
        GradientClipping.scale(gradients, count: owned.count, norm: normScratch[0].squareRoot(), maximumNorm: maximumNorm)
    }

    /// More entries for every checkpoint's model metadata (pruning records its mask and settings here).
    public var checkpointMetadata: [String: String] = [:]

    /// The checkpoint written last (every rank knows it), if any.
    public internal(set) var lastCheckpoint: String?
    /// Model selection's state: best monitored score, patience counters, plateau scale (checkpointed).
    public internal(set) var selection = SelectionState()
    /// Set when `--early-stop` ended the run.
    public internal(set) var stoppedEarly = false
    /// Updates dropped by `--on-nonfinite skip`.
    public var skippedSteps: Int { nonFiniteGuard.skippedSteps }

    /// Prepares to train `model` with `optimizer` on `data` under `objective` (by default the one the
    /// data's targets call for) and checks that every rank agrees on them. Collective: every rank
    /// constructs its Trainer at the same point.
    ///
    /// - Parameter model: built for the data's sample shape and the objective's output; rank 0's
    ///   parameters are broadcast.
    /// - Parameter configuration: epochs, batch, schedule, seed and the rest (its `model` and optimizer
    ///   fields label the run and its checkpoints).
    /// - Parameter reporter: the coordinator's reporter; ignored on other ranks.
    /// - Parameter gradientSum: how gradients travel between ranks (`--gradient-sum`).
    /// - Parameter wire: their format between hosts (`--wire`; fp16/bf16 are lossy).
    /// - Parameter overlap: start each bucket's sum between hosts during backward (`--overlap`).
    public init(model: Sequential, optimizer: Optimizer, data: TrainingData, objective: (any Objective)? = nil,
                configuration: TrainingConfiguration, communicator: Communicator, threadsPerRank: Int = 1,
                reporter: TrainingReporter? = nil, checkpointing: CheckpointSettings? = nil, resume: LoadedCheckpoint? = nil,
                tracker: PhaseTracker = PhaseTracker(), fault: Fault? = nil, gradientSum: SumMethod = .auto,
                wire: WireFormat = .fp32, overlap: Bool = false) throws {
        let objective = objective ?? defaultObjective(for: data.train.targetKind, labelSmoothing: configuration.labelSmoothing ?? 0)
        precondition(model.inputShape == data.train.sampleShape && model.outputCount == objective.outputCount,
                     "the model takes \(model.inputShape) → \(model.outputCount), the data is \(data.train.sampleShape), "
                        + "the objective wants \(objective.outputShape)")
        var configuration = configuration
        if let maxSteps = configuration.maxSteps {  // training by steps: as many epochs as they reach into
            let perEpoch = max(1, (data.train.count + configuration.globalBatchSize - 1) / configuration.globalBatchSize)
            configuration.epochs = (maxSteps + perEpoch - 1) / perEpoch
        }
        self.configuration = configuration
        self.data = data
        self.objective = objective
        self.communicator = communicator
        self.model = model
        self.optimizer = optimizer
        self.threadsPerRank = threadsPerRank
        self.tracker = tracker
        self.fault = fault
        self.reporter = communicator.isCoordinator ? reporter : nil
        isSharded = optimizer.ownedRange != 0..<model.parameters.count
        precondition(!isSharded || optimizer.ownedRange == communicator.ownedShard(of: model.parameters.count),
                     "a sharded optimizer must own this rank's slice \(communicator.ownedShard(of: model.parameters.count)), "
                        + "it owns \(optimizer.ownedRange)")
        shardingStage = isSharded ? configuration.sharding ?? .optimizer : nil
        let shardsGradients = shardingStage != nil && shardingStage != .optimizer
        let synchronizer = try GradientSynchronizer(communicator: communicator, model: model,
                                                    bucketMegabytes: configuration.bucketMegabytes, method: gradientSum,
                                                    wire: wire, overlap: overlap,
                                                    shardedGradients: shardsGradients ? optimizer.ownedRange : nil,
                                                    tracker: tracker)
        self.synchronizer = synchronizer
        shardedPasses = shardingStage.flatMap { stage in
            stage == .optimizer ? nil : ShardedPasses(model: model, communicator: communicator, stage: stage)
        }
        model.passObserver = shardedPasses
        checkpointWriter = checkpointing.map(CheckpointWriter.init)
        schedule = configuration.learningRateSchedule
        targetsPerSample = objective.targetsPerSample
        let reportsUtilization = configuration.reportsModelFlopsUtilization == true && communicator.isCoordinator
        peakFlopsPerRank = reportsUtilization ? measureSgemmGigaflops() * 1e9 : nil
        reportsAccuracy = objective.trainingMetrics(lossSum: 0, correct: 0, targetCount: 0).value("accuracy") != nil
        nonFiniteGuard = NonFiniteGuard(policy: configuration.onNonFinite, isCoordinator: communicator.isCoordinator)
        // With --accumulate K the buffers hold one micro-batch: a K-th of the share (the point of accumulating).
        let microBatch = (Trainer.perRankBatch(configuration.globalBatchSize, samples: data.train.count,
                                               ranks: communicator.size) + configuration.microBatches - 1) / configuration.microBatches
        targets = TargetBuffer(rows: microBatch, for: data.train)
        if communicator.size > 1 && model.synchronizesOverRanks {
            layerSumOverRanks = sumOverRanksKeepingFailures()
        }
        if configuration.exactSums == true {
            try Self.requireExactSums(model: model, sharded: shardsGradients, wire: wire, overlap: overlap)
            model.parameters.exactGradients = ExactSums(count: model.parameters.count, scratchCount: model.exactSumsScratchCount)
            if communicator.size > 1 { layerSumExactlyOverRanks = sumOverRanksKeepingFailures() }
        }
        if configuration.recompute == true, let problem = model.recomputeResidualBlocks() {
            throw RecomputeError(reason: problem)
        }
        model.reserve(batchCapacity: microBatch)
        tracker.enter(.startup)
        try checkAgreement()
        // Rank 0's parameters (and buffers) are the truth, whatever the others computed. At stage 3 every rank
        // initialized (or loaded) its own slice from the same agreed seed or file, and none holds the whole values.
        let initialized = model.parameters.initializedRange ?? 0..<model.parameters.count
        precondition(initialized.count == model.parameters.count
                        || shardingStage == .parameters && initialized == optimizer.ownedRange,
                     "the model initialized values \(initialized) only; that is --shard parameters' slice for this rank")
        if shardingStage != .parameters {
            try communicator.broadcast(UnsafeMutableRawBufferPointer(model.parameters.values), root: 0)
        }
        try communicator.broadcast(UnsafeMutableRawBufferPointer(model.parameters.buffers), root: 0)
        if let resume {
            try restoreCollectively(from: resume)
            try restorePruning(from: resume)
        }
        shardedPasses?.releaseOtherSlices()  // stage 3: only this rank's slice of the values stays
    }

    /// An image or table dataset, cut and normalized as `configuration` says (limits, validation split or
    /// fold), under the objective its targets call for.
    public convenience init(model: Sequential, optimizer: Optimizer, data: DatasetSplits, configuration: TrainingConfiguration,
                            communicator: Communicator, threadsPerRank: Int = 1, reporter: TrainingReporter? = nil,
                            checkpointing: CheckpointSettings? = nil, resume: LoadedCheckpoint? = nil,
                            tracker: PhaseTracker = PhaseTracker(), fault: Fault? = nil, gradientSum: SumMethod = .auto,
                            wire: WireFormat = .fp32, overlap: Bool = false) throws {
        try self.init(model: model, optimizer: optimizer, data: try data.cut(configuration.dataCut), configuration: configuration,
                      communicator: communicator, threadsPerRank: threadsPerRank, reporter: reporter, checkpointing: checkpointing,
                      resume: resume, tracker: tracker, fault: fault, gradientSum: gradientSum, wire: wire, overlap: overlap)
    }

    deinit {
        normScratch.deallocate()
        stopFlag.deallocate()
        maskBuffer?.deallocate()
    }

    /// A layer's sum over ranks inside a pass (which cannot throw): a failure is kept, and thrown after the pass.
    private func sumOverRanksKeepingFailures<T: CollectiveScalar>() -> (UnsafeMutableBufferPointer<T>) -> Void {
        { [unowned self] values in
            do { try communicator.allreduce(values, .sum) } catch { if reductionError == nil { reductionError = error } }
        }
    }

    /// Refuses to start unless config, data sizes and model shapes match on every rank, naming what differs.
    private func checkAgreement() throws {
        if communicator.size == 1 { return }
        try communicator.requireSameSettings(configuration)
        try communicator.requireAgreement(on: [
            ("the configuration (flags)", Int64(bitPattern: configuration.fingerprint)),
            ("the number of training samples", Int64(data.train.count)),
            ("the number of test samples", Int64(data.test.count)),
            ("the parameter shapes", Int64(bitPattern: model.parameters.shapeFingerprint)),
            ("the training data checksum", Int64(bitPattern: try data.train.checksum())),
            ("the test data checksum", Int64(bitPattern: try data.test.checksum())),
            ("the executable (CRC-32 of the distrain binary)", Int64(executableChecksum)),
        ], namingHosts: true)
    }

    /// Per-rank batch of the largest share.
    public var perRankBatch: Int {
        Trainer.perRankBatch(configuration.globalBatchSize, samples: data.train.count, ranks: communicator.size)
    }

    /// The largest share of a batch one rank can get: buffers follow what can be used, not the flag
    /// (`--batch-size 1000000000` on 500 samples reserves room for 500).
    static func perRankBatch(_ globalBatch: Int, samples: Int, ranks: Int) -> Int {
        (max(min(globalBatch, samples), 1) + ranks - 1) / ranks
    }

    /// Optimizer steps in one epoch.
    var stepsPerEpoch: Int { (data.train.count + configuration.globalBatchSize - 1) / configuration.globalBatchSize }

    /// Trains for the configured epochs, evaluating after each; returns the final evaluation.
    @discardableResult
    public func run() throws -> EvaluationResult {
        let startTime = monotonicSeconds()
        try reporter?.started(startRecord)
        defer { tracker.enter(.finished) }
        stoppedEarly = selection.shouldStop(patience: configuration.earlyStopPatience)
        for epoch in startEpoch..<max(startEpoch, configuration.epochs) where !stoppedEarly {
            // A signal during the previous epoch's last step or evaluation: its checkpoint is written.
            if stopsOnSignals, let signal = try agreedStopSignal(force: true) {
                throw TrainingStopped(signal: signal, epoch: epoch, step: globalStep, checkpoint: lastCheckpoint,
                                      checkpointing: checkpointWriter != nil)
            }
            try trainEpoch(epoch)
        }
        if lastValidation == nil, let validationSet = data.validation {  // nothing left to train (a finished run resumed)
            tracker.enter(.evaluation)
            lastValidation = try evaluate(validationSet)
        }
        // The test set is scored here when epochs did not (a validation split, or zero epochs to go).
        let final = try lastEvaluation ?? evaluateTestSet()
        lastEvaluation = final
        try reporter?.finished(FinalRecord(result: final, classNames: data.test.classNames, seconds: monotonicSeconds() - startTime))
        return final
    }

    /// One pass over the training set, then the exact evaluation and the epoch's checkpoint.
    public func trainEpoch(_ epoch: Int) throws {
        let epochStart = monotonicSeconds()
        let plan = BatchPlan(sampleCount: data.train.count, globalBatchSize: configuration.globalBatchSize,
                             worldSize: communicator.size, rank: communicator.rank,
                             seed: configuration.seed, epoch: epoch)
        let firstBatch = epoch == startEpoch ? startBatch : 0
        try communicator.requireAgreement(on: [("the epoch", Int64(epoch)),
                                               ("the number of batches in the epoch", Int64(plan.batchCount)),
                                               ("the first batch of the epoch", Int64(firstBatch))])
        var totals = epoch == startEpoch ? restoredPartial : EpochTotals()
        var learningRate = configuration.learningRate
        let phasesBefore = tracker.totalSeconds()
        try plan.order.withUnsafeBufferPointer { order in
            for index in firstBatch..<plan.batchCount {
                if let maxSteps = configuration.maxSteps, globalStep >= maxSteps { break }  // --max-steps reached
                let batch = StepBatch(epoch: epoch, index: index,
                    samples: UnsafeBufferPointer(rebasing: order[plan.localRange(batch: index)]),
                    global: UnsafeBufferPointer(rebasing: order[plan.globalRange(batch: index)]))
                tracker.setPosition(epoch: epoch, step: globalStep + 1)
                learningRate = schedule.rate(epoch: epoch, stepInEpoch: index, stepsPerEpoch: plan.batchCount) * selection.learningRateScale
                totals.add(try trainStep(batch, learningRate: learningRate, plan: plan), samples: batch.count)
                globalStep += 1
                try afterStep(batch, plan: plan, totals: totals)
                if stopsOnSignals, index + 1 < plan.batchCount, let signal = try agreedStopSignal(force: false) {
                    try writeCheckpoint(epoch: epoch, nextBatch: index + 1, samplesDone: plan.globalRange(batch: index).upperBound,
                                        partial: totals, testAccuracy: nil)
                    throw TrainingStopped(signal: signal, epoch: epoch + 1, step: globalStep, checkpoint: lastCheckpoint,
                                          checkpointing: checkpointWriter != nil)
                }
            }
        }
        try finishEpoch(epoch, totals: totals, learningRate: learningRate, startedAt: epochStart,
                        phases: tracker.totalSeconds().since(phasesBefore))
    }

    /// One optimizer step on this rank's share of a global batch: the recipe every rank follows.
    /// Returns the share's loss totals, or nil when `--on-nonfinite skip` dropped the update.
    func trainStep(_ batch: StepBatch, learningRate: Float, plan: BatchPlan) throws -> LossTotals? {
        // data, forward (logits, loss, dLoss/dLogits) and backward (this rank's share of the mean gradient), per micro-batch
        let (loss, finiteHere) = try accumulateGradients(batch, startingSum: true)
        if let failure = reductionError { throw failure }                // a layer's reduction over ranks failed
        try shardedPasses?.throwIfFailed()                                // (a layer's gather or scatter, sharded)
        let finite = try model.parameters.exactGradients.map(sumExactly)  // gradient sum over ranks
            ?? synchronizer.sum(finiteAfterBackward: finiteHere)
        tracker.enter(.optimizer)
        if !finite {                                                      // finiteness: the same verdict on every rank
            try skipOrStopNonFiniteStep(batch, plan: plan)
            return nil
        }
        nonFiniteGuard.stepWasFinite()
        if let maximum = configuration.clipGradientNorm {                 // clipping: the same factor on every rank
            try clipGradients(maximumNorm: maximum)
        }
        optimizer.update(model.parameters, learningRate: learningRate)    // update (this rank's slice when sharded)
        if isSharded && shardingStage != .parameters {                    // stages 1, 2: every rank gets every slice
            tracker.enter(.gradientSum)
            try communicator.allGatherShards(model.parameters.values)
            tracker.enter(.optimizer)
        }
        applyUpdateMask()                                                 // (pruning: masked weights stay zero)
        return loss
    }

    /// The stop signal any rank received, decided identically on every rank at the same step: alone at
    /// every step, with others every `stopCheckInterval` steps (or when `force`d) by one tiny allreduce.
    private func agreedStopSignal(force: Bool) throws -> Int32? {
        if communicator.size == 1 { return StopSignals.pending == 0 ? nil : StopSignals.pending }
        guard force || globalStep % Self.stopCheckInterval == 0 else { return nil }
        stopFlag[0] = Int64(StopSignals.pending)
        try communicator.allreduce(UnsafeMutableBufferPointer(start: stopFlag, count: 1), .max)
        return stopFlag[0] == 0 ? nil : Int32(stopFlag[0])
    }

    /// Runs up to `count` optimizer steps through the data order from the first epoch, step i at rate
    /// `learningRate(i)`, then calls `each(i, loss)` with the step's loss averaged over the global batch
    /// (reduced over ranks: every rank sees the same) — nil when the step's values were not finite —
    /// and stops when it returns false. For the learning-rate range test: no evaluation, no checkpoint.
    public func trainSteps(_ count: Int, learningRate: (Int) -> Float, each: (Int, Double?) throws -> Bool) throws {
        var step = 0, epoch = 0
        while step < count {
            let plan = BatchPlan(sampleCount: data.train.count, globalBatchSize: configuration.globalBatchSize,
                                 worldSize: communicator.size, rank: communicator.rank, seed: configuration.seed, epoch: epoch)
            let more = try plan.order.withUnsafeBufferPointer { order -> Bool in
                for index in 0..<plan.batchCount where step < count {
                    let batch = StepBatch(epoch: epoch, index: index,
                        samples: UnsafeBufferPointer(rebasing: order[plan.localRange(batch: index)]),
                        global: UnsafeBufferPointer(rebasing: order[plan.globalRange(batch: index)]))
                    tracker.setPosition(epoch: epoch, step: globalStep + 1)
                    let loss = try trainStep(batch, learningRate: learningRate(step), plan: plan)
                    globalStep += 1
                    var sums = [loss?.lossSum ?? .nan, Double(batch.count)]
                    try communicator.allreduce(&sums, .sum)
                    let mean = sums[0] / Double(max(batch.globalCount, 1))
                    if try !each(step, mean.isFinite ? mean : nil) { return false }
                    step += 1
                }
                return true
            }
            if !more { return }
            epoch += 1
        }
    }

    /// Cadence after a step: a checkpoint every `--checkpoint-every` steps, and progress.
    private func afterStep(_ batch: StepBatch, plan: BatchPlan, totals: EpochTotals) throws {
        // (Not at the last batch of an epoch or of the run: the epoch's own checkpoint follows.)
        if let every = checkpointWriter?.settings.everySteps, globalStep % every == 0, batch.index + 1 < plan.batchCount,
           configuration.maxSteps != globalStep {
            try writeCheckpoint(epoch: batch.epoch, nextBatch: batch.index + 1,
                                samplesDone: plan.globalRange(batch: batch.index).upperBound, partial: totals, testAccuracy: nil)
        }
        let lastOfRun = configuration.maxSteps == globalStep || batch.index + 1 == plan.batchCount
        if let every = configuration.evaluateEverySteps, globalStep % every == 0, !lastOfRun {  // the epoch's own follows
            let split = data.validation == nil ? "test" : "val"
            let result = try evaluate(data.validation ?? data.test)
            try reporter?.evaluatedAtStep(StepEvaluationRecord(step: globalStep, epoch: batch.epoch + 1, split: split,
                                                               metrics: result.metrics))
        }
        reporter?.stepCompleted(epoch: batch.epoch, step: batch.index + 1, of: plan.batchCount,
                                runningLoss: totals.meanLoss / Double(targetsPerSample),
                                runningAccuracy: reportsAccuracy ? totals.accuracy : nil)
    }

    /// Reduces the epoch's totals and phase times, evaluates, reports and checkpoints.
    private func finishEpoch(_ epoch: Int, totals: EpochTotals, learningRate: Float, startedAt epochStart: Double,
                             phases: PhaseSeconds) throws {
        let wallSeconds = monotonicSeconds() - epochStart
        let compute = phases[.forward] + phases[.backward] + phases[.optimizer]
        var sums = [totals.lossSum, Double(totals.correct), Double(totals.seen), Double(totals.locallySeen)]
        try communicator.allreduce(&sums, .sum)
        var maxima = [compute, phases[.gradientSum], phases[.data], wallSeconds]
        try communicator.allreduce(&maxima, .max)
        let (validation, test) = configuration.evaluates(afterEpoch: epoch + 1) ? try evaluateEpoch() : (nil, nil)
        if test != nil { lastEvaluation = test }
        lastValidation = validation
        var record = EpochRecord(
            epoch: epoch + 1, epochs: configuration.epochs,
            train: objective.trainingMetrics(lossSum: sums[0], correct: sums[1], targetCount: sums[2] * Double(targetsPerSample)),
            test: test?.metrics, validation: validation?.metrics, seconds: monotonicSeconds() - epochStart,
            samplesPerSecond: maxima[3] > 0 ? sums[3] / maxima[3] : 0,
            computeSeconds: maxima[0], communicationSeconds: maxima[1], dataSeconds: maxima[2],
            learningRate: learningRate, skippedSteps: totals.skipped)
        record.positionsPerSample = targetsPerSample
        if let peakFlopsPerRank {
            record.modelFlopsUtilization = record.samplesPerSecond * trainingFlopsPerSample / (peakFlopsPerRank * Double(communicator.size))
        }
        try reporter?.epochCompleted(record)
        let score = validation.map(monitoredScore) ?? test.map(testScore)
        if let score { selectAfterEpoch(epoch + 1, score: score) }
        try writeCheckpoint(epoch: epoch + 1, nextBatch: 0, samplesDone: 0, partial: EpochTotals(),
                            testAccuracy: test?.metric("accuracy"), selectionScore: score)
    }

    /// The epoch's exact evaluations: the validation split when there is one (the test set only with
    /// `--test-each-epoch`), else the test set as always.
    private func evaluateEpoch() throws -> (validation: EvaluationResult?, test: EvaluationResult?) {
        guard let validationSet = data.validation else { return (nil, try evaluateTestSet()) }
        let validation = try evaluate(validationSet)
        return (validation, configuration.testEachEpoch == true ? try evaluateTestSet() : nil)
    }

    /// The exact test-set evaluation, in the evaluation phase.
    private func evaluateTestSet() throws -> EvaluationResult { try evaluate(data.test) }

    /// The exact evaluation of one split under the objective, in the evaluation phase.
    private func evaluate(_ dataset: any Dataset) throws -> EvaluationResult {
        tracker.enter(.evaluation)
        return try Training.evaluate(model: model, dataset: dataset, objective: objective, communicator: communicator,
                                     batchSize: evaluationBatchSize,
                                     testTimeAugmentation: configuration.evaluationAugmentation,
                                     exactly: configuration.exactSums == true)
    }

    var evaluationBatchSize: Int {
        Trainer.evaluationBatchSize(configuration, share: perRankBatch, micro: model.batchCapacity,
                                    positions: targetsPerSample, outputsPerPosition: model.outputCount / targetsPerSample,
                                    bytesPerSample: activationBytesPerSample)
    }

    /// Samples per evaluation batch: `--eval-batch` for images and rows; for samples of many positions (token
    /// windows) no more than the training share beyond 4,096 positions, 4 M logits and 256 MiB of activations, since
    /// every layer's buffers grow with it (256 windows of 64 tokens held 1.4 GB for a 0.8 M model; GPT-2's 50,257
    /// logits per position take 1.6 GB for 4,096 positions). With `--accumulate`, never more than a micro-batch: the memory accumulating
    /// saves must not come back at the first evaluation. (The memory preflight computes the same.)
    public static func evaluationBatchSize(_ configuration: TrainingConfiguration, share: Int, micro: Int, positions: Int,
                                           outputsPerPosition: Int, bytesPerSample: Int) -> Int {
        if configuration.microBatches > 1 { return min(configuration.evaluationBatchSize, micro) }
        guard positions > 1 else { return configuration.evaluationBatchSize }
        let beyond = min(4096 / positions, (1 << 22) / (positions * max(outputsPerPosition, 1)), (1 << 28) / max(bytesPerSample, 1))
        return min(configuration.evaluationBatchSize, max(share, beyond, 1))
    }
}

extension Trainer {
    /// Bytes of activations and workspace one more sample of a batch takes.
    var activationBytesPerSample: Int {
        Sequential.activationBytes(model.layers, inputCount: model.inputCount, batchCapacity: 1)
    }

    /// Training FLOPs of one sample: a GPT preset's 6N + 6·L·C·T per token (nanoGPT's and PaLM's MFU), else the
    /// model's own count of its multiply-adds.
    var trainingFlopsPerSample: Double {
        guard let gpt = configuration.gptPreset, model.inputShape.count == 1, let vocabulary = model.outputShape.last else {
            return Double(model.trainingFlopsPerSample)
        }
        let context = model.inputShape[0]
        return gpt.trainingFlopsPerToken(vocabulary: vocabulary, context: context) * Double(context)
    }
}

/// `--recompute` on a model it cannot apply to.
public struct RecomputeError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "--recompute cannot be used here: \(reason); train without it" }
}
