import CZlib
import Foundation

/// A NumPy array read from `.npy` bytes: its shape and its values as bytes (uint8) or integers (labels).
public struct NumPyArray: Sendable {
    public enum Values: Sendable {
        case bytes([UInt8])
        case integers([Int64])
    }
    public let shape: [Int]
    public let values: Values

    /// Parses an .npy file (format 1.0–3.0): little-endian uint8 or signed/unsigned integers of 1, 2, 4 or 8
    /// bytes, C order. Everything else is refused by name (float data, Fortran order, big-endian, objects).
    /// Nothing is allocated beyond the data the file holds.
    public init(npy bytes: [UInt8], path: String) throws {
        func fail(_ problem: String) -> DatasetError { .malformed(path: path, problem: problem) }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("is not a NumPy .npy file (its first bytes are not \\x93NUMPY)")
        }
        let major = bytes[6]
        let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
            : bytes.count >= 12 ? Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24 : -1
        let start = major == 1 ? 10 : 12
        guard (1...3).contains(major), headerLength >= 0, start + headerLength <= bytes.count,
              let header = String(validating: bytes[start..<(start + headerLength)], as: UTF8.self) else {
            throw fail("has a truncated or unreadable .npy header")
        }
        func field(_ key: String) -> String? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descr = field("descr"), descr.hasPrefix("'"), let dtype = descr.dropFirst().split(separator: "'").first.map(String.init) else {
            throw fail("has no dtype in its header")
        }
        guard let order = field("fortran_order"), order.hasPrefix("False") else {
            throw fail("is in Fortran order; save it with numpy.ascontiguousarray(x) first")
        }
        guard let shapeText = field("shape"), shapeText.hasPrefix("("), let close = shapeText.firstIndex(of: ")") else {
            throw fail("has no shape in its header")
        }
        var shape: [Int] = []
        for part in shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",") {
            guard let size = Int(part.trimmingCharacters(in: .whitespaces)), size >= 0, size <= Int(Int32.max) else { throw fail("has an invalid shape \(shapeText[...close])") }
            shape.append(size)
        }
        let itemSizes = ["|u1": 1, "<u1": 1, "|i1": 1, "<i1": 1, "<i2": 2, "<u2": 2, "<i4": 4, "<u4": 4, "<i8": 8, "<u8": 8]
        guard let itemSize = itemSizes[dtype] else {
            throw fail("holds dtype \(dtype); distrain reads uint8 images and integer labels (save images with x.astype(numpy.uint8))")
        }
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow else { throw fail("has a shape too large to hold") }
            count = product
        }
        let data = start + headerLength
        guard bytes.count - data == count * itemSize else {
            throw fail("declares shape \(shape) of \(dtype) = \(count * itemSize) bytes but holds \(bytes.count - data); the file is truncated or not what it claims")
        }
        self.shape = shape
        if itemSize == 1 && dtype.hasSuffix("u1") {
            values = .bytes(Array(bytes[data...]))
            return
        }
        let signed = dtype.contains("i")
        values = .integers((0..<count).map { index in
            var value: UInt64 = 0
            for b in 0..<itemSize { value |= UInt64(bytes[data + index * itemSize + b]) << (8 * UInt64(b)) }
            guard signed && itemSize < 8 else { return Int64(bitPattern: value) }
            let shift = UInt64(64 - 8 * itemSize)
            return Int64(bitPattern: value << shift) >> Int64(shift)  // sign-extend
        })
    }
}

/// The members of a `.npz` file (a zip archive of .npy files, stored or deflated), by name without `.npy`.
/// Members are found through the central directory; each is inflated no further than its declared size.
public func readNumPyArchive(_ bytes: [UInt8], path: String) throws -> [String: NumPyArray] {
    func fail(_ problem: String) -> DatasetError { .malformed(path: path, problem: problem) }
    func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
    guard bytes.count >= 22, let end = (0...(bytes.count - 22)).reversed().first(where: { u32($0) == 0x0605_4B50 }) else {
        throw fail("is not a .npz (zip) archive: no end of central directory")
    }
    let entries = u16(end + 10), directory = u32(end + 16)
    var offset = directory, arrays: [String: NumPyArray] = [:]
    for _ in 0..<entries {
        guard offset + 46 <= bytes.count, u32(offset) == 0x0201_4B50 else { throw fail("has a damaged zip central directory") }
        let method = u16(offset + 10), compressed = u32(offset + 20), size = u32(offset + 24)
        let nameLength = u16(offset + 28), extraLength = u16(offset + 30), commentLength = u16(offset + 32), local = u32(offset + 42)
        guard offset + 46 + nameLength <= bytes.count else { throw fail("has a damaged zip central directory") }
        let name = String(decoding: bytes[(offset + 46)..<(offset + 46 + nameLength)], as: UTF8.self)
        offset += 46 + nameLength + extraLength + commentLength
        guard local + 30 <= bytes.count, u32(local) == 0x0403_4B50 else { throw fail("member \(name) has no local header") }
        let dataStart = local + 30 + u16(local + 26) + u16(local + 28)
        guard dataStart + compressed <= bytes.count, size <= bytes.count * 1032 + 65_536 else { throw fail("member \(name) lies outside the file") }
        let raw = Array(bytes[dataStart..<(dataStart + compressed)])
        let content: [UInt8]
        switch method {
        case 0: content = raw
        case 8: content = try inflateRaw(raw, size: size, path: "\(path):\(name)")
        default: throw fail("member \(name) uses zip compression method \(method); save with numpy.savez or numpy.savez_compressed")
        }
        let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
        arrays[key] = try NumPyArray(npy: content, path: "\(path):\(name)")
    }
    return arrays
}

