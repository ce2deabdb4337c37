import Foundation
import Generation
import Text

/// An OpenAI `POST /v1/completions` body, checked field by field (400 naming the field).
struct CompletionRequest {
    var model: String?
    /// Text, or token ids (OpenAI accepts both); nil: the end-of-text token alone.
    var promptText: String?
    var promptTokens: [Int32]?
    var maxTokens = 16
    var sampling = SamplingSettings(temperature: 1, topK: nil, topP: 1, seed: UInt64.random(in: 0...UInt64(Int64.max)))
    var stop: [String] = []
    var stream = false

    init(_ body: JSONNode, maxTokensLimit: Int) throws {
        guard case let .object(pairs) = body else { throw HTTPProblem(400, "the body is \(body.kind); send a JSON object") }
        for (key, value) in pairs { try read(key, value, maxTokensLimit: maxTokensLimit) }
        if let problem = sampling.problem { throw HTTPProblem(400, problem) }
    }

    private mutating func read(_ key: String, _ value: JSONNode, maxTokensLimit: Int) throws {
        func number() throws -> Double {
            guard case let .number(number) = value else { throw HTTPProblem(400, "\"\(key)\" must be a number, got \(value.kind)") }
            return number
        }
        func integer(_ range: ClosedRange<Double>) throws -> Int {
            let number = try number()
            guard number == number.rounded(), range.contains(number) else {
                throw HTTPProblem(400, "\"\(key)\" must be an integer in \(Int(range.lowerBound))...\(Int(range.upperBound)), "
                    + "got \(number)")
            }
            return Int(number)
        }
        switch key {
        case "model":
            guard case let .string(name) = value else { throw HTTPProblem(400, "\"model\" must be a string, got \(value.kind)") }
            model = name
        case "prompt": try readPrompt(value)
        case "max_tokens": maxTokens = try integer(1...Double(maxTokensLimit))
        case "temperature": sampling.temperature = try number()
        case "top_p": sampling.topP = try number()
        case "top_k": sampling.topK = try integer(1...1e9)
        case "seed": sampling.seed = UInt64(try integer(0...9e15))
        case "stream":
            guard case let .bool(flag) = value else { throw HTTPProblem(400, "\"stream\" must be true or false, got \(value.kind)") }
            stream = flag
        case "stop":
            switch value {
            case .null: stop = []
            case let .string(text): stop = [text]
            case let .array(items):
                stop = try items.map {
                    guard case let .string(text) = $0 else { throw HTTPProblem(400, "\"stop\" must hold strings, got \($0.kind)") }
                    return text
                }
            default: throw HTTPProblem(400, "\"stop\" must be a string or an array of strings, got \(value.kind)")
            }
            guard stop.count <= 4, stop.allSatisfy({ !$0.isEmpty }) else {
                throw HTTPProblem(400, "\"stop\" takes up to 4 non-empty strings")
            }
        case "n", "best_of":
            guard try integer(1...1) == 1 else { return }
        case "echo", "logprobs", "suffix":
            if value != .null && value != .bool(false) {
                throw HTTPProblem(400, "\"\(key)\" is not supported by distrain serve; leave it out")
            }
        default: break  // OpenAI clients send fields such as "user" or "presence_penalty" that do not change sampling here
        }
    }

    private mutating func readPrompt(_ value: JSONNode) throws {
        switch value {
        case let .string(text): promptText = text
        case let .array(items) where items.allSatisfy({ if case .number = $0 { return true } else { return false } }):
            promptTokens = try items.map {
                guard case let .number(id) = $0, id == id.rounded(), id >= 0, id < 2_147_483_648 else {
                    throw HTTPProblem(400, "\"prompt\" token ids must be integers of at least 0")
                }
                return Int32(id)
            }
        case .array: throw HTTPProblem(400, "\"prompt\" must be one string or one array of token ids (one prompt per request)")
        default: throw HTTPProblem(400, "\"prompt\" must be a string or an array of token ids, got \(value.kind)")
        }
    }

    /// The prompt's token ids, checked against the vocabulary and the context.
    func tokens(tokenizer: Tokenizer, vocabularySize: Int, context: Int) throws -> [Int32] {
        var ids: [Int32]
        if let promptTokens {
            guard let bad = promptTokens.first(where: { Int($0) >= vocabularySize }) else { ids = promptTokens; return try fit(ids) }
            throw HTTPProblem(400, "\"prompt\" holds token id \(bad); the vocabulary has \(vocabularySize) tokens")
        } else if let promptText, !promptText.isEmpty {
            do { ids = try tokenizer.encode(promptText) } catch { throw HTTPProblem(400, "\"prompt\" does not encode: \(error)") }
        } else if let end = tokenizer.endOfText {
            ids = [end]
        } else {
            throw HTTPProblem(400, "\"prompt\" is empty and this tokenizer has no <|endoftext|> to start from; send a prompt")
        }
        return try fit(ids)

        func fit(_ ids: [Int32]) throws -> [Int32] {
            guard !ids.isEmpty else { throw HTTPProblem(400, "\"prompt\" holds no token") }
            guard ids.count + maxTokens <= context else {
                throw HTTPProblem(400, "the prompt is \(ids.count) tokens and max_tokens \(maxTokens); this model's context "
                    + "is \(context) tokens: shorten the prompt or lower max_tokens")
            }
            return ids
        }
    }
}

/// New tokens as text: bytes held until they form whole UTF-8 characters (a byte-level BPE token can end
/// inside one), and text held back while it could be the start of a stop string, which ends the completion.
struct TextAssembler {
    let tokenizer: Tokenizer
    let stops: [String]
    private var bytes: [UInt8] = []
    private var held = ""
    private(set) var stopped = false

    init(tokenizer: Tokenizer, stops: [String]) {
        self.tokenizer = tokenizer
        self.stops = stops
    }

    /// The text that can be sent after `token`.
    mutating func push(_ token: Int32) -> String {
        guard !stopped else { return "" }
        bytes += (try? tokenizer.decode([token])) ?? []
        let whole = wholeCharacters()
        held += String(decoding: bytes[..<whole], as: UTF8.self)
        bytes.removeFirst(whole)
        return release()
    }

    /// What is left at the end (an incomplete character as U+FFFD).
    mutating func flush() -> String {
        guard !stopped else { return "" }
        held += String(decoding: bytes, as: UTF8.self)
        bytes = []
        let rest = release()
        defer { held = "" }
        return rest + (stopped ? "" : held)
    }

    /// Text before a stop string (then stopped), or all but a tail that may begin one.
    private mutating func release() -> String {
        if let cut = stops.compactMap({ held.range(of: $0)?.lowerBound }).min() {
            stopped = true
            let text = String(held[..<cut])
            held = ""
            return text
        }
        var keep = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, held.count), through: 1, by: -1)
            where held.hasSuffix(stop.prefix(length)) {
                keep = max(keep, length)
                break
            }
        }
        let text = String(held.dropLast(keep))
        held = String(held.suffix(keep))
        return text
    }

    /// Length of the longest prefix of `bytes` that ends on a character boundary.
    private func wholeCharacters() -> Int {
        var end = bytes.count, back = 0
        while back < 4 && end - back - 1 >= 0 {
            let byte = bytes[end - back - 1]
            if byte & 0xC0 != 0x80 {
                let length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                if length > back + 1 { end -= back + 1 }
                return end
            }
            back += 1
        }
        return end
    }
}
