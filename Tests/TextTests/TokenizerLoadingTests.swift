import _TestSupport
import Foundation
@testable import Text
import XCTest

/// tokenizer.json files distrain must refuse, each with a one-line reason, and a fuzzed reader.
final class TokenizerLoadingTests: XCTestCase {
    private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    private func expectRefusal(_ json: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        let path = makeTemporaryDirectory() + "/tokenizer.json"
        writeBytes(Array(json.utf8), to: path)
        XCTAssertThrowsError(try Tokenizer.load(path: path), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(fragment), message, file: file, line: line)
            XCTAssertTrue(message.hasPrefix(path), "names the file: \(message)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        }
    }

    private var base: [String: Any] {
        let data = try! Data(contentsOf: URL(fileURLWithPath: fixtures + "/distrain-gpt2-400.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    private func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    private func with(model change: (inout [String: Any]) -> Void) -> String {
        var root = base, model = root["model"] as! [String: Any]
        change(&model)
        root["model"] = model
        return json(root)
    }

    func testTokenizersThatAreNotByteLevelBPEAreRefused() {
        expectRefusal("[1, 2]", "not a JSON object")
        expectRefusal("{\"model\": {\"type\": \"WordPiece\"}}", "not a BPE tokenizer (model type 'WordPiece')")
        var normalized = base
        normalized["normalizer"] = ["type": "NFC"]
        expectRefusal(json(normalized), "it has a normalizer ('NFC')")
        var bert = base
        bert["pre_tokenizer"] = ["type": "BertPreTokenizer"]
        expectRefusal(json(bert), "pre-tokenizer BertPreTokenizer is not byte-level")
        expectRefusal(with { $0["continuing_subword_prefix"] = "##" }, "WordPiece-style")
        expectRefusal(with { $0["dropout"] = 0.1 }, "BPE dropout 0.1 makes encoding random")
    }

    func testVocabulariesAndMergesThatDoNotAddUpAreRefused() {
        expectRefusal(with { $0["merges"] = ["Ġ zzz"] }, "merge 0 names unknown token 'zzz'")
        expectRefusal(with { model in
            var vocab = model["vocab"] as! [String: Any]
            vocab["Ġ"] = nil
            model["vocab"] = vocab
        }, "lacks the token for byte 32")
        expectRefusal(with { model in
            var vocab = model["vocab"] as! [String: Any]
            vocab["Ġ"] = vocab["!"]
            model["vocab"] = vocab
        }, "share id 33")
        expectRefusal(with { model in
            var vocab = model["vocab"] as! [String: Any]
            vocab["日本"] = 500
            model["vocab"] = vocab
        }, "is not a byte-level symbol")
        expectRefusal(with { $0["merges"] = ["! !"] }, "merge 0 makes '!!', which is not in the vocabulary")
    }

    func testAFIFOOrFolderIsNotReadAsATokenizer() throws {
        let folder = makeTemporaryDirectory()
        XCTAssertThrowsError(try Tokenizer.load(path: folder)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        let fifo = folder + "/pipe"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try Tokenizer.load(path: fifo)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
    }

    func testFuzzedTokenizerFilesLoadOrFailWithATextError() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixtures + "/distrain-gpt2-400.json")))
        var state: UInt64 = 0x1234_5678
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33)
        }
        let path = makeTemporaryDirectory() + "/tokenizer.json"
        var refused = 0, loaded = 0
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<(1 + next() % 4) {
                switch next() % 3 {
                case 0: bytes[next() % bytes.count] = UInt8(truncatingIfNeeded: next())
                case 1: bytes.removeSubrange((next() % bytes.count)...)
                default: bytes.insert(contentsOf: Array("\"x\": 9999999, ".utf8), at: next() % bytes.count)
                }
                if bytes.isEmpty { bytes = [0] }
            }
            writeBytes(bytes, to: path)
            do {
                let tokenizer = try Tokenizer.load(path: path)
                _ = try tokenizer.encode("In the beginning 日本 😀")
                loaded += 1
            } catch let error as TextError {
                XCTAssertFalse("\(error)".contains("\n"), "\(error)")
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 100)
        XCTAssertEqual(refused + loaded, 300)
    }
}
