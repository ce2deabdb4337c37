import Datasets
import Foundation
import Training

/// A classifier's request body as normalized model inputs: `{"instances": [...]}` (KServe v1 / TensorFlow
/// Serving), a PNG or JPEG body, or a multipart upload of images. Values are what the data source stores —
/// pixel bytes 0…255 for images, numbers for table columns — and get the checkpoint's preprocessing exactly
/// as `distrain predict` gives them.
struct PredictionInputs {
    /// (count, C·H·W) normalized inputs.
    var samples: [Float]
    var count: Int
    /// `top_k` of a JSON body, if given.
    var topK: Int?

    /// `{"instances": [...], "top_k": k}`; each instance a flat or nested array of C·H·W values, or (tables) an
    /// object by column name.
    static func json(_ body: JSONNode, model: CheckpointModel, maxInstances: Int) throws -> PredictionInputs {
        guard case .object = body else {
            throw HTTPProblem(400, "the body is \(body.kind); send {\"instances\": [sample, ...]}")
        }
        guard let field = body["instances"] else {
            throw HTTPProblem(400, "the body has no \"instances\"; send {\"instances\": [sample, ...]}")
        }
        guard case let .array(instances) = field else {
            throw HTTPProblem(400, "\"instances\" is \(field.kind), not an array of samples")
        }
        guard !instances.isEmpty else { throw HTTPProblem(400, "\"instances\" is empty; send at least one sample") }
        guard instances.count <= maxInstances else {
            throw HTTPProblem(400, "\"instances\" holds \(instances.count) samples; at most \(maxInstances) per request "
                + "(--max-batch): split the request")
        }
        var topK: Int?
        if let value = body["top_k"] { topK = try positiveInteger(value, field: "top_k") }
        let size = model.inputShape.reduce(1, *)
        var inputs = PredictionInputs(samples: [Float](repeating: 0, count: instances.count * size), count: instances.count,
                                      topK: topK)
        var values = [Double](), pixels = [UInt8](repeating: 0, count: size), raw = [Float](repeating: 0, count: size)
        values.reserveCapacity(size)
        for (index, instance) in instances.enumerated() {
            values.removeAll(keepingCapacity: true)
            try sampleValues(instance, index: index, model: model, into: &values)
            guard values.count == size else {
                throw HTTPProblem(422, "instance \(index) has \(values.count) values; the model takes "
                    + "\(model.inputShape.map(String.init).joined(separator: "x")) = \(size) per sample")
            }
            try inputs.samples.withUnsafeMutableBufferPointer { all in
                let destination = all.baseAddress! + index * size, plane = size / model.inputShape[0]
                if model.featureNames != nil {
                    for i in 0..<size { raw[i] = Float(values[i]) }
                    raw.withUnsafeBufferPointer { model.normalization.normalize(values: $0.baseAddress!, into: destination,
                                                                               plane: plane) }
                    return
                }
                for (i, value) in values.enumerated() {
                    guard value >= 0, value <= 255, value == value.rounded() else {
                        throw HTTPProblem(422, "instance \(index), value \(i) is \(value); image samples are pixel "
                            + "bytes, integers 0...255")
                    }
                    pixels[i] = UInt8(value)
                }
                pixels.withUnsafeBufferPointer { model.normalization.normalize(bytes: $0.baseAddress!, into: destination,
                                                                               plane: plane) }
            }
        }
        return inputs
    }

    /// One instance's values in row-major order: nested arrays flattened, a table object read by column.
    private static func sampleValues(_ instance: JSONNode, index: Int, model: CheckpointModel,
                                     into values: inout [Double]) throws {
        if case .object = instance {
            guard let features = model.featureNames else {
                throw HTTPProblem(422, "instance \(index) is an object; this model takes images, send an array of "
                    + "pixel bytes")
            }
            for name in features {
                guard let cell = instance[name] else {
                    throw HTTPProblem(422, "instance \(index) has no column '\(name)', a feature of the model "
                        + "(features: \(features.joined(separator: ", ")))")
                }
                guard case let .number(value) = cell else {
                    throw HTTPProblem(422, "instance \(index), column '\(name)' is \(cell.kind), not a number")
                }
                values.append(value)
            }
            return
        }
        try flatten(instance, index: index, into: &values)
    }

    private static func flatten(_ node: JSONNode, index: Int, into values: inout [Double]) throws {
        switch node {
        case let .number(value): values.append(value)
        case let .array(items): for item in items { try flatten(item, index: index, into: &values) }
        default: throw HTTPProblem(422, "instance \(index) holds \(node.kind); samples are arrays of numbers")
        }
    }

