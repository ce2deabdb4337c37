import XCTest
@testable import Datasets
import _TestSupport

final class CSVTableTests: XCTestCase {
    func testQuotedFieldsCRLFAndBlankLines() throws {
        let (header, rows) = try parseCSV("a,\"b, c\",d\r\n1,\"x \"\"y\"\"\",3\r\n\r\n4,\"multi\nline\",6", path: "t.csv")
        XCTAssertEqual(header, ["a", "b, c", "d"])
        XCTAssertEqual(rows, [["1", "x \"y\"", "3"], ["4", "multi\nline", "6"]])
        XCTAssertThrowsError(try parseCSV("a,b\n1,\"open", path: "q.csv")) { XCTAssertTrue("\($0)".contains("ends inside a quoted field")) }
    }

    func testFeaturesAreStandardizedAndClassesOrdered() throws {
        let directory = makeTemporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var text = "x,y,label\n"
        for i in 0..<40 { text += "\(i),\(2 * i + 1),\(i % 2 == 0 ? "10" : "9")\n" }
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(directory)/t.csv"))
        var options = SourceOptions()
        options.label = "label"
        let splits = try loadCSVDataset("\(directory)/t.csv", options: options)
        XCTAssertEqual(splits.train.classNames, ["9", "10"], "numeric labels in numeric order")
        XCTAssertEqual(splits.train.shape, [2, 1, 1])
        XCTAssertEqual(splits.featureNames, ["x", "y"])
        XCTAssertEqual(splits.train.count + splits.test.count, 40)
        XCTAssertEqual(splits.test.count, 8, "20% of each class")
        // Standardized with the training set's statistics: the gathered training features have mean 0, sd 1.
        let normalization = try Normalization.measured(on: splits.train)
        let gatherer = BatchGatherer(dataset: splits.train, normalization: normalization)
        let n = splits.train.count
        var inputs = [Float](repeating: 0, count: n * 2), labels = [UInt8](repeating: 0, count: n)
        let indices = (0..<n).map(Int32.init)
        try indices.withUnsafeBufferPointer { try gatherer.gather(indices: $0, into: &inputs, labels: &labels) }
        let xs = stride(from: 0, to: 2 * n, by: 2).map { Double(inputs[$0]) }
        let mean = xs.reduce(0, +) / Double(n), variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        XCTAssertEqual(mean, 0, accuracy: 1e-5)
        XCTAssertEqual(variance, 1, accuracy: 1e-4)
    }

    func testBadTablesNameTheRowAndColumn() throws {
        let directory = makeTemporaryDirectory("csv-bad")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func error(_ text: String, label: String? = "y") -> String {
            try! Data(text.utf8).write(to: URL(fileURLWithPath: "\(directory)/b.csv"))
            var options = SourceOptions()
            options.label = label
            do { _ = try loadCSVDataset("\(directory)/b.csv", options: options); return "loaded" } catch { return "\(error)" }
        }
        XCTAssertTrue(error("a,y\n1,0\n", label: nil).contains("needs --label COLUMN naming the class column (columns: a, y)"))
        XCTAssertTrue(error("a,b\n1,0\n").contains("has no column 'y' (columns: a, b)"))
        XCTAssertTrue(error("a,y\n1,0\n2\n").contains("row 3 has 1 cells, the header has 2"))
        XCTAssertTrue(error("a,y\n1,0\nnan?,1\n").contains("row 3, column 'a': 'nan?' is not a number"))
        XCTAssertTrue(error("a,y\n1,0\n,1\n").contains("row 3, column 'a': the cell is empty"))
        XCTAssertTrue(error("a,y\n1,0\n2,0\n").contains("holds one class (0)"))
        XCTAssertTrue(error("a,y\n").contains("has a header but no data rows"))
        XCTAssertTrue(error("a,b,a,y\n1,2,3,0\n").contains("names two columns 'a' (columns 1 and 3)"))
        XCTAssertTrue(error(" y ,a,y\n0,1,1\n").contains("names two columns 'y' (columns 1 and 3)"), "names compared trimmed")
    }

    func testCarriageReturnLineEndings() throws {
        let parsed = try parseCSV("a,y\r1,0\r\"2\",1\r", path: "cr.csv")
        XCTAssertEqual(parsed.header, ["a", "y"])
        XCTAssertEqual(parsed.rows, [["1", "0"], ["2", "1"]])
    }

    /// A byte-order mark is not part of the first name; "1" and "1.0" are one class.
    func testABOMAndNumericSpellingsOfOneClass() throws {
        let directory = makeTemporaryDirectory("csv-bom")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rows = (0..<20).map { "\($0),\([$0 % 2 == 0 ? "1" : "1.0", "2"][$0 % 4 / 2])" }
        try Data(("\u{FEFF}y_first,y\n" + rows.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: "\(directory)/t.csv"))
        var options = SourceOptions()
        options.label = "y"
        let splits = try loadCSVDataset("\(directory)/t.csv", options: options)
        XCTAssertEqual(splits.featureNames, ["y_first"], "no BOM in the first column's name")
        XCTAssertEqual(splits.train.classNames, ["1", "2"], "'1' and '1.0' are one class, named as first written")
        XCTAssertEqual(mergingNumericSpellings(["a", "1", "1.0"]), ["a", "1", "1.0"], "non-numeric labels are left alone")
    }
}
