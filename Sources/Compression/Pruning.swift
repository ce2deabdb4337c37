import Foundation
import Tensors

/// Where magnitude pruning ranks weights: all prunable weights together, or each layer's on its own.
public enum PruningScope: String, Sendable, CaseIterable, Codable {
    case global, layer
}

/// Unstructured magnitude pruning (torch.nn.utils.prune.l1_unstructured / global_unstructured): the given
/// fraction of the prunable weights with the smallest magnitudes is set to zero and kept there by a mask.
/// Prunable: the weight matrices and kernels (names ending ".weight" with two or more dimensions) — not
/// biases, not normalization parameters.
public struct PruningMask: Sendable, Equatable {
    /// One value per parameter of the store: 1 kept (and every non-prunable parameter), 0 pruned.
    public let keep: [Float]

    /// The prunable slices of a store.
    public static func prunable(_ store: ParameterStore) -> [ParameterSlice] {
        store.slices.filter { $0.name.hasSuffix(".weight") && $0.shape.count >= 2 }
    }

    /// The mask that prunes `sparsity` of the prunable weights by magnitude (ties: the lower index goes first).
    public init(store: ParameterStore, sparsity: Double, scope: PruningScope) {
        precondition(sparsity >= 0 && sparsity < 1, "sparsity \(sparsity) must be in [0, 1)")
        var keep = [Float](repeating: 1, count: store.count)
        let groups: [[ParameterSlice]] = scope == .global ? [Self.prunable(store)] : Self.prunable(store).map { [$0] }
        for group in groups {
            let indices = group.flatMap { $0.offset..<($0.offset + $0.count) }
            let pruned = Int((sparsity * Double(indices.count)).rounded(.down))
            let ranked = indices.sorted { (abs(store.values[$0]), $0) < (abs(store.values[$1]), $1) }
            for index in ranked.prefix(pruned) { keep[index] = 0 }
        }
        self.keep = keep
    }

    /// A mask from its stored form (see `encoded`).
    public init(keep: [Float]) { self.keep = keep }

    /// values ← values ⊙ mask over a buffer of the store's size (parameters, or an optimizer's state).
    public func apply(to values: UnsafeMutableBufferPointer<Float>) {
        precondition(values.count == keep.count, "mask of \(keep.count) for \(values.count) values")
        keep.withUnsafeBufferPointer { mask in
            for i in 0..<values.count { values[i] *= mask[i] }
        }
    }

    /// The fraction of zeros among each prunable slice's values, and overall.
    public static func sparsity(of store: ParameterStore) -> (perSlice: [(name: String, sparsity: Double)], total: Double) {
        var zeros = 0, count = 0
        let perSlice = prunable(store).map { slice -> (String, Double) in
            let z = (slice.offset..<(slice.offset + slice.count)).filter { store.values[$0] == 0 }.count
            zeros += z
            count += slice.count
            return (slice.name, Double(z) / Double(max(slice.count, 1)))
        }
        return (perSlice, Double(zeros) / Double(max(count, 1)))
    }

    /// The mask as a base64 bit string (one bit per parameter, 1 = kept), for checkpoint metadata.
    public var encoded: String {
        var bytes = [UInt8](repeating: 0, count: (keep.count + 7) / 8)
        for (i, k) in keep.enumerated() where k != 0 { bytes[i / 8] |= 1 << UInt8(i % 8) }
        return Data(bytes).base64EncodedString()
    }

    /// Decodes `encoded` for a store of `count` parameters; nil when it does not fit.
    public init?(encoded: String, count: Int) {
        guard let data = Data(base64Encoded: encoded), data.count == (count + 7) / 8 else { return nil }
        let bytes = [UInt8](data)
        keep = (0..<count).map { bytes[$0 / 8] & (1 << UInt8($0 % 8)) != 0 ? 1 : 0 }
    }
}
