import Foundation

/// Why a safetensors file was refused; every case names the file.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}

/// The element types distrain reads and writes: float32 (every float tensor) and int8 (quantized weights).
public enum TensorDType: String, Sendable {
    case f32 = "F32"
    case i8 = "I8"

    /// Bytes per element.
    public var size: Int { self == .f32 ? 4 : 1 }
}

/// One tensor to write: a name, a shape and its row-major values (borrowed, not copied).
public struct TensorToWrite {
    public let name: String
    public let shape: [Int]
    public let dtype: TensorDType
    /// The values' bytes, little-endian as the format.
    public let bytes: UnsafeRawBufferPointer

    public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
        precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) does not hold \(values.count) values")
        self.name = name
        self.shape = shape
        dtype = .f32
        bytes = UnsafeRawBufferPointer(values)
    }

    /// An int8 tensor (quantized weights).
    public init(name: String, shape: [Int], int8 values: UnsafeBufferPointer<Int8>) {
        precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) does not hold \(values.count) values")
        self.name = name
        self.shape = shape
        dtype = .i8
        bytes = UnsafeRawBufferPointer(values)
    }
}

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes
/// of JSON mapping names to {dtype, shape, data_offsets} (plus optional "__metadata__" of strings),
/// then the raw little-endian data. Offsets are relative to the start of the data.
public enum SafeTensors {
    /// Encodes tensors, laid out in the given order, with string metadata.
    public static func encode(_ tensors: [TensorToWrite], metadata: [String: String]) -> [UInt8] {
        let layout = header(tensors.map { ($0.name, $0.shape, $0.dtype) }, metadata: metadata)
        var out = [UInt8]()
        out.reserveCapacity(layout.header.count + layout.dataBytes)
        out += layout.header
        for tensor in tensors {
            out += tensor.bytes  // x86-64 and arm64 are little-endian, as the format
        }
        return out
    }

