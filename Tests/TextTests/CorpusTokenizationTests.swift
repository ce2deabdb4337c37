import _TestSupport
import Foundation
@testable import Text
import XCTest

/// Corpus → shards: what lands in the shards, how documents are split, and what the folder may hold.
final class CorpusTokenizationTests: XCTestCase {
    private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    private var tokenizer: Tokenizer { try! Tokenizer.load(path: fixtures + "/distrain-gpt2-400.json") }

    /// A folder of `count` small documents, each a few lines of distinct text.
    private func corpusFolder(documents count: Int) -> String {
        let folder = makeTemporaryDirectory()
        for k in 0..<count {
            let text = "Document \(k): the earth was without form, and void \(k * 7).\nAnd God said, Let there be light.\n"
            writeBytes(Array(text.utf8), to: folder + "/doc-\(String(1000 + k).dropFirst()).txt")
        }
        return folder
    }

    private func tokens(_ directory: String, _ manifest: TokenManifest, split: String) throws -> [Int32] {
        try manifest.shards(split).flatMap { record -> [Int32] in
            let shard = try TokenShard(path: directory + "/" + record.file)
            XCTAssertEqual(shard.count, record.tokens)
            return (0..<shard.count).map { shard.token($0) }
        }
    }

    func testShardsHoldEachDocumentAfterAnEndOfTextInOrderSplitByWholeDocuments() throws {
        let corpus = corpusFolder(documents: 40)
        let out = makeTemporaryDirectory() + "/tokens"
        var options = TokenizationOptions(outputDirectory: out)
        options.shardTokens = 300
        options.validationFraction = 0.25
        options.seed = 3
        let files = try CorpusFiles.expand([corpus])
        XCTAssertEqual(files.count, 40)
        let manifest = try CorpusTokenization.run(files: files, tokenizer: tokenizer, options: options)
        let eot = tokenizer.endOfText!
        var expected: [String: [Int32]] = ["train": [], "val": []]
        var documents: [String: Int] = ["train": 0, "val": 0]
        let batch = TokenizationBatch(tokenizer: tokenizer, options: options, endOfText: eot)
        for (k, file) in files.enumerated() {
            let ids = try tokenizer.encode(try String(contentsOfFile: file, encoding: .utf8))
            let split = batch.isValidationForTesting(document: k) ? "val" : "train"
            expected[split]! += [eot] + ids
            documents[split]! += 1
        }
        XCTAssertGreaterThan(documents["val"]!, 3)
        XCTAssertGreaterThan(documents["train"]!, 20)
        for split in ["train", "val"] {
            XCTAssertEqual(try tokens(out, manifest, split: split), expected[split]!, split)
            XCTAssertEqual(manifest.shards(split).reduce(0) { $0 + $1.documents }, documents[split]!)
            XCTAssertTrue(manifest.shards(split).dropLast().allSatisfy { $0.tokens == 300 }, "full shards but the last")
        }
        let totalBytes = files.reduce(0) { $0 + (try! Data(contentsOf: URL(fileURLWithPath: $1))).count }
        XCTAssertEqual(manifest.shards.reduce(0) { $0 + $1.textBytes }, totalBytes)
        XCTAssertEqual(try TokenManifest.load(directory: out), manifest)
        XCTAssertEqual(try Tokenizer.load(path: out + "/tokenizer.json").fingerprint, tokenizer.fingerprint)
    }

