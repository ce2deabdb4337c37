import XCTest
@testable import SafeTensors
import _TestSupport

/// Seeded mutations of a safetensors file through the decoder and every tensor read.
final class SafeTensorsFuzzTests: XCTestCase {
    func testMutatedFilesOnlyEverThrow() {
        let weights: [Float] = (0..<24).map { Float($0) * 0.5 }, bias: [Float] = [1, 2, 3, 4]
        let original = weights.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                SafeTensors.encode([TensorToWrite(name: "conv1.weight", shape: [4, 1, 2, 3], values: w),
                                    TensorToWrite(name: "conv1.bias", shape: [4], values: b)], metadata: ["model": "lenet"])
            }
        }
        // Besides the length prefix, mutate the digits inside the JSON header (shapes and offsets).
        let header = String(decoding: original[8..<(original.count - 112)], as: UTF8.self)
        var digitOffsets: [Int] = []
        for (i, character) in header.utf8.enumerated() where character >= 0x30 && character <= 0x39 { digitOffsets.append(8 + i) }
        var parsed = 0, rejected = 0
        var badMessages: [String] = []
        withBoundedMemoryAndTime(headroomBytes: 512 << 20, timeoutSeconds: 300) {
            var mutations = seededMutations(of: original, count: 700, seed: 9, fieldOffsets: [0, 4])
            // Numbers in the header made huge or negative.
            var state: UInt64 = 77
            for _ in 0..<300 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                var text = Array(original)
                let offset = digitOffsets[Int(state >> 33) % digitOffsets.count]
                let replacement = ["9", "-", "99999999999999999999", "1e30"][Int(state >> 20) % 4]
                text.replaceSubrange(offset...offset, with: Array(replacement.utf8))
                // Keep the length prefix consistent with the grown header, so the JSON is what is tested.
                let grown = UInt64(text.count - original.count) + UInt64(original.count - 8 - 112)
                for i in 0..<8 { text[i] = UInt8((grown >> (8 * UInt64(i))) & 0xFF) }
                mutations.append(text)
            }
            for bytes in mutations {
                do {
                    let file = try SafeTensors.decode(bytes, path: "model.safetensors")
                    for name in file.entries.keys { _ = try file.values(name) }
                    parsed += 1
                } catch {
                    rejected += 1
                    if "\(error)".contains("\n") { badMessages.append("\(error)") }
                }
            }
        }
        XCTAssertEqual(parsed + rejected, 1000)
        XCTAssertGreaterThan(rejected, 300)
        XCTAssertEqual(badMessages, [])
    }
}
