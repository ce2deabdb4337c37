import Foundation
import Generation
import Hummingbird
import Text
import Training

extension Endpoints {
    /// `POST /v1/completions` in OpenAI's format; with `"stream": true`, Server-Sent Events of text chunks, then
    /// `data: [DONE]`. A client that leaves mid-stream ends its generation at the next decode step.
    func complete(_ request: Request, context: ServeContext, entry: inout AccessLog.Entry) async throws -> Response {
        let body = try await self.body(request, context: context)
        let completion = try CompletionRequest(try JSONReader.parse(body), maxTokensLimit: options.maxTokensLimit)
        let (name, engine, tokenizer) = try languageModel(completion.model)
        entry.model = name
        let prompt = try completion.tokens(tokenizer: tokenizer, vocabularySize: engine.vocabularySize,
                                           context: engine.context)
        let stops: Set<Int32> = tokenizer.endOfText.map { [$0] } ?? []
        let (id, events) = try engine.submit(prompt: prompt, maxTokens: completion.maxTokens, sampling: completion.sampling,
                                             stopTokens: stops)
        entry.promptTokens = prompt.count
        let header = CompletionHeader(id: "cmpl-\(UUID().uuidString.lowercased())", created: Int64(Date().timeIntervalSince1970),
                                      model: name)
        let running = RunningCompletion(id: id, events: events, engine: engine, tokenizer: tokenizer, stopTokens: stops,
                                        stopTexts: completion.stop, header: header, promptTokens: prompt.count)
        guard completion.stream else {
            let (answer, generated) = await running.whole()
            entry.completionTokens = generated
            return Self.json(answer)
        }
        entry.streamed = true
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: running.streamed(logged: entry, metrics: metrics, log: log))
    }

    /// The language model a request names, or the only one served.
    private func languageModel(_ requested: String?) throws -> (String, CompletionEngine, Tokenizer) {
        let languageModels = order.compactMap { name -> (String, CompletionEngine, Tokenizer)? in
            if case let .languageModel(_, engine, tokenizer, _) = models[name]! { return (name, engine, tokenizer) }
            return nil
        }
        guard let requested else {
            guard languageModels.count == 1 else {
                throw HTTPProblem(400, languageModels.isEmpty ? "this server has no language model (it serves "
                    + "\(order.joined(separator: ", ")))" : "\"model\" is required: this server has the language models "
                    + languageModels.map(\.0).joined(separator: ", "))
            }
            return languageModels[0]
        }
        let served = try model(requested)
        guard case let .languageModel(name, engine, tokenizer, _) = served else {
            throw HTTPProblem(400, "'\(requested)' is not a language model; send its inputs to POST /v1/models/\(requested)/predict")
        }
        return (name, engine, tokenizer)
    }
}

/// The parts every completion response and chunk share.
struct CompletionHeader: Sendable {
    let id: String
    let created: Int64
    let model: String

    func object(choice: JSONValue, usage: (prompt: Int, completion: Int)?) -> JSONValue {
        var fields: [(String, JSONValue)] = [("id", .string(id)), ("object", .string("text_completion")),
                                             ("created", .integer(created)), ("model", .string(model)),
                                             ("choices", .array([choice]))]
        if let usage {
            fields.append(("usage", .object([("prompt_tokens", .integer(Int64(usage.prompt))),
                                             ("completion_tokens", .integer(Int64(usage.completion))),
                                             ("total_tokens", .integer(Int64(usage.prompt + usage.completion)))])))
        }
        return .object(fields)
    }

    /// One Server-Sent Event: `data: {...}` and a blank line.
    func chunk(text: String, finish: String?, usage: (Int, Int)? = nil) -> ByteBuffer {
        let choice = JSONValue.object([("text", .string(text)), ("index", .integer(0)), ("logprobs", .null),
                                       ("finish_reason", finish.map { .string($0) } ?? .null)])
        return ByteBuffer(string: "data: " + object(choice: choice, usage: usage).serialized + "\n\n")
    }
}

/// One submitted completion and what turns its tokens into text: the stop token, the stop strings, the
/// response's shared fields.
struct RunningCompletion: @unchecked Sendable {
    let id: Int
    let events: AsyncStream<CompletionEngine.Event>
    let engine: CompletionEngine
    let tokenizer: Tokenizer
    let stopTokens: Set<Int32>
    let stopTexts: [String]
    let header: CompletionHeader
    let promptTokens: Int

    /// The whole answer once generation ends, and the tokens generated.
    func whole() async -> (JSONValue, Int) {
        var assembler = TextAssembler(tokenizer: tokenizer, stops: stopTexts)
        var text = "", generated = 0, reason = CompletionEngine.FinishReason.length
        for await event in events {
            switch event {
            case let .token(token):
                generated += 1
                if !stopTokens.contains(token) { text += assembler.push(token) }
                if assembler.stopped { engine.cancel(id) }
            case let .finished(why): reason = why
            }
        }
        text += assembler.flush()
        let finish = assembler.stopped ? "stop" : reason.rawValue
        let choice = JSONValue.object([("text", .string(text)), ("index", .integer(0)), ("logprobs", .null),
                                       ("finish_reason", .string(finish))])
        return (header.object(choice: choice, usage: (promptTokens, generated)), generated)
    }

    /// Server-Sent Events as tokens come; the request is counted and logged when the stream ends. A failed
    /// write (the client left) cancels the generation.
    func streamed(logged: AccessLog.Entry, metrics: ServerMetrics, log: AccessLog) -> ResponseBody {
        let started = Date()
        return ResponseBody { writer in
            var generated = 0, status = 200
            defer {
                var final = logged
                final.completionTokens = generated
                final.status = status
                let seconds = Date().timeIntervalSince(started)
                metrics.record(endpoint: "/v1/completions", status: status, seconds: seconds)
                log.write(final, seconds: seconds)
            }
            do {
                if try await !writeEvents(&writer, generated: &generated) { status = 499; return }
                try await writer.finish(nil)
            } catch {
                engine.cancel(id)
                status = 499  // the client closed the connection (nginx's code): logged, never sent
                throw error
            }
        }
    }

    /// Writes each piece of text, the last chunk and `[DONE]`; false when the generation was cancelled.
    private func writeEvents(_ writer: inout any ResponseBodyWriter, generated: inout Int) async throws -> Bool {
        var assembler = TextAssembler(tokenizer: tokenizer, stops: stopTexts)
        var reason = CompletionEngine.FinishReason.length
        for await event in events {
            switch event {
            case let .token(token):
                generated += 1
                let text = stopTokens.contains(token) ? "" : assembler.push(token)
                if assembler.stopped { engine.cancel(id) }
                if !text.isEmpty { try await writer.write(header.chunk(text: text, finish: nil)) }
            case let .finished(why): reason = why
            }
        }
        if reason == .cancelled && !assembler.stopped { return false }
        let rest = assembler.flush()
        if !rest.isEmpty { try await writer.write(header.chunk(text: rest, finish: nil)) }
        try await writer.write(header.chunk(text: "", finish: assembler.stopped ? "stop" : reason.rawValue,
                                            usage: (promptTokens, generated)))
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        return true
    }
}
