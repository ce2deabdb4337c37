import DistrainKit
import ArgumentParser
import Datasets
import Foundation
import Selection
import Training

/// `distrain lr-find DATASET [training flags]`: the learning-rate range test.
struct LRFindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lr-find",
        abstract: "The learning-rate range test: the rate grows exponentially over a few hundred steps; prints smoothed "
            + "loss against rate and a suggested --lr. Writes no checkpoint.",
        discussion: "Example: distrain lr-find fashion-mnist --model cnn --optimizer sgd --momentum 0.9   (also under mpirun)")

    @Argument(help: "The dataset: \(DatasetRegistry.names).")
    var dataset: String

    @Option(name: .customLong("start-lr"), help: "The first step's rate.")
    var startRate: Double = 1e-7

    @Option(name: .customLong("end-lr"), help: "The last step's rate.")
    var endRate: Double = 10

    @Option(help: "Steps of the test (it stops early when the loss diverges).")
    var steps = 200

    @OptionGroup var options: TrainOptions

    @OptionGroup var tokens: TokenDataOptions

    func validate() throws {
        if !isTokenShardFolder(dataset) { _ = try options.dataLocation.directory(for: try registeredDataset(dataset)) }
        guard startRate > 0, endRate > startRate, startRate.isFinite, endRate.isFinite else {
            throw ValidationError("--start-lr and --end-lr must be positive with --start-lr < --end-lr, got \(startRate) and \(endRate)")
        }
        if steps < 10 || steps > 100_000 { throw ValidationError("--steps must be between 10 and 100000, got \(steps)") }
        if options.checkpointDirectory != nil || options.resume != nil || options.kfold != nil {
            throw ValidationError("lr-find writes no checkpoint and resumes nothing; drop --checkpoint-dir, --resume and --kfold")
        }
    }

    func run() throws {
        let session = try TrainingSession(threads: options.resources.threads, collectiveTimeout: options.collectiveTimeout,
                                          precision: options.precision)
        try session.run {
            let trainer = try makeTrainer(session)
            let configuration = trainer.configuration
            var finder = LearningRateFinder(start: startRate, end: endRate, steps: steps)
            try trainer.trainSteps(steps, learningRate: { Float(finder.rate(at: $0)) }) { step, loss in
                guard let loss else { return false }
                return finder.record(step: step, loss: loss)
            }
            let sharding = trainer.shardingStage.map { ", --shard \($0.rawValue) over \(session.communicator.size) ranks" } ?? ""
            if session.communicator.isCoordinator { report(finder, optimizer: configuration.optimizer.rawValue + sharding) }
        }
    }

    /// A trainer on the dataset, or on a token-shard folder's windows under the next-token objective.
    private func makeTrainer(_ session: TrainingSession) throws -> Trainer {
        if isTokenShardFolder(dataset) {
            let name = URL(fileURLWithPath: dataset).lastPathComponent
            let run = try TokenRun(directory: dataset, name: name, options: options, tokens: tokens, communicator: session.communicator)
            var configuration = run.configuration
            configuration.onNonFinite = .skip
            let model = try run.makeModel(communicator: session.communicator)
            return try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model, communicator: session.communicator),
                               data: run.data,
                               objective: run.objective, configuration: configuration, communicator: session.communicator,
                               threadsPerRank: session.threads, tracker: session.tracker)
        }
        let registered = try registeredDataset(dataset, images: try options.dataLocation.imageOptions)
        let data = try session.loadCollectively(registered, directory: try options.dataLocation.directory(for: registered))
        var configuration = options.configuration(dataset: registered)
        configuration.onNonFinite = .skip  // divergence is what the test looks for: it ends the test, not the job
        // With --shard, the optimizer (and at stage 3 the model) of this rank's slice, as `train` makes them.
        let model = try configuration.makeModel(for: data, communicator: session.communicator)
        return try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model, communicator: session.communicator),
                           data: data,
                           configuration: configuration, communicator: session.communicator,
                           threadsPerRank: session.threads, tracker: session.tracker)
    }

    private func report(_ finder: LearningRateFinder, optimizer: String) {
        let probes = finder.probes
        let range = "\(String(format: "%.1e", startRate)) → \(String(format: "%.1e", endRate))"
        print("lr-find: \(probes.count) of \(steps) steps (\(optimizer), global batch \(options.batchSize)), rate \(range)"
            + (probes.count < steps ? "; stopped when the loss diverged" : ""))
        print("       lr   loss (smoothed)")
        let stride = max(1, probes.count / 25)
        for (index, p) in probes.enumerated() where index % stride == 0 || index == probes.count - 1 {
            print(String(format: "%9.2e   %.4f", p.learningRate, p.smoothedLoss))
        }
        if let suggestion = finder.suggestion, finder.lowestNearStart {
            print(String(format: "suggested --lr %.2e, the start of the range: the loss was lowest there, so the best rate may "
                + "be lower still; run again with a lower --start-lr", suggestion.steepest))
        } else if let suggestion = finder.suggestion {
            print(String(format: "suggested --lr %.2e (steepest descent of the smoothed loss); the loss is lowest at %.2e — "
                + "a rate 10× below that is the other common choice", suggestion.steepest, suggestion.minimum))
        } else {
            print("no suggestion: too few steps before the loss diverged; lower --start-lr or raise --steps")
        }
        fflush(nil)
    }
}
