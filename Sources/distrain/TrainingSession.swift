import ArgumentParser
import Collectives
import DistrainKit
import Foundation
import Tensors
import Training

extension RunPlan {
    /// The plan a command line's training flags describe.
    init(options: TrainOptions, configuration: TrainingConfiguration) {
        self.init(configuration: configuration)
        checkpointDirectory = options.checkpointDirectory
        checkpointEvery = options.checkpointEvery
        keep = options.keep
        resume = options.resume
        overwrite = options.overwrite
        metricsPath = options.metrics
        progress = options.progress
        gradientSum = options.gradientSum
        wire = options.wire
        overlap = options.overlap
        localRanks = options.localRanks
    }
}

extension TrainingSession {
    /// The session of this process's job: MPI under mpirun, else local (with `localRanks` as threads).
    convenience init(threads: Int?, collectiveTimeout: Double, localRanks: Int = 1, precision: MatmulPrecision = .fp32) throws {
        BLAS.precision = precision  // process-wide, as the BLAS threads
        let communicator = try makeCommunicator()
        do {
            try self.init(communicator: communicator, threads: threads, collectiveTimeout: collectiveTimeout,
                          localRanks: localRanks)
        } catch let error as ModelShapeError {
            throw ValidationError(error.message)
        }
    }

    /// Runs the job's body collectively (see `runCollectively`), after agreeing that setup worked.
    func run(_ body: () throws -> Void) throws {
        try runCollectively(communicator, beforeExit: { self.tracker.enter(.finished) }) {
            tracker.enter(.startup)
            try communicator.agreeOnSuccess(pendingError)
            try body()
            tracker.enter(.finished)
        }
    }
}