    /// The bytes before the data of a file holding `tensors` (name, shape, dtype) laid out in the given order — the
    /// length, the JSON header padded to 8-byte alignment as the reference writer does — and the data's size. Tensor
    /// k's data then starts at header.count + the sizes of the tensors before it: ranks can write their parts of a
    /// file in parallel.
    public static func header(_ tensors: [(name: String, shape: [Int], dtype: TensorDType)],
                              metadata: [String: String]) -> (header: [UInt8], dataBytes: Int) {
        var entries: [(String, Any)] = []
        var offset = 0
        for tensor in tensors {
            let bytes = tensor.shape.reduce(1, *) * tensor.dtype.size
            let fields: [String: Any] = ["dtype": tensor.dtype.rawValue, "shape": tensor.shape,
                                         "data_offsets": [offset, offset + bytes]]
            entries.append((tensor.name, fields))
            offset += bytes
        }
        var object: [String: Any] = Dictionary(uniqueKeysWithValues: entries)
        if !metadata.isEmpty { object["__metadata__"] = metadata }
        var json = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out += $0 }
        out += json
        return (out, offset)
    }

    /// Parses and validates a whole file's bytes; no allocation beyond the header's own size.
    public static func decode(_ bytes: [UInt8], path: String) throws -> SafeTensorsFile {
        try decode(FileBytes(bytes), path: path)
    }

    /// Maps the file at `path` read-only and parses it: its tensors are read from the page cache as they are copied
    /// out, so a rank that needs a slice of a large checkpoint touches only that slice's pages, and ranks on one host
    /// share them.
    public static func map(path: String) throws -> SafeTensorsFile {
        try decode(try FileBytes(mapping: path), path: path)
    }

    static func decode(_ bytes: FileBytes, path: String) throws -> SafeTensorsFile {
        func fail(_ problem: String) -> SafeTensorsError { SafeTensorsError(path: path, problem: problem) }
        guard bytes.count >= 8 else {
            throw fail("\(bytes.count) bytes is too short for a safetensors file (8-byte header length missing); the file is truncated")
        }
        var headerLength: UInt64 = 0
        for i in (0..<8).reversed() { headerLength = headerLength << 8 | UInt64(bytes[i]) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) goes beyond the file's \(bytes.count) bytes; the file is truncated or "
                + "not safetensors")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let text = bytes.text(8..<headerEnd) else {
            throw fail("the header is not valid UTF-8")
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        } catch {
            throw fail("the header is not valid JSON")
        }
        guard let object = parsed as? [String: Any] else { throw fail("the header is not a JSON object") }
        // JSON parsers keep the last of duplicate keys; a file naming a tensor twice is ambiguous, so refuse it.
        if let duplicate = firstDuplicateTopLevelKey(in: text) { throw fail("names tensor \(duplicate) more than once") }
        var metadata: [String: String] = [:]
        var entries: [String: SafeTensorsFile.Entry] = [:]
        let dataSize = bytes.count - headerEnd
        for (name, value) in object {
            if name == "__metadata__" {
                guard let dictionary = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (key, item) in dictionary {
                    guard let string = item as? String else { throw fail("__metadata__ value of \(key) is not a string") }
                    metadata[key] = string
                }
                continue
            }
            entries[name] = try entry(name, value, headerEnd: headerEnd, dataSize: dataSize, fail: fail)
        }
        // Tensors may not share bytes.
        let sorted = entries.sorted { $0.value.byteRange.lowerBound < $1.value.byteRange.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst())
        where next.value.byteRange.lowerBound < previous.value.byteRange.upperBound {
            throw fail("tensors \(previous.key) and \(next.key) overlap")
        }
        return SafeTensorsFile(path: path, bytes: bytes, metadata: metadata, entries: entries)
    }

    /// One tensor's header entry: its dtype, a shape no larger than the file, and data offsets inside it.
    private static func entry(_ name: String, _ value: Any, headerEnd: Int, dataSize: Int,
                              fail: (String) -> SafeTensorsError) throws -> SafeTensorsFile.Entry {
        guard let fields = value as? [String: Any] else { throw fail("tensor \(name) is not an object") }
        guard let dtype = fields["dtype"] as? String else { throw fail("tensor \(name) has no dtype") }
        guard let type = TensorDType(rawValue: dtype) else {
            throw fail("tensor \(name) has dtype \(dtype); distrain reads F32 and I8 only")
        }
        guard let shapeValues = fields["shape"] as? [Any] else { throw fail("tensor \(name) has no shape") }
        var shape: [Int] = []
        var elements = 1
        for dimension in shapeValues {
            guard let number = dimension as? NSNumber, let d = Int(exactly: number.doubleValue), d >= 0, d <= Int(Int32.max) else {
                throw fail("tensor \(name) has an invalid shape \(shapeValues)")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            if overflow || product > dataSize { throw fail("tensor \(name) shape \(shape + [d]) is larger than the file") }
            shape.append(d)
            elements = product
        }
        guard let offsets = fields["data_offsets"] as? [Any], offsets.count == 2,
              let beginNumber = offsets[0] as? NSNumber, let endNumber = offsets[1] as? NSNumber,
              let begin = Int(exactly: beginNumber.doubleValue), let end = Int(exactly: endNumber.doubleValue) else {
            throw fail("tensor \(name) has invalid data_offsets")
        }
        guard begin >= 0, begin <= end, end <= dataSize else {
            throw fail("tensor \(name) data_offsets [\(begin), \(end)] lie outside the \(dataSize) data bytes; the file is "
                + "truncated or corrupt")
        }
        guard end - begin == elements * type.size else {
            throw fail("tensor \(name) has \(end - begin) data bytes but \(dtype) shape \(shape) needs \(elements * type.size)")
        }
        return SafeTensorsFile.Entry(shape: shape, dtype: type, byteRange: (headerEnd + begin)..<(headerEnd + end))
    }
}

/// A validated safetensors file.
public struct SafeTensorsFile {
    public struct Entry: Equatable {
        public let shape: [Int]
        public let dtype: TensorDType
        /// Where the tensor's bytes are in the whole file.
        public let byteRange: Range<Int>
    }

    public let path: String
    let bytes: FileBytes
    public let metadata: [String: String]
    public let entries: [String: Entry]

