import Foundation

extension Tokenizer {
    /// The largest tokenizer.json distrain reads (GPT-2's is 1.4 MB; Llama 3's 9 MB).
    public static let maximumFileBytes = 256 << 20

    /// Loads a Hugging Face `tokenizer.json` of byte-level BPE (GPT-2's, Llama 3's, or distrain's own)
    /// or distrain's character-level layout. Anything else is refused with the reason.
    public static func load(path: String) throws -> Tokenizer {
        try load(json: try readTokenizerFile(path), source: path)
    }

    /// Parses the text of a `tokenizer.json` (`source` names it in errors: a path, or where it was stored).
    public static func load(json data: Data, source path: String) throws -> Tokenizer {
        let fail = { (problem: String) in TextError.badTokenizer(path: path, problem: problem) }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object; give a Hugging Face tokenizer.json")
        }
        guard let model = root["model"] as? [String: Any], model["type"] as? String == "BPE" else {
            throw fail("not a BPE tokenizer (model type \(describe((root["model"] as? [String: Any])?["type"]))); "
                + "distrain reads byte-level BPE tokenizer.json files such as GPT-2's")
        }
        try checkUnsupportedSettings(root: root, model: model, fail: fail)
        let layout = try Layout(root: root, fail: fail)
        guard let vocab = model["vocab"] as? [String: Any] else { throw fail("model.vocab is not a map of token → id") }
        let specials = try addedTokens(root["added_tokens"], fail: fail)
        var table = try VocabularyTable(vocab: vocab, specials: specials, layout: layout, fail: fail)
        let merges = try table.mergeRules(model["merges"], fail: fail)
        return Tokenizer(kind: layout.kind, pattern: layout.pattern, tokenBytes: table.tokenBytes, merges: merges,
                         specialTokens: specials, ignoresMerges: model["ignore_merges"] as? Bool ?? false)
    }

    private static func readTokenizerFile(_ path: String) throws -> Data {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw TextError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw TextError.badTokenizer(path: path, problem: "not a regular file; give a tokenizer.json file")
        }
        guard Int(status.st_size) <= maximumFileBytes else {
            throw TextError.badTokenizer(path: path, problem: "\(status.st_size) bytes is larger than any tokenizer "
                + "distrain reads (\(maximumFileBytes >> 20) MB)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TextError.unreadable(path: path, reason: "the file could not be read")
        }
        return data
    }

    private static func checkUnsupportedSettings(root: [String: Any], model: [String: Any],
                                                 fail: (String) -> TextError) throws {
        if let normalizer = root["normalizer"], !(normalizer is NSNull) {
            throw fail("it has a normalizer (\(describe((normalizer as? [String: Any])?["type"]))), which distrain "
                + "does not apply; use a tokenizer without one (GPT-2's kind)")
        }
        if let dropout = model["dropout"] as? Double, dropout > 0 {
            throw fail("BPE dropout \(dropout) makes encoding random; set \"dropout\": null")
        }
        if model["byte_fallback"] as? Bool == true { throw fail("byte_fallback tokenizers (SentencePiece-style) are not byte-level BPE") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key] as? String, !value.isEmpty {
                throw fail("model.\(key) \"\(value)\" is a WordPiece-style setting, not byte-level BPE")
            }
        }
    }

    private static func addedTokens(_ value: Any?, fail: (String) -> TextError) throws -> [SpecialToken] {
        guard let value, !(value is NSNull) else { return [] }
        guard let list = value as? [[String: Any]] else { throw fail("added_tokens is not a list of tokens") }
        return try list.map { entry in
            guard let id = entry["id"] as? Int, let content = entry["content"] as? String, !content.isEmpty,
                  id >= 0, id < BPETrainer.maximumVocabularySize else {
                throw fail("an added token lacks a valid id or content: \(describe(entry["content"]))")
            }
            return SpecialToken(content, id: Int32(id))
        }
    }
}

/// What a tokenizer.json's pre-tokenizer and decoder say about its layout.
private struct Layout {
    let kind: TokenizerKind
    let pattern: SplitPattern