/// Inflates a raw deflate stream of exactly `size` bytes (zip's method 8).
private func inflateRaw(_ input: [UInt8], size: Int, path: String) throws -> [UInt8] {
    var output = [UInt8](repeating: 0, count: size)
    var stream = z_stream()
    guard czlib_inflate_init2(&stream, -15) == Z_OK else { throw DatasetError.malformed(path: path, problem: "zlib could not start inflating") }
    defer { inflateEnd(&stream) }
    var source = input
    let status: Int32 = source.withUnsafeMutableBufferPointer { s in
        output.withUnsafeMutableBufferPointer { t in
            stream.next_in = s.baseAddress
            stream.avail_in = UInt32(s.count)
            stream.next_out = t.baseAddress
            stream.avail_out = UInt32(t.count)
            return inflate(&stream, Z_FINISH)
        }
    }
    guard status == Z_STREAM_END, stream.avail_out == 0 else {
        throw DatasetError.malformed(path: path, problem: "corrupt deflate data, or not the size its zip entry declares")
    }
    return output
}

/// Loads a dataset saved from Python: a `.npz` with `x_train`, `y_train`, `x_test`, `y_test` (the names
/// `keras.datasets` uses), or a folder with those four `.npy` files. Images are uint8 of shape
/// (N, C, H, W), (N, H, W) (one channel) or (N, D) (features: 1×1×D); labels are integers 0...K−1, and
/// the K classes are named by their numbers. Bad shapes, dtypes and labels are errors naming the array.
public func loadNumPyDataset(_ path: String) throws -> DatasetSplits {
    let arrays: [String: NumPyArray]
    if isDirectory(path) {
        var found: [String: NumPyArray] = [:]
        for key in ["x_train", "y_train", "x_test", "y_test"] {
            let file = "\(path)/\(key).npy"
            guard pathExists(file) else { throw DatasetError.missing(path: file, hint: "a NumPy dataset folder holds x_train.npy, y_train.npy, x_test.npy and y_test.npy") }
            found[key] = try NumPyArray(npy: try readFileBytes(file), path: file)
        }
        arrays = found
    } else {
        arrays = try readNumPyArchive(try readFileBytes(path), path: path)
    }
    func array(_ key: String) throws -> NumPyArray {
        guard let array = arrays[key] else {
            throw DatasetError.missing(path: "\(path):\(key)", hint: "the archive holds \(arrays.keys.sorted().joined(separator: ", ")); save x_train, y_train, x_test and y_test (numpy.savez)")
        }
        return array
    }
    func images(_ key: String) throws -> (shape: [Int], count: Int, pixels: [UInt8]) {
        let a = try array(key)
        guard case let .bytes(pixels) = a.values else {
            throw DatasetError.malformed(path: "\(path):\(key)", problem: "holds integers wider than uint8; save images as uint8")
        }
        switch a.shape.count {
        case 4: return (Array(a.shape[1...]), a.shape[0], pixels)
        case 3: return ([1, a.shape[1], a.shape[2]], a.shape[0], pixels)
        case 2: return ([1, 1, a.shape[1]], a.shape[0], pixels)
        default: throw DatasetError.malformed(path: "\(path):\(key)", problem: "has shape \(a.shape); expected (N, C, H, W), (N, H, W) or (N, D)")
        }
    }
    func labels(_ key: String, count: Int) throws -> [Int64] {
        let a = try array(key)
        guard a.shape == [count] || a.shape == [count, 1] else {
            throw DatasetError.mismatch(first: "\(path):\(key)", second: "\(path):x_\(key.dropFirst(2))", problem: "labels of shape \(a.shape) for \(count) samples")
        }
        switch a.values {
        case let .bytes(bytes): return bytes.map(Int64.init)
        case let .integers(values): return values
        }
    }
    let train = try images("x_train"), test = try images("x_test")
    guard train.shape == test.shape, train.count > 0, test.count > 0, train.shape.allSatisfy({ $0 > 0 }) else {
        throw DatasetError.mismatch(first: "\(path):x_train", second: "\(path):x_test", problem: "training samples are \(train.shape) (\(train.count)), test samples \(test.shape) (\(test.count))")
    }
    let trainLabels = try labels("y_train", count: train.count), testLabels = try labels("y_test", count: test.count)
    let classes = Int((trainLabels.max() ?? 0) + 1)
    if let bad = (trainLabels + testLabels).first(where: { $0 < 0 || $0 >= Int64(classes) || $0 > 255 }) {
        throw DatasetError.malformed(path: path, problem: "label \(bad) is not a class: labels must be 0...K−1 (at most 256 classes), with K−1 in y_train")
    }
    guard classes >= 2 else { throw DatasetError.malformed(path: "\(path):y_train", problem: "holds a single class; classification needs at least two") }
    let names = (0..<classes).map(String.init)
    return DatasetSplits(name: (path as NSString).lastPathComponent,
                         train: ImageDataset(shape: train.shape, pixels: train.pixels, labels: trainLabels.map { UInt8($0) }, classNames: names),
                         test: ImageDataset(shape: test.shape, pixels: test.pixels, labels: testLabels.map { UInt8($0) }, classNames: names))
}
