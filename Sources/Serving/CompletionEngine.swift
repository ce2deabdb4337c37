import Foundation
import Generation
import Layers

/// Text completions of one language model on a thread of its own, with continuous batching: every step feeds
/// one token of each running sequence through the model together (the projections as one GEMM over the
/// sequences, attention over each one's own KV cache); a request that arrives joins at the next step with its
/// prompt's pass, a finished or cancelled one leaves, so short requests never wait for long ones.
public final class CompletionEngine: @unchecked Sendable {
    /// What a request's stream carries: each new token, then why it ended.
    public enum Event: Sendable, Equatable {
        case token(Int32)
        case finished(FinishReason)
    }

    /// OpenAI's finish reasons ("stop": a stop token or stop text; "length": max_tokens), and a client that left.
    public enum FinishReason: String, Sendable {
        case stop, length, cancelled
    }

    private final class Running {
        let id: Int
        let prompt: [Int32]
        let maxTokens: Int
        let stopTokens: Set<Int32>
        var sampler: Sampler
        let events: AsyncStream<Event>.Continuation
        var state: DecodingState?
        var generated = 0
        var lastToken: Int32 = 0

        init(id: Int, prompt: [Int32], maxTokens: Int, stopTokens: Set<Int32>, sampler: Sampler,
             events: AsyncStream<Event>.Continuation) {
            self.id = id
            self.prompt = prompt
            self.maxTokens = maxTokens
            self.stopTokens = stopTokens
            self.sampler = sampler
            self.events = events
        }
    }

    public let name: String
    public let decoder: IncrementalDecoder
    /// Sequences decoded together at most (≤ the context: the decoder's buffers hold context rows).
    public let maxSequences: Int
    private let maxQueue: Int
    private let metrics: ServerMetrics
    private let condition = NSCondition()
    private var waiting: [Running] = []
    private var cancelled = Set<Int>()
    private var nextID = 0
    private var stopped = false
    // Worker-thread state: the running sequences, the KV caches kept for reuse, one step's tokens and states.
    private var running: [Running] = []
    private var freeStates: [DecodingState] = []
    private var stepTokens: [Int32] = []
    private var stepStates: [DecodingState] = []
    private var stepRows: [Running] = []

    public init(name: String, model: Sequential, options: ServerOptions, metrics: ServerMetrics) throws {
        self.name = name
        decoder = try IncrementalDecoder(model: model)
        maxSequences = max(1, min(options.maxBatch, decoder.context))
        maxQueue = options.maxQueue
        self.metrics = metrics
        running.reserveCapacity(maxSequences)
        freeStates.reserveCapacity(maxSequences)
        stepTokens.reserveCapacity(maxSequences)
        stepStates.reserveCapacity(maxSequences)
        stepRows.reserveCapacity(maxSequences)
        waiting.reserveCapacity(maxQueue)
        let thread = Thread { [unowned self] in self.serve() }
        thread.name = "distrain-serve-\(name)"
        thread.start()
    }

    public var context: Int { decoder.context }
    public var vocabularySize: Int { decoder.vocabularySize }

