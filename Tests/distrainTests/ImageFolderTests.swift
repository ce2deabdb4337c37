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
}
