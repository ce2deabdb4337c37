import Foundation

/// Writes `bytes` to `path` durably: the data is fsynced before close (no rename here).
func writeDurably(_ bytes: [UInt8], to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard descriptor >= 0 else { throw CheckpointError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
    defer { close(descriptor) }
    var written = 0
    try bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let result = write(descriptor, raw.baseAddress! + written, raw.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                throw CheckpointError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            written += result
        }
    }
    guard fsync(descriptor) == 0 else { throw CheckpointError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
}

/// Makes a completed rename or new entry in `directory` durable.
func syncDirectory(_ directory: String) {
    let descriptor = open(directory, O_RDONLY)
    if descriptor >= 0 { fsync(descriptor); close(descriptor) }
}

/// Replaces the file at `path` atomically: temporary file beside it, fsync, rename, fsync the folder.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let temporary = "\(path).tmp-\(getpid())"
    do {
        try writeDurably(bytes, to: temporary)
        guard rename(temporary, path) == 0 else {
            throw CheckpointError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    } catch {
        unlink(temporary)
        throw error
    }
    syncDirectory((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
}
