import Datasets
import _TestSupport

/// A small learnable dataset (see `syntheticImages`) of 28x28 images in 10 classes.
func syntheticSplits(train: Int, test: Int, seed: UInt64 = 3) -> DatasetSplits {
    let a = syntheticImages(count: train, seed: seed), b = syntheticImages(count: test, seed: seed + 100)
    return DatasetSplits(
        name: "synthetic",
        train: ImageDataset(shape: [1, 28, 28], pixels: a.pixels, labels: a.labels, classNames: mnistClassNames),
        test: ImageDataset(shape: [1, 28, 28], pixels: b.pixels, labels: b.labels, classNames: mnistClassNames))
}
