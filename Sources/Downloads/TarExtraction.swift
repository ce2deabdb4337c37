import DurableFiles
import CZlib
import Foundation

/// Extracts the regular files named in `wanted` (paths inside the archive) from a .tar.gz into
/// `directory`, each under its last path component; every other entry is skipped unread.
///
/// Nothing outside `directory` can be written: names are matched exactly against `wanted`, never
/// used as paths. Each file is written to a temporary name, fsynced and renamed. Returns the names
/// extracted. A truncated or corrupt archive is an error naming it.
public func extractTarGz(_ archive: String, into directory: String, wanted: Set<String>, maximumFileBytes: Int) throws -> [String] {
    guard let file = gzopen(archive, "rb") else {
        throw DownloadError.badArchive(path: archive, problem: "cannot open: \(String(cString: strerror(errno)))")
    }
    defer { gzclose(file) }
    let reader = GzipReader(file: file, archive: archive)
    var extracted: [String] = []
    while let (path, size, isRegular) = try reader.nextHeader() {
        let keep = isRegular && wanted.contains(path)
        if keep && size > maximumFileBytes {
            throw DownloadError.badArchive(path: archive, problem: "entry \(path) is \(size) bytes, more than the "
                + "\(maximumFileBytes) expected")
        }
        let baseName = String(path.split(separator: "/").last ?? "")
        let output = keep ? try AtomicFile(path: "\(directory)/\(baseName)") : nil
        try reader.copyEntry(size: size, to: output)
        if let output {
            try output.commit()
            extracted.append(baseName)
        }
    }
    return extracted
}

/// A tar stream inside a gzip file, read header by header.
private final class GzipReader {
    let file: gzFile
    let archive: String
    private var header = [UInt8](repeating: 0, count: 512)
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    init(file: gzFile, archive: String) {
        self.file = file
        self.archive = archive
    }

    /// The next entry's path, size and whether it is a regular file; nil at the end-of-archive marker.
    func nextHeader() throws -> (path: String, size: Int, isRegular: Bool)? {
        try header.withUnsafeMutableBytes { try readExactly($0.baseAddress!, 512) }
        if header.allSatisfy({ $0 == 0 }) { return nil }
        guard tarChecksumMatches(header) else {
            throw DownloadError.badArchive(path: archive, problem: "a tar header has a wrong checksum; the archive is corrupt")
        }
        let name = tarString(header, 0, 100), prefix = tarString(header, 345, 155)
        let path = prefix.isEmpty ? name : prefix + "/" + name
        guard let size = tarOctal(header, 124, 12) else {
            throw DownloadError.badArchive(path: archive, problem: "entry \(path) has an unreadable size field")
        }
        return (path, size, header[156] == UInt8(ascii: "0") || header[156] == 0)
    }

    /// The entry's data (padded to a multiple of 512 bytes) into `output`, or skipped.
    func copyEntry(size: Int, to output: AtomicFile?) throws {
        var remaining = (size + 511) / 512 * 512, payload = size
        while remaining > 0 {
            let chunk = min(remaining, buffer.count)
            try buffer.withUnsafeMutableBytes { try readExactly($0.baseAddress!, chunk) }
            if let output, payload > 0 {
                let useful = min(payload, chunk)
                try output.append(buffer[0..<useful])
                payload -= useful
            }
            remaining -= chunk
        }
    }

    /// Reads exactly `count` bytes into `destination`, or throws.
    private func readExactly(_ destination: UnsafeMutableRawPointer, _ count: Int) throws {
        var filled = 0
        while filled < count {
            let got = gzread(file, destination + filled, UInt32(count - filled))
            if got < 0 {
                var code: Int32 = 0
                let message = String(cString: gzerror(file, &code))
                throw DownloadError.badArchive(path: archive, problem: "corrupt gzip data (\(message))")
            }
            if got == 0 { throw DownloadError.badArchive(path: archive, problem: "truncated (the archive ends inside an entry)") }
            filled += Int(got)
        }
    }
}

/// A NUL-terminated text field of a tar header.
private func tarString(_ header: [UInt8], _ offset: Int, _ length: Int) -> String {
    let field = header[offset..<(offset + length)]
    let end = field.firstIndex(of: 0) ?? field.endIndex
    return String(decoding: field[field.startIndex..<end], as: UTF8.self)
}

/// An octal number field (spaces and NULs around it allowed); nil when malformed.
private func tarOctal(_ header: [UInt8], _ offset: Int, _ length: Int) -> Int? {
    var value = 0, digits = 0
    for byte in header[offset..<(offset + length)] {
        if byte == 0 || byte == UInt8(ascii: " ") { if digits > 0 { break } else { continue } }
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7") else { return nil }
        let (shifted, overflow) = value.multipliedReportingOverflow(by: 8)
        if overflow { return nil }
        value = shifted + Int(byte - UInt8(ascii: "0"))
        digits += 1
    }
    return digits > 0 ? value : nil
}

/// The header checksum: the byte sum with the checksum field counted as spaces.
private func tarChecksumMatches(_ header: [UInt8]) -> Bool {
    guard let stored = tarOctal(header, 148, 8) else { return false }
    var sum = 0
    for (index, byte) in header.enumerated() { sum += (148..<156).contains(index) ? 32 : Int(byte) }
    return sum == stored
}
