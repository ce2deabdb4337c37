import Foundation
import XCTest
import _TestSupport

/// `distrain serve` end to end: answers equal `distrain predict` and `distrain generate`; every bad request,
/// slow client and signal gets its documented answer.
final class ServeCommandTests: XCTestCase {
    private let distrain = builtProductsDirectory + "/distrain"
    private static var root = ""
    /// A small image classifier (checkpoint dir), a 16-token-context GPT and a 1024-context one slow enough to
    /// interrupt (about a millisecond per token in a debug build).
    private static var classifier = "", smallLM = "", longLM = ""

    override class func setUp() {
        super.setUp()
        let distrain = builtProductsDirectory + "/distrain"
        root = makeTemporaryDirectory("serve")
        writeSyntheticImageFolders(directory: root + "/images", trainCount: 60, testCount: 10)
        let trained = try? runProcess(distrain, ["train", root + "/images", "--epochs", "1", "--threads", "1", "--no-progress",
                                                 "--checkpoint-dir", root + "/classifier"], timeout: 120)
        XCTAssertEqual(trained?.exitCode, 0, trained?.standardError ?? "")
        classifier = root + "/classifier"
        smallLM = (try? trainTinyGPT(distrain, steps: 10))?.run ?? ""
        longLM = trainLongContextModel(distrain, root: root)
    }

    override class func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private static func trainLongContextModel(_ distrain: String, root: String) -> String {
        let corpus = root + "/corpus"
        try? FileManager.default.createDirectory(atPath: corpus, withIntermediateDirectories: true)
        let verses = ["In the beginning God created the heaven and the earth.", "And the earth was without form, and void.",
                      "And God said, Let there be light: and there was light.", "And God saw the light, that it was good."]
        for document in 0..<40 {
            writeBytes(Array((0..<40).map { verses[($0 + document) % 4] }.joined(separator: "\n").utf8), to: corpus + "/\(document).txt")
        }
        // 29 = the corpus' 28 characters and <|endoftext|>.
        var spec = "wte = Embedding(29, 384)\nwpe = PositionEmbedding(1024, 384)\n"
        for block in 0..<3 {
            spec += "h\(block)_attn = Residual(\n    LayerNorm(384)\n    CausalSelfAttention(384, 6)\n)\n"
            spec += "h\(block)_mlp = Residual(\n    LayerNorm(384)\n    Linear(384, 1536)\n    GELU(approximate='tanh')\n"
                + "    Linear(1536, 384)\n)\n"
        }
        spec += "ln_f = LayerNorm(384)\nlm_head = Linear(384, 29, bias=False, tied_to='wte')\n"
        writeBytes(Array(spec.utf8), to: root + "/long.spec")
        let trained = try? runProcess(distrain, ["train", corpus, "--tokenizer", "char", "--model", root + "/long.spec",
                                                 "--context", "1024", "--batch-size", "1", "--max-steps", "1", "--threads", "1",
                                                 "--no-progress", "--checkpoint-dir", root + "/long"], timeout: 300)
        XCTAssertEqual(trained?.exitCode, 0, trained?.standardError ?? "")
        return root + "/long"
    }

    /// A running server and its port.
    private func startServer(_ arguments: [String]) throws -> (server: BackgroundProcess, port: Int) {
        let server = try BackgroundProcess(distrain, ["serve", "--port", "0", "--threads", "1"] + arguments)
        XCTAssertTrue(server.waitForOutput("listening on", seconds: 60), server.standardError)
        let line = server.standardOutput.split(separator: "\n").first { $0.contains("listening on") } ?? ""
        let port = Int(line.split(separator: ":").last?.prefix { $0.isNumber } ?? "") ?? 0
        XCTAssertGreaterThan(port, 0, server.standardOutput)
        return (server, port)
    }

    private func stop(_ server: BackgroundProcess) {
        kill(server.process.processIdentifier, SIGTERM)
        XCTAssertTrue(server.waitForExit(seconds: 30))
        XCTAssertEqual(server.process.terminationStatus, 0, server.standardError)
    }