    /// PNG or JPEG files (a raw body, or each part of a multipart upload) decoded to the model's input.
    static func images(_ files: [(name: String, bytes: [UInt8])], model: CheckpointModel,
                       maxInstances: Int) throws -> PredictionInputs {
        guard model.featureNames == nil else {
            throw HTTPProblem(415, "this model takes table rows, not images; send {\"instances\": [{column: value}]}")
        }
        guard !files.isEmpty else { throw HTTPProblem(400, "the upload holds no file") }
        guard files.count <= maxInstances else {
            throw HTTPProblem(400, "the upload holds \(files.count) images; at most \(maxInstances) per request (--max-batch)")
        }
        let shape = model.inputShape, size = shape.reduce(1, *)
        let preprocessing = model.preprocessing ?? ImagePreprocessing(channels: shape[0], height: shape[1], width: shape[2])
        var samples = [Float](repeating: 0, count: files.count * size)
        for (index, file) in files.enumerated() {
            let pixels: [UInt8]
            do {
                pixels = try decodeImage(bytes: file.bytes, source: file.name, preprocessing: preprocessing)
            } catch {
                throw HTTPProblem(422, "\(file.name) does not decode as a PNG or JPEG image: \(error)")
            }
            samples.withUnsafeMutableBufferPointer { all in
                pixels.withUnsafeBufferPointer {
                    model.normalization.normalize(bytes: $0.baseAddress!, into: all.baseAddress! + index * size,
                                                  plane: size / shape[0])
                }
            }
        }
        return PredictionInputs(samples: samples, count: files.count, topK: nil)
    }

    /// An integer ≥ 1 of a JSON field.
    static func positiveInteger(_ node: JSONNode, field: String) throws -> Int {
        guard case let .number(value) = node, value == value.rounded(), value >= 1, value <= 1e9 else {
            throw HTTPProblem(400, "\"\(field)\" must be an integer of at least 1, got \(node.kind == "a number" ? "\(node)" : node.kind)")
        }
        return Int(value)
    }
}

/// The files of a multipart/form-data body (RFC 7578): each part's filename (or field name) and bytes.
func multipartFiles(_ body: [UInt8], contentType: String) throws -> [(name: String, bytes: [UInt8])] {
    guard let range = contentType.range(of: "boundary=") else {
        throw HTTPProblem(400, "multipart/form-data without a boundary parameter")
    }
    var boundary = String(contentType[range.upperBound...].prefix { $0 != ";" }).trimmingCharacters(in: .whitespaces)
    if boundary.hasPrefix("\"") && boundary.hasSuffix("\"") && boundary.count >= 2 { boundary = String(boundary.dropFirst().dropLast()) }
    guard !boundary.isEmpty, boundary.utf8.count <= 70 else { throw HTTPProblem(400, "a multipart boundary of 1...70 characters") }
    let delimiter = Array("--\(boundary)".utf8), separator: [UInt8] = Array("\r\n\r\n".utf8)
    let starts = occurrences(of: delimiter, in: body)
    guard starts.count >= 2 else { throw HTTPProblem(400, "the multipart body has no complete part for its boundary") }
    var files: [(name: String, bytes: [UInt8])] = []
    for (start, end) in zip(starts, starts.dropFirst()) {
        let part = Array(body[(start + delimiter.count)..<end])
        guard let split = occurrences(of: separator, in: part).first else {
            throw HTTPProblem(400, "a multipart part has no blank line after its headers")
        }
        let headers = String(decoding: part[..<split], as: UTF8.self)
        var content = Array(part[(split + 4)...])
        if content.suffix(2) == [0x0D, 0x0A] { content.removeLast(2) }
        let disposition = headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-disposition") } ?? ""
        let name = parameter("filename", in: String(disposition)) ?? parameter("name", in: String(disposition)) ?? "part"
        files.append((name, content))
    }
    return files
}

private func parameter(_ key: String, in header: String) -> String? {
    guard let range = header.range(of: "\(key)=\"") else { return nil }
    return String(header[range.upperBound...].prefix { $0 != "\"" })
}

/// Offsets where `needle` starts in `haystack`.
private func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
    guard needle.count <= haystack.count else { return [] }
    var found: [Int] = []
    var i = 0
    while i <= haystack.count - needle.count {
        if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) {
            found.append(i)
            i += needle.count
        } else {
            i += 1
        }
    }
    return found
}
