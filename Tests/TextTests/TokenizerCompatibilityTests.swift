import Foundation
@testable import Text
import XCTest

/// distrain's tokenizers against Hugging Face `tokenizers` 0.23.3: Fixtures/make_fixtures.py recorded what
/// `Tokenizer.from_file(...).encode(text).ids` gives for distrain's tokenizer.json files and for one Hugging
/// Face trained itself; these tests encode the same texts and compare every id.
final class TokenizerCompatibilityTests: XCTestCase {
    private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    private func fixture(_ name: String) -> String { fixtures + "/" + name }

    private func fixtureBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name))))
    }

    /// The texts the fixtures were encoded from: corpus.txt, probe.txt and probe-bytes.bin read with U+FFFD.
    private func texts() throws -> [String: [UInt8]] {
        let raw = try fixtureBytes("probe-bytes.bin")
        XCTAssertNotNil(raw.withUnsafeBufferPointer { UTF8Validation.firstInvalidOffset($0) }, "the probe must hold bad UTF-8")
        return ["corpus": try fixtureBytes("corpus.txt"), "probe": try fixtureBytes("probe.txt"),
                "bytes": raw.withUnsafeBufferPointer { UTF8Validation.replacingInvalid($0) }]
    }

    private func encode(_ tokenizer: Tokenizer, _ bytes: [UInt8]) throws -> [Int32] {
        var ids: [Int32] = []
        try bytes.withUnsafeBufferPointer { try tokenizer.makeEncoder().encode($0, appendingTo: &ids) }
        return ids
    }

    func testEncodingGivesHuggingFacesIDsForDistrainsAndHuggingFacesTokenizers() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture("expected-ids.json"))))
            as! [String: [String: [Int]]]
        XCTAssertEqual(expected.count, 4)
        let texts = try texts()
        for (name, byText) in expected {
            let tokenizer = try Tokenizer.load(path: fixture(name))
            for (key, ids) in byText {
                let ours = try encode(tokenizer, texts[key]!)
                XCTAssertEqual(ours.count, ids.count, "\(name) on \(key)")
                XCTAssertEqual(ours.map(Int.init), ids, "\(name) on \(key)")
                XCTAssertEqual(try tokenizer.decode(ours), texts[key]!, "\(name) on \(key): decoding gives the bytes back")
            }
        }
    }

    func testTrainingReproducesTheRecordedTokenizersWhateverTheThreads() throws {
        let cases: [(String, TokenizerTrainingOptions)] = [
            ("distrain-gpt2-400.json", options(vocabulary: 400, pattern: .gpt2)),
            ("distrain-gpt4-400.json", options(vocabulary: 400, pattern: .gpt4)),
            ("distrain-char.json", options(vocabulary: 0, pattern: .none, characterLevel: true)),
        ]
        for (name, base) in cases {
            for threads in [1, 2, 3] {
                var options = base
                options.threads = threads
                let trained = try TokenizerTraining.train(files: [fixture("corpus.txt")], options: options)
                let recorded = try String(contentsOfFile: fixture(name), encoding: .utf8)
                XCTAssertEqual(trained.huggingFaceJSON(), recorded, "\(name) with \(threads) threads")
            }
        }
    }

    private func options(vocabulary: Int, pattern: SplitPattern, characterLevel: Bool = false) -> TokenizerTrainingOptions {
        var options = TokenizerTrainingOptions()
        options.vocabularySize = vocabulary
        options.pattern = pattern
        options.characterLevel = characterLevel
        return options
    }

    func testByteLevelAlphabetIsGPT2s() {
        XCTAssertEqual(Set(ByteLevel.characters).count, 256)
        XCTAssertEqual(ByteLevel.characters[32], "\u{120}")  // Ġ: the space
        XCTAssertEqual(ByteLevel.characters[10], "\u{10A}")  // Ċ: the line feed
        XCTAssertEqual(ByteLevel.characters[33], "!")
        XCTAssertEqual(ByteLevel.characters[173], "\u{143}")  // the soft hyphen, the last byte shifted
        for byte in 0..<256 { XCTAssertEqual(ByteLevel.byte(for: ByteLevel.characters[byte]), UInt8(byte)) }
    }

    private func pieces(_ text: String, _ pattern: SplitPattern) -> [String] {
        var bytes = Array(text.utf8), result: [String] = []
        bytes.withUnsafeMutableBufferPointer { buffer in
            let all = UnsafeBufferPointer(buffer)
            PreTokenizer(pattern: pattern).split(all) { result.append(String(decoding: all[$0], as: UTF8.self)) }
        }
        return result
    }

    func testSplitPatternsCutAsTheirRegularExpressions() {
        XCTAssertEqual(pieces("Hello  world's\n\n x", .gpt2), ["Hello", " ", " world", "'s", "\n\n", " x"])
        XCTAssertEqual(pieces("I'LL 12345 go!!\n", .gpt2), ["I", "'", "LL", " 12345", " go", "!!", "\n"])
        XCTAssertEqual(pieces("I'LL 12345 go!!\n", .gpt4), ["I", "'LL", " ", "123", "45", " go", "!!\n"])
        XCTAssertEqual(pieces("\"quoted\"\tword \u{3000}x", .gpt4), ["\"quoted", "\"", "\tword", " ", "\u{3000}x"])
        XCTAssertEqual(pieces("a  \n\n  b", .gpt4), ["a", "  \n\n", " ", " b"])
        XCTAssertEqual(pieces("anything at all", .none), ["anything at all"])
    }

    func testMergesAreTheMostFrequentPairsWithTiesToTheSmallerPair() throws {
        var trainer = try BPETrainer(vocabularySize: 260, specialTokens: ["<|endoftext|>"], threads: 1)
        var text = Array("ab ab ab abc".utf8)
        text.withUnsafeBufferPointer { trainer.count($0) }
        let tokenizer = try trainer.train()
        // Pieces "ab", " ab" ×2, " abc": (a,b) 4 times, then (' ', ab) 3, then (' ab', c) 1.
        XCTAssertEqual(tokenizer.mergeRules.map { [$0.left, $0.right, $0.result] }, [[97, 98, 256], [32, 256, 257], [257, 99, 258]])
        XCTAssertEqual(tokenizer.specialTokens, [SpecialToken("<|endoftext|>", id: 259)])
        XCTAssertEqual(try tokenizer.encode(" abc<|endoftext|>ab"), [258, 259, 256])

        var tied = try BPETrainer(vocabularySize: 258, specialTokens: [], threads: 1)
        var tiedText = Array("ba\ncd".utf8)  // (b,a) and (c,d) once each: (98,97) < (99,100) merges first
        tiedText.withUnsafeBufferPointer { tied.count($0) }
        XCTAssertEqual(try tied.train().mergeRules.map { [$0.left, $0.right] }, [[98, 97], [99, 100]])
    }

    func testVocabularySizeOutsideTheRangeIsRefused() {
        XCTAssertThrowsError(try BPETrainer(vocabularySize: 256)) { error in
            XCTAssertTrue("\(error)".contains("--vocab-size 256 is outside 257...1048576"), "\(error)")
        }
        XCTAssertThrowsError(try BPETrainer(vocabularySize: (1 << 20) + 1))
    }
}
