import Datasets
import Foundation
import Layers
import Training

/// One model's forward passes for classification and regression requests, on a thread of its own: requests
/// queued while a pass runs (or within `maxWait`) are coalesced into the next pass, up to `maxBatch` samples.
///
/// The model, its input buffer (maxBatch, C, H, W) and its output are made once; a pass writes each request's
/// normalized samples into the input rows, runs the model in inference mode (with `--tta flip`, again on the
/// mirror images, averaged, as `distrain predict`), and hands each request its rows of outputs.
public final class ClassifierBatcher: @unchecked Sendable {
    /// What a request gets back: (samples, outputs), the model's raw outputs (its objective presents them).
    public typealias Outputs = [Float]

    private struct Pending {
        let samples: [Float]  // (count, C·H·W) normalized inputs
        let count: Int
        let continuation: CheckedContinuation<Outputs, Error>
    }

    public let saved: CheckpointModel
    public let testTimeAugmentation: TestTimeAugmentation
    public let maxBatch: Int
    private let maxQueue: Int, maxWait: Double
    private let metrics: ServerMetrics, name: String
    private let condition = NSCondition()
    private var pending: [Pending] = []
    private var queuedSamples = 0
    private var stopped = false
    /// (maxBatch, outputs) of the first pass while the mirror images go through the model.
    private let averaged: UnsafeMutablePointer<Float>

    public init(name: String, saved: CheckpointModel, testTimeAugmentation: TestTimeAugmentation, options: ServerOptions,
                metrics: ServerMetrics) {
        self.name = name
        self.saved = saved
        self.testTimeAugmentation = testTimeAugmentation
        maxBatch = options.maxBatch
        maxQueue = options.maxQueue
        maxWait = options.maxWaitMilliseconds / 1000
        self.metrics = metrics
        saved.model.reserve(batchCapacity: maxBatch)
        averaged = .allocate(capacity: maxBatch * saved.model.outputCount)
        pending.reserveCapacity(maxQueue)
        let thread = Thread { [unowned self] in self.serve() }
        thread.name = "distrain-serve-\(name)"
        thread.start()
    }

    /// Floats per sample of the model's input.
    public var sampleSize: Int { saved.inputShape.reduce(1, *) }
    public var outputCount: Int { saved.model.outputCount }

    /// Normalized inputs ((count, C·H·W), from `normalize`) through the model in the next pass with room.
    /// Throws a 503 problem when `maxQueue` requests already wait.
    public func predict(_ samples: [Float], count: Int) async throws -> Outputs {
        precondition(count >= 1 && count <= maxBatch && samples.count == count * sampleSize, "samples of the model's shape")
        return try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            defer { condition.unlock() }
            guard !stopped else {
                return continuation.resume(throwing: HTTPProblem(503, "the server is shutting down; retry on another replica"))
            }
            guard pending.count < maxQueue else {
                metrics.rejected(model: name)
                return continuation.resume(throwing: HTTPProblem(503, "model '\(name)' has \(maxQueue) requests waiting "
                    + "(--max-queue); retry after a second", headers: [("Retry-After", "1")]))
            }
            pending.append(Pending(samples: samples, count: count, continuation: continuation))
            queuedSamples += count
            metrics.setQueueDepth(model: name, pending.count)
            condition.signal()
        }
    }

    /// Ends the thread after the queued requests are answered.
    public func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func serve() {
        while let batch = nextBatch() {
            let count = batch.reduce(0) { $0 + $1.count }
            let started = Date()
            let outputs = forward(batch)
            metrics.observeBatch(model: name, size: count, seconds: Date().timeIntervalSince(started))
            var row = 0
            for request in batch {
                let rows = outputs + row * outputCount
                request.continuation.resume(returning: Array(UnsafeBufferPointer(start: rows, count: request.count * outputCount)))
                row += request.count
            }
        }
    }

    /// Waits for a request, then up to `maxWait` for more; takes whole requests up to `maxBatch` samples.
    private func nextBatch() -> [Pending]? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && !stopped { condition.wait() }
        if pending.isEmpty { return nil }
        if maxWait > 0 {
            let deadline = Date(timeIntervalSinceNow: maxWait)
            while queuedSamples < maxBatch && !stopped && condition.wait(until: deadline) {}
        }
        var taken = 0, samples = 0
        while taken < pending.count && samples + pending[taken].count <= maxBatch {
            samples += pending[taken].count
            taken += 1
        }
        let batch = Array(pending[0..<taken])
        pending.removeFirst(taken)
        queuedSamples -= samples
        metrics.setQueueDepth(model: name, pending.count)
        return batch
    }

    /// One pass over the batch's samples; returns their (samples, outputs) outputs.
    private func forward(_ batch: [Pending]) -> UnsafeMutablePointer<Float> {
        let model = saved.model, size = sampleSize
        var row = 0
        for request in batch {
            request.samples.withUnsafeBufferPointer { (model.input + row * size).update(from: $0.baseAddress!, count: $0.count) }
            row += request.count
        }
        return inferenceOutputs(model, batch: row, testTimeAugmentation: testTimeAugmentation, averaged: averaged)
    }
}
