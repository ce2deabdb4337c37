import XCTest
import CKernels
import Collectives

/// The 16-bit wire formats against hand-computed bit patterns, rounding and range.
final class WireFormatTests: XCTestCase {
    private func packed(_ values: [Float], _ pack: (UnsafePointer<Float>, UnsafeMutablePointer<UInt16>, Int) -> Void) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: values.count)
        out.withUnsafeMutableBufferPointer { pack(values, $0.baseAddress!, values.count) }
        return out
    }
    private func unpacked(_ bits: [UInt16], _ unpack: (UnsafePointer<UInt16>, UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
        var out = [Float](repeating: 0, count: bits.count)
        out.withUnsafeMutableBufferPointer { unpack(bits, $0.baseAddress!, bits.count) }
        return out
    }

    /// fp16: 1 = 0x3C00, -2 = 0xC000, 65504 (the largest) = 0x7BFF, 70000 overflows to +inf (the step's
    /// finiteness check then sees it), 2^-24 is the smallest subnormal, 1 + 2^-11 ties to even (1).
    func testHalfPrecisionBitsRoundingAndRange() {
        let values: [Float] = [1, -2, 65504, 70000, 0x1p-24, 1 + 0x1p-11, 1 + 0x1p-10, 0.1]
        let bits = packed(values, distrain_pack_fp16)
        XCTAssertEqual(Array(bits[0..<7]), [0x3C00, 0xC000, 0x7BFF, 0x7C00, 0x0001, 0x3C00, 0x3C01])
        let back = unpacked(bits, distrain_unpack_fp16)
        XCTAssertEqual(back[3], .infinity)
        XCTAssertEqual(back[7], 0.1, accuracy: 0.1 * 0x1p-11, "relative error at most 2^-11")
        var sums = packed([1, 2048], distrain_pack_fp16)
        distrain_sum_fp16(packed([2, 1], distrain_pack_fp16), &sums, 2)
        XCTAssertEqual(unpacked(sums, distrain_unpack_fp16), [3, 2048], "2048 + 1 rounds to 2048 in fp16 (ties to even)")
    }

    /// bf16: float32's upper half, rounded to nearest even; NaN stays NaN; float32's whole range fits.
    func testBrainFloatBitsRoundingAndRange() {
        let values: [Float] = [1, -2, 1 + 0x1p-8, 1 + 0x1p-8 + 0x1p-20, 3e38, .nan, 0.1]
        let bits = packed(values, distrain_pack_bf16)
        XCTAssertEqual(Array(bits[0..<4]), [0x3F80, 0xC000, 0x3F80, 0x3F81], "a tie goes to even, above it rounds up")
        let back = unpacked(bits, distrain_unpack_bf16)
        XCTAssertEqual(back[4], 3e38, accuracy: 3e38 * 0x1p-8)
        XCTAssertTrue(back[5].isNaN)
        XCTAssertEqual(back[6], 0.1, accuracy: 0.1 * 0x1p-8)
        var sums = packed([1, 256], distrain_pack_bf16)
        distrain_sum_bf16(packed([2, 1], distrain_pack_bf16), &sums, 2)
        XCTAssertEqual(unpacked(sums, distrain_unpack_bf16), [3, 256], "256 + 1 rounds back to 256 with 8 mantissa bits")
        XCTAssertEqual(WireFormat(rawValue: "fp16"), .fp16)
        XCTAssertNil(WireFormat(rawValue: "fp8"))
    }
}
