import Collectives
import Layers
import Tensors

/// Sums the gradients over ranks, so every rank holds the exact mean gradient over the global batch
/// whatever the world size: each rank's backward already produced its share of that mean (the loss
/// gradient carries 1 / global sample count), so the sum is a plain sum with no scaling pass.
///
/// The gradients live in the communicator's sum arena (under MPI, memory shared by the ranks of a host),
/// moved there once at construction: backward writes straight into the memory the sum works in.
public final class GradientSynchronizer {
    let communicator: Communicator
    let arena: SumArena
    /// Floats per allreduce call between hosts (and in the portable arena).
    public let bucketElements: Int
    /// Told which bucket is being reduced: the watchdog's messages and the phase clock.
    let tracker: PhaseTracker

    /// Moves `model`'s gradients into a new sum arena. Collective: every rank calls it at the same point.
    ///
    /// Between hosts the sum runs in buckets of about `bucketMegabytes`, whole layers each, last layers
    /// first (as DDP's); with `overlap`, each bucket's sum starts as soon as backward has finished its
    /// layers, and MPI is given a chance to progress after every layer. Overlapped or not, the same calls
    /// run on the same buckets, so the result is the same to the bit.
    ///
    /// With `shardedGradients` (this rank's slice; `--shard gradients|parameters`), the layers' reduce-scatters during
    /// backward have already summed the gradients (`ShardedPasses`, on this private arena), and `sum` only
    /// agrees on their finiteness.
    public init(communicator: Communicator, model: Sequential, bucketMegabytes: Double, method: SumMethod = .auto,
                wire: WireFormat = .fp32, overlap: Bool = false, shardedGradients: Range<Int>? = nil,
                tracker: PhaseTracker) throws {
        self.communicator = communicator
        self.tracker = tracker
        self.shardedGradients = shardedGradients
        // Ranks overlapping and ranks not would interleave their host barriers and BatchNorm's reductions
        // differently and wait for each other forever: refuse a mix.
        try communicator.requireAgreement(on: [("--overlap", overlap ? 1 : 0)])
        bucketElements = max(1024, Int(bucketMegabytes * 1_048_576 / 4))
        // Sharded, the gradients stay in private memory, whose pages the layers' reduce-scatters can give back.
        arena = shardedGradients != nil
            ? AllreduceSumArena(communicator: communicator, count: model.parameters.count, bucketElements: bucketElements)
            : try communicator.makeSumArena(count: model.parameters.count, bucketElements: bucketElements, method: method,
                                            wire: wire)
        model.moveGradients(to: arena.buffer, owner: arena)
        if shardedGradients != nil {
            (bucketFirstLayers, overlaps) = ([], false)
            return
        }
        let plan = Self.buckets(model.parameterRanges, elements: bucketElements)
        bucketFirstLayers = plan.firstLayers
        arena.useBuckets(plan.ranges)
        overlaps = overlap && arena.hasSumBetweenHosts
        if overlaps { model.afterLayerBackward = { [weak self] layer in self?.layerFinished(layer) } }
    }

    /// Layer-aligned buckets of at least `elements` gradients (the last may be smaller), from the output
    /// layer back: each bucket's range, and the lowest layer index in it (the bucket is complete once
    /// backward has finished that layer).
    static func buckets(_ layerRanges: [Range<Int>], elements: Int) -> (ranges: [Range<Int>], firstLayers: [Int]) {
        var ranges: [Range<Int>] = [], firstLayers: [Int] = []
        var upper: Int?, lower = 0, first = 0
        for index in layerRanges.indices.reversed() where !layerRanges[index].isEmpty {
            if upper == nil { upper = layerRanges[index].upperBound }
            lower = layerRanges[index].lowerBound
            first = index
            if upper! - lower >= elements {
                ranges.append(lower..<upper!)
                firstLayers.append(first)
                upper = nil
            }
        }
        if let upper { ranges.append(lower..<upper); firstLayers.append(first) }
        return (ranges, firstLayers)
    }

    /// This rank's slice when the layers' reduce-scatters sum the gradients during backward.
    let shardedGradients: Range<Int>?
    /// The finiteness verdict as it is reduced over ranks (preallocated: the step must not allocate).
    private let verdict = UnsafeMutablePointer<Int64>.allocate(capacity: 1)

    deinit { verdict.deallocate() }

    /// How the sum travels, for the run header and metrics.
    public var summary: String {
        if shardedGradients != nil, communicator.size > 1 { return "reduce-scatter after each layer's backward (sharded)" }
        let buckets = bucketFirstLayers.count
        return arena.summary + (overlaps ? ", \(buckets) bucket\(buckets == 1 ? "" : "s") overlapped with backward" : "")
    }

    /// Whether buckets start during backward (`--overlap`, and a sum between hosts to overlap).
    public let overlaps: Bool
    private let bucketFirstLayers: [Int]
    /// This step's state: armed from `beginStep` until `sum`; the next bucket to start; an error a
    /// bucket's start met inside backward, rethrown by `sum`.
    private var armed = false
    private var nextBucket = 0
    private var startError: Error?

    /// Called before the step's backward: buckets may start during it.
    public func beginStep() {
        armed = overlaps
        nextBucket = 0
    }

    /// After each layer's backward: starts every bucket now complete, else lets MPI progress.
    private func layerFinished(_ layer: Int) {
        guard armed, startError == nil else { return }
        if nextBucket < bucketFirstLayers.count && layer <= bucketFirstLayers[nextBucket] {
            while nextBucket < bucketFirstLayers.count && layer <= bucketFirstLayers[nextBucket] {
                tracker.enter(.gradientSum, bucket: nextBucket)
                do { try arena.startBucket(nextBucket) } catch { startError = error }
                nextBucket += 1
            }
            tracker.enter(.backward)
        } else {
            arena.progress()
        }
    }

    /// Whether backward should check each layer's gradients for NaN/Inf as it writes them: alone there is
    /// no sum whose pass could check them, and backward has them in cache.
    public var finitenessIsCheckedInBackward: Bool { communicator.size == 1 }

    /// In place: gradients ← Σ_ranks gradients; returns true when every summed gradient is finite.
    ///
    /// One rank has nothing to sum and returns backward's own verdict, `finiteAfterBackward`; with more,
    /// the sum's pass checks (a NaN or Inf on any rank survives the sum, so every rank sees it).
    public func sum(finiteAfterBackward: Bool) throws -> Bool {
        armed = false
        if let startError {
            self.startError = nil
            throw startError
        }
        if communicator.size == 1 { return finiteAfterBackward }
        if let owned = shardedGradients {  // summed already: agree on whether every owner's slice is finite
            verdict[0] = owned.isEmpty || allFinite(arena.buffer.baseAddress! + owned.lowerBound, count: owned.count) ? 0 : 1
            try communicator.allreduce(UnsafeMutableBufferPointer(start: verdict, count: 1), .max)
            return verdict[0] == 0
        }
        return try arena.sumOverRanks { bucket in
            tracker.enter(.gradientSum, bucket: bucket)
        }
    }
}
