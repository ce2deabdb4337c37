import CKernels

/// Sums whose bits do not depend on how their terms are grouped or ordered (`--exact-sums`).
///
/// Each term becomes a fixed-point integer (units of 2^-80, magnitude below 2^40; bits below 2^-80 are
/// dropped toward zero, the same for a term wherever it is added), and integers add associatively. So a
/// gradient summed sample by sample on one rank equals, to the bit, the same samples' terms summed on
/// three ranks and then over the ranks as integers. A term out of range (≥ 2^40, Inf, NaN) is not added
/// but counted, and a sum with such a term rounds to NaN, so the non-finite guard sees it.
public final class ExactSums {
    /// Limbs per value: four 32-bit digits held in Int64 lanes, so carries wait until rounding.
    public static let limbsPerValue = Int(DISTRAIN_EXACT_LIMBS)
    /// Values summed.
    public let count: Int
    /// Four planes of `count` limbs (limb k of value i at k·count + i), then one counter of out-of-range terms: the
    /// whole buffer sums over ranks as Int64.
    public let storage: UnsafeMutableBufferPointer<Int64>
    /// Scratch for one term tensor (a layer's per-sample weight gradient), `scratchCount` floats.
    public let scratch: UnsafeMutablePointer<Float>
    public let scratchCount: Int

    /// - Parameter scratchCount: the largest tensor of terms a caller builds in `scratch` before adding it.
    public init(count: Int, scratchCount: Int = 0) {
        self.count = count
        storage = .allocate(capacity: count * Self.limbsPerValue + 1)
        storage.initialize(repeating: 0)
        self.scratchCount = scratchCount
        scratch = .allocate(capacity: max(scratchCount, 1))
        scratch.initialize(repeating: 0, count: max(scratchCount, 1))
    }

    deinit {
        storage.deallocate()
        scratch.deallocate()
    }

    /// Bytes an `ExactSums` of `count` values and `scratchCount` scratch floats holds (the memory preflight).
    public static func bytes(count: Int, scratchCount: Int) -> Int { 8 * (count * limbsPerValue + 1) + 4 * scratchCount }

    /// The counter of out-of-range terms, for C kernels that add terms themselves.
    public var outOfRangeCounter: UnsafeMutablePointer<Int64> { storage.baseAddress! + count * Self.limbsPerValue }
    /// The first limb of value `offset`, for C kernels that add terms themselves (the next limbs `stride` apart).
    public func limbs(_ offset: Int) -> UnsafeMutablePointer<Int64> { storage.baseAddress! + offset }
    /// Int64s between a value's limbs.
    public var stride: Int { count }
    private var overflow: UnsafeMutablePointer<Int64> { outOfRangeCounter }

    /// Every value back to zero.
    public func zero() { storage.update(repeating: 0) }

    /// Terms that were out of range (or not finite) since the last `zero`, over every rank once summed.
    public var outOfRangeTerms: Int64 { overflow.pointee }

    /// values[offset ..< offset + n] += terms (n floats).
    public func add(_ terms: UnsafePointer<Float>, count n: Int, at offset: Int) {
        precondition(offset >= 0 && offset + n <= count, "exact sum: \(n) terms at \(offset) exceed \(count) values")
        distrain_exact_add_floats(limbs(offset), stride, terms, n, overflow)
    }

    /// values[offset ..< offset + n] += terms (n doubles).
    public func add(_ terms: UnsafePointer<Double>, count n: Int, at offset: Int) {
        precondition(offset >= 0 && offset + n <= count, "exact sum: \(n) terms at \(offset) exceed \(count) values")
        distrain_exact_add_doubles(limbs(offset), stride, terms, n, overflow)
    }

    /// values[offset] += term.
    public func add(_ term: Double, at offset: Int) {
        withUnsafePointer(to: term) { add($0, count: 1, at: offset) }
    }

    /// values[offset + i·columns + j] += a[i]·b[j], each product exact in double.
    public func addOuterProduct(_ a: UnsafePointer<Float>, rows: Int, _ b: UnsafePointer<Float>, columns: Int, at offset: Int) {
        precondition(offset >= 0 && offset + rows * columns <= count, "exact sum: outer product exceeds \(count) values")
        distrain_exact_add_outer(limbs(offset), stride, a, rows, b, columns, overflow)
    }

    /// out[i] = value i rounded once to float; NaN everywhere when a term was out of range.
    public func round(into out: UnsafeMutablePointer<Float>) {
        if outOfRangeTerms != 0 { return out.update(repeating: .nan, count: count) }
        distrain_exact_round_floats(storage.baseAddress!, stride, out, count)
    }

    /// out[i] = value i rounded once to double; NaN everywhere when a term was out of range.
    public func round(into out: UnsafeMutablePointer<Double>) {
        if outOfRangeTerms != 0 { return out.update(repeating: .nan, count: count) }
        distrain_exact_round_doubles(storage.baseAddress!, stride, out, count)
    }
}
