import CKernels
import Tensors

/// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_: when ‖g‖₂ over every gradient exceeds
/// `maximumNorm`, all are multiplied by maximumNorm / (‖g‖₂ + 1e-6). Applied after the sum over ranks, so every
/// rank scales the same gradients by the same factor.
public enum GradientClipping {
    /// Clips `store`'s gradients in place; returns the norm before clipping.
    @discardableResult
    public static func clip(_ store: ParameterStore, maximumNorm: Float) -> Double {
        let gradients = store.gradients
        guard let base = gradients.baseAddress, store.count > 0 else { return 0 }
        let norm = distrain_sum_of_squares(base, store.count).squareRoot()
        let factor = Double(maximumNorm) / (norm + 1e-6)
        if factor < 1 { distrain_scale(base, store.count, Float(factor)) }
        return norm
    }
}
