import Foundation
import Hummingbird
import Training

extension Endpoints {
    /// `POST /v1/models/NAME/predict`: JSON instances, a PNG/JPEG body, or a multipart upload → top-k classes
    /// with probabilities per sample (a regression: its value), as `distrain predict` computes them.
    func predict(_ request: Request, model: ServedModel, context: ServeContext) async throws -> Response {
        guard case let .classifier(name, batcher) = model else {
            throw HTTPProblem(400, "'\(model.name)' is a language model; send POST /v1/completions with \"model\": "
                + "\"\(model.name)\"")
        }
        let saved = batcher.saved, contentType = (request.headers[.contentType] ?? "").lowercased()
        var topK = 1
        if let text = request.uri.queryParameters.get("top_k") {
            guard let k = Int(text), k >= 1 else { throw HTTPProblem(400, "top_k must be an integer of at least 1, got '\(text)'") }
            topK = k
        }
        let body = try await self.body(request, context: context)
        let inputs: PredictionInputs
        if contentType.hasPrefix("multipart/form-data") {
            inputs = try PredictionInputs.images(try multipartFiles(body, contentType: contentType), model: saved,
                                                 maxInstances: batcher.maxBatch)
        } else if contentType.hasPrefix("image/") || contentType.hasPrefix("application/octet-stream") {
            inputs = try PredictionInputs.images([("the body", body)], model: saved, maxInstances: batcher.maxBatch)
        } else {
            // JSON whatever the declared type (as TensorFlow Serving): `curl -d` labels it a form.
            inputs = try PredictionInputs.json(try JSONReader.parse(body), model: saved, maxInstances: batcher.maxBatch)
        }
        topK = inputs.topK ?? topK
        let outputs = try await batcher.predict(inputs.samples, count: inputs.count)
        return Self.json(.object([("model", .string(name)), ("predictions", .array(
            predictions(outputs, count: inputs.count, saved: saved, topK: topK)))]))
    }

    /// Each sample's presentation by the model's objective: the top-k classes with probabilities (ties: lower
    /// index first, as `distrain predict`), or a regression's value.
    private func predictions(_ outputs: [Float], count: Int, saved: CheckpointModel, topK: Int) -> [JSONValue] {
        let objective = saved.objective, names = saved.targets.names, width = outputs.count / max(count, 1)
        let keys = objective.presentationKeys
        return outputs.withUnsafeBufferPointer { all in
            (0..<count).map { sample in
                .object([("top", .array(objective.present(all.baseAddress! + sample * width, names: names, topK: topK).map {
                    .object([(keys.name, .string($0.name)), (keys.value, .number(Double($0.value)))])
                }))])
            }
        }
    }
}
