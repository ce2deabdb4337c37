import Collectives
import Datasets
import Training
import _TestSupport

/// A small learnable dataset (see `syntheticImages`) of 28x28 images in 10 classes.
func syntheticSplits(train: Int, test: Int, seed: UInt64 = 3) -> DatasetSplits {
    let a = syntheticImages(count: train, seed: seed), b = syntheticImages(count: test, seed: seed + 100)
    return DatasetSplits(
        name: "synthetic",
        train: ImageDataset(shape: [1, 28, 28], pixels: a.pixels, labels: a.labels, classNames: mnistClassNames),
        test: ImageDataset(shape: [1, 28, 28], pixels: b.pixels, labels: b.labels, classNames: mnistClassNames))
}

/// A small CIFAR-10-shaped dataset (3x32x32) whose classes differ visibly (see `syntheticCIFARBatch`).
func syntheticCIFARSplits(train: Int, test: Int) -> DatasetSplits {
    func dataset(_ count: Int, seed: UInt64) -> ImageDataset {
        let batch = syntheticCIFARBatch(count: count, seed: seed)
        var pixels: [UInt8] = []
        for record in 0..<count { pixels += batch.bytes[(record * 3073 + 1)..<((record + 1) * 3073)] }
        return ImageDataset(shape: [3, 32, 32], pixels: pixels, labels: batch.labels, classNames: CIFAR10.defaultClassNames)
    }
    return DatasetSplits(name: "cifar10", train: dataset(train, seed: 1), test: dataset(test, seed: 2))
}

/// A Trainer for `configuration`'s named model and optimizer — what the CLI builds from its flags.
func makeTrainer(configuration: TrainingConfiguration, data: DatasetSplits, communicator: Communicator,
                 reporter: TrainingReporter? = nil, checkpointing: CheckpointSettings? = nil,
                 resume: LoadedCheckpoint? = nil, fault: Fault? = nil) throws -> Trainer {
    let model = try configuration.makeModel(for: data)
    return try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model), data: data,
                       configuration: configuration, communicator: communicator, reporter: reporter,
                       checkpointing: checkpointing, resume: resume, fault: fault)
}
