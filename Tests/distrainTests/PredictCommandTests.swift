import XCTest
import _TestSupport

/// `distrain predict`: the training preprocessing on new files, the same answers as evaluate, and the
/// same answers under mpirun.
final class PredictCommandTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() {
        root = makeTemporaryDirectory("predict")
        writeSyntheticImageFolders(directory: root + "/data", trainCount: 200, testCount: 60)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func rows(_ path: String) throws -> [[String]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    func testPredictionsMatchEvaluateAndMPIRun() throws {
        let train = try runProcess(distrain, ["train", root + "/data", "--epochs", "2", "--threads", "1", "--no-progress", "--checkpoint-dir", root + "/ck"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        // The test split through the dataset, and the same test images given as files: the same classes.
        let split = try runProcess(distrain, ["predict", "--checkpoint", root + "/ck", "--split", "test", root + "/data", "--out", root + "/split.csv", "--threads", "1"], timeout: 120)
        XCTAssertEqual(split.exitCode, 0, split.standardError)
        let files = try runProcess(distrain, ["predict", "--checkpoint", root + "/ck", root + "/data/test", "--top-k", "3", "--out", root + "/files.csv", "--threads", "1"], timeout: 120)
        XCTAssertEqual(files.exitCode, 0, files.standardError)
        let bySplit = try rows(root + "/split.csv"), byFile = try rows(root + "/files.csv")
        XCTAssertEqual(bySplit.count, 60)
        XCTAssertEqual(byFile.map { $0[1] }, bySplit.map { $0[1] }, "file order = folder order = the split's order")
        XCTAssertEqual(byFile[0].count, 7, "input + 3 × (class, probability)")
        // The accuracy of predict's classes is evaluate's accuracy.
        let labels = byFile.map { $0[0].split(separator: "/").dropLast().last.map(String.init) ?? "" }
        let correct = zip(byFile, labels).filter { $0.0[1] == $0.1 }.count
        let evaluate = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ck", root + "/data", "--json"], timeout: 120)
        let accuracy = (try JSONSerialization.jsonObject(with: Data(evaluate.standardOutput.utf8)) as! [String: Any])["accuracy"] as! Double
        XCTAssertEqual(Double(correct) / 60, accuracy, accuracy: 1e-12)
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let parallel = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain, "predict", "--checkpoint", root + "/ck", root + "/data/test",
                                      "--top-k", "3", "--out", root + "/mpi.csv", "--threads", "1"], timeout: 120)
        XCTAssertEqual(parallel.exitCode, 0, parallel.standardError)
        let byRanks = try rows(root + "/mpi.csv")
        XCTAssertEqual(byRanks.map { [$0[0], $0[1], $0[3], $0[5]] }, byFile.map { [$0[0], $0[1], $0[3], $0[5]] }, "same inputs, same order, same classes")
        for (a, b) in zip(byRanks, byFile) { XCTAssertEqual(Double(a[2])!, Double(b[2])!, accuracy: 1e-5) }
    }

    func testBadInputsAreUsageErrorsOrNamed() throws {
        XCTAssertEqual(try runProcess(distrain, ["predict", "--checkpoint", root], timeout: 30).exitCode, 64)
        XCTAssertEqual(try runProcess(distrain, ["predict", "--checkpoint", root, "x.png", "--out", "p.txt"], timeout: 30).exitCode, 64)
        XCTAssertEqual(try runProcess(distrain, ["train", root + "/data", "--epochs", "1", "--threads", "1", "--no-progress", "--checkpoint-dir", root + "/ck"], timeout: 120).exitCode, 0)
        writeBytes(npyFile(dtype: "|u1", shape: [2, 3, 3], data: [UInt8](repeating: 1, count: 18)), to: root + "/small.npy")
        let wrongShape = try runProcess(distrain, ["predict", "--checkpoint", root + "/ck", root + "/small.npy"], timeout: 60)
        XCTAssertEqual(wrongShape.exitCode, 1)
        XCTAssertTrue(wrongShape.standardError.contains("small.npy: holds [2, 3, 3]; the model takes uint8 samples of 1x28x28"), wrongShape.standardError)
        writeBytes(npyFile(dtype: "|u1", shape: [2, 28, 28], data: [UInt8](repeating: 1, count: 1568)), to: root + "/two.npy")
        let npy = try runProcess(distrain, ["predict", "--checkpoint", root + "/ck", root + "/two.npy"], timeout: 60)
        XCTAssertEqual(npy.exitCode, 0, npy.standardError)
        XCTAssertTrue(npy.standardOutput.contains("two.npy[1]  class"), npy.standardOutput)
    }
}
