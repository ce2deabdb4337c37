import XCTest
import _TestSupport

/// Image folders in: the same samples as IDX files train to bitwise the same parameters; bad images named.
final class ImageFolderTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() { root = makeTemporaryDirectory("images") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func testPNGFoldersTrainBitwiseLikeTheSameIDXFiles() throws {
        writeSyntheticImageFolders(directory: root + "/data", trainCount: 120, testCount: 30)
        let flags = ["--epochs", "2", "--threads", "1", "--no-progress", "--batch-size", "16"]
        let idx = try runProcess(distrain, ["mnist", "--data-dir", root + "/data/idx", "--checkpoint-dir", root + "/a"] + flags, timeout: 120)
        XCTAssertEqual(idx.exitCode, 0, idx.standardError)
        let png = try runProcess(distrain, ["train", root + "/data", "--checkpoint-dir", root + "/b"] + flags, timeout: 120)
        XCTAssertEqual(png.exitCode, 0, png.standardError)
        XCTAssertEqual(try checkpointTensorBytes(root + "/b/step-00000016"), try checkpointTensorBytes(root + "/a/step-00000016"))
        let metadata = String(decoding: try Data(contentsOf: URL(fileURLWithPath: root + "/b/step-00000016/model.safetensors")).prefix(4000), as: UTF8.self)
        XCTAssertTrue(metadata.contains("class_names") && metadata.contains("class0") && metadata.contains("preprocessing"), "class names and preprocessing recorded")
        let evaluate = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/b", root + "/data"], timeout: 60)
        XCTAssertEqual(evaluate.exitCode, 0, evaluate.standardError)
    }

    func testACheckpointFolderInsideTheDataIsRefusedBeforeAnythingIsWritten() throws {
        writeSyntheticImageFolders(directory: root + "/data", trainCount: 30, testCount: 10)
        let before = try FileManager.default.subpathsOfDirectory(atPath: root + "/data").count
        for folder in [root + "/data", root + "/data/train/runs", root + "/data/../data/x"] {
            let refused = try runProcess(distrain, ["train", root + "/data", "--epochs", "1", "--no-progress",
                                                    "--checkpoint-dir", folder], timeout: 60)
            XCTAssertEqual(refused.exitCode, 64, refused.standardError)
            XCTAssertTrue(refused.standardError.contains("is inside the data"), refused.standardError)
        }
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: root + "/data").count, before, "nothing written")
    }

    func testBadImagesAreNamedOrSkippedAndResizeWorks() throws {
        writeSyntheticImageFolders(directory: root + "/data", trainCount: 60, testCount: 20)
        let broken = root + "/data/train/class3/zz-broken.png"
        writeBytes(Array(pngFile(width: 28, height: 28, channels: 1, pixels: [UInt8](repeating: 7, count: 784)).prefix(60)), to: broken)
        let fatal = try runProcess(distrain, ["train", root + "/data", "--epochs", "1", "--no-progress"], timeout: 120)
        XCTAssertEqual(fatal.exitCode, 1)
        XCTAssertTrue(fatal.standardError.contains(broken) && fatal.standardError.contains("--skip-bad-files"), fatal.standardError)
        let skipping = try runProcess(distrain, ["train", root + "/data", "--epochs", "1", "--no-progress", "--skip-bad-files", "--image-size", "14x14", "--channels", "3"], timeout: 120)
        XCTAssertEqual(skipping.exitCode, 0, skipping.standardError)
        XCTAssertTrue(skipping.standardError.contains("skipped 1 file that do not decode"), skipping.standardError)
        XCTAssertTrue(skipping.standardOutput.contains("3x14x14"), "resized and converted: \(skipping.standardOutput.prefix(600))")
        try FileManager.default.createDirectory(atPath: root + "/one/only", withIntermediateDirectories: true)
        writeBytes(pngFile(width: 2, height: 2, channels: 1, pixels: [0, 1, 2, 3]), to: root + "/one/only/a.png")
        let single = try runProcess(distrain, ["train", root + "/one", "--epochs", "1"], timeout: 60)
        XCTAssertNotEqual(single.exitCode, 0)
        XCTAssertTrue(single.standardError.contains("holds one class folder (only)"), single.standardError)
    }

    /// A class folder or an image whose name is not UTF-8 is named in an error, never dropped in silence (a 3-class
    /// folder trained as 2) nor called missing.
    func testNamesThatAreNotUTF8AreRefused() throws {
        let image = pngFile(width: 4, height: 4, channels: 1, pixels: (0..<16).map { UInt8($0 * 9) })
        for name in ["cat", "dog"] {
            try FileManager.default.createDirectory(atPath: "\(root)/set/\(name)", withIntermediateDirectories: true)
            for i in 0..<4 { writeBytes(image, to: "\(root)/set/\(name)/\(i).png") }
        }
        let model = try runProcess(distrain, ["train", root + "/set", "--epochs", "1", "--no-progress", "--test-split", "0.25",
                                              "--checkpoint-dir", root + "/run"], timeout: 60)
        XCTAssertEqual(model.exitCode, 0, model.standardError)
        // "caf\xE9": Latin-1, not UTF-8.
        let bytes: [UInt8] = Array("\(root)/set/caf".utf8) + [0xE9, 0]
        XCTAssertEqual(bytes.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o755) } }, 0)
        let trained = try runProcess(distrain, ["train", root + "/set", "--epochs", "1", "--no-progress"], timeout: 60)
        XCTAssertNotEqual(trained.exitCode, 0, trained.standardOutput)
        XCTAssertTrue(trained.standardError.contains("holds an entry whose name is not UTF-8"), trained.standardError)
        let file: [UInt8] = Array("\(root)/set/cat/b".utf8) + [0xFF] + Array(".png".utf8) + [0]
        let handle = file.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
        XCTAssertGreaterThanOrEqual(handle, 0)
        close(handle)
        let predicted = try runProcess(distrain, ["predict", "--checkpoint", root + "/run", root + "/set/cat"], timeout: 60)
        XCTAssertNotEqual(predicted.exitCode, 0)
        XCTAssertTrue(predicted.standardError.contains("holds an entry whose name is not UTF-8"), predicted.standardError)
        // The same file named on the command line (Swift would see U+FFFD and report "No such file"): the shell passes
        // its raw bytes, and any argument, a path or not, is refused by name with exit 64.
        for arguments in ["predict --checkpoint '\(root)/run' \"$(printf '\(root)/set/cat/b\\377.png')\"",
                          "train \"$(printf '\(root)/set/caf\\351')\" --epochs 1", "fashion-mnist --model \"$(printf 'x\\377')\""] {
            let named = try runProcess("/bin/sh", ["-c", "exec '\(distrain)' \(arguments)"], timeout: 60)
            XCTAssertEqual(named.exitCode, 64, arguments)
            XCTAssertTrue(named.standardError.hasPrefix("distrain: error: argument ") && named.standardError.contains("is not valid UTF-8"),
                          named.standardError)
            XCTAssertFalse(named.standardError.contains("No such file"), named.standardError)
        }
    }
}
