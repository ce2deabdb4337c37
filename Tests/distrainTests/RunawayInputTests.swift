import XCTest
import _TestSupport

/// Walks and sizes that used to run away (issue 34, class 4): a symbolic link back up the tree made
/// `predict` repeat images forever, and `--batch-size` sized buffers by the flag instead of the data.
final class RunawayInputTests: XCTestCase {
    private let distrain = builtProductsDirectory + "/distrain"

    func testAHugeBatchSizeReservesOnlyWhatTheDataCanFill() throws {
        let root = makeTemporaryDirectory("huge-batch")
        defer { try? FileManager.default.removeItem(atPath: root) }
        writeSyntheticIDXDataset(directory: root, trainCount: 50, testCount: 10)
        for batch in ["1000000000", "1000000"] {
            let outcome = try runProcess(distrain, ["fashion-mnist", "--data-dir", root, "--epochs", "1", "--batch-size", batch,
                                                    "--threads", "1", "--no-progress"], timeout: 120)
            XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
            XCTAssertTrue(outcome.standardOutput.contains("up to 50 per rank"), outcome.standardOutput)
        }
    }

    func testPredictVisitsEachFolderOnceThroughALinkBackUp() throws {
        let root = makeTemporaryDirectory("link-loop")
        defer { try? FileManager.default.removeItem(atPath: root) }
        writeSyntheticImageFolders(directory: root + "/images", trainCount: 40, testCount: 12)
        let train = try runProcess(distrain, ["train", root + "/images", "--epochs", "1", "--threads", "1", "--no-progress",
                                              "--checkpoint-dir", root + "/ck"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        XCTAssertEqual(symlink("..", root + "/images/test/class0/up"), 0)  // back to test/
        XCTAssertEqual(symlink(".", root + "/images/test/class1/self"), 0)
        XCTAssertEqual(symlink("class2", root + "/images/test/also-class2"), 0)
        let predict = try runProcess(distrain, ["predict", "--checkpoint", root + "/ck", root + "/images/test", "--out",
                                                root + "/p.csv"], timeout: 60)
        XCTAssertEqual(predict.exitCode, 0, predict.standardError)
        let rows = try String(contentsOfFile: root + "/p.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.count, 1 + 12, "a header and each of the 12 test images once")
    }
}