    func testPredictionsEqualDistrainPredictForJSONImagesAndUploads() throws {
        let pixels: [UInt8] = (0..<784).map { (index: Int) -> UInt8 in UInt8((index * 7 + (index / 28) * 13) % 256) }
        let png = pngFile(width: 28, height: 28, channels: 1, pixels: pixels)
        let image = Self.root + "/probe.png"
        writeBytes(png, to: image)
        let predicted = try runProcess(distrain, ["predict", "--checkpoint", Self.classifier, image, "--top-k", "10",
                                                  "--out", Self.root + "/probe.jsonl"], timeout: 60)
        XCTAssertEqual(predicted.exitCode, 0, predicted.standardError)
        let line = try String(contentsOfFile: Self.root + "/probe.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let expected = Self.classProbabilities(try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])
        XCTAssertEqual(expected.count, 10)

        let (server, port) = try startServer(["--checkpoint", "digits=" + Self.classifier])
        defer { stop(server) }
        let boundary = "distrain-test-boundary"
        let partHead = "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"probe.png\"\r\n"
            + "Content-Type: image/png\r\n\r\n"
        let multipart: [UInt8] = Array(partHead.utf8) + png + Array("\r\n--\(boundary)--\r\n".utf8)
        let instances: String = "{\"instances\": [[" + pixels.map { String($0) }.joined(separator: ",") + "]]}"
        let path = "/v1/models/digits/predict?top_k=10"
        let multipartType = "multipart/form-data; boundary=\(boundary)"
        let answers: [TestResponse?] = [
            httpRequest(port: port, "POST", path, json: instances),
            httpRequest(port: port, "POST", path, body: png, headers: ["Content-Type": "image/png"]),
            httpRequest(port: port, "POST", path, body: multipart, headers: ["Content-Type": multipartType]),
        ]
        for (form, answer) in zip(["json", "png", "multipart"], answers) {
            XCTAssertEqual(answer?.status, 200, "\(form): \(answer?.text ?? "no answer")")
            let prediction = ((answer?.json?["predictions"] as? [[String: Any]])?.first) ?? [:]
            let served = Self.classProbabilities(prediction)
            XCTAssertEqual(Set(served.keys), Set(expected.keys), form)
            for (name, probability) in expected { XCTAssertEqual(served[name] ?? -1, probability, accuracy: 1e-5, "\(form) \(name)") }
        }
        let models = httpRequest(port: port, "GET", "/v1/models")?.json?["data"] as? [[String: Any]]
        XCTAssertEqual(models?.first?["id"] as? String, "digits")
    }

    func testAnInt8CheckpointServesWhatPredictGives() throws {
        let quantized = try runProcess(distrain, ["quantize", "--checkpoint", Self.classifier, Self.root + "/images",
                                                  "--out", Self.root + "/int8", "--threads", "1"], timeout: 120)
        XCTAssertEqual(quantized.exitCode, 0, quantized.standardError)
        let pixels: [UInt8] = (0..<784).map { (index: Int) -> UInt8 in UInt8((index * 3 + (index / 28) * 11) % 256) }
        let image = Self.root + "/int8.png"
        writeBytes(pngFile(width: 28, height: 28, channels: 1, pixels: pixels), to: image)
        let predicted = try runProcess(distrain, ["predict", "--checkpoint", Self.root + "/int8", image, "--top-k", "10",
                                                  "--out", Self.root + "/int8.jsonl"], timeout: 60)
        XCTAssertEqual(predicted.exitCode, 0, predicted.standardError)
        let line = try String(contentsOfFile: Self.root + "/int8.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let expected = Self.classProbabilities(try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])
        let (server, port) = try startServer(["--checkpoint", "q=" + Self.root + "/int8"])
        defer { stop(server) }
        let answer = httpRequest(port: port, "POST", "/v1/models/q/predict?top_k=10", body: pngFile(width: 28, height: 28,
                                 channels: 1, pixels: pixels), headers: ["Content-Type": "image/png"])
        let served = Self.classProbabilities(((answer?.json?["predictions"] as? [[String: Any]])?.first) ?? [:])
        XCTAssertEqual(served.count, 10, answer?.text ?? "")
        for (name, probability) in expected { XCTAssertEqual(served[name] ?? -1, probability, accuracy: 1e-5, name) }
        let model = httpRequest(port: port, "GET", "/v1/models/q")?.json?["distrain"] as? [String: Any]
        XCTAssertEqual(model?["quantized"] as? Bool, true)
    }

    func testTestTimeFlipsEqualDistrainPredictsToo() throws {
        let pixels: [UInt8] = (0..<784).map { (index: Int) -> UInt8 in UInt8((index * 5 + (index % 28) * 9) % 256) }
        let image = Self.root + "/flip.png"
        writeBytes(pngFile(width: 28, height: 28, channels: 1, pixels: pixels), to: image)
        let predicted = try runProcess(distrain, ["predict", "--checkpoint", Self.classifier, image, "--top-k", "10", "--tta",
                                                  "flip", "--out", Self.root + "/flip.jsonl"], timeout: 60)
        XCTAssertEqual(predicted.exitCode, 0, predicted.standardError)
        let line = try String(contentsOfFile: Self.root + "/flip.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let expected = Self.classProbabilities(try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])
        let (server, port) = try startServer(["--checkpoint", Self.classifier, "--tta", "flip"])
        defer { stop(server) }
        let instances: String = "{\"instances\": [[" + pixels.map { String($0) }.joined(separator: ",") + "]], \"top_k\": 10}"
        let answer = httpRequest(port: port, "POST", "/v1/models/classifier/predict", json: instances)
        let served = Self.classProbabilities(((answer?.json?["predictions"] as? [[String: Any]])?.first) ?? [:])
        XCTAssertEqual(served.count, 10, answer?.text ?? "")
        for (name, probability) in expected { XCTAssertEqual(served[name] ?? -1, probability, accuracy: 1e-5, name) }
    }

    func testTableRegressionTakesRowsByColumnNameOrInOrderAndEqualsPredict() throws {
        var text = "a,b,target\n"
        for i in 0..<120 { text += "\(Double(i % 17) / 4),\(Double(i % 11) / 3),\(2 * Double(i % 17) / 4 - Double(i % 11) / 3 + 5)\n" }
        writeBytes(Array(text.utf8), to: Self.root + "/plane.csv")
        let trained = try runProcess(distrain, ["train", Self.root + "/plane.csv", "--label", "target", "--task", "regression",
                                                "--epochs", "5", "--threads", "1", "--no-progress", "--checkpoint-dir",
                                                Self.root + "/plane"], timeout: 120)
        XCTAssertEqual(trained.exitCode, 0, trained.standardError)
        writeBytes(Array("b,a\n1,2\n".utf8), to: Self.root + "/row.csv")
        let predicted = try runProcess(distrain, ["predict", "--checkpoint", Self.root + "/plane", Self.root + "/row.csv", "--out",
                                                  Self.root + "/row.jsonl"], timeout: 60)
        XCTAssertEqual(predicted.exitCode, 0, predicted.standardError)
        let line = try String(contentsOfFile: Self.root + "/row.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let top = (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["top"] as? [[String: Any]]
        let expected = try XCTUnwrap(top?.first?["probability"] as? Double)
        let (server, port) = try startServer(["--checkpoint", "plane=" + Self.root + "/plane"])
        defer { stop(server) }
        let answer = httpRequest(port: port, "POST", "/v1/models/plane/predict",
                                 json: "{\"instances\": [{\"b\": 1, \"a\": 2, \"note\": \"ignored\"}, [2, 1]]}")
        let predictions = answer?.json?["predictions"] as? [[String: Any]] ?? []
        XCTAssertEqual(predictions.count, 2, answer?.text ?? "")
        for prediction in predictions {
            let pair = (prediction["top"] as? [[String: Any]])?.first
            XCTAssertEqual(pair?["name"] as? String, "target")
            XCTAssertEqual(pair?["value"] as? Double ?? .nan, expected, accuracy: 1e-5 * max(1, abs(expected)))
        }
        let missing = httpRequest(port: port, "POST", "/v1/models/plane/predict", json: "{\"instances\": [{\"a\": 2}]}")
        XCTAssertEqual(missing?.status, 422)
        XCTAssertTrue(missing?.text.contains("no column 'b'") ?? false, missing?.text ?? "")
        let image = httpRequest(port: port, "POST", "/v1/models/plane/predict", body: [0x89, 0x50], headers: ["Content-Type": "image/png"])
        XCTAssertEqual(image?.status, 415)
        let models = httpRequest(port: port, "GET", "/v1/models/plane")?.json?["distrain"] as? [String: Any]
        XCTAssertEqual(models?["task"] as? String, "regression")
        XCTAssertEqual(models?["features"] as? [String], ["a", "b"])
    }

    private static func classProbabilities(_ object: [String: Any]) -> [String: Double] {
        let top = object["top"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: top.map { ($0["class"] as? String ?? "", ($0["probability"] as? Double) ?? -1) })
    }

    func testCompletionsEqualDistrainGenerateStreamedOrWhole() throws {
        let generated = try runProcess(distrain, ["generate", "--checkpoint", Self.smallLM, "--prompt", "And God",
                                                  "--max-new-tokens", "8", "--temperature", "0.8", "--seed", "7"], timeout: 60)
        XCTAssertEqual(generated.exitCode, 0, generated.standardError)
        let expected = String(generated.standardOutput.dropFirst("And God".count).dropLast())  // the trailing newline
        let (server, port) = try startServer(["--checkpoint", "kjv=" + Self.smallLM])
        defer { stop(server) }
        let request = "{\"model\": \"kjv\", \"prompt\": \"And God\", \"max_tokens\": 8, \"temperature\": 0.8, \"seed\": 7"
        let whole = httpRequest(port: port, "POST", "/v1/completions", json: request + "}")
        XCTAssertEqual(whole?.status, 200, whole?.text ?? "")
        let choice = (whole?.json?["choices"] as? [[String: Any]])?.first
        XCTAssertEqual(choice?["text"] as? String, expected)
        XCTAssertEqual((whole?.json?["usage"] as? [String: Any])?["prompt_tokens"] as? Int, 7)

        let streamed = httpRequest(port: port, "POST", "/v1/completions", json: request + ", \"stream\": true}")
        XCTAssertEqual(streamed?.headers["content-type"], "text/event-stream")
        let events = (streamed?.text ?? "").components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }
        XCTAssertEqual(events.last, "data: [DONE]")
        let texts = events.dropLast().compactMap { event -> String? in
            let object = try? JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any]
            return ((object?["choices"] as? [[String: Any]])?.first?["text"]) as? String
        }
        XCTAssertGreaterThan(texts.count, 2, "streamed in pieces")
        XCTAssertEqual(texts.joined(), expected)

        // Concurrent greedy requests are batched into shared decode steps and each still gets its own answer.
        let prompts = ["And", "In the", "God saw", "the earth"]
        let alone = prompts.map { prompt in
            httpRequest(port: port, "POST", "/v1/completions", json: "{\"prompt\": \"\(prompt)\", \"max_tokens\": 6, "
                + "\"temperature\": 0}")?.json?["choices"] as? [[String: Any]]
        }.map { $0?.first?["text"] as? String }
        let together = ConcurrentResults(count: prompts.count)
        DispatchQueue.concurrentPerform(iterations: prompts.count) { index in
            let answer = httpRequest(port: port, "POST", "/v1/completions", json: "{\"prompt\": \"\(prompts[index])\", "
                + "\"max_tokens\": 6, \"temperature\": 0}")
            together.set(index, ((answer?.json?["choices"] as? [[String: Any]])?.first?["text"]) as? String)
        }
        XCTAssertEqual(together.values, alone)
    }

    func testBadRequestsGetTheirStatusAndAOneLineReason() throws {
        let (server, port) = try startServer(["--checkpoint", "digits=" + Self.classifier, "--checkpoint", "kjv=" + Self.smallLM,
                                              "--max-body-mb", "0.01", "--max-tokens-limit", "8"])
        defer { stop(server) }
        let predict = "/v1/models/digits/predict"
        let longPrompt = "{\"model\": \"kjv\", \"prompt\": \"In the beginning God\", \"max_tokens\": 8}"
        let pngHeadOnly: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]
        let tooLarge = [UInt8](repeating: 32, count: 20_000)
        let cases: [(TestResponse?, Int, String)] = [
            (httpRequest(port: port, "POST", predict, json: "{\"instances\": [[1, 2]"), 400, "not valid JSON"),
            (httpRequest(port: port, "POST", predict, json: "{\"instances\": 3}"), 400, "\"instances\" is a number"),
            (httpRequest(port: port, "POST", predict, json: "{\"instances\": [[1, 2, 3]]}"), 422, "has 3 values"),
            (httpRequest(port: port, "POST", predict, json: "{\"instances\": [[true]]}"), 422, "holds a boolean"),
            (httpRequest(port: port, "POST", predict, body: pngHeadOnly, headers: ["Content-Type": "image/png"]), 422,
             "does not decode"),
            (httpRequest(port: port, "POST", predict, body: tooLarge), 413, "larger than"),
            (httpRequest(port: port, "POST", "/v1/models/nope/predict", json: "{}"), 404, "no model 'nope'"),
            (httpRequest(port: port, "GET", predict), 405, "takes POST"),
            (httpRequest(port: port, "GET", "/v2/whatever"), 404, "no endpoint"),
            (httpRequest(port: port, "POST", "/v1/completions", json: longPrompt), 400, "context is 16 tokens"),
            (httpRequest(port: port, "POST", "/v1/completions", json: "{\"model\": \"kjv\", \"max_tokens\": 9}"), 400,
             "\"max_tokens\" must be an integer in 1...8"),
            (httpRequest(port: port, "POST", "/v1/completions", json: "{\"model\": \"kjv\", \"temperature\": \"hot\"}"), 400,
             "\"temperature\" must be a number"),
            (httpRequest(port: port, "POST", "/v1/completions", json: "{\"model\": \"digits\"}"), 400, "not a language model"),
        ]
        for (index, (answer, status, reason)) in cases.enumerated() {
            XCTAssertEqual(answer?.status, status, "case \(index): \(answer?.text ?? "no answer")")
            let message = (answer?.json?["error"] as? [String: Any])?["message"] as? String ?? ""
            XCTAssertTrue(message.contains(reason), "case \(index): \(message)")
            XCTAssertFalse(message.contains("\n"), "one line")
        }
        // A chunked body with no declared length: refused as soon as it passes the limit, and the connection closed.
        let chunked = try XCTUnwrap(TestConnection(port: port))
        chunked.send(Array("POST \(predict) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        let piece = Array("1000\r\n".utf8) + [UInt8](repeating: 32, count: 4096) + Array("\r\n".utf8)
        for _ in 0..<4 { chunked.send(piece) }
        let refused = parseResponse(chunked.receive())
        XCTAssertEqual(refused?.status, 413, refused?.text ?? "no answer")
        XCTAssertTrue(chunked.closedByPeer(within: 5), "reads no further: the connection is closed")
        let metrics = httpRequest(port: port, "GET", "/metrics")?.text ?? ""
        XCTAssertTrue(metrics.contains("distrain_http_requests_total{endpoint=\"/v1/models/{name}/predict\",status=\"422\"} 3"),
                      metrics)
        XCTAssertEqual(httpRequest(port: port, "GET", "/healthz")?.status, 200)
    }

    func testSlowIdleAndDepartingClientsAreBoundedAndNeverDelayOthers() throws {
        let (server, port) = try startServer(["--checkpoint", "digits=" + Self.classifier, "--checkpoint", "long=" + Self.longLM,
                                              "--header-timeout", "1", "--body-timeout", "1", "--no-access-log"])
        defer { stop(server) }
        let before = server.residentKiB ?? 0
        // Slowloris: half a request head, one byte at a time; it is cut off while others are served at once.
        let slow = try XCTUnwrap(TestConnection(port: port))
        slow.send(Array("GET /healthz HTTP/1.1\r\nHo".utf8))
        let started = Date()
        XCTAssertEqual(httpRequest(port: port, "GET", "/healthz")?.status, 200)
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.5)
        slow.send(Array("s".utf8))
        XCTAssertTrue(slow.closedByPeer(within: 3), "a client that never finishes its head is closed")
        // A body that never completes.
        let trickle = try XCTUnwrap(TestConnection(port: port))
        trickle.send(Array("POST /v1/models/digits/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"in".utf8))
        XCTAssertTrue(trickle.closedByPeer(within: 3), "a body that never completes is closed")
        // 1,000 idle connections: others are still served, memory stays bounded, and the idle ones are closed.
        let idle = (0..<1000).compactMap { _ in TestConnection(port: port) }
        XCTAssertEqual(idle.count, 1000)
        XCTAssertEqual(httpRequest(port: port, "GET", "/v1/models")?.status, 200)
        let during = server.residentKiB ?? 0
        XCTAssertLessThan(during - before, 64 * 1024, "1,000 idle connections cost \(during - before) KiB")
        XCTAssertTrue(idle[999].closedByPeer(within: 4) && idle[0].closedByPeer(within: 1))
        // A client that leaves mid-stream: its generation stops at the next step, long before max_tokens.
        let leaving = try XCTUnwrap(TestConnection(port: port))
        let body = Array("{\"prompt\": \"And\", \"max_tokens\": 1000, \"stream\": true}".utf8)
        leaving.send(Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        XCTAssertFalse(leaving.receive().isEmpty, "the first event arrives")
        close(leaving.descriptor)
        var metrics = ""
        for _ in 0..<100 {
            metrics = httpRequest(port: port, "GET", "/metrics")?.text ?? ""
            if metrics.contains("finish_reason=\"cancelled\"} 1") { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertTrue(metrics.contains("distrain_completions_total{model=\"long\",finish_reason=\"cancelled\"} 1"), metrics)
        let generated = metrics.split(separator: "\n").first { $0.hasPrefix("distrain_generated_tokens_total{model=\"long\"}") }
        XCTAssertLessThan(Double(generated?.split(separator: " ").last ?? "") ?? 1000, 1000, "generation stopped early")
        XCTAssertLessThan((server.residentKiB ?? 0) - before, 128 * 1024)
    }

    func testSIGTERMFinishesInFlightStreamsAndAFullQueueAnswers503() throws {
        let (server, port) = try startServer(["--checkpoint", "long=" + Self.longLM, "--max-batch", "1", "--max-queue", "1"])
        let body = "{\"prompt\": \"And\", \"max_tokens\": 600, \"stream\": true, \"temperature\": 0}"
        let first = ConcurrentResults(count: 2)
        let group = DispatchGroup()
        // The first runs, the second waits in the queue: waited for on /metrics, not on a timer (a loaded CI host can
        // take longer than any fixed sleep to accept a connection).
        let gauges = ["distrain_running_sequences{model=\"long\"} 1", "distrain_queue_depth{model=\"long\"} 1"]
        for index in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                first.set(index, httpRequest(port: port, "POST", "/v1/completions", json: body)?.text)
                group.leave()
            }
            var shown = ""
            for _ in 0..<400 where !shown.contains(gauges[index]) {
                Thread.sleep(forTimeInterval: 0.025)
                shown = httpRequest(port: port, "GET", "/metrics")?.text ?? ""
            }
            XCTAssertTrue(shown.contains(gauges[index]), shown)
        }
        let refused = httpRequest(port: port, "POST", "/v1/completions", json: body)
        XCTAssertEqual(refused?.status, 503, refused?.text ?? "")
        XCTAssertEqual(refused?.headers["retry-after"], "1")
        kill(server.process.processIdentifier, SIGTERM)
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        for text in first.values { XCTAssertTrue(text?.hasSuffix("data: [DONE]\n\n") ?? false, "finished: \(text?.suffix(200) ?? "")") }
        XCTAssertTrue(server.waitForExit(seconds: 30))
        XCTAssertEqual(server.process.terminationStatus, 0, server.standardError)
        XCTAssertTrue(server.standardError.contains("SIGTERM"), server.standardError)
        XCTAssertNil(TestConnection(port: port), "no longer listening")
    }

    func testBeyondLoopbackNeedsAKeyAndTheKeyIsChecked() throws {
        let refused = try runProcess(distrain, ["serve", "--checkpoint", Self.classifier, "--host", "0.0.0.0"], timeout: 60)
        XCTAssertEqual(refused.exitCode, 64)
        XCTAssertTrue(refused.standardError.contains("--api-key"), refused.standardError)
        let (server, port) = try startServer(["--checkpoint", Self.classifier, "--host", "0.0.0.0", "--api-key", "s3cret"])
        defer { stop(server) }
        XCTAssertEqual(httpRequest(port: port, "GET", "/v1/models")?.status, 401)
        XCTAssertEqual(httpRequest(port: port, "GET", "/v1/models", headers: ["Authorization": "Bearer s3cre"])?.status, 401)
        XCTAssertEqual(httpRequest(port: port, "GET", "/v1/models", headers: ["Authorization": "Bearer s3cret"])?.status, 200)
        XCTAssertEqual(httpRequest(port: port, "GET", "/healthz")?.status, 200, "health checks need no key")
        let page = httpRequest(port: port, "GET", "/")
        XCTAssertTrue(page?.text.contains("/v1/completions") ?? false)
    }
}

private final class ConcurrentResults: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String?]
    init(count: Int) { stored = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: String?) { lock.lock(); stored[index] = value; lock.unlock() }
    var values: [String?] { lock.lock(); defer { lock.unlock() }; return stored }
}
