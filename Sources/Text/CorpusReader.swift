import Foundation

/// What one document of a corpus is.
public enum DocumentSplitting: String, Sendable, CaseIterable {
    /// Each file (each JSON Lines record) is a document.
    case file
    /// Blocks of text separated by blank lines.
    case blankLines = "blank-lines"
    /// Each non-empty line.
    case lines
}

/// What to do with bytes that are not UTF-8.
public enum InvalidUTF8Policy: String, Sendable, CaseIterable {
    /// Stop with the file and offset.
    case error
    /// Read each ill-formed sequence as U+FFFD (as Python's `errors="replace"`).
    case replace
}

/// How to read a corpus: plain text or JSON Lines, what a document is, bad bytes.
public struct CorpusOptions: Sendable {
    /// JSON Lines: the string field of each record that holds the text (nil: plain text files).
    public var jsonField: String?
    public var splitting: DocumentSplitting = .file
    public var invalidUTF8: InvalidUTF8Policy = .error
    /// Text handed on at once; a document longer than this arrives in several pieces cut at `TextChunks`
    /// boundaries, so memory stays bounded by this, not by the corpus.
    public var chunkBytes = 8 << 20

    public init(jsonField: String? = nil, splitting: DocumentSplitting = .file, invalidUTF8: InvalidUTF8Policy = .error) {
        self.jsonField = jsonField
        self.splitting = splitting
        self.invalidUTF8 = invalidUTF8
    }
}

/// A piece of a document as the reader hands it on: its text (valid UTF-8) and whether it starts the document.
public struct DocumentText {
    public let text: UnsafeBufferPointer<UInt8>
    public let startsDocument: Bool
    public let path: String
}

/// Streams a corpus's documents in bounded pieces: reads each file in blocks, cuts documents and
/// pieces, checks or repairs UTF-8 and hands each on. Memory: a few `chunkBytes`, whatever the corpus.
public final class CorpusReader {
    public let files: [String]
    public let options: CorpusOptions
    /// Bytes of the files read so far.
    public private(set) var bytesRead = 0

    public init(files: [String], options: CorpusOptions) {
        self.files = files
        self.options = options
    }

    /// Total bytes of the files (for progress).
    public var totalBytes: Int {
        files.reduce(0) { total, path in
            var status = stat()
            return total + (stat(path, &status) == 0 ? Int(status.st_size) : 0)
        }
    }

    /// Calls `body` with every piece of every document, in order.
    public func read(_ body: (DocumentText) throws -> Void) throws {
        for path in files {
            let file = try BlockFile(path: path)
            defer { file.close() }
            var splitter = DocumentSplitter(path: path, options: options)
            while let block = try file.nextBlock(bytes: options.chunkBytes) {
                bytesRead += block.count
                try splitter.feed(block, final: false, body)
            }
            try splitter.feed([], final: true, body)
        }
    }
}

/// A file read in blocks with `read(2)`, so a file that grows or lies about its size is still bounded.
final class BlockFile {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw TextError.unreadable(path: path, reason: String(cString: strerror(errno))) }
    }

    func nextBlock(bytes: Int) throws -> [UInt8]? {
        var block = [UInt8](repeating: 0, count: bytes)
        var filled = 0
        while filled < bytes {
            let got = block.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, bytes - filled) }
            if got < 0 {
                if errno == EINTR { continue }
                throw TextError.unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if got == 0 { break }
            filled += got
        }
        if filled == 0 { return nil }
        block.removeSubrange(filled...)
        return block
    }

    func close() { _ = Foundation.close(descriptor) }
}
