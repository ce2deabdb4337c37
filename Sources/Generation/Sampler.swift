import Foundation
import Tensors

/// How each next token is drawn from the model's logits (Hugging Face's and nanoGPT's knobs).
public struct SamplingSettings: Sendable, Equatable {
    /// Logits are divided by it before the softmax; 0 picks the most likely token (greedy).
    public var temperature: Double = 1
    /// Only the k most likely tokens may be drawn (nil: all; 1: greedy).
    public var topK: Int?
    /// Only the most likely tokens whose probabilities add up to p may be drawn (nucleus sampling; 1: all).
    public var topP: Double = 1
    /// Seed of the draws: the same seed, prompt and model give the same text.
    public var seed: UInt64 = 0

    public init(temperature: Double = 1, topK: Int? = nil, topP: Double = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    /// Whether every draw is the most likely token.
    public var isGreedy: Bool { temperature == 0 || topK == 1 }

    /// The first setting out of range, as a sentence naming the flag, or nil.
    public var problem: String? {
        if !temperature.isFinite || temperature < 0 { return "--temperature must be 0 (greedy) or positive, got \(temperature)" }
        if let topK, topK < 1 { return "--top-k must be at least 1, got \(topK)" }
        if !(topP > 0 && topP <= 1) { return "--top-p must be in (0, 1], got \(topP)" }
        return nil
    }
}

/// Draws token ids from logits: temperature, top-k, then top-p over what is left, then one uniform draw.
/// Its scratch is sized once for the vocabulary, so a draw allocates nothing.
public struct Sampler {
    public let settings: SamplingSettings
    private var generator: SeededGenerator
    /// (V) candidate ids, most likely first after a draw.
    private var order: [Int32]
    /// (V) their probabilities.
    private var probabilities: [Double]

    public init(settings: SamplingSettings, vocabularySize: Int, stream: UInt64 = 0) {
        precondition(settings.problem == nil, settings.problem ?? "")
        self.settings = settings
        generator = SeededGenerator(seed: settings.seed, keys: 0x5341_4D50, stream)
        order = Array(repeating: 0, count: vocabularySize)
        probabilities = Array(repeating: 0, count: vocabularySize)
    }

    /// The next token for `logits` (V values).
    public mutating func draw(_ logits: UnsafePointer<Float>) -> Int32 {
        if settings.isGreedy { return Self.argmax(logits, count: order.count) }
        let kept = selectCandidates(logits)
        var maximum = -Float.infinity
        for i in 0..<kept { maximum = max(maximum, logits[Int(order[i])]) }
        let temperature = settings.temperature
        var total = 0.0
        for i in 0..<kept {
            probabilities[i] = exp((Double(logits[Int(order[i])]) - Double(maximum)) / temperature)
            total += probabilities[i]
        }
        // Nucleus (candidates are then most likely first): the smallest prefix whose probability reaches top-p.
        var used = kept
        if settings.topP < 1 {
            var cumulative = 0.0
            used = 0
            while used < kept {
                cumulative += probabilities[used] / total
                used += 1
                if cumulative >= settings.topP { break }
            }
        }
        var mass = 0.0
        for i in 0..<used { mass += probabilities[i] }
        let target = Double(generator.next() >> 11) * 0x1p-53 * mass
        var running = 0.0
        for i in 0..<used {
            running += probabilities[i]
            if target < running { return order[i] }
        }
        return order[used - 1]
    }

    /// Fills `order` with the ids that may be drawn and returns how many: the top k (most likely first, ties by id)
    /// by insertion for a small k, every id sorted when top-p needs an order, else every id as it is.
    private mutating func selectCandidates(_ logits: UnsafePointer<Float>) -> Int {
        let count = order.count, k = min(settings.topK ?? count, count)
        if k <= 256 {
            var size = 0
            for id in 0..<count {
                let value = logits[id]
                if size == k && !(value > logits[Int(order[k - 1])]) { continue }
                var slot = min(size, k - 1)
                while slot > 0 && logits[Int(order[slot - 1])] < value {
                    order[slot] = order[slot - 1]
                    slot -= 1
                }
                order[slot] = Int32(id)
                size = min(size + 1, k)
            }
            return size
        }
        for i in 0..<count { order[i] = Int32(i) }
        if settings.topP < 1 || k < count {
            order.withUnsafeMutableBufferPointer { ids in
                ids.sort { logits[Int($0)] != logits[Int($1)] ? logits[Int($0)] > logits[Int($1)] : $0 < $1 }
            }
        }
        return k
    }

    /// The id of the largest logit (the first of equals).
    public static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int32 {
        var best = 0
        for i in 1..<max(count, 1) where logits[i] > logits[best] { best = i }
        return Int32(best)
    }
}
