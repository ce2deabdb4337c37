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
        if !completion.stream {
            var assembler = TextAssembler(tokenizer: tokenizer, stops: completion.stop)
            var text = "", generated = 0, reason = CompletionEngine.FinishReason.length
            for await event in events {
                switch event {
                case let .token(token):
                    generated += 1
                    if !stops.contains(token) { text += assembler.push(token) }
                    if assembler.stopped { engine.cancel(id) }
                case let .finished(why): reason = why
                }
            }
            text += assembler.flush()
            entry.completionTokens = generated
            let finish = assembler.stopped ? "stop" : reason.rawValue
            return Self.json(header.object(choice: .object([("text", .string(text)), ("index", .integer(0)),
                ("logprobs", .null), ("finish_reason", .string(finish))]), usage: (prompt.count, generated)))
        }
        entry.streamed = true
        let logged = entry, started = Date(), metrics = self.metrics, log = self.log, stopTexts = completion.stop
        let response = ResponseBody { writer in
            var assembler = TextAssembler(tokenizer: tokenizer, stops: stopTexts)
            var generated = 0, reason = CompletionEngine.FinishReason.length, status = 200
            defer {
                var final = logged
                final.completionTokens = generated
                final.status = status
                let seconds = Date().timeIntervalSince(started)
                metrics.record(endpoint: "/v1/completions", status: status, seconds: seconds)
                log.write(final, seconds: seconds)
            }
            do {
                for await event in events {
                    switch event {
                    case let .token(token):
                        generated += 1
                        let text = stops.contains(token) ? "" : assembler.push(token)
                        if assembler.stopped { engine.cancel(id) }
                        if !text.isEmpty { try await writer.write(header.chunk(text: text, finish: nil)) }
                    case let .finished(why): reason = why
                    }
                }
                if reason == .cancelled && !assembler.stopped { status = 499; return }
                let rest = assembler.flush()
                if !rest.isEmpty { try await writer.write(header.chunk(text: rest, finish: nil)) }
                try await writer.write(header.chunk(text: "", finish: assembler.stopped ? "stop" : reason.rawValue,
                                                    usage: (prompt.count, generated)))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                engine.cancel(id)
                status = 499  // the client closed the connection (nginx's code): logged, never sent
                throw error
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: response)
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
