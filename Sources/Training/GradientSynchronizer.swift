import Collectives
import Tensors

/// Sums the gradient arena over ranks in fixed-size buckets, then divides by the global sample count,
/// so every rank holds the exact mean gradient over the global batch whatever the world size.
public final class GradientSynchronizer {
    let communicator: Communicator
    /// Floats per allreduce call.
    public let bucketElements: Int
    /// Seconds spent in allreduce since the last `takeCommunicationSeconds()`.
    private var communicationSeconds = 0.0
    /// Told which bucket is being reduced, for the watchdog's messages.
    var tracker: PhaseTracker?

    public init(communicator: Communicator, bucketMegabytes: Double) {
        self.communicator = communicator
        bucketElements = max(1024, Int(bucketMegabytes * 1_048_576 / 4))
    }

    /// In-place: gradients ← Σ_ranks gradients / globalSampleCount. Returns true when every summed
    /// gradient is finite (a NaN or Inf on any rank survives the sum, so every rank gets the same answer);
    /// the check rides on the scaling pass instead of reading the gradients once more.
    @discardableResult
    public func synchronize(_ store: ParameterStore, globalSampleCount: Int) throws -> Bool {
        let gradients = store.gradients
        if communicator.size > 1 {
            let start = monotonicSeconds()
            var offset = 0, bucket = 0
            while offset < store.count {
                tracker?.enter(.allreduce, bucket: bucket)
                bucket += 1
                let count = min(bucketElements, store.count - offset)
                try communicator.allreduce(UnsafeMutableBufferPointer(rebasing: gradients[offset..<(offset + count)]), .sum)
                offset += count
            }
            communicationSeconds += monotonicSeconds() - start
        }
        if communicator.size == 1 { tracker?.enter(.allreduce, bucket: 0) }
        if globalSampleCount > 0 {
            return scaleInPlaceCheckingFinite(gradients.baseAddress!, count: store.count, by: 1 / Float(globalSampleCount))
        }
        return allFinite(gradients.baseAddress!, count: store.count)
    }

    /// Communication time accumulated since the last call, and resets it.
    public func takeCommunicationSeconds() -> Double {
        defer { communicationSeconds = 0 }
        return communicationSeconds
    }
}
