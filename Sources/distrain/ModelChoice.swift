import ArgumentParser
import Datasets
import Foundation
import Layers
import Training

/// `--model NAME|FILE`: a preset, or a model spec file read and checked for syntax before MPI starts.
struct ModelChoice {
    let preset: ModelName
    let file: ModelFile?
    /// A GPT preset (language models: its spec follows the data's vocabulary).
    var gpt: GPTPreset?

    /// Every preset's name.
    static let presetNames = (ModelName.allCases.map(\.rawValue) + GPTPreset.allCases.map(\.rawValue)).joined(separator: ", ")

    /// What `--model` takes, for help texts.
    static let help = "Model: a preset (\(presetNames); the GPTs on token data) or a model spec file (the body of an "
        + "nn.Sequential, one module per line; see README)."

    /// A usage error names the problem: an unknown preset that is no file, an unreadable or oversized
    /// file, or a spec line that does not parse.
    init(_ text: String) throws {
        if let gpt = GPTPreset(named: text) {
            preset = .mlp
            file = nil
            self.gpt = gpt
            return
        }
        if let preset = ModelName(rawValue: text) {
            self.preset = preset
            file = nil
            return
        }
        guard let bytes = try? readFileBytes(text) else {
            throw ValidationError("--model \(text) is neither a preset (\(Self.presetNames)) nor a readable model spec file")
        }
        guard bytes.count <= 1 << 20, let spec = String(validating: bytes, as: UTF8.self) else {
            throw ValidationError("--model \(text) is not a model spec: a spec is a UTF-8 text file of at most 1 MiB")
        }
        do { _ = try ModelSpec(parsing: spec, source: text) } catch { throw ValidationError("\(error)") }
        preset = .mlp
        file = ModelFile(path: text, text: spec)
    }

    /// The spec for inputs of `shape` and `classes` outputs, built; errors name the line (or the preset's layer).
    func build(inputShape shape: [Int], classes: Int) throws -> BuiltModel {
        var configuration = TrainingConfiguration(dataset: "", model: preset)
        configuration.modelFile = file
        return try configuration.modelSpec(inputShape: shape, classes: classes).build(inputShape: shape, classes: classes)
    }
}

/// "1x28x28" → [1, 28, 28], as a usage error when it is not three positive sizes.
func parseInputShape(_ text: String) throws -> [Int] {
    let parts = text.split(separator: "x").map { Int($0) }
    guard parts.count == 3, parts.allSatisfy({ ($0 ?? 0) > 0 && ($0 ?? 0) <= 4096 }) else {
        throw ValidationError("--input must be CxHxW with sizes in 1...4096, e.g. 1x28x28, got \(text)")
    }
    return parts.map { $0! }
}
