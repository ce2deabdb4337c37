import Foundation
import Layers

/// What one generation produced.
public struct GenerationResult: Sendable {
    /// The new tokens, without the prompt (a stop token that ended it included).
    public var tokens: [Int32] = []
    /// Whether a stop token ended it (else it reached the token budget or the caller stopped it).
    public var stoppedAtStopToken = false
    /// Seconds spent on the prompt (one pass over all its positions) and on the new tokens.
    public var promptSeconds = 0.0
    public var generationSeconds = 0.0

    /// New tokens per second after the prompt.
    public var tokensPerSecond: Double { generationSeconds > 0 ? Double(tokens.count) / generationSeconds : 0 }
}

/// Continues token sequences with a language model and a KV cache: the prompt in one pass over its positions,
/// then one position per new token. Past the context, the window slides: as nanoGPT's `generate`, the model
/// sees the last `context` tokens, recomputed from scratch for each further token.
public final class TextGenerator {
    public let decoder: IncrementalDecoder

    public init(model: Sequential) throws { decoder = try IncrementalDecoder(model: model) }

    public var context: Int { decoder.context }
    public var vocabularySize: Int { decoder.vocabularySize }

    /// Generates up to `maxNewTokens` after `prompt` (1 … context tokens, ids below the vocabulary);
    /// `onToken` sees each token as it comes and returns false to stop early.
    public func generate(prompt: [Int32], maxNewTokens: Int, sampler: inout Sampler, stopTokens: Set<Int32> = [],
                         onToken: (Int32) throws -> Bool) rethrows -> GenerationResult {
        precondition(!prompt.isEmpty && prompt.count <= context, "a prompt of 1…\(context) tokens, got \(prompt.count)")
        var result = GenerationResult()
        var window = prompt
        window.reserveCapacity(context + 1)
        let started = DispatchClock.seconds()
        decoder.state.reset()
        var logits = window.withUnsafeBufferPointer { decoder.append($0) }
        result.promptSeconds = DispatchClock.seconds() - started
        while result.tokens.count < maxNewTokens {
            let next = sampler.draw(logits)
            result.tokens.append(next)
            if stopTokens.contains(next) { result.stoppedAtStopToken = true }
            if try !onToken(next) || result.stoppedAtStopToken || result.tokens.count == maxNewTokens { break }
            window.append(next)
            if decoder.state.position < context {
                logits = withUnsafePointer(to: next) { decoder.append(UnsafeBufferPointer(start: $0, count: 1)) }
            } else {
                window.removeFirst(window.count - context)
                decoder.state.reset()
                logits = window.withUnsafeBufferPointer { decoder.append($0) }
            }
        }
        result.generationSeconds = DispatchClock.seconds() - started - result.promptSeconds
        return result
    }
}

extension TextGenerator {
    /// Generates up to `maxNewTokens` after `prompt`, all at once.
    public func generate(prompt: [Int32], maxNewTokens: Int, sampler: inout Sampler,
                         stopTokens: Set<Int32> = []) -> GenerationResult {
        generate(prompt: prompt, maxNewTokens: maxNewTokens, sampler: &sampler, stopTokens: stopTokens) { _ in true }
    }
}

/// A monotonic clock in seconds.
enum DispatchClock {
    static func seconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
