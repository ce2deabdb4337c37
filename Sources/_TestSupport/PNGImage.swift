import CZlib
import Foundation

/// An 8-bit RGB or RGBA PNG decoded to pixels — enough to check a browser's screenshot (size, not blank).
public struct PNGImage {
    public let width: Int
    public let height: Int
    /// Row-major RGBA, 4 bytes per pixel.
    public let rgba: [UInt8]

    /// Decodes the file; nil when it is not an 8-bit non-interlaced RGB(A) PNG.
    public init?(path: String) {
        guard let data = FileManager.default.contents(atPath: path), data.count > 33 else { return nil }
        let bytes = [UInt8](data)
        guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { return nil }
        func word(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        var offset = 8, compressed: [UInt8] = []
        var (width, height, colorType, depth, interlace) = (0, 0, 0, 0, 0)
        while offset + 8 <= bytes.count {
            let length = word(offset), type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let start = offset + 8
            guard start + length <= bytes.count else { return nil }
            if type == "IHDR" {
                (width, height) = (word(start), word(start + 4))
                (depth, colorType, interlace) = (Int(bytes[start + 8]), Int(bytes[start + 9]), Int(bytes[start + 12]))
            } else if type == "IDAT" {
                compressed += bytes[start..<(start + length)]
            }
            offset = start + length + 4
        }
        guard depth == 8, interlace == 0, colorType == 2 || colorType == 6, width > 0, height > 0 else { return nil }
        let channels = colorType == 6 ? 4 : 3, stride = width * channels
        guard let raw = inflateZlib(compressed, expected: height * (stride + 1)) else { return nil }
        var pixels = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)], row = y * (stride + 1) + 1
            for x in 0..<stride {
                let a = x >= channels ? Int(pixels[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(pixels[(y - 1) * stride + x - channels]) : 0
                let predictor: Int
                switch filter {
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: predictor = 0
                }
                pixels[y * stride + x] = UInt8((Int(raw[row + x]) + predictor) & 0xFF)
            }
        }
        self.width = width
        self.height = height
        if channels == 4 {
            rgba = pixels
        } else {
            var expanded = [UInt8](repeating: 255, count: width * height * 4)
            for p in 0..<(width * height) {
                for k in 0..<3 { expanded[p * 4 + k] = pixels[p * 3 + k] }
            }
            rgba = expanded
        }
    }

    /// Pixels that are not (near) white, as a fraction of all.
    public var inkFraction: Double {
        var ink = 0
        for p in 0..<(width * height) {
            let sum = Int(rgba[p * 4]) + Int(rgba[p * 4 + 1]) + Int(rgba[p * 4 + 2])
            if sum < 3 * 235 { ink += 1 }
        }
        return Double(ink) / Double(width * height)
    }

    /// How many different colours the image uses (a blank or one-colour page has 1 or 2).
    public var distinctColors: Int {
        var colors = Set<UInt32>()
        for p in stride(from: 0, to: width * height, by: 7) {
            let red = UInt32(rgba[p * 4]) << 16, green = UInt32(rgba[p * 4 + 1]) << 8
            colors.insert(red | green | UInt32(rgba[p * 4 + 2]))
        }
        return colors.count
    }
}

private func inflateZlib(_ input: [UInt8], expected: Int) -> [UInt8]? {
    var output = [UInt8](repeating: 0, count: expected)
    var stream = z_stream()
    guard czlib_inflate_init2(&stream, 15) == Z_OK else { return nil }
    defer { inflateEnd(&stream) }
    var input = input
    let status: Int32 = input.withUnsafeMutableBufferPointer { source in
        output.withUnsafeMutableBufferPointer { target in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            stream.next_out = target.baseAddress
            stream.avail_out = UInt32(target.count)
            return inflate(&stream, Z_FINISH)
        }
    }
    return status == Z_STREAM_END && stream.avail_out == 0 ? output : nil
}
