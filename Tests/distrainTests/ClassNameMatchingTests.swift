import XCTest
import _TestSupport

/// Classes are matched by name against what the checkpoint recorded (issue 34, "names matched by position"):
/// a model's folders evaluated under other names, or an IDX checkpoint on another dataset, is an error naming
/// both lists — it used to report an accuracy computed against the wrong classes.
final class ClassNameMatchingTests: XCTestCase {
    func testEvaluatingOnClassesWithOtherNamesIsRefusedNamingBothLists() throws {
        let distrain = builtProductsDirectory + "/distrain"
        let root = makeTemporaryDirectory("class-names")
        defer { try? FileManager.default.removeItem(atPath: root) }
        writeSyntheticImageFolders(directory: root + "/images", trainCount: 60, testCount: 30)
        let train = try runProcess(distrain, ["train", root + "/images", "--epochs", "1", "--threads", "1", "--no-progress",
                                              "--checkpoint-dir", root + "/ck"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        let same = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ck", root + "/images"], timeout: 60)
        XCTAssertEqual(same.exitCode, 0, same.standardError)

        let manager = FileManager.default
        try manager.copyItem(atPath: root + "/images", toPath: root + "/renamed")
        for split in ["train", "test"] {
            try manager.moveItem(atPath: "\(root)/renamed/\(split)/class1", toPath: "\(root)/renamed/\(split)/Class1")
        }
        let renamed = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ck", root + "/renamed"], timeout: 60)
        XCTAssertEqual(renamed.exitCode, 1, renamed.standardOutput)
        XCTAssertTrue(renamed.standardError.contains("it was trained on classes 'class0', 'class1', 'class2'"), renamed.standardError)
        XCTAssertTrue(renamed.standardError.contains("'Class1'"), renamed.standardError)
        XCTAssertEqual(renamed.standardError.split(separator: "\n").count, 1, renamed.standardError)

        // The same images as MNIST-style IDX files: the classes are "0"…"9", not the folders' names.
        let idx = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ck", "mnist", "--data-dir", root + "/images/idx"],
                                 timeout: 60)
        XCTAssertEqual(idx.exitCode, 1, idx.standardOutput)
        XCTAssertTrue(idx.standardError.contains("mnist's classes '0', '1'"), idx.standardError)
    }
}
