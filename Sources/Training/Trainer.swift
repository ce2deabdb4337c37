import Collectives
import Datasets
import Layers
import Optimizers
import Foundation
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// Start-up disagreement between ranks.
public enum StartupError: Error, CustomStringConvertible {
    /// `values` by rank; `hosts` (by rank, when known) names where each rank runs.
    case disagreement(field: String, values: [Int: Int64], hosts: [String] = [])

    public var description: String {
        switch self {
        case let .disagreement(field, values, hosts):
            let groups = Dictionary(grouping: values.keys.sorted(), by: { values[$0]! })
            let parts = groups.sorted { $0.value[0] < $1.value[0] }.map { value, ranks -> String in
                let names = ranks.map { rank in hosts.indices.contains(rank) ? "\(rank) on \(hosts[rank])" : String(rank) }
                return "rank\(ranks.count > 1 ? "s" : "") \(names.joined(separator: ", ")): \(String(UInt64(bitPattern: value), radix: 16))"
            }
            return "ranks disagree on \(field) (\(parts.joined(separator: "; "))); start every rank with the same arguments, data and executable"
        }
    }
}

/// The one place that knows the order of a training step (DESIGN.md): batch, forward, loss, backward,
/// gradient sync, update, metrics. The same code runs on one rank or many.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let data: DatasetSplits
    public let communicator: Communicator
    public let model: Sequential
    public let optimizer: Optimizer
    public let normalization: Normalization
    public let threadsPerRank: Int
    let reporter: TrainingReporter?
    let synchronizer: GradientSynchronizer
    let trainGatherer: BatchGatherer
    /// The evaluation after the last completed epoch.
    public private(set) var lastEvaluation: EvaluationResult?
    let checkpointWriter: CheckpointWriter?
    /// Where training continues: epoch, first batch in it, optimizer steps taken so far.
    public private(set) var startEpoch = 0
    private(set) var startBatch = 0
    public private(set) var globalStep = 0
    /// Reduced running sums of a resumed, unfinished epoch (counted once, on the coordinator).
    private var restoredPartial = (lossSum: 0.0, correct: 0, seen: 0)
    /// Where this rank is, for the watchdog and for error messages.
    public let tracker: PhaseTracker
    let fault: Fault?
    /// Updates dropped by `--on-nonfinite skip`, in total and in a row.
    public private(set) var skippedSteps = 0
    private var consecutiveSkips = 0
    /// More skipped updates in a row than this stops training.
    public static let maximumConsecutiveSkips = 10

    /// Builds the model and optimizer and checks that every rank agrees on them.
    ///
    /// - Parameter reporter: the coordinator's reporter; pass nil on other ranks.
    /// - Parameter gradientSum: how gradients travel between ranks (`--gradient-sum`).
    public init(configuration: TrainingConfiguration, data: DatasetSplits, communicator: Communicator,
                threadsPerRank: Int = 1, reporter: TrainingReporter?, checkpointing: CheckpointSettings? = nil,
                resume: LoadedCheckpoint? = nil, tracker: PhaseTracker = PhaseTracker(), fault: Fault? = nil,
                gradientSum: SumMethod = .auto) throws {
        let data = DatasetSplits(name: data.name, train: data.train.prefix(configuration.trainLimit),
                                 test: data.test.prefix(configuration.testLimit))
        self.configuration = configuration
        self.data = data
        self.communicator = communicator
        self.threadsPerRank = threadsPerRank
        self.tracker = tracker
        self.fault = fault
        self.reporter = communicator.isCoordinator ? reporter : nil
        model = makeModel(configuration.model, inputShape: data.train.shape, classes: data.train.classCount)
        model.parameters.initializeKaimingUniform(seed: configuration.seed)
        optimizer = makeOptimizer(configuration.optimizerSettings, parameterCount: model.parameters.count)
        normalization = try Normalization.measured(on: data.train)
        synchronizer = try GradientSynchronizer(communicator: communicator, store: model.parameters,
                                               bucketMegabytes: configuration.bucketMegabytes, method: gradientSum)
        trainGatherer = BatchGatherer(dataset: data.train, normalization: normalization)
        checkpointWriter = checkpointing.map(CheckpointWriter.init)
        synchronizer.tracker = tracker
        tracker.enter(.startup)
        try checkAgreement()
        // Rank 0's parameters are the truth, whatever the others computed.
        try communicator.broadcast(UnsafeMutableRawBufferPointer(model.parameters.values), root: 0)
        if let resume {
            // Every rank holds the same checkpoint bytes, so every rank reaches the same verdict.
            var localError: Error?
            do { try restore(from: resume) } catch { localError = error }
            try communicator.agreeOnSuccess(localError)
        }
    }

    /// The settings a checkpoint cannot be resumed without (they change the model, data or step).
    static func definingSettings(_ c: TrainingConfiguration) -> [(String, String)] {
        [("dataset", c.dataset), ("--model", c.model.rawValue), ("--optimizer", c.optimizer.rawValue),
         ("--batch-size", String(c.globalBatchSize)), ("--seed", String(c.seed)),
         ("--train-limit", c.trainLimit.map(String.init) ?? "none"), ("--augment", String(c.augment))]
    }

    /// Loads weights, optimizer state and the position in training from a checkpoint.
    private func restore(from checkpoint: LoadedCheckpoint) throws {
        for (mine, theirs) in zip(Self.definingSettings(configuration), Self.definingSettings(checkpoint.state.configuration))
        where mine.1 != theirs.1 {
            throw CheckpointError.incompatible(setting: mine.0, checkpoint: theirs.1, requested: mine.1)
        }
        let state = checkpoint.state
        let stepsPerEpoch = (data.train.count + configuration.globalBatchSize - 1) / configuration.globalBatchSize
        guard state.nextBatch <= stepsPerEpoch else {
            throw CheckpointError.invalid(path: "\(checkpoint.directory)/\(CheckpointFile.state)",
                                          problem: "nextBatch \(state.nextBatch) is beyond the \(stepsPerEpoch) batches of an epoch")
        }
        try checkpoint.restoreParameters(into: model.parameters)
        try checkpoint.restoreOptimizer(optimizer, store: model.parameters)
        startEpoch = state.nextBatch == stepsPerEpoch ? state.epoch + 1 : state.epoch
        startBatch = state.nextBatch == stepsPerEpoch ? 0 : state.nextBatch
        globalStep = state.globalStep
        if communicator.isCoordinator && startBatch > 0 {
            restoredPartial = (state.partialLossSum, state.partialCorrect, state.partialSeen)
        }
    }

    /// Writes a checkpoint from the coordinator; every rank learns whether it worked.
    private func writeCheckpoint(epoch: Int, nextBatch: Int, samplesDone: Int, partial: (Double, Int, Int),
                                 testAccuracy: Double?) throws {
        guard let writer = checkpointWriter else { return }
        tracker.enter(.checkpoint)
        var sums = [partial.0, Double(partial.1), Double(partial.2)]
        if nextBatch > 0 { try communicator.allreduce(&sums, .sum) }
        var localError: Error?
        if communicator.isCoordinator {
            let start = monotonicSeconds()
            do {
                let state = CheckpointState(
                    distrainVersion: distrainVersion, epoch: epoch, nextBatch: nextBatch, globalStep: globalStep,
                    samplesDoneInEpoch: samplesDone, seed: configuration.seed, partialLossSum: sums[0],
                    partialCorrect: Int(sums[1]), partialSeen: Int(sums[2]), testAccuracy: testAccuracy,
                    configuration: configuration, worldSize: communicator.size,
                    writtenAt: Double(time(nil)))
                let path = try writer.write(state: state, store: model.parameters, optimizer: optimizer,
                                            modelName: configuration.model, inputShape: data.train.shape,
                                            classNames: data.train.classNames, normalization: normalization)
                reporter?.checkpointWritten(path: path, seconds: monotonicSeconds() - start)
            } catch {
                localError = error
            }
        }
        try communicator.agreeOnSuccess(localError)
    }

    /// Refuses to start unless config, data sizes and model shapes match on every rank, naming what differs.
    private func checkAgreement() throws {
        if communicator.size == 1 { return }
        let fields: [(String, Int64)] = [
            ("the configuration (flags)", Int64(bitPattern: configuration.fingerprint)),
            ("the number of training samples", Int64(data.train.count)),
            ("the number of test samples", Int64(data.test.count)),
            ("the parameter shapes", Int64(bitPattern: model.parameters.shapeFingerprint)),
            ("the training data checksum", Int64(bitPattern: try data.train.checksum())),
            ("the test data checksum", Int64(bitPattern: try data.test.checksum())),
            ("the executable (CRC-32 of the distrain binary)", Int64(executableChecksum)),
        ]
        let table = try communicator.allGather(fields.map(\.1))
        for (index, field) in fields.enumerated() {
            let values = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($0.offset, $0.element[index]) })
            if Set(values.values).count > 1 {
                let hosts = try communicator.allGather(text: communicator.hostName)
                throw StartupError.disagreement(field: field.0, values: values, hosts: hosts)
            }
        }
    }

    /// Per-rank batch of the largest share.
    public var perRankBatch: Int { (configuration.globalBatchSize + communicator.size - 1) / communicator.size }

    /// Trains for the configured epochs, evaluating after each; returns the final evaluation.
    @discardableResult
    public func run() throws -> EvaluationResult {
        let startTime = monotonicSeconds()
        let stepsPerEpoch = (data.train.count + configuration.globalBatchSize - 1) / configuration.globalBatchSize
        try reporter?.started(StartRecord(
            dataset: data.name, model: configuration.model.rawValue, modelSummary: model.summary,
            parameters: model.parameters.count, worldSize: communicator.size,
            globalBatch: configuration.globalBatchSize, perRankBatch: perRankBatch,
            optimizer: optimizer.name, learningRate: configuration.learningRate,
            schedule: configuration.schedule.rawValue, epochs: configuration.epochs, seed: configuration.seed,
            augment: configuration.augment,
            threadsPerRank: threadsPerRank, blas: BLAS.summary, communicator: communicator.kind,
            gradientSum: synchronizer.arena.summary,
            trainSamples: data.train.count, testSamples: data.test.count, stepsPerEpoch: stepsPerEpoch))
        defer { tracker.enter(.finished) }
        for epoch in startEpoch..<max(startEpoch, configuration.epochs) {
            try trainEpoch(epoch)
        }
        guard let final = lastEvaluation else {
            // Zero epochs: still report the untrained model honestly.
            let evaluation = try evaluate(model: model, dataset: data.test, normalization: normalization,
                                          communicator: communicator, batchSize: configuration.evaluationBatchSize)
            lastEvaluation = evaluation
            try reporter?.finished(FinalRecord(metrics: evaluation.metrics, classNames: data.test.classNames,
                                               testLoss: evaluation.meanLoss, seconds: monotonicSeconds() - startTime))
            return evaluation
        }
        try reporter?.finished(FinalRecord(metrics: final.metrics, classNames: data.test.classNames,
                                           testLoss: final.meanLoss, seconds: monotonicSeconds() - startTime))
        return final
    }

    /// One pass over the training set, then the exact evaluation.
    public func trainEpoch(_ epoch: Int) throws {
        let epochStart = monotonicSeconds()
        let plan = BatchPlan(sampleCount: data.train.count, globalBatchSize: configuration.globalBatchSize,
                             worldSize: communicator.size, rank: communicator.rank,
                             seed: configuration.seed, epoch: epoch)
        model.reserve(batchCapacity: plan.largestLocalBatch)
        let classes = model.outputCount
        let schedule = configuration.learningRateSchedule
        let augmentation: Augmentation? = configuration.augment ? Augmentation() : nil
        var labels = [UInt8](repeating: 0, count: plan.largestLocalBatch)
        let firstBatch = epoch == startEpoch ? startBatch : 0
        var (lossSum, correct, seen) = epoch == startEpoch ? restoredPartial : (0.0, 0, 0)
        var locallySeen = 0
        var computeSeconds = 0.0, dataSeconds = 0.0
        var learningRate = configuration.learningRate
        _ = synchronizer.takeCommunicationSeconds()
        let steps = plan.batchCount
        try checkPositionAgreement(epoch: epoch, batches: steps, firstBatch: firstBatch)
        var skippedThisEpoch = 0
        try plan.order.withUnsafeBufferPointer { order in
            for step in firstBatch..<steps {
                tracker.setPosition(epoch: epoch, step: globalStep + 1)
                tracker.enter(.data)
                let t0 = monotonicSeconds()
                let local = plan.localRange(batch: step)
                let batch = local.count
                let indices = UnsafeBufferPointer(rebasing: order[local])
                try labels.withUnsafeMutableBufferPointer {
                    try trainGatherer.gather(indices: indices, into: model.input, labels: $0.baseAddress!,
                                         augmentation: augmentation.map { ($0, configuration.seed, epoch) })
                }
                tracker.enter(.forward)
                injectFaultIfDue(batch: batch)
                let t1 = monotonicSeconds()
                let globalSamples = plan.globalRange(batch: step).count
                // Alone, backward checks each layer's gradients while they are in cache; with other ranks
                // the sum's pass does (a NaN or Inf anywhere survives it, so every rank sees it in the same step).
                let alone = communicator.size == 1
                let (totals, gradientsFinite) = labels.withUnsafeBufferPointer {
                    computeGradients(batch: batch, globalSamples: globalSamples, labels: $0.baseAddress!, classes: classes,
                                     epoch: epoch, sampleIndices: indices.baseAddress, checkingFiniteness: alone)
                }
                let t2 = monotonicSeconds()
                let finite = alone ? gradientsFinite : try synchronizer.synchronize()
                let t3 = monotonicSeconds()
                tracker.enter(.optimizer)
                let skip = finite ? false : try handleNonFinite(epoch: epoch, batch: step, plan: plan,
                                                                locallyFinite: communicator.size > 1 && labels.withUnsafeBufferPointer {
                    recomputedShareIsFinite(batch: batch, globalSamples: globalSamples, labels: $0.baseAddress!,
                                            classes: classes, epoch: epoch, sampleIndices: indices.baseAddress)
                })
                learningRate = schedule.rate(epoch: epoch, stepInEpoch: step, stepsPerEpoch: steps)
                if !skip { optimizer.update(model.parameters, learningRate: learningRate) }
                let t4 = monotonicSeconds()
                dataSeconds += t1 - t0
                computeSeconds += (t2 - t1) + (t4 - t3)
                if !skip {
                    consecutiveSkips = 0
                    lossSum += totals.lossSum
                    correct += totals.correct
                    seen += batch
                } else {
                    skippedThisEpoch += 1
                }
                locallySeen += batch
                globalStep += 1
                if let every = checkpointWriter?.settings.everySteps, globalStep % every == 0, step + 1 < steps {
                    try writeCheckpoint(epoch: epoch, nextBatch: step + 1, samplesDone: plan.globalRange(batch: step).upperBound,
                                        partial: (lossSum, correct, seen), testAccuracy: nil)
                }
                reporter?.stepCompleted(epoch: epoch, step: step + 1, of: steps,
                                        runningLoss: seen > 0 ? lossSum / Double(seen) : 0,
                                        runningAccuracy: seen > 0 ? Double(correct) / Double(seen) : 0)
            }
        }
        let trainSeconds = monotonicSeconds() - epochStart
        let communicationSeconds = synchronizer.takeCommunicationSeconds()
        var sums = [lossSum, Double(correct), Double(seen), Double(locallySeen)]
        try communicator.allreduce(&sums, .sum)
        var maxima = [computeSeconds, communicationSeconds, dataSeconds, trainSeconds]
        try communicator.allreduce(&maxima, .max)
        tracker.enter(.evaluation)
        let evaluation = try evaluate(model: model, dataset: data.test, normalization: normalization,
                                      communicator: communicator, batchSize: configuration.evaluationBatchSize)
        lastEvaluation = evaluation
        try reporter?.epochCompleted(EpochRecord(
            epoch: epoch + 1, epochs: configuration.epochs,
            trainLoss: sums[2] > 0 ? sums[0] / sums[2] : 0, trainAccuracy: sums[2] > 0 ? sums[1] / sums[2] : 0,
            testLoss: evaluation.meanLoss, testAccuracy: evaluation.accuracy,
            seconds: monotonicSeconds() - epochStart,
            imagesPerSecond: maxima[3] > 0 ? sums[3] / maxima[3] : 0,
            computeSeconds: maxima[0], communicationSeconds: maxima[1], dataSeconds: maxima[2],
            learningRate: learningRate, skippedSteps: skippedThisEpoch))
        try writeCheckpoint(epoch: epoch + 1, nextBatch: 0, samplesDone: 0, partial: (0, 0, 0),
                            testAccuracy: evaluation.accuracy)
    }

    /// Every rank must be at the same epoch with the same number of batches; otherwise their
    /// collectives would pair up wrongly and hang. Names the field and the ranks.
    private func checkPositionAgreement(epoch: Int, batches: Int, firstBatch: Int) throws {
        if communicator.size == 1 { return }
        let fields: [(String, Int64)] = [("the epoch", Int64(epoch)), ("the number of batches in the epoch", Int64(batches)),
                                         ("the first batch of the epoch", Int64(firstBatch))]
        let table = try communicator.allGather(fields.map(\.1))
        for (index, field) in fields.enumerated() {
            let values = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($0.offset, $0.element[index]) })
            if Set(values.values).count > 1 { throw StartupError.disagreement(field: field.0, values: values) }
        }
    }

    /// Zeroes the gradients, then forward, loss and backward for the gathered batch (nothing on an empty
    /// local batch): the store ends with this rank's share of the mean gradient over the step's
    /// `globalSamples` (the loss gradient carries the 1 / globalSamples). Deterministic: the same batch and
    /// parameters give the same bits again. Returns the loss totals and, when `checkingFiniteness`,
    /// whether every gradient is finite (true otherwise).
    private func computeGradients(batch: Int, globalSamples: Int, labels: UnsafePointer<UInt8>, classes: Int,
                                  epoch: Int, sampleIndices: UnsafePointer<Int32>?,
                                  checkingFiniteness: Bool = false) -> (LossTotals, Bool) {
        model.parameters.zeroGradients()
        guard batch > 0 else { return (LossTotals(lossSum: 0, correct: 0), true) }
        let context = ForwardContext(isTraining: true, seed: configuration.seed, epoch: epoch, sampleIndices: sampleIndices)
        let logits = model.forward(batch: batch, context: context)
        let totals = softmaxCrossEntropy(logits: logits, labels: labels, batch: batch, classes: classes,
                                         dLogits: model.outputGradient, gradientScale: 1 / Float(max(globalSamples, 1)))
        tracker.enter(.backward)
        let finite = model.backward(batch: batch, checkingFiniteness: checkingFiniteness)
        return (totals, finite)
    }

    /// After a non-finite sum (the rare path): recomputes this rank's gradients for the batch, which the
    /// sum replaced, and says whether they and its loss are finite — so the message can name the ranks
    /// without every step paying a scan of its own gradients before the sum.
    private func recomputedShareIsFinite(batch: Int, globalSamples: Int, labels: UnsafePointer<UInt8>, classes: Int,
                                         epoch: Int, sampleIndices: UnsafePointer<Int32>?) -> Bool {
        let (totals, _) = computeGradients(batch: batch, globalSamples: globalSamples, labels: labels, classes: classes,
                                           epoch: epoch, sampleIndices: sampleIndices)
        tracker.enter(.optimizer)
        return totals.lossSum.isFinite && allFinite(model.parameters.gradients.baseAddress!, count: model.parameters.count)
    }

    /// Decides, identically on every rank, what a non-finite step means; returns true to skip it.
    private func handleNonFinite(epoch: Int, batch: Int, plan: BatchPlan, locallyFinite: Bool) throws -> Bool {
        // Which ranks produced it: those whose own loss or gradients were not finite.
        let flags = try communicator.allGather([locallyFinite ? 0 : 1]).map { $0[0] }
        let ranks = flags.indices.filter { flags[$0] == 1 }
        let global = plan.globalRange(batch: batch)
        func samples(of rank: Int) -> String {
            let share = shardRange(count: global.count, parts: communicator.size, part: rank)
            let indices = plan.order[(global.lowerBound + share.lowerBound)..<(global.lowerBound + share.upperBound)]
            let shown = indices.prefix(16).map(String.init).joined(separator: ",")
            return indices.count > 16 ? "\(shown),… (\(indices.count) samples)" : shown
        }
        let culprits = ranks.isEmpty
            ? "the sum of the gradients overflowed (every rank's own values were finite)"
            : ranks.map { "rank \($0) (global samples \(samples(of: $0)))" }.joined(separator: "; ")
        let location = "at epoch \(epoch + 1), step \(globalStep + 1)"
        switch configuration.onNonFinite {
        case .stop:
            throw NonFiniteError(message: "non-finite loss or gradients \(location) from \(culprits); stopped before the update, so the parameters and the last checkpoint are intact (try a lower --lr, or --on-nonfinite skip)")
        case .skip:
            skippedSteps += 1
            consecutiveSkips += 1
            if consecutiveSkips > Self.maximumConsecutiveSkips {
                throw NonFiniteError(message: "\(consecutiveSkips) non-finite steps in a row (last \(location) from \(culprits)); stopping — lower --lr or check the data")
            }
            if communicator.isCoordinator {
                FileHandle.standardError.write(Data("distrain: warning: skipped the update \(location): non-finite values from \(culprits)\n".utf8))
            }
            return true
        }
    }

    /// DISTRAIN_FAULT: misbehaves on purpose when this rank reaches the fault's step.
    private func injectFaultIfDue(batch: Int) {
        guard let fault, fault.rank == communicator.rank, fault.step == globalStep + 1 else { return }
        switch fault.kind {
        case .crash: fatalError("injected crash (DISTRAIN_FAULT) on rank \(communicator.rank) at step \(fault.step)")
        case .kill: kill(getpid(), SIGKILL)
        case .hang: while true { sleep(1000) }
        case .slow: usleep(2_000_000)
        case .nan: if batch > 0 { model.input[0] = .nan }
        }
    }
}
