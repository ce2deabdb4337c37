#if canImport(Glibc)
import Glibc
#endif

/// Fixed-size records spread over several files, read on demand with `pread`.
///
/// Why: CIFAR-10's 60,000 images are 184 MB as bytes. Read on demand they live in the OS page cache —
/// once per host, shared by every rank there, and not in any process's resident memory — instead of
/// in each rank's heap. A batch of 64 images costs 64 small reads (~0.1 ms), next to a ~6 ms step.
public struct RecordFiles: Sendable {
    /// An open file, closed when the last dataset (or prefix) using it goes away.
    final class OpenFile: Sendable {
        let descriptor: Int32
        let path: String
        init(descriptor: Int32, path: String) {
            self.descriptor = descriptor
            self.path = path
        }
        deinit { close(descriptor) }
    }

    /// `count` records of one file, holding samples firstSample..<firstSample+count.
    struct Segment: Sendable {
        let file: OpenFile
        let firstSample: Int
        let count: Int
    }

    private let segments: [Segment]
    /// Bytes per record in the files.
    public let recordSize: Int
    /// Where the sample's bytes start inside a record (CIFAR-10: after the label byte).
    public let payloadOffset: Int
    /// Bytes of one sample.
    public let payloadSize: Int
    /// Samples in all files.
    public var count: Int { segments.last.map { $0.firstSample + $0.count } ?? 0 }

    /// Opens `paths` (each a whole number of records, checked by the caller) for reading.
    public init(paths: [String], recordSize: Int, payloadOffset: Int, payloadSize: Int) throws {
        precondition(payloadOffset >= 0 && payloadOffset + payloadSize <= recordSize, "payload outside the record")
        var segments: [Segment] = []
        var first = 0
        for path in paths {
            let (descriptor, size) = try openRegularFile(path)
            let file = OpenFile(descriptor: descriptor, path: path)
            let records = size / recordSize
            segments.append(Segment(file: file, firstSample: first, count: records))
            first += records
        }
        self.init(segments: segments, recordSize: recordSize, payloadOffset: payloadOffset, payloadSize: payloadSize)
    }

    /// The samples of `parts` one after another (sharing their open files); all parts must have the
    /// same record layout.
    public init(concatenating parts: [RecordFiles]) {
        precondition(!parts.isEmpty, "nothing to concatenate")
        let layout = parts[0]
        var segments: [Segment] = []
        var first = 0
        for part in parts {
            precondition(part.recordSize == layout.recordSize && part.payloadOffset == layout.payloadOffset
                         && part.payloadSize == layout.payloadSize, "record layouts differ")
            for segment in part.segments {
                segments.append(Segment(file: segment.file, firstSample: first, count: segment.count))
                first += segment.count
            }
        }
        self.init(segments: segments, recordSize: layout.recordSize, payloadOffset: layout.payloadOffset, payloadSize: layout.payloadSize)
    }

    private init(segments: [Segment], recordSize: Int, payloadOffset: Int, payloadSize: Int) {
        self.segments = segments
        self.recordSize = recordSize
        self.payloadOffset = payloadOffset
        self.payloadSize = payloadSize
    }

    /// The first `limit` samples (sharing the open files).
    public func prefix(_ limit: Int) -> RecordFiles {
        var kept: [Segment] = []
        for segment in segments where segment.firstSample < limit {
            kept.append(Segment(file: segment.file, firstSample: segment.firstSample, count: min(segment.count, limit - segment.firstSample)))
        }
        return RecordFiles(segments: kept, recordSize: recordSize, payloadOffset: payloadOffset, payloadSize: payloadSize)
    }

    /// Copies sample `index`'s payload (`payloadSize` bytes) into `destination`.
    public func read(sample index: Int, into destination: UnsafeMutablePointer<UInt8>) throws {
        precondition(index >= 0 && index < count, "sample \(index) out of 0..<\(count)")
        var segment = segments[0]
        for candidate in segments where candidate.firstSample <= index { segment = candidate }
        let record = index - segment.firstSample
        try readFully(segment.file, into: UnsafeMutableRawPointer(destination), count: payloadSize,
                      offset: record * recordSize + payloadOffset)
    }

    /// Calls `body` with consecutive blocks of whole records, in sample order: (record bytes, records).
    /// Blocks are at most ~1 MiB, so a full pass over the data needs no more memory than that.
    public func forEachRecordBlock(_ body: (UnsafePointer<UInt8>, Int) throws -> Void) throws {
        let recordsPerBlock = max(1, (1 << 20) / recordSize)
        let block = UnsafeMutablePointer<UInt8>.allocate(capacity: recordsPerBlock * recordSize)
        defer { block.deallocate() }
        for segment in segments {
            var done = 0
            while done < segment.count {
                let records = min(recordsPerBlock, segment.count - done)
                try readFully(segment.file, into: UnsafeMutableRawPointer(block), count: records * recordSize, offset: done * recordSize)
                try body(block, records)
                done += records
            }
        }
    }

    private func readFully(_ file: OpenFile, into destination: UnsafeMutableRawPointer, count: Int, offset: Int) throws {
        var filled = 0
        while filled < count {
            let got = pread(file.descriptor, destination + filled, count - filled, off_t(offset + filled))
            if got < 0 {
                if errno == EINTR { continue }
                throw DatasetError.unreadable(path: file.path, reason: String(cString: strerror(errno)))
            }
            if got == 0 {
                throw DatasetError.malformed(path: file.path, problem: "ended at byte \(offset + filled) while reading data it held when it was opened; the file was changed or truncated during the run — restore it and restart")
            }
            filled += got
        }
    }
}
