import XCTest
import _TestSupport

/// `report --out` and `--metrics` replace only what distrain wrote (issue 34, class 1): never a device or
/// FIFO, never an input of the same command, never another file.
final class OutputOwnershipTests: XCTestCase {
    func testReportAndMetricsNeverReplaceWhatDistrainDidNotWrite() throws {
        let distrain = builtProductsDirectory + "/distrain"
        let root = makeTemporaryDirectory("outputs")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        writeSyntheticIDXDataset(directory: root + "/data", trainCount: 20, testCount: 10)
        let train = ["fashion-mnist", "--data-dir", root + "/data", "--epochs", "1", "--threads", "1", "--no-progress"]
        writeBytes(Array("my notes\n".utf8), to: root + "/notes.jsonl")
        let clobber = try runProcess(distrain, train + ["--metrics", root + "/notes.jsonl"], timeout: 120)
        XCTAssertEqual(clobber.exitCode, 1, clobber.standardOutput)
        XCTAssertTrue(clobber.standardError.contains("it exists and is not a distrain metrics file"), clobber.standardError)
        XCTAssertEqual(try String(contentsOfFile: root + "/notes.jsonl", encoding: .utf8), "my notes\n")
        XCTAssertEqual(try runProcess(distrain, train + ["--metrics", root + "/run.jsonl"], timeout: 120).exitCode, 0)
        XCTAssertEqual(try runProcess(distrain, train + ["--metrics", root + "/run.jsonl"], timeout: 120).exitCode, 0,
                       "a metrics file distrain wrote may be written again")
        // --metrics naming the checkpoint folder's own metrics file: one writer, every line whole and once.
        let both = try runProcess(distrain, train + ["--epochs", "2", "--checkpoint-dir", root + "/ckpt", "--metrics",
                                                     root + "/ckpt/../ckpt/metrics.jsonl"], timeout: 120)
        XCTAssertEqual(both.exitCode, 0, both.standardError)
        let lines = try String(contentsOfFile: root + "/ckpt/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil }, Array(repeating: true, count: lines.count))
        XCTAssertEqual(lines.filter { $0.contains("\"event\":\"epoch\"") }.count, 2)
        XCTAssertEqual(lines.filter { $0.contains("\"event\":\"start\"") }.count, 1)

        writeBytes(Array("<html>mine</html>".utf8), to: root + "/page.html")
        XCTAssertEqual(mkfifo(root + "/pipe", 0o600), 0)
        let cases: [([String], String)] = [
            (["report", root + "/run.jsonl", "--out", root + "/run.jsonl"], "is one of the report's inputs"),
            (["report", root + "/run.jsonl", "--out", root + "/page.html"], "exists and is not a distrain report"),
            (["report", root + "/run.jsonl", "--out", root + "/pipe"], "is not a regular file"),
            (["report", root + "/run.jsonl", "--out", root + "/data"], "is not a regular file"),
        ]
        for (arguments, fragment) in cases {
            let outcome = try runProcess(distrain, arguments, timeout: 60)
            XCTAssertEqual(outcome.exitCode, 1, arguments.joined(separator: " "))
            XCTAssertTrue(outcome.standardError.contains(fragment), "\(arguments): \(outcome.standardError)")
        }
        XCTAssertEqual(try String(contentsOfFile: root + "/page.html", encoding: .utf8), "<html>mine</html>")
        XCTAssertTrue(try String(contentsOfFile: root + "/run.jsonl", encoding: .utf8).hasPrefix("{\"event\":\"start\""))
        let report = try runProcess(distrain, ["report", root + "/run.jsonl", "--out", root + "/r.html"], timeout: 60)
        XCTAssertEqual(report.exitCode, 0, report.standardError)
        let again = try runProcess(distrain, ["report", root + "/run.jsonl", "--out", root + "/r.html"], timeout: 60)
        XCTAssertEqual(again.exitCode, 0, "a report distrain wrote may be replaced: \(again.standardError)")
    }
}