    func testTheFolderIsReusedOnlyForTheSameTokenizationAndNothingElseIsDeleted() throws {
        let corpus = corpusFolder(documents: 8)
        let files = try CorpusFiles.expand([corpus])
        let out = makeTemporaryDirectory() + "/tokens"
        var options = TokenizationOptions(outputDirectory: out)
        options.validationFraction = 0
        let first = try CorpusTokenization.run(files: files, tokenizer: tokenizer, options: options)
        // An interrupted rerun leaves a partial shard: the same command again finishes the job.
        writeBytes([1, 2, 3], to: out + "/.train_000001.bin.partial")
        XCTAssertEqual(try CorpusTokenization.run(files: files, tokenizer: tokenizer, options: options), first)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/.train_000001.bin.partial"))

        options.seed = 9
        options.validationFraction = 0.5
        XCTAssertThrowsError(try CorpusTokenization.run(files: files, tokenizer: tokenizer, options: options)) {
            XCTAssertTrue("\($0)".contains("holds another tokenization"), "\($0)")
        }
        XCTAssertNoThrow(try TokenManifest.load(directory: out), "the other run is left whole")

        let foreign = makeTemporaryDirectory()
        writeBytes(Array("mine".utf8), to: foreign + "/notes.txt")
        options.outputDirectory = foreign
        XCTAssertThrowsError(try CorpusTokenization.run(files: files, tokenizer: tokenizer, options: options)) {
            XCTAssertTrue("\($0)".contains("holds files distrain did not write (notes.txt)"), "\($0)")
        }
        XCTAssertEqual(try String(contentsOfFile: foreign + "/notes.txt", encoding: .utf8), "mine")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: foreign), ["notes.txt"])
    }

    func testTokensOfVocabulariesOver65536AreWrittenAsUInt32() throws {
        var tokenBytes = (0..<256).map { [UInt8($0)] }
        for k in 0..<70_000 { tokenBytes.append(Array("w\(k)".utf8)) }
        tokenBytes.append(Array("<|endoftext|>".utf8))
        let wide = Tokenizer(kind: .byteLevelBPE, pattern: .gpt2, tokenBytes: tokenBytes, merges: [],
                             specialTokens: [SpecialToken("<|endoftext|>", id: Int32(tokenBytes.count - 1))])
        let corpus = makeTemporaryDirectory() + "/a.txt"
        writeBytes(Array("hi".utf8), to: corpus)
        var options = TokenizationOptions(outputDirectory: makeTemporaryDirectory() + "/wide")
        options.validationFraction = 0
        let manifest = try CorpusTokenization.run(files: [corpus], tokenizer: wide, options: options)
        let shard = try TokenShard(path: options.outputDirectory + "/" + manifest.shards[0].file)
        XCTAssertEqual(shard.width, 4)
        XCTAssertEqual((0..<shard.count).map { shard.token($0) }, [70_256, 104, 105])
        let header = [UInt8](try Data(contentsOf: URL(fileURLWithPath: shard.path))).prefix(12)
        XCTAssertEqual(Array(header), [0xA1, 0xD9, 0x34, 0x01, 7, 0, 0, 0, 3, 0, 0, 0])  // 20240801, 7, 3
    }

    func testShardsWhoseHeaderLiesOrThatAreTruncatedAreRefusedAndFuzzedShardsNeverCrash() throws {
        var header = TokenShardFormat.header(count: 10, width: 2).flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        let good = header + [UInt8](repeating: 7, count: 20)
        let path = makeTemporaryDirectory() + "/train_000000.bin"
        writeBytes(good, to: path)
        XCTAssertEqual(try TokenShard(path: path).count, 10)
        writeBytes(Array(good.dropLast(3)), to: path)
        XCTAssertThrowsError(try TokenShard(path: path)) {
            XCTAssertTrue("\($0)".contains("the header says 10 tokens (1044 bytes) but the file has 1041 bytes"), "\($0)")
        }
        header[0] = 0x99
        writeBytes(header, to: path)
        XCTAssertThrowsError(try TokenShard(path: path)) { XCTAssertTrue("\($0)".contains("is not an llm.c token shard"), "\($0)") }
        writeBytes([1, 2, 3], to: path)
        XCTAssertThrowsError(try TokenShard(path: path)) { XCTAssertTrue("\($0)".contains("shorter than the 1024-byte header"), "\($0)") }
        for mutated in seededMutations(of: good, count: 200, seed: 5, fieldOffsets: [0, 4, 8, 9, 10, 11]) {
            writeBytes(mutated, to: path)
            if let shard = try? TokenShard(path: path) {
                XCTAssertEqual(TokenShardFormat.headerBytes + shard.count * shard.width, mutated.count)
                _ = shard.firstToken(atLeast: 100)
            }
        }
    }

    func testBadBytesStopWithTheFileAndOffsetOrAreReplaced() throws {
        let corpus = makeTemporaryDirectory() + "/bad.txt"
        writeBytes(Array("good text\n".utf8) + [0xC3, 0x28] + Array(" more".utf8), to: corpus)
        var options = TokenizationOptions(outputDirectory: makeTemporaryDirectory() + "/t")
        options.validationFraction = 0
        XCTAssertThrowsError(try CorpusTokenization.run(files: [corpus], tokenizer: tokenizer, options: options)) {
            XCTAssertEqual("\($0)", "\(corpus): not UTF-8 at byte 10; convert it (iconv -f latin1 -t utf-8) or pass "
                + "--invalid-utf8 replace to read bad bytes as U+FFFD")
        }
        options.corpus.invalidUTF8 = .replace
        options.outputDirectory += "2"
        let manifest = try CorpusTokenization.run(files: [corpus], tokenizer: tokenizer, options: options)
        let shard = try TokenShard(path: options.outputDirectory + "/" + manifest.shards[0].file)
        let ids = (1..<shard.count).map { shard.token($0) }
        XCTAssertEqual(try tokenizer.decode(ids), Array("good text\n\u{FFFD}( more".utf8))
    }

    func testAnEmptyCorpusAFIFOAndOneDocumentWithAValidationShareAreRefused() throws {
        let folder = makeTemporaryDirectory()
        writeBytes([], to: folder + "/empty.txt")
        var options = TokenizationOptions(outputDirectory: folder + "/out")
        options.validationFraction = 0
        XCTAssertThrowsError(try CorpusTokenization.run(files: [folder + "/empty.txt"], tokenizer: tokenizer, options: options)) {
            XCTAssertTrue("\($0)".contains("empty.txt: the corpus holds no text"), "\($0)")
        }
        let pipes = makeTemporaryDirectory()
        writeBytes([65], to: pipes + "/a.txt")
        XCTAssertEqual(mkfifo(pipes + "/pipe", 0o600), 0)
        XCTAssertThrowsError(try CorpusFiles.expand([pipes + "/pipe"])) {
            XCTAssertTrue("\($0)".contains("not a regular file or folder"), "\($0)")
        }
        XCTAssertEqual(try CorpusFiles.expand([pipes]), [pipes + "/a.txt"], "inside a folder, the FIFO is skipped")
        writeBytes(Array("one document only".utf8), to: folder + "/one.txt")
        options.validationFraction = 0.1
        options.outputDirectory = folder + "/out2"
        XCTAssertThrowsError(try CorpusTokenization.run(files: [folder + "/one.txt"], tokenizer: tokenizer, options: options)) {
            XCTAssertTrue("\($0)".contains("no document fell into the validation split (1 documents)"), "\($0)")
        }
    }

    func testFoldersAreWalkedOnceInNameOrderEvenThroughALinkBackUp() throws {
        let folder = makeTemporaryDirectory()
        try FileManager.default.createDirectory(atPath: folder + "/b", withIntermediateDirectories: true)
        writeBytes([65], to: folder + "/b/2.txt")
        writeBytes([65], to: folder + "/a.txt")
        writeBytes([65], to: folder + "/.hidden")
        XCTAssertEqual(symlink("..", folder + "/b/up"), 0)
        XCTAssertEqual(try CorpusFiles.expand([folder]), [folder + "/a.txt", folder + "/b/2.txt"])
    }
}
