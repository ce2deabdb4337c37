#if canImport(Glibc)
import Glibc
#endif

/// The operating system's page size, read once.
public let memoryPageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))

/// Sets `base[range]` to zero and gives back to the operating system every page that lies wholly inside it
/// (madvise MADV_DONTNEED); the bytes of the two pages it shares with its neighbours are zeroed in place.
///
/// For private anonymous memory (what `allocate`, malloc and calloc hand out) a released page reads as zeros and
/// costs no memory until it is written again — how sharded training (`--shard gradients|parameters`) keeps only its
/// own slice of the flat arenas resident. Never call it on memory shared with another process.
public func zeroReleasingPages(_ base: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    guard !range.isEmpty else { return }
    let start = UInt(bitPattern: base + range.lowerBound), end = UInt(bitPattern: base + range.upperBound)
    let page = UInt(memoryPageBytes)
    let firstWhole = (start + page - 1) / page * page, lastWhole = end / page * page
    guard firstWhole < lastWhole else {
        (base + range.lowerBound).update(repeating: 0, count: range.count)
        return
    }
    memset(UnsafeMutableRawPointer(bitPattern: start)!, 0, Int(firstWhole - start))
    memset(UnsafeMutableRawPointer(bitPattern: lastWhole)!, 0, Int(end - lastWhole))
    if madvise(UnsafeMutableRawPointer(bitPattern: firstWhole)!, Int(lastWhole - firstWhole), MADV_DONTNEED) != 0 {
        memset(UnsafeMutableRawPointer(bitPattern: firstWhole)!, 0, Int(lastWhole - firstWhole))  // still zero, just resident
    }
}

/// `zeroReleasingPages` on the parts of `range` outside `kept` (a rank's own slice, which stays).
public func zeroReleasingPages(_ base: UnsafeMutablePointer<Float>, _ range: Range<Int>, keeping kept: Range<Int>) {
    let below = range.lowerBound..<max(range.lowerBound, min(range.upperBound, kept.lowerBound))
    let above = min(range.upperBound, max(range.lowerBound, kept.upperBound))..<range.upperBound
    zeroReleasingPages(base, below)
    zeroReleasingPages(base, above)
}

/// `count` zeroed floats whose pages cost nothing until written (calloc hands large blocks out as fresh mappings):
/// an arena that sharded training mostly never touches stays out of the resident set. Free with `free`.
public func allocateZeroedPages(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
    guard let raw = calloc(max(count, 1), MemoryLayout<Float>.stride) else {
        fatalError("out of memory allocating \(count) floats")
    }
    return UnsafeMutableBufferPointer(start: raw.bindMemory(to: Float.self, capacity: max(count, 1)), count: count)
}
