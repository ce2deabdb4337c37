import Foundation

/// Cuts one file's bytes, fed block by block, into documents and bounded pieces of documents.
struct DocumentSplitter {
    let path: String
    let options: CorpusOptions
    private var pending: [UInt8] = []
    private var start = 0  // pending[start...] is not yet handed on
    private var fileOffset = 0  // the file offset of pending[0]
    private var inDocument = false  // the next piece continues a document already started
    private var line = 0  // JSON Lines: records read

    init(path: String, options: CorpusOptions) {
        self.path = path
        self.options = options
    }

    /// The longest stretch held while looking for a place to cut.
    private var maximumPendingBytes: Int { 8 * options.chunkBytes }

    mutating func feed(_ block: [UInt8], final: Bool, _ body: (DocumentText) throws -> Void) throws {
        if start > 0 && start >= pending.count / 2 {
            pending.removeSubrange(0..<start)
            fileOffset += start
            start = 0
        }
        pending.append(contentsOf: block)
        if options.jsonField != nil { return try feedRecords(final: final, body) }
        while true {
            if let separator = nextSeparator() {
                try emit(start..<separator.lowerBound, startsDocument: !inDocument, body)
                inDocument = false
                start = separator.upperBound
                continue
            }
            if final {
                try emit(start..<pending.count, startsDocument: !inDocument, body)
                inDocument = false
                start = pending.count
                return
            }
            guard pending.count - start > options.chunkBytes else { return }
            let cut = pending.withUnsafeBufferPointer { all in
                TextChunks.lastBoundary(all, before: start + options.chunkBytes, after: start)
            }
            guard let cut else {
                if pending.count - start > maximumPendingBytes { throw stretchTooLong() }
                return
            }
            try emit(start..<cut, startsDocument: !inDocument, body)
            inDocument = true
            start = cut
        }
    }

    private func stretchTooLong() -> TextError {
        .unreadable(path: path, reason: "over \(describeBytes(maximumPendingBytes)) at byte \(fileOffset + start) without a line "
            + "break or a space between words, where text could be cut; break the text into lines")
    }

    /// The next document separator in the pending text: a line feed (`lines`) or a run of blank lines
    /// (`blank-lines`); files have none.
    private func nextSeparator() -> Range<Int>? {
        guard options.splitting != .file else { return nil }
        var i = start
        while i < pending.count {
            guard pending[i] == 0x0A else { i += 1; continue }
            if options.splitting == .lines { return i..<(i + 1) }
            var j = i + 1, end = -1
            while j < pending.count, pending[j] == 0x20 || pending[j] == 0x09 || pending[j] == 0x0D || pending[j] == 0x0A {
                if pending[j] == 0x0A { end = j + 1 }
                j += 1
            }
            if end > 0 && (j < pending.count) {
                // Extend over further blank lines only up to the last line feed before the text resumes.
                return i..<end
            }
            if end > 0 && j == pending.count { return nil }  // the blank run may continue in the next block
            i = j
        }
        return nil
    }

    private mutating func feedRecords(final: Bool, _ body: (DocumentText) throws -> Void) throws {
        while let newline = pending[start...].firstIndex(of: 0x0A) ?? (final && start < pending.count ? pending.count : nil) {
            line += 1
            let record = pending[start..<newline]
            start = min(newline + 1, pending.count)
            guard record.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { continue }
            var text = Array(try recordText(record).utf8)
            try text.withUnsafeMutableBufferPointer { buffer in
                try body(DocumentText(text: UnsafeBufferPointer(buffer), startsDocument: true, path: path))
            }
        }
        if pending.count - start > maximumPendingBytes {
            throw TextError.unreadable(path: path, reason: "JSON Lines record \(line + 1) is over "
                + "\(describeBytes(maximumPendingBytes)); split it into several records")
        }
    }

    private func recordText(_ record: ArraySlice<UInt8>) throws -> String {
        let field = options.jsonField!
        guard let object = (try? JSONSerialization.jsonObject(with: Data(record))) as? [String: Any] else {
            throw TextError.unreadable(path: path, reason: "line \(line) is not a JSON object; JSON Lines holds one "
                + "object per line")
        }
        guard let text = object[field] as? String else {
            throw TextError.unreadable(path: path, reason: "line \(line) has no string field \"\(field)\"; name the "
                + "field with --field (fields: \(object.keys.sorted().prefix(8).joined(separator: ", ")))")
        }
        return text
    }

    /// Hands on `range` of the pending text after checking (or repairing) its UTF-8; empty pieces are skipped.
    private func emit(_ range: Range<Int>, startsDocument: Bool, _ body: (DocumentText) throws -> Void) throws {
        var range = range
        if options.splitting != .file, range.upperBound > range.lowerBound, pending[range.upperBound - 1] == 0x0D {
            range = range.lowerBound..<(range.upperBound - 1)
        }
        guard !range.isEmpty else { return }
        try pending.withUnsafeBufferPointer { all in
            let text = UnsafeBufferPointer(rebasing: all[range])
            guard let bad = UTF8Validation.firstInvalidOffset(text) else {
                return try body(DocumentText(text: text, startsDocument: startsDocument, path: path))
            }
            guard options.invalidUTF8 == .replace else {
                throw TextError.invalidUTF8(path: path, offset: fileOffset + range.lowerBound + bad)
            }
            var repaired = UTF8Validation.replacingInvalid(text)
            try repaired.withUnsafeMutableBufferPointer { buffer in
                try body(DocumentText(text: UnsafeBufferPointer(buffer), startsDocument: startsDocument, path: path))
            }
        }
    }
}

/// "64 MB" or "80000 bytes".
func describeBytes(_ count: Int) -> String { count >= 1 << 20 ? "\(count >> 20) MB" : "\(count) bytes" }
