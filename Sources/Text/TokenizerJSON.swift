import DurableFiles
import Foundation

/// Hugging Face's `tokenizer.json` for the tokenizers distrain makes: a BPE model (vocab and merges)
/// with the ByteLevel pre-tokenizer and decoder (GPT-2's layout), or, character-level, a BPE model with
/// no merges, no pre-tokenizer and the Fuse decoder. `tokenizers.Tokenizer.from_file` loads both.
extension Tokenizer {
    /// The tokenizer as `tokenizer.json` text (deterministic: ids, merges and keys in a fixed order).
    public func huggingFaceJSON() -> String {
        var out = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ["
        for (k, special) in specialTokens.sorted(by: { $0.id < $1.id }).enumerated() {
            out += (k == 0 ? "\n" : ",\n") + "    {\"id\": \(special.id), \"content\": \(jsonString(special.content)), "
                + "\"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
        }
        out += "\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": \(preTokenizerJSON),\n  \"post_processor\": null,\n"
        out += "  \"decoder\": " + (kind == .characters ? "{\"type\": \"Fuse\"}" : Tokenizer.byteLevelJSON(useRegex: true))
        out += ",\n  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
            + "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
            + "    \"byte_fallback\": false,\n    \"ignore_merges\": \(ignoresMerges),\n    \"vocab\": {"
        var first = true
        for id in tokenBytes.indices where !tokenBytes[id].isEmpty {
            out += (first ? "\n" : ",\n") + "      " + jsonString(symbol(of: Int32(id))) + ": \(id)"
            first = false
        }
        out += "\n    },\n    \"merges\": ["
        for (k, merge) in mergeRules.enumerated() {
            out += (k == 0 ? "\n" : ",\n") + "      " + jsonString(symbol(of: merge.left) + " " + symbol(of: merge.right))
        }
        return out + "\n    ]\n  }\n}\n"
    }

    /// A token as the vocabulary of `tokenizer.json` spells it (byte-level: its bytes as alphabet characters).
    public func symbol(of id: Int32) -> String {
        let bytes = tokenBytes[Int(id)]
        if kind == .characters || specialTokens.contains(where: { $0.id == id }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return ByteLevel.symbol(of: bytes)
    }

    private var preTokenizerJSON: String {
        switch (kind, pattern) {
        case (.characters, _): return "null"
        case (_, .gpt2): return Tokenizer.byteLevelJSON(useRegex: true)
        case (_, .none): return Tokenizer.byteLevelJSON(useRegex: false)
        case (_, .gpt4):
            return "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                + jsonString(pattern.regex!) + "}, \"behavior\": \"Isolated\", \"invert\": false}, "
                + Tokenizer.byteLevelJSON(useRegex: false) + "]}"
        }
    }

    static func byteLevelJSON(useRegex: Bool) -> String {
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": \(useRegex)}"
    }

    /// A 64-bit FNV-1a hash of the `tokenizer.json` text, in hex: what a token shard's manifest records.
    public var fingerprint: String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in huggingFaceJSON().utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return String(h, radix: 16)
    }

    /// Writes `tokenizer.json` text to `path` atomically.
    public func write(to path: String) throws {
        try writeFileAtomically(huggingFaceJSON(), to: path)
    }
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
