import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Reports
import XCTest
import _TestSupport

final class ReportTests: XCTestCase {
    private var directory = ""
    override func setUp() { directory = makeTemporaryDirectory("report") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private let start = #"{"event":"start","dataset":"fashion-mnist","model":"mlp","optimizer":"adam","lr":0.001,"global_batch":64,"seed":42,"schedule":"constant","world_size":2,"threads_per_rank":1,"epochs":3,"command_line":"mpirun -n 2 distrain fashion-mnist"}"#
    private func epoch(_ n: Int, loss: String = "0.5") -> String {
        #"{"event":"epoch","epoch":\#(n),"train_loss":\#(loss),"train_accuracy":0.8,"test_loss":0.6,"test_accuracy":0.79,"lr":0.001,"seconds":2,"images_per_second":30000,"compute_seconds":1.5,"communication_seconds":0.2,"data_seconds":0.1}"#
    }
    private let end = #"{"event":"end","test_accuracy":0.7,"confusion_matrix":[[5,1],[2,2]],"class_names":["cat","dog"]}"#

    private func write(_ lines: [String], _ name: String = "m.jsonl", trailingNewline: Bool = true) -> String {
        let path = "\(directory)/\(name)"
        try! Data((lines.joined(separator: "\n") + (trailingNewline ? "\n" : "")).utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A crashed run: a line that is not JSON, a NaN loss (written as null), a last line cut off.
    func testACrashedRunIsReportedUpToWhereItStops() throws {
        let path = write([start, epoch(1), "not json", epoch(2, loss: "null"), String(epoch(3).prefix(30))], trailingNewline: false)
        let runs = try readRunHistories(path: path)
        XCTAssertEqual(runs.count, 1)
        XCTAssertEqual(runs[0].epochs.map(\.epoch), [1, 2])
        XCTAssertNil(runs[0].epochs[1].value("train_loss"), "a NaN loss is a gap, not a zero")
        XCTAssertEqual(runs[0].notes, ["the last line (5) is cut off: the run was interrupted while writing it",
                                       "skipped 1 line that are not distrain events (line 3)",
                                       "no end event: the run stops after epoch 2 (it crashed, was stopped, or is still running)"])
        // The gap is drawn as two pieces of path, not a line through zero.
        let svg = lineChart(title: "t", xLabel: "epoch", yLabel: "loss",
                            series: [Series(label: "train", color: "#000", points: [(1, 0.5), (2, nil), (3, 0.4)])])
        XCTAssertEqual(svg.components(separatedBy: " M").count - 1, 2, svg)
    }

    /// A language model's run: no confusion matrix at its end, perplexity and bits per byte per epoch.
    func testALanguageModelRunShowsPerplexityAndItsFinalLoss() throws {
        let start = #"{"event":"start","dataset":"kjv","model":"gpt-mini","task":"next-token","world_size":2,"threads_per_rank":1}"#
        let epochs = (1...2).map { n in
            #"{"event":"epoch","epoch":\#(n),"train_loss":2.1,"test_loss":\#(2.0 - 0.5 * Double(n)),"test_perplexity":\#(exp(2.0 - 0.5 * Double(n))),"#
                + #""test_bits_per_byte":2.5,"seconds":3,"samples_per_second":900,"positions_per_second":57600,"mfu":0.55}"#
        }
        let end = #"{"event":"end","test_loss":1.0,"test_perplexity":2.718,"test_bits_per_byte":2.5,"samples":1000}"#
        let runs = try readRunHistories(path: write([start] + epochs + [end]))
        XCTAssertTrue(runs[0].finished)
        XCTAssertEqual(runs[0].notes, [], "a finished run without a confusion matrix is not reported as stopped")
        let html = reportPage(runs: runs)
        XCTAssertTrue(html.contains("Perplexity per epoch") && html.contains("Bits per byte of text per epoch"))
        XCTAssertTrue(html.contains("<td>1.0000</td>"), "the final test loss is in the runs table")
    }

    /// A crafted file is bounded by what distrain writes: a 2000-class confusion matrix is not drawn, an oversized
    /// file is refused before it is read.
    func testCraftedMetricsFilesStayBounded() throws {
        let row = "[" + Array(repeating: "1", count: 2000).joined(separator: ",") + "]"
        let huge = #"{"event":"end","confusion_matrix":["# + Array(repeating: row, count: 2000).joined(separator: ",") + "]}"
        let runs = try readRunHistories(path: write([start, epoch(1), huge]))
        XCTAssertNil(runs[0].confusion)
        XCTAssertTrue(runs[0].notes.contains { $0.contains("(2000 rows) is not one distrain writes") }, "\(runs[0].notes)")
        XCTAssertLessThan(reportPage(runs: runs).utf8.count, 1 << 20, "the page stays small")
        let big = "\(directory)/big.jsonl"
        XCTAssertTrue(FileManager.default.createFile(atPath: big, contents: nil))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: big))
        try handle.truncate(atOffset: UInt64(65 << 20))
        try handle.close()
        XCTAssertThrowsError(try readRunHistories(path: big)) {
            XCTAssertTrue("\($0)".contains("larger than any metrics file distrain writes"), "\($0)")
        }
    }

    /// Seeded mutations of a metrics file (a run with an end event): every outcome is a page or a one-line error.
    func testMutatedMetricsFilesOnlyEverThrowOrReport() throws {
        let original = Array(([start, epoch(1), epoch(2, loss: "0.45"), end].joined(separator: "\n") + "\n").utf8)
        var pages = 0, rejected = 0, bad: [String] = []
        withBoundedMemoryAndTime(headroomBytes: 512 << 20, timeoutSeconds: 300) {
            for bytes in seededMutations(of: original, count: 300, seed: 7, fieldOffsets: []) {
                let path = "\(self.directory)/fuzz.jsonl"
                writeBytes(bytes, to: path)
                do {
                    let html = reportPage(runs: try readRunHistories(path: path))
                    if html.utf8.count > 1 << 20 { bad.append("a page of \(html.utf8.count) bytes") }
                    pages += 1
                } catch {
                    rejected += 1
                    if "\(error)".isEmpty || "\(error)".contains("\n") { bad.append("\(error)") }
                }
            }
        }
        XCTAssertEqual(pages + rejected, 300)
        XCTAssertEqual(bad, [], "one-line errors, bounded pages")
    }

    /// A resumed run (same settings) continues; a start with other settings begins another run.
    func testEventsOfDifferentRunsAreSeparatedAndResumesContinue() throws {
        let other = start.replacingOccurrences(of: #""model":"mlp""#, with: #""model":"cnn""#)
        let runs = try readRunHistories(path: write([start, epoch(1), epoch(2), start, epoch(2, loss: "0.45"), epoch(3), end, other, epoch(1)]))
        XCTAssertEqual(runs.map(\.name), ["m.jsonl (run 1)", "m.jsonl (run 2)"])
        XCTAssertEqual(runs[0].epochs.map(\.epoch), [1, 2, 3])
        XCTAssertEqual(runs[0].epochs[1].value("train_loss"), 0.45, "the resumed epoch replaces the interrupted one")
        XCTAssertEqual(runs[0].notes, ["resumed at line 4"])
        XCTAssertEqual(runs[1].setting("model"), "cnn")
        XCTAssertEqual(runs[0].confusion ?? [], [[5, 1], [2, 2]])
    }

    func testCSVMetricsAndEmptyFiles() throws {
        let csv = write(["epoch,train_loss,test_accuracy", "1,0.9,0.7", "2,,0.8", "3,0.5"], "m.csv")
        let runs = try readRunHistories(path: csv)
        XCTAssertEqual(runs[0].epochs.map(\.epoch), [1, 2])
        XCTAssertNil(runs[0].epochs[1].value("train_loss"))
        XCTAssertTrue(runs[0].notes.contains("line 4 is not a row of 3 values: skipped"), "\(runs[0].notes)")
        XCTAssertThrowsError(try readRunHistories(path: write([], "empty.jsonl"))) {
            XCTAssertTrue("\($0)".contains("holds no metrics"), "\($0)")
        }
        XCTAssertThrowsError(try readRunHistories(path: "\(directory)/missing.jsonl")) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
    }

    /// Worked by hand from [[5, 1], [2, 2]] (rows true, columns predicted): cat precision 5/7, recall 5/6,
    /// F1 10/13; dog precision 2/3, recall 1/2, F1 4/7.
    func testPerClassScoresAgainstHandComputedValues() {
        let scores = perClassScores([[5, 1], [2, 2]])
        XCTAssertEqual(scores[0].precision, 5.0 / 7, accuracy: 1e-12)
        XCTAssertEqual(scores[0].recall, 5.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(scores[0].f1, 10.0 / 13, accuracy: 1e-12)
        XCTAssertEqual(scores[1].precision, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(scores[1].recall, 0.5, accuracy: 1e-12)
        XCTAssertEqual(scores[1].f1, 4.0 / 7, accuracy: 1e-12)
    }

    func testALogAxisWhenValuesSpanDecades() {
        func chart(_ values: [Double]) -> String {
            lineChart(title: "t", xLabel: "epoch", yLabel: "lr",
                      series: [Series(label: "lr", color: "#000", points: values.enumerated().map { (Double($0.offset + 1), $0.element) })])
        }
        XCTAssertTrue(chart([1e-1, 1e-2, 1e-3, 1e-4]).contains("lr (log scale)"))
        XCTAssertFalse(chart([0.4, 0.6, 0.9]).contains("log scale"))
    }

    /// The page parses as XML, loads nothing from outside, and every chart section holds a chart.
    func testThePageIsWellFormedWithAChartInEverySection() throws {
        let runs = try readRunHistories(path: write([start, epoch(1), epoch(2), epoch(3), end]))
        let page = reportPage(runs: runs + runs)
        let counter = SectionCounter()
        let parser = XMLParser(data: Data(page.utf8))
        parser.delegate = counter
        XCTAssertTrue(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        XCTAssertEqual(Set(counter.chartsPerSection.keys), ["loss", "accuracy", "learning-rate", "throughput", "confusion", "per-class"])
        for (section, charts) in counter.chartsPerSection { XCTAssertGreaterThanOrEqual(charts, 1, section) }
        XCTAssertEqual(counter.chartsPerSection["confusion"], 2, "one heat map per run")
        XCTAssertFalse(page.contains("<script") || page.contains("src=") || page.contains("href=\"http"))
        XCTAssertTrue(page.contains("mpirun -n 2 distrain fashion-mnist"), "the command that reproduces the run")
    }

    func testAnUnwritableOutputIsAClearErrorAndLeavesNothing() {
        XCTAssertThrowsError(try writeReport("<html/>", to: "\(directory)/no/such/dir/report.html")) {
            XCTAssertTrue("\($0)".hasPrefix("cannot write report \(directory)/no/such/dir/report.html: "), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    /// A sweep folder and a cross-validation folder each get their section and chart.
    func testSweepAndCrossValidationOutputsAreDrawn() throws {
        let sweep = "\(directory)/sweep", cv = "\(directory)/cv"
        try FileManager.default.createDirectory(atPath: sweep, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: cv, withIntermediateDirectories: true)
        try Data(#"[{"trial":2,"values":"--lr 0.001 --batch-size 64","monitor":"val_loss","bestValue":0.40,"testAccuracy":0.85,"status":"ok"},{"trial":1,"values":"--lr 0.01 --batch-size 64","monitor":"val_loss","bestValue":0.50,"status":"ok"},{"trial":3,"values":"--lr 0.1 --batch-size 64","monitor":"val_loss","status":"failed: NaN"}]"#.utf8)
            .write(to: URL(fileURLWithPath: "\(sweep)/summary.json"))
        try Data(#"{"folds":[{"validationAccuracy":0.9},{"validationAccuracy":0.92}],"meanValidationAccuracy":0.91,"standardDeviationValidationAccuracy":0.0141}"#.utf8)
            .write(to: URL(fileURLWithPath: "\(cv)/kfold.json"))
        guard case let .sweep(s) = try readReportInput(path: sweep), case let .crossValidation(c) = try readReportInput(path: cv) else {
            return XCTFail("folders not recognised")
        }
        XCTAssertEqual(s.trials.map(\.number), [2, 1, 3])
        XCTAssertEqual(s.trials[0].values.map(\.flag), ["--lr", "--batch-size"])
        XCTAssertEqual(c.accuracies, [0.9, 0.92])
        let page = reportPage(runs: [], sweeps: [s], crossValidations: [c])
        let counter = SectionCounter()
        let parser = XMLParser(data: Data(page.utf8))
        parser.delegate = counter
        XCTAssertTrue(parser.parse())
        XCTAssertEqual(counter.chartsPerSection, ["sweep": 1, "cross-validation": 1])
        XCTAssertTrue(page.contains("--lr (log scale)"), "learning rates spanning decades on a log axis")
        XCTAssertTrue(page.contains("mean 91.00% ± 1.41"))
        XCTAssertTrue(page.contains("failed: NaN"))
    }
}

/// Counts `<svg>` elements inside each `<section class="chart">`.
private final class SectionCounter: NSObject, XMLParserDelegate {
    var chartsPerSection: [String: Int] = [:]
    private var current: String?
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if name == "section", attributes["class"] == "chart" { current = attributes["id"]; chartsPerSection[current!] = 0 }
        if name == "svg", let current { chartsPerSection[current, default: 0] += 1 }
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "section" { current = nil }
    }
}
