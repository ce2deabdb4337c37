import XCTest
import _TestSupport

/// `distrain report` on real short runs, rendered by a real browser (headless Chromium).
final class ReportCommandTests: XCTestCase {
    func testReportOfTwoRealRunsRendersInABrowser() throws {
        let root = makeTemporaryDirectory("report-cli")
        defer { try? FileManager.default.removeItem(atPath: root) }
        writeSyntheticIDXDataset(directory: root, trainCount: 400, testCount: 100)
        let distrain = builtProductsDirectory + "/distrain"
        let common = ["fashion-mnist", "--data-dir", root, "--epochs", "3", "--threads", "1", "--no-progress"]
        var first = [distrain] + common + ["--checkpoint-dir", root + "/ck"]
        if let mpirun = findOnPath("mpirun") { first = [mpirun] + localMPIRunArguments(ranks: 2) + first }
        XCTAssertEqual(try runProcess(first[0], Array(first.dropFirst()), timeout: 120).exitCode, 0)
        XCTAssertEqual(try runProcess(distrain, common + ["--model", "lenet", "--metrics", root + "/lenet.jsonl"], timeout: 120).exitCode, 0)

        let report = root + "/report.html"
        let outcome = try runProcess(distrain, ["report", root + "/ck", root + "/lenet.jsonl", "--out", report], timeout: 60)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        XCTAssertTrue(outcome.standardOutput.hasPrefix("wrote \(report): 2 runs, "), outcome.standardOutput)
        let html = try String(contentsOfFile: report, encoding: .utf8)
        XCTAssertTrue(html.contains("<section id=\"confusion\"") && html.contains("T-shirt/top"), "class names on the heat map")

        let unwritable = try runProcess(distrain, ["report", root + "/ck", "--out", root + "/missing/r.html"], timeout: 60)
        XCTAssertEqual(unwritable.exitCode, 1)
        XCTAssertTrue(unwritable.standardError.hasPrefix("distrain: error: cannot write report \(root)/missing/r.html"), unwritable.standardError)

        guard let chromium = findOnPath("chromium") ?? findOnPath("chromium-browser") else {
            throw XCTSkip("Chromium is not installed (.ci/run and launch/setup.sh install it); the page itself was checked above")
        }
        let screenshot = root + "/report.png"
        let browser = try runProcess(chromium, ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                "--window-size=1200,2400", "--screenshot=\(screenshot)", "file://\(report)"], timeout: 120)
        guard browser.exitCode == 0, let image = PNGImage(path: screenshot) else {
            throw XCTSkip("Chromium could not run here (exit \(browser.exitCode)): \(browser.standardError.suffix(300))")
        }
        XCTAssertEqual(image.width, 1200)
        XCTAssertEqual(image.height, 2400)
        XCTAssertGreaterThan(image.inkFraction, 0.02, "a blank page")
        XCTAssertGreaterThan(image.distinctColors, 20, "charts in several colours")
    }
}
