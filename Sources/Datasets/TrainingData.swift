import Foundation

/// How a run cuts its data: limits, and the validation split or the fold held out (all deterministic
/// in the seed, so every rank cuts the same).
public struct DataCut: Sendable, Equatable {
    public var trainLimit: Int?
    public var testLimit: Int?
    /// `--val-split`: the fraction of every class held out for validation.
    public var validationFraction: Double?
    /// `--kfold K` with fold F (1-based) held out.
    public var folds: (count: Int, held: Int)?
    public var seed: UInt64

    public init(trainLimit: Int? = nil, testLimit: Int? = nil, validationFraction: Double? = nil,
                folds: (count: Int, held: Int)? = nil, seed: UInt64 = 42) {
        self.trainLimit = trainLimit
        self.testLimit = testLimit
        self.validationFraction = validationFraction
        self.folds = folds
        self.seed = seed
    }

    public static func == (a: DataCut, b: DataCut) -> Bool {
        a.trainLimit == b.trainLimit && a.testLimit == b.testLimit && a.validationFraction == b.validationFraction
            && a.folds?.count == b.folds?.count && a.folds?.held == b.folds?.held && a.seed == b.seed
    }
}

/// What a Trainer learns from and is scored on, ready to gather: the training split, the validation
/// split (if any) and the test split, of any kind of `Dataset`.
public struct TrainingData: Sendable {
    public let name: String
    public let train: any Dataset
    public let test: any Dataset
    public let validation: (any Dataset)?
    /// More for every checkpoint beside the datasets' own (image preprocessing, a table's columns).
    public var checkpointMetadata: [String: String] = [:]

    public init(name: String, train: any Dataset, test: any Dataset, validation: (any Dataset)? = nil,
                checkpointMetadata: [String: String] = [:]) {
        precondition(train.sampleShape == test.sampleShape && train.targetKind == test.targetKind,
                     "train \(train.sampleShape) → \(train.targetKind) and test \(test.sampleShape) → \(test.targetKind) differ")
        self.name = name
        self.train = train
        self.test = test
        self.validation = validation
        self.checkpointMetadata = checkpointMetadata
    }

    /// The data a checkpoint records, the datasets' own and this run's.
    public var allCheckpointMetadata: [String: String] {
        train.checkpointMetadata.merging(checkpointMetadata) { own, _ in own }
    }
}

extension DatasetSplits {
    /// The run's data: the first `trainLimit` / `testLimit` samples, the validation split or fold carved
    /// out of the training set (stratified by class), every split normalized by the measured per-channel
    /// mean and deviation of the training split.
    public func cut(_ cut: DataCut) throws -> TrainingData {
        let carved = try carve(cut)
        let normalization = try Normalization.measured(on: carved.train)
        var metadata: [String: String] = [:]
        if let preprocessing, let json = try? JSONEncoder().encode(preprocessing) {
            metadata["preprocessing"] = String(decoding: json, as: UTF8.self)
        }
        if let featureNames, let json = try? JSONEncoder().encode(featureNames) {
            metadata["features"] = String(decoding: json, as: UTF8.self)
            metadata["label_column"] = labelColumn ?? ""
        }
        return TrainingData(name: name, train: carved.train.normalized(by: normalization),
                            test: carved.test.normalized(by: normalization),
                            validation: carved.validation?.normalized(by: normalization), checkpointMetadata: metadata)
    }

    private func carve(_ c: DataCut) throws -> (train: ImageDataset, test: ImageDataset, validation: ImageDataset?) {
        let train = self.train.prefix(c.trainLimit), test = self.test.prefix(c.testLimit)
        if let fraction = c.validationFraction {
            let split = try StratifiedSplit.holdOut(labels: train.labels, classNames: train.classNames, fraction: fraction, seed: c.seed)
            return (try train.subset(split.train), test, try train.subset(split.validation))
        }
        if let (k, fold) = c.folds {
            let folds = try StratifiedSplit.folds(labels: train.labels, classNames: train.classNames, k: k, seed: c.seed)
            let rest = folds.enumerated().filter { $0.offset != fold - 1 }.flatMap(\.element).sorted()
            return (try train.subset(rest), test, try train.subset(folds[fold - 1]))
        }
        return (train, test, nil)
    }
}
