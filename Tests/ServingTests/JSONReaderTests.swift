import Foundation
@testable import Serving
import XCTest
import _TestSupport

/// The request-body JSON reader against Foundation's JSONSerialization, and its refusals.
final class JSONReaderTests: XCTestCase {
    func testValuesEqualJSONSerializationsReading() throws {
        let text = #"{"instances": [[0, 255, -3.5e2, 1E-3, 12345678901234567], {"a b": "x\"\\\/\n\u00e9\ud83d\ude00"}], "k": [true, false, null]}"#
        let ours = try JSONReader.parse(Array(text.utf8))
        let theirs = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        guard case let .array(instances)? = ours["instances"], case let .array(numbers) = instances[0] else {
            return XCTFail("instances: \(ours)")
        }
        let expected = ((theirs["instances"] as! [Any])[0] as! [NSNumber]).map(\.doubleValue)
        XCTAssertEqual(numbers, expected.map { .number($0) })
        XCTAssertEqual(instances[1]["a b"], .string("x\"\\/\n\u{e9}\u{1F600}"))
        XCTAssertEqual(ours["k"], .array([.bool(true), .bool(false), .null]))
    }

    func testMalformedBodiesAreRefusedWithTheirPlace() {
        for (text, reason) in [("{\"a\": [1, 2}", "expected , or ]"), ("[01]", "leading zero"), ("[1.]", "after its point"),
                               ("{\"a\" 1}", "expected :"), ("\"abc", "not closed"), ("[1] x", "after the JSON value"),
                               (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "nesting deeper"),
                               ("[1e999]", "beyond the range"), ("[\"\\ud800\"]", "lone surrogate"), ("", "ends early")] {
            XCTAssertThrowsError(try JSONReader.parse(Array(text.utf8)), text) { error in
                let problem = error as? HTTPProblem
                XCTAssertEqual(problem?.status, 400, text)
                XCTAssertTrue(problem?.message.contains(reason) ?? false, "\(text): \(problem?.message ?? "\(error)")")
            }
        }
    }

    func testRandomBytesNeverCrashTheReader() {
        var state: UInt64 = 11
        func next() -> UInt64 {  // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let alphabet = Array("{}[],:\"\\0123456789.eE+-tfnrul ab\u{00}".utf8)
        for _ in 0..<5000 {
            let bytes = (0..<Int(next() % 40)).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }
            let ours = try? JSONReader.parse(bytes)
            let theirs = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            if ours != nil { XCTAssertNotNil(theirs, String(decoding: bytes, as: UTF8.self)) }
        }
    }
}
