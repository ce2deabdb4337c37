import _TestSupport
import Foundation
@testable import Text
import XCTest

/// Documents and pieces as the reader cuts them, and its memory bound.
final class CorpusReaderTests: XCTestCase {
    private func read(_ text: [UInt8], _ options: CorpusOptions) throws -> [(String, Bool)] {
        let path = makeTemporaryDirectory() + "/corpus"
        writeBytes(text, to: path)
        var pieces: [(String, Bool)] = []
        try CorpusReader(files: [path], options: options).read { pieces.append((String(decoding: $0.text,
            as: UTF8.self), $0.startsDocument)) }
        return pieces
    }

    func testDocumentsAreFilesLinesBlankLineBlocksOrJSONRecords() throws {
        let text = Array("first line\nsecond\n\n\nthird block\r\nstill third\n  \n".utf8)
        XCTAssertEqual(try read(text, CorpusOptions()).map(\.0), [String(decoding: text, as: UTF8.self)])
        XCTAssertEqual(try read(text, CorpusOptions(splitting: .lines)).map(\.0),
                       ["first line", "second", "third block", "still third", "  "])
        XCTAssertEqual(try read(text, CorpusOptions(splitting: .blankLines)).map(\.0),
                       ["first line\nsecond", "third block\r\nstill third\n  \n"])
        let records = Array("{\"text\": \"a\\nb\", \"id\": 1}\n\n{\"text\": \"日本\"}\n".utf8)
        XCTAssertEqual(try read(records, CorpusOptions(jsonField: "text")).map(\.0), ["a\nb", "日本"])
        XCTAssertThrowsError(try read(records, CorpusOptions(jsonField: "body"))) {
            XCTAssertTrue("\($0)".contains("line 1 has no string field \"body\"; name the field with --field (fields: id, text)"), "\($0)")
        }
        XCTAssertThrowsError(try read(Array("not json\n".utf8), CorpusOptions(jsonField: "text"))) {
            XCTAssertTrue("\($0)".contains("line 1 is not a JSON object"), "\($0)")
        }
    }

    func testALongDocumentArrivesInBoundedPiecesThatEncodeAsTheWhole() throws {
        var text: [UInt8] = []
        for k in 0..<20_000 { text += Array("word\(k % 97) and more\n".utf8) }
        var options = CorpusOptions()
        options.chunkBytes = 20_000
        let pieces = try read(text, options)
        XCTAssertGreaterThan(pieces.count, 10)
        XCTAssertTrue(pieces.allSatisfy { $0.0.utf8.count <= 20_000 })
        XCTAssertEqual(pieces.map(\.1), [true] + [Bool](repeating: false, count: pieces.count - 1))
        XCTAssertEqual(pieces.map(\.0).joined(), String(decoding: text, as: UTF8.self))
        let tokenizer = try Tokenizer.load(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
            + "/Fixtures/distrain-gpt2-400.json")
        XCTAssertEqual(try pieces.flatMap { try tokenizer.encode($0.0) }, try tokenizer.encode(String(decoding: text, as: UTF8.self)))
    }

    func testAStretchWithNowhereToCutIsRefusedNotHeld() throws {
        var options = CorpusOptions()
        options.chunkBytes = 10_000
        XCTAssertThrowsError(try read([UInt8](repeating: 97, count: 200_000), options)) {
            XCTAssertTrue("\($0)".contains("over 80000 bytes at byte 0 without a line break or a space"), "\($0)")
        }
        // Spaces between words are places to cut: a 1 MB line is read in bounded pieces.
        let line = [UInt8](repeating: 0, count: 0) + Array(String(repeating: "the word ", count: 120_000).utf8)
        XCTAssertEqual(try read(line, options).map(\.0).joined().utf8.count, line.count)
    }

    /// A corpus file whose name is not UTF-8 is named as such, not called missing.
    func testAFileNameThatIsNotUTF8IsNamed() throws {
        let folder = makeTemporaryDirectory("corpus-names")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        writeBytes(Array("In the beginning\n".utf8), to: folder + "/a.txt")
        let name: [UInt8] = Array("\(folder)/b".utf8) + [0xE9] + Array(".txt".utf8) + [0]
        let handle = name.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
        XCTAssertGreaterThanOrEqual(handle, 0)
        close(handle)
        XCTAssertThrowsError(try CorpusFiles.expand([folder])) { error in
            XCTAssertTrue("\(error)".contains("holds an entry whose name is not UTF-8"), "\(error)")
            XCTAssertFalse("\(error)".contains("No such file"), "\(error)")
        }
    }
}
