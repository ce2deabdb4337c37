import Collectives
import Layers
import Tensors

/// ZeRO stages 2 and 3 on the flat arenas (`--shard gradients|parameters`), as the model's pass observer.
///
/// Each rank owns one contiguous slice of the arenas (`Communicator.ownedShard`: any sizes, no divisibility). Right
/// after a layer's backward its gradients are reduce-scattered — each owner receives the sum over ranks of its part —
/// and the rest of the layer's range is zeroed with its pages given back (`zeroReleasingPages`): a rank holds its
/// slice of the gradients and one layer's worth more. At stage 3 the parameter values go the same way: a layer's
/// ranges (its own and any it is tied to) are all-gathered just before its forward and again before its backward, and
/// released after each. Released gradients read as zeros, so the next micro-batch's backward accumulates into zeros
/// beside the owner's running sum, and the sums stay those of the replicated run.
final class ShardedPasses: LayerPassObserver {
    let communicator: Communicator
    let stage: ShardingStage
    let store: ParameterStore
    /// This rank's slice of the arenas.
    let owned: Range<Int>
    /// Per layer: its own parameter range (its gradient bucket), and every range its passes read.
    private let ownRanges: [Range<Int>]
    private let rangesUsed: [[Range<Int>]]
    /// The first collective that failed inside a pass: the later ones are skipped, and the step throws it.
    private(set) var failure: Error?

    /// The gradients must live in private memory (the gradient synchronizer's arena when sharded): their pages are
    /// given back with MADV_DONTNEED, which would not free memory shared between processes.
    init(model: Sequential, communicator: Communicator, stage: ShardingStage) {
        precondition(stage != .optimizer, "stage 1 shards no pass")
        self.communicator = communicator
        self.stage = stage
        store = model.parameters
        owned = communicator.ownedShard(of: model.parameters.count)
        ownRanges = model.parameterRanges
        rangesUsed = model.rangesUsed
    }

    var shardsParameters: Bool { stage == .parameters }

    /// Stage 3 gathers the layer's values. Both stages fault in the pages the pass will write in one call each
    /// (`prefaultPages`): measured 25 ms a step less for GPT-2 124M at stage 2 (BENCHMARKS.md).
    func willRun(_ index: Int, backward: Bool) {
        guard failure == nil else { return }
        let ranges = rangesUsed[index]
        for r in 0..<ranges.count {
            if backward { prefaultPages(store.gradients.baseAddress!, ranges[r]) }
            guard shardsParameters else { continue }
            prefaultPages(store.values.baseAddress!, ranges[r])
            attempt { try communicator.allGatherShards(store.values, range: ranges[r]) }
        }
    }

    func didRun(_ index: Int, backward: Bool) {
        if shardsParameters {
            let ranges = rangesUsed[index]
            for r in 0..<ranges.count { zeroReleasingPages(store.values.baseAddress!, ranges[r], keeping: owned) }
        }
        let range = ownRanges[index]
        guard backward, !range.isEmpty, failure == nil else { return }
        attempt { try communicator.reduceScatterShards(store.gradients, range: range) }
        zeroReleasingPages(store.gradients.baseAddress!, range, keeping: owned)
    }

    private func attempt(_ collective: () throws -> Void) {
        do { try collective() } catch { failure = error }
    }

    /// Throws the failure a pass met (every rank then stops at the step's next collective check).
    func throwIfFailed() throws {
        if let failure { throw failure }
    }

    /// Stage 3: gives back every page of the values outside this rank's slice (after the start-up broadcast or a
    /// restored checkpoint wrote them all).
    func releaseOtherSlices() {
        guard shardsParameters else { return }
        zeroReleasingPages(store.values.baseAddress!, 0..<store.count, keeping: owned)
    }

    /// Stage 3: every slice on every rank again (before a checkpoint or anything that reads the whole model).
    func gatherWholeParameters() throws {
        guard shardsParameters else { return }
        try communicator.allGatherShards(store.values)
    }
}