    init(root: [String: Any], fail: (String) -> TextError) throws {
        let preTokenizer = root["pre_tokenizer"] as? [String: Any]
        switch preTokenizer?["type"] as? String {
        case nil:
            kind = .characters
            pattern = .none
        case "ByteLevel":
            try Layout.checkByteLevel(preTokenizer!, fail: fail)
            kind = .byteLevelBPE
            pattern = preTokenizer!["use_regex"] as? Bool ?? true ? .gpt2 : .none
        case "Sequence":
            let steps = preTokenizer!["pretokenizers"] as? [[String: Any]] ?? []
            guard steps.count == 2, steps[0]["type"] as? String == "Split", steps[1]["type"] as? String == "ByteLevel",
                  steps[1]["use_regex"] as? Bool == false,
                  let regex = (steps[0]["pattern"] as? [String: Any])?["Regex"] as? String else {
                throw fail("its pre-tokenizer sequence is not Split(regex) + ByteLevel, the byte-level BPE layout")
            }
            guard let known = SplitPattern.allCases.first(where: { $0.regex == regex }) else {
                throw fail("its split pattern is none distrain knows (gpt2, gpt4): \(regex.prefix(80))")
            }
            guard steps[0]["behavior"] as? String == "Isolated", steps[0]["invert"] as? Bool != true else {
                throw fail("its Split pre-tokenizer must be behavior Isolated, invert false")
            }
            try Layout.checkByteLevel(steps[1], fail: fail)
            kind = .byteLevelBPE
            pattern = known
        case let other?:
            throw fail("its pre-tokenizer \(other) is not byte-level; distrain reads GPT-2-style tokenizers")
        }
    }

    private static func checkByteLevel(_ step: [String: Any], fail: (String) -> TextError) throws {
        if step["add_prefix_space"] as? Bool == true {
            throw fail("add_prefix_space is true; distrain encodes as GPT-2 does, without a prefix space")
        }
    }
}

/// Token bytes by id from a vocab map, checked: ids unique and in range, symbols in the byte alphabet.
private struct VocabularyTable {
    private(set) var tokenBytes: [[UInt8]]
    private var idsBySymbol: [String: Int32]

    init(vocab: [String: Any], specials: [SpecialToken], layout: Layout, fail: (String) -> TextError) throws {
        var size = (specials.map { Int($0.id) }.max() ?? -1) + 1
        var ids: [String: Int32] = [:]
        for (symbol, value) in vocab {
            guard let id = value as? Int, id >= 0, id < BPETrainer.maximumVocabularySize else {
                throw fail("token \(describe(symbol)) has id \(describe(value)), not one in 0..<2^20")
            }
            ids[symbol] = Int32(id)
            size = max(size, id + 1)
        }
        var bytes = [[UInt8]](repeating: [], count: size)
        var owner = [String?](repeating: nil, count: size)
        let specialIDs = Set(specials.map(\.id))
        for (symbol, id) in ids {
            if let previous = owner[Int(id)] {
                throw fail("tokens \(describe(previous)) and \(describe(symbol)) share id \(id)")
            }
            owner[Int(id)] = symbol
            if specialIDs.contains(id) { continue }
            if layout.kind == .characters {
                guard symbol.unicodeScalars.count == 1 else {
                    throw fail("token \(describe(symbol)) (id \(id)) is not one character, and there is no "
                        + "pre-tokenizer: not a layout distrain reads")
                }
                bytes[Int(id)] = Array(symbol.utf8)
            } else {
                guard let decoded = ByteLevel.bytes(of: symbol), !decoded.isEmpty else {
                    throw fail("token \(describe(symbol)) (id \(id)) is not a byte-level symbol: not a byte-level BPE")
                }
                bytes[Int(id)] = decoded
            }
        }
        for special in specials { bytes[Int(special.id)] = Array(special.content.utf8) }
        if layout.kind == .byteLevelBPE {
            for byte in 0..<256 where ids[ByteLevel.symbol(of: [UInt8(byte)])] == nil {
                throw fail("the vocabulary lacks the token for byte \(byte), so some text cannot be encoded")
            }
        }
        tokenBytes = bytes
        idsBySymbol = ids
    }

    mutating func mergeRules(_ value: Any?, fail: (String) -> TextError) throws -> [(Int32, Int32, Int32)] {
        guard let list = value as? [Any] else {
            if value == nil || value is NSNull { return [] }
            throw fail("model.merges is not a list")
        }
        return try list.enumerated().map { rank, entry in
            let parts: [String]
            if let text = entry as? String {
                parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                parts = entry as? [String] ?? []
            }
            guard parts.count == 2 else { throw fail("merge \(rank) \(describe(entry)) is not a pair of tokens") }
            guard let left = idsBySymbol[parts[0]], let right = idsBySymbol[parts[1]] else {
                let unknown = idsBySymbol[parts[0]] == nil ? parts[0] : parts[1]
                throw fail("merge \(rank) names unknown token \(describe(unknown))")
            }
            guard let result = idsBySymbol[parts[0] + parts[1]] else {
                throw fail("merge \(rank) makes \(describe(parts[0] + parts[1])), which is not in the vocabulary")
            }
            return (left, right, result)
        }
    }
}

/// A short, one-line rendering of a JSON value for an error message.
private func describe(_ value: Any?) -> String {
    guard let value, !(value is NSNull) else { return "none" }
    let text = value as? String ?? "\(value)"
    let line = text.replacingOccurrences(of: "\n", with: "\\n")
    return "'" + (line.count > 60 ? String(line.prefix(60)) + "…" : line) + "'"
}
