import ArgumentParser
import Collectives
import Foundation
import SafeTensors
import Training

/// `distrain evaluate --checkpoint DIR TOKENS`: a language model over every window of a token-shard folder's
/// val split, exact (each rank scores its share, the sums are reduced): loss, perplexity, accuracy, bits per byte.
func evaluateLanguageModel(checkpoint: String, directory: String, limit: Int?, batchSize: Int, json: Bool,
                           communicator: Communicator) throws {
    let (file, folder) = try readSavedModelFile(checkpoint, communicator: communicator)
    guard LanguageModelCheckpoint.holdsLanguageModel(file) else {
        throw ValidationError("\(folder) is not a language model (task \(recordedTask(file))); "
            + "\(directory) holds token shards, which only a language model reads")
    }
    let saved = try communicator.collectively { try LanguageModelCheckpoint(file: file) }
    let result = try saved.evaluate(directory: directory, limit: limit, batchSize: batchSize, communicator: communicator)
    guard communicator.isCoordinator else { return }
    let windows = result.sampleCount / Int64(saved.context)
    if json {
        let fields: [(String, JSONValue)] = [("checkpoint", .string(folder)), ("data", .string(directory)),
                                             ("split", .string("val")), ("windows", .integer(windows)),
                                             ("tokens", .integer(result.sampleCount))]
        print(JSONValue.object(fields + result.metrics.map { ($0.name, .number($0.value)) }).serialized)
    } else {
        let metrics = result.metrics.map { "\($0.name) \($0.isFraction ? format(100 * $0.value, 2) + "%" : format($0.value, 4))" }
        print("checkpoint \(folder) on \(directory)'s val split (\(windows) windows, \(result.sampleCount) tokens): "
            + metrics.joined(separator: "  "))
    }
    fflush(nil)
}

/// What a checkpoint's metadata says it was trained for, for errors: its task, or classification when it records classes.
func recordedTask(_ file: SafeTensorsFile) -> String {
    file.metadata["task"] ?? (file.metadata["classes"] != nil ? "classification" : "not recorded")
}
