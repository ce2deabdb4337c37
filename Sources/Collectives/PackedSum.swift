import CKernels
import CMPI

/// The sum between hosts in 16 bits (`--wire fp16|bf16`): a piece of the host's slice is packed into a
/// preallocated buffer, summed by MPI_Allreduce with a user operation that adds in float and rounds back
/// to 16 bits (as Horovod's fp16 compression: every partial sum on the way is rounded), and unpacked.
/// Half the bytes of fp32 on the wire; the shared-memory sums inside a host stay fp32.
final class PackedSum {
    let format: WireFormat
    /// (capacity) packed values of one piece.
    private let packed: UnsafeMutablePointer<UInt16>
    private var operation: MPI_Op?

    init(format: WireFormat, capacity: Int) throws {
        precondition(format != .fp32)
        self.format = format
        packed = .allocate(capacity: capacity)
        let function: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?,
                                      UnsafeMutablePointer<MPI_Datatype?>?) -> Void
        switch format {
        case .fp16:
            function = { input, output, count, _ in
                distrain_sum_fp16(input!.assumingMemoryBound(to: UInt16.self), output!.assumingMemoryBound(to: UInt16.self), Int(count!.pointee))
            }
        default:
            function = { input, output, count, _ in
                distrain_sum_bf16(input!.assumingMemoryBound(to: UInt16.self), output!.assumingMemoryBound(to: UInt16.self), Int(count!.pointee))
            }
        }
        try checkMPI(MPI_Op_create(function, 1, &operation), "MPI_Op_create")
    }

    deinit { packed.deallocate() }

    /// values ← Σ over `communicator` of values, through 16-bit packing (count ≤ capacity).
    func allreduce(_ values: UnsafeMutablePointer<Float>, count: Int, over communicator: MPI_Comm) throws {
        if format == .fp16 { distrain_pack_fp16(values, packed, count) } else { distrain_pack_bf16(values, packed, count) }
        try checkMPI(MPI_Allreduce(cmpi_in_place(), packed, Int32(count), cmpi_uint16(), operation, communicator), "MPI_Allreduce")
        if format == .fp16 { distrain_unpack_fp16(packed, values, count) } else { distrain_unpack_bf16(packed, values, count) }
    }
}
