import Foundation
import XCTest
@testable import SafeTensors

/// The safetensors codec and one test per kind of hostile file.
final class SafeTensorsTests: XCTestCase {
    private func sample() -> [UInt8] {
        let a: [Float] = [1, 2, 3, 4, 5, 6], b: [Float] = [-1, 0.5]
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                SafeTensors.encode([TensorToWrite(name: "fc.weight", shape: [2, 3], values: pa),
                                    TensorToWrite(name: "fc.bias", shape: [2], values: pb)], metadata: ["model": "mlp"])
            }
        }
    }

    /// A file from a hand-written header and data.
    private func file(header: String, data: [UInt8]) -> [UInt8] {
        let json = Array(header.utf8)
        var length = UInt64(json.count).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + json + data
    }

    private func assertRejected(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.decode(bytes, path: "m.safetensors"), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("m.safetensors: "), message, file: file, line: line)
            XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), file: file, line: line)
        }
    }

    func testRoundTripWithMetadataAndAlignment() throws {
        let bytes = sample()
        let headerLength = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(headerLength % 8, 0)
        let decoded = try SafeTensors.decode(bytes, path: "x")
        XCTAssertEqual(decoded.metadata["model"], "mlp")
        XCTAssertEqual(try decoded.values("fc.weight"), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try decoded.values("fc.bias"), [-1, 0.5])
        XCTAssertEqual(decoded.entries["fc.weight"]?.shape, [2, 3])
        // The header is what PyTorch's loader expects.
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as! [String: Any]
        XCTAssertEqual((header["fc.bias"] as! [String: Any])["dtype"] as? String, "F32")
    }

    func testHeaderLengthBeyondFile() {
        var bytes = sample()
        bytes[6] = 0x01  // header length ≈ 2^48
        assertRejected(bytes, "header length")
    }

    func testTruncatedFile() {
        assertRejected(Array(sample().dropLast(4)), "outside")
        assertRejected([1, 2, 3], "too short")
    }

    func testOffsetsOutsideData() {
        assertRejected(file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]), "outside the 4 data bytes")
        assertRejected(file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: [0, 0, 0, 0]), "outside")
    }

    func testOverlappingTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertRejected(file(header: header, data: [UInt8](repeating: 0, count: 12)), "overlap")
    }

    func testWrongDtype() {
        assertRejected(file(header: #"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "dtype F16")
    }

    func testShapeDisagreesWithBytes() {
        assertRejected(file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "needs 12")
        assertRejected(file(header: #"{"w":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "larger than the file")
        assertRejected(file(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "invalid shape")
    }

    func testInvalidUTF8AndJSON() {
        assertRejected(file(header: "{\"w\u{FFFD}", data: []).enumerated().map { $0.offset == 11 ? 0xFF : $0.element }, "UTF-8")
        assertRejected(file(header: #"{"w": [1, 2"#, data: []), "not valid JSON")
        assertRejected(file(header: #"[1, 2]"#, data: []), "not a JSON object")
    }

    func testMissingTensorAndWrongShapeOnRead() throws {
        let decoded = try SafeTensors.decode(sample(), path: "m.safetensors")
        var buffer = [Float](repeating: 0, count: 6)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBufferPointer { try decoded.read("fc2.weight", shape: [2, 3], into: $0) }) {
            XCTAssertEqual("\($0)", "m.safetensors: missing tensor fc2.weight")
        }
        XCTAssertThrowsError(try buffer.withUnsafeMutableBufferPointer { try decoded.read("fc.weight", shape: [3, 2], into: $0) }) {
            XCTAssertTrue("\($0)".contains("has shape [2, 3] but the model needs [3, 2]"))
        }
    }

    /// JSON parsers keep the last of duplicate keys; a header naming one tensor twice is refused.
    func testDuplicateTensorNamesAreRefused() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        var bytes = [UInt8](repeating: 0, count: 8)
        let length = UInt64(header.utf8.count)
        for i in 0..<8 { bytes[i] = UInt8((length >> (8 * UInt64(i))) & 0xFF) }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 8)
        XCTAssertThrowsError(try SafeTensors.decode(bytes, path: "dup.safetensors")) { error in
            XCTAssertEqual("\(error)", "dup.safetensors: names tensor a more than once")
        }
        // Keys nested deeper (shape, dtype in each tensor) are not top-level duplicates.
        XCTAssertNil(firstDuplicateTopLevelKey(in: #"{"x":{"dtype":"F32"},"y":{"dtype":"F32"},"z\"a":1}"#))
        XCTAssertEqual(firstDuplicateTopLevelKey(in: #"{"x":1, "\u0078" :2}"#), "x")
    }
}

final class Int8SafeTensorsTests: XCTestCase {
    /// I8 tensors (quantized weights) beside F32 ones: encoded with their dtype, read back byte for byte,
    /// and never read as floats by mistake.
    func testInt8TensorsRoundTripAndAreNotReadAsFloats() throws {
        let codes: [Int8] = [-127, -1, 0, 1, 127, 5]
        let scales: [Float] = [0.5, 0.25]
        let bytes = codes.withUnsafeBufferPointer { c in
            scales.withUnsafeBufferPointer { s in
                SafeTensors.encode([TensorToWrite(name: "fc.weight", shape: [2, 3], int8: c),
                                    TensorToWrite(name: "fc.weight_scale", shape: [2], values: s)], metadata: [:])
            }
        }
        let file = try SafeTensors.decode(bytes, path: "q.safetensors")
        XCTAssertEqual(file.entries["fc.weight"]?.dtype, .i8)
        XCTAssertEqual(file.entries["fc.weight"]?.byteRange.count, 6)
        XCTAssertEqual(try file.int8Values("fc.weight", shape: [2, 3]), codes)
        XCTAssertEqual(try file.values("fc.weight_scale"), scales)
        XCTAssertThrowsError(try file.values("fc.weight")) { error in
            XCTAssertTrue("\(error)".contains("tensor fc.weight is I8, not F32"), "\(error)")
        }
        XCTAssertThrowsError(try file.int8Values("fc.weight_scale", shape: [2])) { error in
            XCTAssertTrue("\(error)".contains("is F32 of shape [2] but the model needs I8"), "\(error)")
        }
        // An I8 entry whose byte count disagrees with its shape is refused at decode.
        var text = String(decoding: bytes[8..<(8 + Int(bytes[0]))], as: UTF8.self)
        text = text.replacingOccurrences(of: "\"shape\":[2,3]", with: "\"shape\":[2,2]")
        let broken = Array(bytes[0..<8]) + Array(text.utf8) + Array(bytes[(8 + Int(bytes[0]))...])
        XCTAssertThrowsError(try SafeTensors.decode(broken, path: "b.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("has 6 data bytes but I8 shape [2, 2] needs 4"), "\(error)")
        }
    }
}
