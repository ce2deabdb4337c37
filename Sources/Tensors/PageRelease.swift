import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// `distrain_zero_release` on the parts of `range` of private memory outside `kept` (a rank's own slice, which
/// stays): zeroed, and every page wholly inside them given back to the operating system (MADV_DONTNEED). A released
/// page reads as zeros and costs no memory until written again — how `--shard parameters` keeps only its own slice
/// of the values resident. Never call it on memory shared with another process.
public func zeroReleasingPages(_ base: UnsafeMutablePointer<Float>, _ range: Range<Int>, keeping kept: Range<Int>) {
    distrain_zero_release_outside(base, range.lowerBound, range.upperBound, kept.lowerBound, kept.upperBound)
}

/// Faults in the pages of `range` for writing in one call (`distrain_prefault`, MADV_POPULATE_WRITE), before a pass
/// writes pages `zeroReleasingPages` gave back: no fault per page, and no read of the shared zero page before the
/// write. Contents are unchanged (a page not present comes back as zeros); advice only on kernels before 5.14.
public func prefaultPages(_ base: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    distrain_prefault(base, range.lowerBound, range.upperBound)
}

/// `count` zeroed floats on fresh pages that cost nothing until written, 2 MiB-aligned for transparent huge pages
/// (`distrain_map_zeroed`): an arena that sharded training mostly never touches stays out of the resident set, and
/// the pages it gives back come back cheaply. Free with `freeZeroedPages`.
public func allocateZeroedPages(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
    guard let base = distrain_map_zeroed(max(count, 1) * MemoryLayout<Float>.stride) else {
        fatalError("out of memory mapping \(count) floats")
    }
    return UnsafeMutableBufferPointer(start: base, count: count)
}

/// Unmaps what `allocateZeroedPages` mapped.
public func freeZeroedPages(_ buffer: UnsafeMutableBufferPointer<Float>) {
    distrain_unmap(buffer.baseAddress!, max(buffer.count, 1) * MemoryLayout<Float>.stride)
}
