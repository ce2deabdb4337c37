import ArgumentParser
import Collectives
import Foundation
import Training

/// `distrain bench --inference CHECKPOINT…`: forward passes of saved models (float or int8) on synthetic
/// inputs, at each batch size, the checkpoints taking turns within every repetition so that a noisy
/// machine slows all of them alike.
extension BenchCommand {
    func parsedInferenceBatchSizes() throws -> [Int] {
        try inferenceBatchSizes.split(separator: ",").map { text in
            guard let size = Int(text.trimmingCharacters(in: .whitespaces)), (1...65_536).contains(size) else {
                throw ValidationError("--inference-batch-sizes takes batch sizes in 1...65536 separated by commas, got '\(text)'")
            }
            return size
        }
    }

    func runInference(communicator: Communicator, threads: Int) throws {
        try runCollectively(communicator) {
            let models = try inference.map { try loadSavedModel($0, communicator: communicator) }
            if Set(models.map { $0.model.inputShape }).count > 1 {
                throw ValidationError("--inference checkpoints take different input shapes (\(models.map { $0.model.inputShape.map(String.init).joined(separator: "x") }.joined(separator: ", "))); compare models of one dataset")
            }
            let sizes = try parsedInferenceBatchSizes()
            var rates = [[[Double]]](repeating: [[Double]](repeating: [], count: sizes.count), count: models.count)
            for _ in 0..<repetitions {
                for (s, size) in sizes.enumerated() {
                    for (m, saved) in models.enumerated() { rates[m][s].append(imagesPerSecond(saved.model, batch: size)) }
                }
            }
            if communicator.isCoordinator { reportInference(models.map { ($0.folder, $0.model.isQuantized) }, sizes: sizes, rates: rates, threads: threads) }
        }
    }

    /// Images per second of evaluation-mode forward passes at `batch`: two untimed passes, then passes
    /// for at least 0.3 s (at least 3).
    private func imagesPerSecond(_ saved: CheckpointModel, batch: Int) -> Double {
        let model = saved.model
        model.reserve(batchCapacity: batch)
        var seed: UInt64 = 12345
        for i in 0..<(batch * model.inputCount) {  // inputs in [-1, 1), as normalized images
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            model.input[i] = Float(seed >> 40) / Float(1 << 23) - 1
        }
        for _ in 0..<2 { model.forward(batch: batch, context: .inference) }
        var passes = 0
        let start = monotonicSeconds()
        var elapsed = 0.0
        while passes < 3 || elapsed < 0.3 {
            model.forward(batch: batch, context: .inference)
            passes += 1
            elapsed = monotonicSeconds() - start
        }
        return Double(passes * batch) / elapsed
    }

    private func reportInference(_ models: [(folder: String, int8: Bool)], sizes: [Int], rates: [[[Double]]], threads: Int) {
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        if json {
            print(JSONValue.object([
                ("mode", .string("inference")), ("threads", .int(threads)), ("repetitions", .int(repetitions)),
                ("models", .array(models.enumerated().map { m, model in
                    .object([("checkpoint", .string(model.folder)), ("int8", .bool(model.int8)),
                             ("images_per_second", .object(sizes.enumerated().map { s, size in (String(size), .number(median(rates[m][s]))) }))])
                })),
            ]).serialized)
        } else {
            print("distrain bench --inference: \(threads) thread\(threads == 1 ? "" : "s"), median of \(repetitions) repetitions (images/s)")
            print("  " + "checkpoint".padding(toLength: 44, withPad: " ", startingAt: 0) + "kind  " + sizes.map { "batch \($0)".padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
            for (m, model) in models.enumerated() {
                let name = model.folder.count > 42 ? "…" + model.folder.suffix(41) : model.folder
                print("  " + name.padding(toLength: 44, withPad: " ", startingAt: 0) + (model.int8 ? "int8  " : "fp32  ")
                      + sizes.indices.map { grouped(median(rates[m][$0])).padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
            }
            if models.count == 2 {
                print("  second ÷ first: " + sizes.indices.map { "batch \(sizes[$0]) \(format(median(rates[1][$0]) / median(rates[0][$0]), 2))×" }.joined(separator: ", "))
            }
        }
        fflush(nil)
    }
}
