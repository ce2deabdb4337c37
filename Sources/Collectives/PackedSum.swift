import CKernels
import CMPI

/// The sum between hosts in 16 bits (`--wire fp16|bf16`): a piece of the host's slice is packed into a
/// preallocated buffer, summed by MPI_Allreduce with a user operation that adds in float and rounds back
/// to 16 bits (as Horovod's fp16 compression: every partial sum on the way is rounded), and unpacked.
/// Half the bytes of fp32 on the wire; the shared-memory sums inside a host stay fp32.
final class PackedSum {
    let format: WireFormat
    /// (capacity) packed values: one per arena element, so that every bucket in flight has its own.
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

    /// Packs arena[range] and starts its sum over `communicator` (finish with `unpack` after the request completes).
    func start(_ arena: UnsafeMutablePointer<Float>, _ range: Range<Int>, over communicator: MPI_Comm,
               request: UnsafeMutablePointer<MPI_Request?>) throws {
        let values = arena + range.lowerBound, codes = packed + range.lowerBound
        if format == .fp16 { distrain_pack_fp16(values, codes, range.count) } else { distrain_pack_bf16(values, codes, range.count) }
        try checkMPI(MPI_Iallreduce(cmpi_in_place(), codes, Int32(range.count), cmpi_uint16(), operation, communicator, request), "MPI_Iallreduce")
    }

    /// arena[range] ← the summed 16-bit values.
    func unpack(_ arena: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        let values = arena + range.lowerBound, codes = packed + range.lowerBound
        if format == .fp16 { distrain_unpack_fp16(codes, values, range.count) } else { distrain_unpack_bf16(codes, values, range.count) }
    }
}
