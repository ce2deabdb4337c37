/// Central finite differences of a scalar function of `count` Float inputs, with the loss in Double.
///
/// `set(i, v)` writes input i, `loss()` evaluates; inputs are restored afterwards.
/// Returns nil for inputs where the step crosses a kink (ReLU at 0, a max-pool tie): there the two
/// one-sided slopes disagree and no finite difference is a fair reference (cs231n's "kinks").
public func centralDifferences(count: Int, epsilon: Float = 1e-2, get: (Int) -> Float, set: (Int, Float) -> Void,
                               loss: () -> Double) -> [Double?] {
    var gradient = [Double?](repeating: nil, count: count)
    for i in 0..<count {
        let original = get(i)
        let center = loss()
        set(i, original + epsilon)
        let plus = loss()
        set(i, original - epsilon)
        let minus = loss()
        set(i, original)
        // Divide by the steps actually taken (x ± ε is rounded to Float).
        let up = Double(original + epsilon) - Double(original), down = Double(original) - Double(original - epsilon)
        let rightSlope = (plus - center) / up, leftSlope = (center - minus) / down
        let kinkThreshold = 0.05 * max(abs(rightSlope), abs(leftSlope)) + 2e-3
        if abs(rightSlope - leftSlope) > kinkThreshold { continue }
        gradient[i] = (plus - minus) / (up + down)
    }
    return gradient
}
