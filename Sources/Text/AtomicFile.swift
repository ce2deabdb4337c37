import Foundation

/// A file written beside its final name and renamed into place after `fsync`, so that a reader (or a
/// crash) sees the old file, or no file, or the whole new one — never half of it.
final class AtomicFile {
    let path: String
    let temporaryPath: String
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var closed = false

    init(path: String) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        temporaryPath = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".partial").path
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TextError.refusedOutput(path: path, reason: String(cString: strerror(errno)))
        }
        buffer.reserveCapacity(1 << 20)
    }

    deinit {
        if !closed {
            _ = close(descriptor)
            unlink(temporaryPath)
        }
    }

    func append<Bytes: Sequence>(_ bytes: Bytes) throws where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func append(raw pointer: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: pointer)
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Overwrites bytes at `offset` (after flushing what is buffered): a header completed at the end.
    func write(_ bytes: [UInt8], at offset: Int) throws {
        try flush()
        guard pwrite(descriptor, bytes, bytes.count, off_t(offset)) == bytes.count else { throw failure() }
    }

    private func flush() throws {
        var written = 0
        while written < buffer.count {
            let n = buffer.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress! + written, buffer.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw failure() }
            written += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    private func failure() -> TextError { .refusedOutput(path: path, reason: String(cString: strerror(errno))) }

    /// Flushes, syncs and renames into place.
    func commit() throws {
        try flush()
        guard fsync(descriptor) == 0 else { throw failure() }
        closed = true
        _ = close(descriptor)
        guard rename(temporaryPath, path) == 0 else { throw failure() }
        let folder = open(URL(fileURLWithPath: path).deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
        if folder >= 0 { _ = fsync(folder); _ = close(folder) }
    }

    /// Writes `bytes` to `path` atomically.
    static func write(_ bytes: [UInt8], to path: String) throws {
        let file = try AtomicFile(path: path)
        try file.append(bytes)
        try file.commit()
    }
}