    /// Queues a completion of `prompt` (1 … context − maxTokens tokens); its tokens arrive on the stream as they
    /// are drawn. Throws a 503 problem when `maxQueue` requests already wait. Ending the stream's iteration
    /// (a client that left) cancels the generation at the next step.
    public func submit(prompt: [Int32], maxTokens: Int, sampling: SamplingSettings,
                       stopTokens: Set<Int32>) throws -> (id: Int, events: AsyncStream<Event>) {
        precondition(!prompt.isEmpty && maxTokens >= 1 && prompt.count + maxTokens <= context, "a prompt that fits")
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .unbounded)
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { throw HTTPProblem(503, "the server is shutting down; retry on another replica") }
        guard waiting.count < maxQueue else {
            metrics.rejected(model: name)
            throw HTTPProblem(503, "model '\(name)' has \(maxQueue) completions waiting (--max-queue); retry after a second",
                              headers: [("Retry-After", "1")])
        }
        nextID += 1
        let id = nextID
        let sampler = Sampler(settings: sampling, vocabularySize: vocabularySize)
        waiting.append(Running(id: id, prompt: prompt, maxTokens: maxTokens, stopTokens: stopTokens, sampler: sampler,
                               events: continuation))
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(id) }
        }
        metrics.setQueueDepth(model: name, waiting.count)
        condition.signal()
        return (id, stream)
    }

    /// Stops a completion at the next step (its stream ends with `.finished(.cancelled)`).
    public func cancel(_ id: Int) {
        condition.lock()
        cancelled.insert(id)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once every queued and running completion is done.
    public func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func serve() {
        while let admitted = admit() {
            step()
            running.removeAll { $0.state == nil }
            for sequence in admitted { prefill(sequence) }
            metrics.setRunningSequences(model: name, running.count)
        }
    }

    /// Waits for work; drops cancelled sequences; moves waiting requests into free places. Nil: stopped and idle.
    private func admit() -> [Running]? {
        condition.lock()
        defer { condition.unlock() }
        while running.isEmpty && waiting.isEmpty && !stopped { condition.wait() }
        if running.isEmpty && waiting.isEmpty { return nil }
        for sequence in running where cancelled.contains(sequence.id) { finish(sequence, .cancelled) }
        running.removeAll { $0.state == nil }
        // Cancellations of requests already finished (a stop text seen after the last token) are forgotten.
        if !cancelled.isEmpty {
            cancelled = cancelled.filter { id in waiting.contains { $0.id == id } || running.contains { $0.id == id } }
        }
        var admitted: [Running] = []
        while running.count + admitted.count < maxSequences && !waiting.isEmpty {
            let sequence = waiting.removeFirst()
            if cancelled.contains(sequence.id) {
                sequence.events.yield(.finished(.cancelled))
                sequence.events.finish()
                cancelled.remove(sequence.id)
                continue
            }
            sequence.state = freeStates.popLast() ?? DecodingState(capacity: decoder.context)
            admitted.append(sequence)
        }
        metrics.setQueueDepth(model: name, waiting.count)
        return admitted
    }

    /// The prompt in one pass over its positions, then its first token.
    private func prefill(_ sequence: Running) {
        sequence.state!.reset()
        let logits = sequence.prompt.withUnsafeBufferPointer { decoder.append($0, to: sequence.state!) }
        metrics.promptTokens(model: name, sequence.prompt.count)
        emit(sequence.sampler.draw(logits), for: sequence)
        if sequence.state != nil { running.append(sequence) }
    }

    /// One token for every running sequence: its last token in, the next one drawn.
    private func step() {
        stepTokens.removeAll(keepingCapacity: true)
        stepStates.removeAll(keepingCapacity: true)
        stepRows.removeAll(keepingCapacity: true)
        for sequence in running where sequence.state != nil {
            stepTokens.append(sequence.lastToken)
            stepStates.append(sequence.state!)
            stepRows.append(sequence)
        }
        guard !stepRows.isEmpty else { return }
        let started = Date()
        let logits = stepTokens.withUnsafeBufferPointer { decoder.step($0, states: stepStates) }
        for (row, sequence) in stepRows.enumerated() {
            emit(sequence.sampler.draw(logits + row * vocabularySize), for: sequence)
        }
        metrics.observeDecodeStep(model: name, sequences: stepRows.count, seconds: Date().timeIntervalSince(started))
    }

    private func emit(_ token: Int32, for sequence: Running) {
        sequence.generated += 1
        sequence.lastToken = token
        sequence.events.yield(.token(token))
        metrics.generatedTokens(model: name, 1)
        if sequence.stopTokens.contains(token) {
            finishLocked(sequence, .stop)
        } else if sequence.generated == sequence.maxTokens {
            finishLocked(sequence, .length)
        }
    }

    private func finishLocked(_ sequence: Running, _ reason: FinishReason) {
        condition.lock()
        finish(sequence, reason)
        condition.unlock()
    }

    /// Ends a sequence's stream and keeps its KV cache for the next request. Holds the lock.
    private func finish(_ sequence: Running, _ reason: FinishReason) {
        guard let state = sequence.state else { return }
        sequence.events.yield(.finished(reason))
        sequence.events.finish()
        sequence.state = nil
        cancelled.remove(sequence.id)
        freeStates.append(state)
        metrics.finishedCompletion(model: name, reason: reason.rawValue)
    }
}
