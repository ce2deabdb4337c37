import XCTest
import _TestSupport

/// NumPy arrays in: the same samples as IDX files train to bitwise the same parameters.
final class NumPyDataTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() { root = makeTemporaryDirectory("numpy") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// The tensor bytes of a checkpoint's model.safetensors (after the header, whose metadata names the data).
    func testANpzTrainsBitwiseLikeTheSameIDXFiles() throws {
        writeSyntheticIDXDataset(directory: root, trainCount: 150, testCount: 40)
        writeSyntheticNumPyDataset(path: root + "/data.npz", trainCount: 150, testCount: 40)
        let flags = ["--epochs", "2", "--threads", "1", "--no-progress", "--batch-size", "16"]
        let idx = try runProcess(distrain, ["fashion-mnist", "--data-dir", root, "--checkpoint-dir", root + "/idx"] + flags, timeout: 120)
        XCTAssertEqual(idx.exitCode, 0, idx.standardError)
        let npz = try runProcess(distrain, ["train", root + "/data.npz", "--checkpoint-dir", root + "/npz"] + flags, timeout: 120)
        XCTAssertEqual(npz.exitCode, 0, npz.standardError)
        XCTAssertEqual(try checkpointTensorBytes(root + "/npz/step-00000020"), try checkpointTensorBytes(root + "/idx/step-00000020"))
        let evaluate = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/npz", root + "/data.npz"], timeout: 60)
        XCTAssertEqual(evaluate.exitCode, 0, evaluate.standardError)
    }

    func testBadArraysAreNamed() throws {
        func train(_ members: [(name: String, npy: [UInt8])]) throws -> String {
            writeBytes(npzFile(members), to: root + "/bad.npz")
            return try runProcess(distrain, ["train", root + "/bad.npz", "--epochs", "1"], timeout: 60).standardError
        }
        let x = npyFile(dtype: "|u1", shape: [4, 2, 2], data: [UInt8](repeating: 9, count: 16))
        let y = npyFile(dtype: "<i8", shape: [4], data: [0, 1, 0, 1].flatMap { [UInt8($0), 0, 0, 0, 0, 0, 0, 0] })
        XCTAssertTrue(try train([("x_train", x), ("y_train", y), ("x_test", x)]).contains("bad.npz:y_test"))
        let floats = npyFile(dtype: "<f4", shape: [4, 2, 2], data: [UInt8](repeating: 0, count: 64))
        XCTAssertTrue(try train([("x_train", floats), ("y_train", y), ("x_test", x), ("y_test", y)]).contains("holds dtype <f4"))
        let short = npyFile(dtype: "<i8", shape: [3], data: [UInt8](repeating: 0, count: 24))
        XCTAssertTrue(try train([("x_train", x), ("y_train", short), ("x_test", x), ("y_test", y)]).contains("labels of shape [3] for 4 samples"))
        var fortran = x
        if let range = fortran.firstRange(of: Array("False".utf8)) { fortran.replaceSubrange(range, with: Array("True ".utf8)) }
        XCTAssertTrue(try train([("x_train", fortran), ("y_train", y), ("x_test", x), ("y_test", y)]).contains("Fortran order"))
        let truncated = Array(x.dropLast(3))
        XCTAssertTrue(try train([("x_train", truncated), ("y_train", y), ("x_test", x), ("y_test", y)]).contains("truncated or not what it claims"))
    }
}
