import Datasets
import Foundation

/// Where the official CIFAR-10 binary tarball lives and what it must be.
public struct DownloadSource: Sendable {
    public var url: String
    public var md5: String
    /// Exact size when known (checked before the checksum, for a clearer message).
    public var bytes: Int64?

    public init(url: String, md5: String, bytes: Int64? = nil) {
        self.url = url
        self.md5 = md5.lowercased()
        self.bytes = bytes
    }

    /// https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, 170,052,171 bytes.
    public static let officialCIFAR10 = DownloadSource(
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        md5: "c32a1d4ab5d03f1284b67883e8d87530", bytes: 170_052_171)
}

/// Fetches CIFAR-10 into `root`/cifar-10-batches-bin: download to a staging folder inside `root`,
/// verify the MD5, extract only the expected files, check them, then rename the folder into place.
///
/// The reader never sees a half-written dataset: the final folder appears in one rename, and every
/// failure removes the staging folder. Returns the dataset folder; `alreadyPresent` when it existed.
public func fetchCIFAR10(into root: String, source: DownloadSource = .officialCIFAR10,
                         progress: @escaping (Int64, Int64?) -> Void) throws -> (folder: String, alreadyPresent: Bool) {
    let target = "\(root)/\(CIFAR10.folderName)"
    let fileManager = FileManager.default
    if CIFAR10.requiredFiles.allSatisfy({ fileManager.fileExists(atPath: "\(target)/\($0)") }) {
        return (target, true)
    }
    if fileManager.fileExists(atPath: target) {
        throw DownloadError.fileSystem(path: target, reason: "it exists but lacks some of \(CIFAR10.requiredFiles.joined(separator: ", ")); remove it first")
    }
    guard let url = URL(string: source.url) else { throw DownloadError.badURL(source.url) }
    do {
        try fileManager.createDirectory(atPath: root, withIntermediateDirectories: true)
    } catch {
        throw DownloadError.fileSystem(path: root, reason: "\(error.localizedDescription)")
    }
    let staging = "\(root)/.distrain-download-\(ProcessInfo.processInfo.processIdentifier)"
    try? fileManager.removeItem(atPath: staging)
    defer { try? fileManager.removeItem(atPath: staging) }
    let extracted = "\(staging)/\(CIFAR10.folderName)"
    do {
        try fileManager.createDirectory(atPath: extracted, withIntermediateDirectories: true)
    } catch {
        throw DownloadError.fileSystem(path: staging, reason: "\(error.localizedDescription)")
    }
    let archive = "\(staging)/cifar-10-binary.tar.gz"
    let (md5, bytes) = try downloadFile(from: url, to: archive, progress: progress)
    if let expected = source.bytes, bytes != expected {
        throw DownloadError.sizeMismatch(url: source.url, actual: bytes, expected: expected)
    }
    if md5 != source.md5 {
        throw DownloadError.checksumMismatch(url: source.url, actual: md5, expected: source.md5)
    }
    let wanted = Set((CIFAR10.requiredFiles + ["batches.meta.txt", "readme.html"]).map { "\(CIFAR10.folderName)/\($0)" })
    // The largest official file is 30,730,000 bytes; allow a little slack, never gigabytes.
    _ = try extractTarGz(archive, into: extracted, wanted: wanted, maximumFileBytes: 64 << 20)
    // Validate before publishing: every batch present and parseable.
    for name in CIFAR10.requiredFiles {
        let path = "\(extracted)/\(name)"
        guard fileManager.fileExists(atPath: path) else {
            throw DownloadError.badArchive(path: source.url, problem: "the archive lacks \(CIFAR10.folderName)/\(name)")
        }
        do {
            _ = try CIFAR10.openBatch(path: path)
        } catch {
            throw DownloadError.badArchive(path: source.url, problem: "\(error)")
        }
    }
    if rename(extracted, target) != 0 {
        throw DownloadError.fileSystem(path: target, reason: String(cString: strerror(errno)))
    }
    // Make the rename durable.
    let parent = open(root, O_RDONLY)
    if parent >= 0 { fsync(parent); close(parent) }
    return (target, false)
}
