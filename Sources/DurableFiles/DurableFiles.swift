import Foundation

/// A file that could not be written: the path and the system's reason.
public struct FileWriteError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "cannot write \(path): \(reason)" }
}

/// The name a file is written under before it is renamed to `path`: `path.tmp-PID` beside it. Folder
/// owners recognize it as distrain's leftover (checkpoint pointers, token shards).
public func temporaryName(for path: String) -> String { "\(path).tmp-\(getpid())" }

/// Whether `name` is `base.tmp-PID` for some base: what `temporaryName` makes. Returns the base.
public func baseOfTemporaryName(_ name: String) -> String? {
    guard let range = name.range(of: ".tmp-", options: .backwards) else { return nil }
    let pid = name[range.upperBound...]
    guard !pid.isEmpty, pid.allSatisfy({ $0.isASCII && $0.isNumber }), range.lowerBound > name.startIndex else { return nil }
    return String(name[..<range.lowerBound])
}

/// A file written beside its final name and renamed into place after `fsync` (then the folder is synced),
/// so that a reader — or a crash — sees the old file, no file, or the whole new one, never half of it.
/// Every output distrain writes whole goes through here. Output is buffered (1 MiB) and written as it grows.
public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var closed = false

    /// Refuses to replace anything but a regular file (a device or FIFO at `path` stays as it is).
    public init(path: String) throws {
        var existing = stat()
        if stat(path, &existing) == 0 && existing.st_mode & S_IFMT != S_IFREG {
            throw FileWriteError(path: path, reason: "it is not a regular file (a device, FIFO or folder); give a file path")
        }
        self.path = path
        temporaryPath = temporaryName(for: path)
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
        buffer.reserveCapacity(1 << 20)
    }

    deinit {
        if !closed {
            _ = close(descriptor)
            unlink(temporaryPath)
        }
    }

    public func append<Bytes: Sequence>(_ bytes: Bytes) throws where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    public func append(raw pointer: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: pointer)
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Overwrites bytes at `offset` (after flushing what is buffered): a header completed at the end.
    public func write(_ bytes: [UInt8], at offset: Int) throws {
        try flush()
        guard pwrite(descriptor, bytes, bytes.count, off_t(offset)) == bytes.count else { throw failure() }
    }

    /// Flushes, syncs, renames into place and syncs the folder.
    public func commit() throws {
        try flush()
        guard fsync(descriptor) == 0 else { throw failure() }
        closed = true
        _ = close(descriptor)
        guard rename(temporaryPath, path) == 0 else {
            let error = failure()
            unlink(temporaryPath)
            throw error
        }
        syncDirectory(folder(of: path))
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

    private func failure() -> FileWriteError { FileWriteError(path: path, reason: String(cString: strerror(errno))) }
}

/// Replaces the file at `path` with `bytes` atomically and durably (`AtomicFile`).
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let file = try AtomicFile(path: path)
    try file.append(bytes)
    try file.commit()
}

/// `writeFileAtomically` of UTF-8 text.
public func writeFileAtomically(_ text: String, to path: String) throws {
    try writeFileAtomically(Array(text.utf8), to: path)
}

/// `value` as pretty JSON (sorted keys, a final newline), written atomically.
public func writeJSONAtomically<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try writeFileAtomically(Array(try encoder.encode(value)) + [0x0A], to: path)
}

/// Writes `bytes` to `path` and fsyncs them (no rename: for files inside a folder that is renamed whole).
public func writeDurably(_ bytes: [UInt8], to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
    defer { close(descriptor) }
    var written = 0
    try bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let result = write(descriptor, raw.baseAddress! + written, raw.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                throw FileWriteError(path: path, reason: String(cString: strerror(errno)))
            }
            written += result
        }
    }
    guard fsync(descriptor) == 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
}

/// Makes a completed rename or new entry in `directory` durable.
public func syncDirectory(_ directory: String) {
    let descriptor = open(directory, O_RDONLY | O_CLOEXEC)
    if descriptor >= 0 { fsync(descriptor); close(descriptor) }
}

private func folder(of path: String) -> String {
    let parent = (path as NSString).deletingLastPathComponent
    return parent.isEmpty ? "." : parent
}

/// Writes pieces of bytes into the existing file at `path` at their offsets (`fill` calls the function it is given
/// with each piece and its offset), then fsyncs it: one rank's part of a file that several ranks fill in parallel
/// (a sharded checkpoint), inside a folder that is renamed into place whole.
public func writeParts(to path: String, _ fill: ((UnsafeRawBufferPointer, Int) throws -> Void) throws -> Void) throws {
    let descriptor = open(path, O_WRONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
    defer { close(descriptor) }
    try fill { bytes, offset in
        var written = 0
        while written < bytes.count {
            let result = pwrite(descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                throw FileWriteError(path: path, reason: String(cString: strerror(errno)))
            }
            written += result
        }
    }
    guard fsync(descriptor) == 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
}
