import CZlib
import Foundation

/// An .npy file's bytes (format 1.0, C order) for `dtype` ("|u1", "<i8", …) and `shape`, holding `data`.
public func npyFile(dtype: String, shape: [Int], data: [UInt8]) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(dtype)', 'fortran_order': False, 'shape': \(shapeText), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    let length = header.utf8.count
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8) + data
}

/// A .npz archive (zip, entries stored as numpy.savez writes them) of the named .npy files.
public func npzFile(_ members: [(name: String, npy: [UInt8])]) -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16((v >> 16) & 0xFFFF) }
    var archive: [UInt8] = [], directory: [UInt8] = []
    for member in members {
        let name = Array((member.name + ".npy").utf8)
        let crc = member.npy.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, UInt32($0.count))) }
        let offset = archive.count
        archive += u32(0x0403_4B50) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(crc) + u32(member.npy.count) + u32(member.npy.count)
            + u16(name.count) + u16(0) + name + member.npy
        directory += u32(0x0201_4B50) + u16(20) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(crc) + u32(member.npy.count)
            + u32(member.npy.count) + u16(name.count) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0) + u32(offset) + name
    }
    return archive + directory + u32(0x0605_4B50) + u16(0) + u16(0) + u16(members.count) + u16(members.count)
        + u32(directory.count) + u32(archive.count) + u16(0)
}

/// The synthetic Fashion-MNIST-shaped IDX dataset's arrays as a .npz: the same samples in the same order.
public func writeSyntheticNumPyDataset(path: String, trainCount: Int, testCount: Int, seed: UInt64 = 1) {
    let train = syntheticImages(count: trainCount, seed: seed), test = syntheticImages(count: testCount, seed: seed + 1000)
    writeBytes(npzFile([
        ("x_train", npyFile(dtype: "|u1", shape: [trainCount, 28, 28], data: train.pixels)),
        ("y_train", npyFile(dtype: "<i8", shape: [trainCount], data: train.labels.flatMap { [$0, 0, 0, 0, 0, 0, 0, 0] })),
        ("x_test", npyFile(dtype: "|u1", shape: [testCount, 28, 28], data: test.pixels)),
        ("y_test", npyFile(dtype: "<i8", shape: [testCount], data: test.labels.flatMap { [$0, 0, 0, 0, 0, 0, 0, 0] })),
    ]), to: path)
}
