import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// What kind of file a stat mode describes, for messages: "a FIFO (named pipe)", "a directory", …
func fileKind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a directory"
    case S_IFIFO: return "a FIFO (named pipe)"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFSOCK: return "a socket"
    default: return "not a regular file"
    }
}

/// Opens a regular file for reading, refusing anything else by name before it can block: the open is
/// non-blocking (a FIFO would otherwise wait for a writer forever), and the type is checked on the
/// open descriptor. Returns the descriptor (blocking again) and the file's size.
public func openRegularFile(_ path: String) throws -> (descriptor: Int32, size: Int) {
    let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    if descriptor < 0 { throw DatasetError.unreadable(path: path, reason: String(cString: strerror(errno))) }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else {
        let reason = String(cString: strerror(errno))
        close(descriptor)
        throw DatasetError.unreadable(path: path, reason: reason)
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        close(descriptor)
        throw DatasetError.unreadable(path: path, reason: "it is \(fileKind(info.st_mode)), not a regular file; pass a data file")
    }
    _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
    return (descriptor, Int(info.st_size))
}

/// Reads a whole regular file into memory; the allocation is the file's size, nothing more.
public func readFileBytes(_ path: String) throws -> [UInt8] {
    let (descriptor, size) = try openRegularFile(path)
    defer { close(descriptor) }
    var bytes = [UInt8](repeating: 0, count: size)
    var filled = 0
    try bytes.withUnsafeMutableBytes { buffer in
        while filled < size {
            let got = read(descriptor, buffer.baseAddress! + filled, size - filled)
            if got < 0 {
                if errno == EINTR { continue }
                throw DatasetError.unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if got == 0 { break }
            filled += got
        }
    }
    if filled < size { bytes.removeLast(size - filled) }
    return bytes
}

/// True if a file or directory exists at `path`.
public func pathExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0
}

/// True if `path` is a directory.
public func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// CRC-32 (zlib) of a file's contents, read in 1 MiB chunks; for comparing files across hosts.
public func fileChecksum(_ path: String) throws -> UInt32 {
    let descriptor = try openRegularFile(path).descriptor
    defer { close(descriptor) }
    var crc: UInt = crc32(0, nil, 0)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let got = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if got < 0 {
            if errno == EINTR { continue }
            throw DatasetError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if got == 0 { break }
        crc = buffer.withUnsafeBytes { crc32(crc, $0.bindMemory(to: UInt8.self).baseAddress, UInt32(got)) }
    }
    return UInt32(truncatingIfNeeded: crc)
}

/// CRC-32 of the running executable (0 when it cannot be read), computed once per process.
public let executableChecksum: UInt32 = (try? fileChecksum("/proc/self/exe")) ?? 0

/// Size in bytes of the file at `path` (0 when it cannot be read; the reader then reports why).
public func fileSize(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : 0
}
