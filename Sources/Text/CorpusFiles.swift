import Foundation

/// The files a list of corpus paths names: regular files as given, folders walked recursively in byte
/// order of their names (hidden entries skipped, each folder visited once even through symbolic links).
/// A FIFO, device or socket is refused: reading one could block forever or never end.
public enum CorpusFiles {
    public static func expand(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        var visited = Set<FileIdentity>()
        for path in paths { try add(path, to: &files, visited: &visited, named: true) }
        return files
    }

    private struct FileIdentity: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    private static func add(_ path: String, to files: inout [String], visited: inout Set<FileIdentity>,
                            named: Bool) throws {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw TextError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        switch status.st_mode & S_IFMT {
        case S_IFREG: files.append(path)
        case S_IFDIR:
            let identity = FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
            guard visited.insert(identity).inserted else { return }
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw TextError.unreadable(path: path, reason: "the folder cannot be listed")
            }
            for name in names.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
            where !name.hasPrefix(".") {
                // Foundation lists a name that is not UTF-8 with U+FFFD in place of its bytes: a name that opens nothing.
                var entry = stat()
                if name.unicodeScalars.contains("\u{FFFD}"), lstat((path as NSString).appendingPathComponent(name), &entry) != 0 {
                    throw TextError.unreadable(path: path, reason: "it holds an entry whose name is not UTF-8 (shown as "
                        + "'\(name.prefix(64))'); rename it")
                }
                try add((path as NSString).appendingPathComponent(name), to: &files, visited: &visited, named: false)
            }
        default:
            // Inside a folder, a FIFO or socket is skipped like any other non-text entry; named, it is an error.
            if named {
                throw TextError.unreadable(path: path, reason: "not a regular file or folder (a FIFO, device or "
                    + "socket); copy the text into a file")
            }
        }
    }
}