    /// Copies tensor `name` into `destination` after checking that it exists with `shape`.
    public func read(_ name: String, shape: [Int], into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let entry = entries[name] else {
            throw SafeTensorsError(path: path, problem: "missing tensor \(name)")
        }
        guard entry.shape == shape else {
            throw SafeTensorsError(path: path, problem: "tensor \(name) has shape \(entry.shape) but the model needs \(shape)")
        }
        guard entry.dtype == .f32 else {
            throw SafeTensorsError(path: path, problem: "tensor \(name) is \(entry.dtype.rawValue), not F32; an int8 checkpoint "
                + "(distrain quantize) serves evaluate and predict only")
        }
        precondition(destination.count == shape.reduce(1, *), "destination for \(name) holds \(destination.count) floats")
        bytes.withUnsafeBytes { raw in
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[entry.byteRange]))
        }
        bytes.dropPages(entry.byteRange)
    }

    /// An int8 tensor's values, after checking that it exists as I8 with `shape`.
    public func int8Values(_ name: String, shape: [Int]) throws -> [Int8] {
        guard let entry = entries[name] else { throw SafeTensorsError(path: path, problem: "missing tensor \(name)") }
        guard entry.shape == shape, entry.dtype == .i8 else {
            throw SafeTensorsError(path: path, problem: "tensor \(name) is \(entry.dtype.rawValue) of shape \(entry.shape) but "
                + "the model needs I8 of shape \(shape)")
        }
        return bytes.withUnsafeBytes { raw in Array(UnsafeRawBufferPointer(rebasing: raw[entry.byteRange]).bindMemory(to: Int8.self)) }
    }

    /// The tensor's values as an array (tests and tools).
    public func values(_ name: String) throws -> [Float] {
        guard let entry = entries[name] else { throw SafeTensorsError(path: path, problem: "missing tensor \(name)") }
        var values = [Float](repeating: 0, count: entry.shape.reduce(1, *))
        try values.withUnsafeMutableBufferPointer { try read(name, shape: entry.shape, into: $0) }
        return values
    }
}

/// The first key that occurs twice at the top level of a (valid) JSON object, or nil.
func firstDuplicateTopLevelKey(in json: String) -> String? {
    var seen = Set<String>()
    var depth = 0
    var index = json.utf8.startIndex
    let bytes = json.utf8
    while index < bytes.endIndex {
        let byte = bytes[index]
        if byte == UInt8(ascii: "\"") {
            // A string: find its end, honouring escapes.
            var end = bytes.index(after: index)
            while end < bytes.endIndex && bytes[end] != UInt8(ascii: "\"") {
                if bytes[end] == UInt8(ascii: "\\") { end = bytes.index(after: end) }
                if end < bytes.endIndex { end = bytes.index(after: end) }
            }
            guard end < bytes.endIndex else { return nil }
            var next = bytes.index(after: end)
            let space: [UInt8] = [UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r")]
            while next < bytes.endIndex, space.contains(bytes[next]) {
                next = bytes.index(after: next)
            }
            if depth == 1, next < bytes.endIndex, bytes[next] == UInt8(ascii: ":") {
                let literal = String(json[index...end])
                let key = (try? JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8)) as? [String])?.first ?? literal
                if !seen.insert(key).inserted { return key }
            }
            index = bytes.index(after: end)
            continue
        }
        if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
        if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { depth -= 1 }
        index = bytes.index(after: index)
    }
    return nil
}

/// A file's bytes: an array read into memory, or a read-only mapping of the file (unmapped when the last copy of
/// the SafeTensorsFile goes).
final class FileBytes {
    private let base: UnsafeRawPointer?
    let count: Int
    private let array: [UInt8]?

    init(_ array: [UInt8]) {
        self.array = array
        base = nil
        count = array.count
    }

    init(mapping path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SafeTensorsError(path: path, problem: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SafeTensorsError(path: path, problem: String(cString: strerror(errno))) }
        count = Int(info.st_size)
        array = nil
        guard count > 0 else {
            base = nil
            return
        }
        guard let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE, descriptor, 0), mapped != MAP_FAILED else {
            throw SafeTensorsError(path: path, problem: "cannot be mapped: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if array == nil, let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    subscript(index: Int) -> UInt8 { withUnsafeBytes { $0[index] } }

    /// A mapping's pages wholly inside `range`, dropped from this process once copied out (the page cache keeps
    /// them for the other ranks): restoring a large checkpoint does not hold it in the resident set.
    func dropPages(_ range: Range<Int>) {
        guard array == nil, let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + range.lowerBound + page - 1) / page * page
        let end = (Int(bitPattern: base) + range.upperBound) / page * page
        if start < end { madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED) }
    }

    /// `range` as UTF-8 text, nil when it is not valid UTF-8.
    func text(_ range: Range<Int>) -> String? {
        withUnsafeBytes { String(validating: $0[range], as: UTF8.self) }
    }

    func withUnsafeBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        if let array { return try array.withUnsafeBytes(body) }
        return try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}
