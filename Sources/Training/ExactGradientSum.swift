import Collectives
import Layers
import Tensors

/// `--exact-sums`: the gradient sum whose bits do not depend on the world size.
///
/// Float sums depend on their grouping: one rank's GEMM sums 32 samples in its own order, three ranks sum
/// 11, 11 and 10 and then the three partial sums. The results agree to the last bits only, and a model that
/// amplifies such a difference (BatchNorm over images whose background is one constant value, where a last-bit
/// change can switch thousands of positions past a ReLU at once) then diverges. Under `--exact-sums` every
/// layer adds each sample's gradient as exact integer terms (`ExactSums`), BatchNorm sums its statistics the
/// same way, and the ranks sum the integers — so the gradient, and every parameter after any number of steps,
/// is the one a single rank computes, to the bit.
extension Trainer {
    /// Refuses `--exact-sums` where it cannot hold: a layer without exact terms (every layer distrain has adds them;
    /// a library user's own may not), sharded gradients (stages 2 and 3; stage 1 sums whole gradients and works), or a
    /// wire format and overlap that only concern the float sum.
    static func requireExactSums(model: Sequential, sharded: Bool, wire: WireFormat, overlap: Bool) throws {
        if let layer = model.firstLayerWithoutExactSums {
            throw ExactSumsError(reason: "\(layer) has parameters but no exact gradient sum (sumsGradientsExactly)")
        }
        if sharded { throw ExactSumsError(reason: "--shard gradients|parameters reduce-scatters float gradients during backward") }
        if wire != .fp32 { throw ExactSumsError(reason: "--wire \(wire) applies to float sums; exact sums travel as integers") }
        if overlap { throw ExactSumsError(reason: "--overlap starts float sums during backward") }
    }

    /// How the gradients travel between ranks, for the run header, the metrics and `bench`.
    public var gradientSumSummary: String {
        guard model.parameters.exactGradients != nil else { return synchronizer.summary }
        return communicator.size > 1 ? "exact integer sums (--exact-sums), an Int64 allreduce of 32 bytes per parameter"
            : "exact integer sums (--exact-sums)"
    }

    /// The exact gradient sum over ranks, rounded once into the gradients; false when a term was out of range
    /// (Inf, NaN, or ≥ 2^40) on any rank — the same verdict everywhere.
    func sumExactly(_ exact: ExactSums) throws -> Bool {
        tracker.enter(.gradientSum, bucket: 0)
        if communicator.size > 1 { try communicator.allreduce(exact.storage, .sum) }
        exact.round(into: model.parameters.gradients.baseAddress!)
        return exact.outOfRangeTerms == 0
    }
}

/// `--exact-sums` on a run it cannot apply to.
public struct ExactSumsError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "--exact-sums cannot be used here: \(reason); train without it" }
}
