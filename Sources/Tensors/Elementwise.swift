import CKernels
// Elementwise kernels and reductions over raw buffers.

/// y[r, c] += bias[c] for a rows×cols row-major matrix.
@inline(__always)
public func addRowBias(_ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>) {
    distrain_add_row_bias(y, bias, rows, columns, 0)
}

/// y[r, c] = max(0, y[r, c] + bias[c]): the bias and ReLU fused into one pass over the GEMM output.
@inline(__always)
public func addRowBiasReLU(_ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>) {
    distrain_add_row_bias(y, bias, rows, columns, 1)
}

/// sums[c] += Σ_r x[r, c] for a rows×cols row-major matrix (bias gradients of a Linear layer).
@inline(__always)
public func accumulateColumnSums(_ x: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let row = x + r * columns
        for c in 0..<columns { sums[c] += row[c] }
    }
}

/// y = max(0, x), elementwise.
@inline(__always)
public func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = max(0, x[i]) }
}

/// dx = dy where the ReLU's output was positive, else 0.
@inline(__always)
public func reluBackward(output y: UnsafePointer<Float>, dOutput dy: UnsafePointer<Float>,
                         dInput dx: UnsafeMutablePointer<Float>, count: Int) {
    // In C: vectorized; the in-place case (dx == dy, fused ReLU) gets its own non-aliasing kernel.
    if UnsafePointer(dx) == dy {
        distrain_relu_backward_inplace(y, dx, count)
    } else {
        distrain_relu_backward(y, dy, dx, count)
    }
}

/// True when every element is finite (no NaN, no ±Inf).
public func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool {
    distrain_all_finite(x, count) != 0
}
