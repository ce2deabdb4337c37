/// GPT-2's byte-level alphabet: each of the 256 byte values as one printable Unicode character, so that
/// any byte string is a string of vocabulary symbols (Hugging Face's `ByteLevel` pre-tokenizer and decoder).
public enum ByteLevel {
    /// The character standing for each byte (index = byte value): printable Latin-1 bytes stand for
    /// themselves, the other 68 are shifted to U+0100… in byte order (GPT-2's `bytes_to_unicode`).
    public static let characters: [Unicode.Scalar] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var scalars = [Unicode.Scalar](repeating: " ", count: 256)
        for byte in printable { scalars[byte] = Unicode.Scalar(UInt8(byte)) }
        var shifted = 0
        for byte in 0..<256 where !printable.contains(byte) {
            scalars[byte] = Unicode.Scalar(UInt32(256 + shifted))!
            shifted += 1
        }
        printable.removeAll()
        return scalars
    }()

    /// The byte each alphabet character stands for, keyed by its code point (nil for other characters).
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? { byteByScalar[scalar.value] }

    private static let byteByScalar: [UInt32: UInt8] = {
        var table: [UInt32: UInt8] = [:]
        for (byte, scalar) in characters.enumerated() { table[scalar.value] = UInt8(byte) }
        return table
    }()

    /// The vocabulary symbol of a byte string (each byte as its alphabet character).
    public static func symbol<Bytes: Sequence>(of bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(characters[Int(byte)]) }
        return String(scalars)
    }

    /// The bytes a vocabulary symbol stands for, or nil when it holds a character outside the alphabet.
    public static func bytes(of symbol: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(symbol.unicodeScalars.count)
        for scalar in symbol.unicodeScalars {
            guard let byte = byteByScalar[scalar.value] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
