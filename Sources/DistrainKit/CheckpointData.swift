import Datasets
import Training

extension SourceOptions {
    /// Data read the way the checkpoint's model saw it in training: image folders at its channels and size, a
    /// CSV's label column as it recorded (unless one is given), the target as a number for a regression.
    public mutating func follow(_ saved: CheckpointModel) {
        if let preprocessing = saved.preprocessing {
            channels = preprocessing.channels
            size = (preprocessing.height, preprocessing.width)
        }
        label = label ?? saved.labelColumn
        if case .value = saved.targets { regression = true }
    }
}
