import Foundation

/// One shard as the manifest lists it.
public struct ShardRecord: Sendable, Equatable {
    public let file: String
    /// "train" or "val".
    public let split: String
    public let tokens: Int
    /// UTF-8 bytes of the text those tokens encode (bits per byte = nats per token × tokens / bytes / ln 2).
    public let textBytes: Int
    public let documents: Int
}

/// `manifest.json` of a token-shard folder: which tokenizer made it, its shards with token and byte
/// counts. Written last, atomically: a folder with a manifest is complete.
public struct TokenManifest: Sendable, Equatable {
    public static let fileName = "manifest.json"
    public static let tokenizerFileName = "tokenizer.json"
    public var tokenizerFingerprint: String
    public var vocabularySize: Int
    public var tokenizerKind: String
    public var endOfText: Int32?
    public var seed: UInt64
    public var validationFraction: Double
    public var shards: [ShardRecord]

    /// The shards of one split, in order.
    public func shards(_ split: String) -> [ShardRecord] { shards.filter { $0.split == split } }

    func json() -> String {
        let shardLines = shards.map { s in
            "    {\"file\": \(jsonString(s.file)), \"split\": \(jsonString(s.split)), \"tokens\": \(s.tokens), "
                + "\"bytes\": \(s.textBytes), \"documents\": \(s.documents)}"
        }
        return """
        {
          "format": "distrain-token-shards",
          "version": 1,
          "tokenizer_fingerprint": \(jsonString(tokenizerFingerprint)),
          "tokenizer_kind": \(jsonString(tokenizerKind)),
          "vocab_size": \(vocabularySize),
          "end_of_text": \(endOfText.map(String.init) ?? "null"),
          "seed": \(seed),
          "val_fraction": \(validationFraction),
          "shards": [
        \(shardLines.joined(separator: ",\n"))
          ]
        }

        """
    }

    /// Reads and checks `DIR/manifest.json`.
    public static func load(directory: String) throws -> TokenManifest {
        let path = directory + "/" + fileName
        let fail = { (problem: String) in TextError.badShard(path: path, problem: problem) }
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw TextError.unreadable(path: path, reason: "no manifest: \(directory) is not a finished token-shard "
                + "folder (distrain tokenize writes one)")
        }
        guard status.st_mode & S_IFMT == S_IFREG, status.st_size < 64 << 20,
              let data = FileManager.default.contents(atPath: path),
              let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              root["format"] as? String == "distrain-token-shards" else {
            throw fail("not a distrain token-shard manifest")
        }
        guard let fingerprint = root["tokenizer_fingerprint"] as? String, let size = root["vocab_size"] as? Int,
              size > 0, size <= BPETrainer.maximumVocabularySize, let list = root["shards"] as? [[String: Any]] else {
            throw fail("the manifest lacks tokenizer_fingerprint, vocab_size or shards")
        }
        let shards = try list.map { entry -> ShardRecord in
            guard let file = entry["file"] as? String, !file.contains("/"), file != "..",
                  let split = entry["split"] as? String, let tokens = entry["tokens"] as? Int, tokens >= 0,
                  let bytes = entry["bytes"] as? Int, bytes >= 0 else { throw fail("a shard entry is malformed") }
            return ShardRecord(file: file, split: split, tokens: tokens, textBytes: bytes,
                               documents: entry["documents"] as? Int ?? 0)
        }
        return TokenManifest(tokenizerFingerprint: fingerprint, vocabularySize: size,
                             tokenizerKind: root["tokenizer_kind"] as? String ?? "",
                             endOfText: (root["end_of_text"] as? Int).map(Int32.init), seed: UInt64(root["seed"] as? Int ?? 0),
                             validationFraction: root["val_fraction"] as? Double ?? 0, shards: shards)
    }
}
