import CKernels
import Tensors

/// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_: when ‖g‖₂ over every gradient exceeds
/// `maximumNorm`, all are multiplied by maximumNorm / (‖g‖₂ + 1e-6). Applied after the sum over ranks, so every
/// rank scales the same gradients by the same factor.
public enum GradientClipping {
    /// Clips `store`'s gradients in place; returns the norm before clipping.
    @discardableResult
    public static func clip(_ store: ParameterStore, maximumNorm: Float) -> Double {
        guard let base = store.gradients.baseAddress, store.count > 0 else { return 0 }
        let norm = sumOfSquares(base, count: store.count).squareRoot()
        scale(base, count: store.count, norm: norm, maximumNorm: maximumNorm)
        return norm
    }

    /// Σ g² of `count` gradients (a sharded rank's slice: the ranks sum theirs).
    public static func sumOfSquares(_ gradients: UnsafeMutablePointer<Float>, count: Int) -> Double {
        count > 0 ? distrain_sum_of_squares(gradients, count) : 0
    }

    /// Multiplies `count` gradients by maximumNorm / (norm + 1e-6) when that is below 1.
    public static func scale(_ gradients: UnsafeMutablePointer<Float>, count: Int, norm: Double, maximumNorm: Float) {
        let factor = Double(maximumNorm) / (norm + 1e-6)
        if factor < 1 && count > 0 { distrain_scale(gradients, count, Float(factor)) }
    }
}
