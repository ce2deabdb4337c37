// DistrainKit: the engine as a Swift library — build a `Sequential` in code, pick an optimizer, load a
// dataset, and train it with the same `Trainer` the `distrain` command uses, alone or under mpirun.
//
// The surface a user needs: `Sequential` and its layers (`Linear`, `Conv2D`, `MaxPool2D`, `Flatten`,
// `ReLU`, `Dropout`), `SGD` and `Adam`, `DatasetRegistry` / `DatasetSplits` / `ImageDataset`,
// `TrainingConfiguration`, `Trainer`, `EvaluationResult`, and `makeCommunicator()` below.
@_exported import Collectives
@_exported import Datasets
@_exported import Layers
@_exported import Optimizers
@_exported import Tensors
@_exported import Training
@_exported import Selection

/// The communicator for this process: MPI when started by mpirun, otherwise one local rank that never
/// initializes MPI. Call `finalize()` on it when done.
public func makeCommunicator() throws -> Communicator {
    MPICommunicator.isLaunchedByMPIRun ? try MPICommunicator() : InProcessCommunicator.single()
}
