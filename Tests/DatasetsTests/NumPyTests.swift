import XCTest
@testable import Datasets
import _TestSupport

final class NumPyTests: XCTestCase {
    func testNpyHeadersDtypesAndSignExtension() throws {
        let bytes = npyFile(dtype: "<i2", shape: [3], data: [0xFF, 0xFF, 2, 0, 0x00, 0x80])  // −1, 2, −32768
        let array = try NumPyArray(npy: bytes, path: "a.npy")
        XCTAssertEqual(array.shape, [3])
        guard case let .integers(values) = array.values else { return XCTFail("integers expected") }
        XCTAssertEqual(values, [-1, 2, -32768])
        let images = try NumPyArray(npy: npyFile(dtype: "|u1", shape: [2, 1, 2], data: [1, 2, 3, 4]), path: "x.npy")
        guard case let .bytes(pixels) = images.values else { return XCTFail("bytes expected") }
        XCTAssertEqual(pixels, [1, 2, 3, 4])
        XCTAssertThrowsError(try NumPyArray(npy: Array("not numpy".utf8), path: "b.npy")) {
            XCTAssertTrue("\($0)".contains("b.npy: is not a NumPy .npy file"), "\($0)")
        }
        XCTAssertThrowsError(try NumPyArray(npy: npyFile(dtype: ">i4", shape: [1], data: [0, 0, 0, 1]), path: "c.npy")) {
            XCTAssertTrue("\($0)".contains("holds dtype >i4"), "\($0)")
        }
    }

    /// A deflated member (zip method 8; here a stored deflate block, which any inflater reads) decodes like a stored one.
    func testDeflatedArchiveMembers() throws {
        let npy = npyFile(dtype: "|u1", shape: [4], data: [5, 6, 7, 8])
        let deflated: [UInt8] = [0x01, UInt8(npy.count & 0xFF), UInt8(npy.count >> 8), UInt8(~npy.count & 0xFF), UInt8((~npy.count >> 8) & 0xFF)] + npy
        var archive = npzFile([("x", npy)])
        // Rewrite the stored member as method 8 with the deflate stream: method at local+8 and central+10, sizes.
        let stored = npzFile([("x", deflated)])
        archive = stored
        archive[8] = 8  // local header: compression method
        let central = archive.count - 22 - (46 + 5)
        archive[central + 10] = 8
        for offset in [22, central + 24] {  // uncompressed size in the local and central headers
            archive[offset] = UInt8(npy.count & 0xFF); archive[offset + 1] = UInt8(npy.count >> 8); archive[offset + 2] = 0; archive[offset + 3] = 0
        }
        let members = try readNumPyArchive(archive, path: "d.npz")
        guard case let .bytes(values) = members["x"]?.values else { return XCTFail("member x missing: \(members.keys)") }
        XCTAssertEqual(values, [5, 6, 7, 8])
        XCTAssertThrowsError(try readNumPyArchive(Array(archive.prefix(20)), path: "e.npz")) {
            XCTAssertTrue("\($0)".contains("is not a .npz (zip) archive"), "\($0)")
        }
    }
}
