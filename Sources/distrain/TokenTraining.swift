import ArgumentParser
import Datasets
import Foundation
import Text
import Training

/// Flags that only token data reads.
struct TokenDataOptions: ParsableArguments {
    @Option(help: "Token data: positions per window (T); a sample is T tokens and, as targets, the T that follow.")
    var context = 64

    func validate() throws {
        if !(1...65_536).contains(context) { throw ValidationError("--context must be in 1...65536, got \(context)") }
    }
}

/// Whether `path` is a folder `distrain tokenize` wrote (it holds a manifest).
func isTokenShardFolder(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        && FileManager.default.fileExists(atPath: path + "/" + TokenManifest.fileName)
}

/// `distrain train DIR` on a token-shard folder: windows of the train split, exact evaluation on the
/// validation split (`--test-limit N` scores its first N windows), next-token cross-entropy.
func runTokenTraining(directory: String, options: TrainOptions, tokens: TokenDataOptions) throws {
    let session = try TrainingSession(threads: options.resources.threads, collectiveTimeout: options.collectiveTimeout,
                                      localRanks: options.localRanks)
    let lock = try session.lockOnCoordinator(options.checkpointDirectory)
    defer { withExtendedLifetime(lock) {} }
    try session.run {
        session.tracker.enter(.loading)
        var loaded: (TokenWindowDataset, TokenWindowDataset)?, localError: Error?
        do {
            loaded = (try TokenWindowDataset(directory: directory, split: "train", contextLength: tokens.context),
                      try TokenWindowDataset(directory: directory, split: "val", contextLength: tokens.context))
        } catch { localError = error }
        session.tracker.enter(.startup)
        try session.communicator.agreeOnSuccess(localError)
        let (train, validation) = loaded!
        let name = URL(fileURLWithPath: directory).lastPathComponent
        var configuration = options.configuration(name: name, augmentsByDefault: false)
        if configuration.modelFile == nil { configuration.modelName = "token-mlp" }
        let data = TrainingData(name: name, train: train.firstSamples(configuration.trainLimit),
                                test: validation.firstSamples(configuration.testLimit))
        let objective = NextTokenObjective(vocabularySize: train.vocabularySize, positions: tokens.context,
                                           bytesPerToken: validation.bytesPerToken)
        let plan = RunPlan(options: options, configuration: configuration)
        try session.train(plan, data: data, objective: objective) {
            try configuration.makeModel(inputShape: [tokens.context], outputShape: objective.outputShape)
        }
    }
}
