import ArgumentParser
import Collectives
import DistrainKit
import Foundation
import Layers
import SafeTensors
import Training

/// `distrain summary --model FILE --input 1x28x28`: the model's table without training.
struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Print a model's layers, output shapes, parameters and share of the FLOPs for an input shape, without training.",
        discussion: "Examples: distrain summary --model my.spec --input 1x28x28 --classes 10\n"
            + "  distrain summary --model gpt2 --vocab-size 50257 --context 1024")

    @Option(help: ArgumentHelp(stringLiteral: ModelChoice.help))
    var model: String

    @Option(help: "Per-sample input shape CxHxW.")
    var input = "1x28x28"

    @Option(help: "Classes the model must end with.")
    var classes = 10

    @Option(name: .customLong("vocab-size"), help: "GPT presets: the vocabulary (GPT-2's is 50257).")
    var vocabSize = 50257

    @Option(help: "GPT presets: positions per window (default: the preset's longest).")
    var context: Int?

    @OptionGroup var memory: MemoryPlanOptions

    func validate() throws {
        _ = try ModelChoice(model)
        _ = try parseInputShape(input)
        if classes < 2 || classes > 100_000 { throw ValidationError("--classes must be between 2 and 100000, got \(classes)") }
        if !(2...1_000_000).contains(vocabSize) { throw ValidationError("--vocab-size must be in 2...1000000, got \(vocabSize)") }
        if let context, context < 1 { throw ValidationError("--context must be at least 1, got \(context)") }
    }

    func run() throws {
        let choice = try ModelChoice(model)
        if let gpt = choice.gpt { return try summarize(gpt) }
        let shape = try parseInputShape(input)
        do {
            let built = try choice.build(inputShape: shape, classes: classes)
            print("\(model) on \(input) inputs, \(classes) classes")
            print(built.summary(inputShape: shape))
            printMemory(built, inputCount: shape.reduce(1, *), positions: 1)
        } catch {
            printError("\(error)")
            throw ExitCode.validationFailure
        }
    }
}

extension SummaryCommand {
    /// A GPT preset's table for the vocabulary and context, with its training FLOPs per token.
    private func summarize(_ gpt: GPTPreset) throws {
        let t = context ?? gpt.blockSize
        guard t <= gpt.blockSize else {
            printError("--context \(t) is longer than \(gpt.rawValue)'s \(gpt.blockSize) positions")
            throw ExitCode(64)
        }
        do {
            let built = try ModelSpec(parsing: gpt.spec(vocabulary: vocabSize), source: "preset \(gpt.rawValue)")
                .build(inputShape: [t], outputShape: [t, vocabSize])
            print("\(gpt.rawValue): \(gpt.layers) layers, \(gpt.heads) heads, \(gpt.width) wide, vocabulary \(vocabSize), "
                + "context \(t)")
            print(built.summary(inputShape: [t]))
            let flops = gpt.trainingFlopsPerToken(vocabulary: vocabSize, context: t)
            print("\(built.parameterCount.formatted()) parameters (the head shares the token table); training "
                + "FLOPs per token 6N + 6·L·C·T = \(String(format: "%.3g", flops))")
            printMemory(built, inputCount: t, positions: t)
        } catch {
            printError("\(error)")
            throw ExitCode.validationFailure
        }
    }
}

/// `distrain export --pytorch CHECKPOINT`: Python that rebuilds the checkpoint's model in PyTorch.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Print Python source that binds `model` to the torch.nn module a checkpoint's weights load into strictly.",
        discussion: """
        Example: distrain export --pytorch runs/cnn > model.py, then in Python:
          exec(open("model.py").read()); model.load_state_dict(load_file("runs/cnn/step-.../model.safetensors"), strict=True)
        """)

    @Option(help: "A checkpoint folder, or a --checkpoint-dir (its best).")
    var pytorch: String

    func run() throws {
        do {
            let (file, folder) = try readSavedModelFile(pytorch, communicator: InProcessCommunicator.single())
            if LanguageModelCheckpoint.holdsLanguageModel(file) {
                let saved = try LanguageModelCheckpoint(file: file)
                try writeStandardOutput(nanoGPTExportSource(saved, layout: try GPTLayout(saved.built.layers), folder: folder))
                return
            }
            let saved = try CheckpointModel(file: file)
            if saved.isQuantized {
                throw ValidationError("\(folder) is an int8 model (distrain quantize), which nn.Linear and nn.Conv2d "
                    + "cannot load; export the float checkpoint it came from")
            }
            let shape = saved.inputShape.map(String.init).joined(separator: "x")
            let flip = saved.testTimeAugmentation == .flip
                ? "\n# Trained with --tta flip: distrain scores (model(x) + model(x.flip(-1))) / 2, the logits of x "
                    + "and its mirror image." : ""
            print("""
            # distrain export of \(pythonComment(folder)): \(pythonComment(saved.label)) on \(shape) inputs, \(saved.classCount) classes
            # Inputs: x = (pixels / 255 - mean[c]) / std[c] per channel c, with
            #   mean = \(saved.normalization.mean), std = \(saved.normalization.standardDeviation)
            # Load:  from safetensors.torch import load_file
            #        model.load_state_dict(load_file(\(pythonComment(pythonString(folder + "/" + CheckpointFile.model)))), strict=True)
            #        model.eval()\(flip)
            from collections import OrderedDict
            import torch.nn as nn

            \(saved.built.pytorchSource)
            """)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}

/// `text` as a Python string literal: everything that is not printable ASCII escaped, so a path holding a
/// quote or a newline can never end the literal (or the comment it is quoted in) and run as code.
func pythonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case " "..."~": out.unicodeScalars.append(scalar)
        default: out += scalar.value <= 0xFFFF ? String(format: "\\u%04x", scalar.value) : String(format: "\\U%08x", scalar.value)
        }
    }
    return out + "\""
}

/// `text` for a Python comment: line breaks and other control characters escaped, so it stays one comment line.
func pythonComment(_ text: String) -> String {
    String(text.unicodeScalars.map { scalar -> String in
        scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}"
            ? String(format: "\\x%02x", min(scalar.value, 0xFF)) : String(scalar)
    }.joined())
}

/// `summary --ranks N [--shard S] [--batch-size B] [--accumulate K] [--recompute] [--exact-sums] [--optimizer O]`: the
/// memory preflight's table for a run on N ranks of one host, printed without allocating anything.
struct MemoryPlanOptions: ParsableArguments {
    @Option(help: "Print what each rank would hold when training on this many ranks of one host (the memory preflight).")
    var ranks: Int?

    @Option(help: "With --ranks: the run's --shard.")
    var shard: ShardingStage?

    @Option(name: .customLong("batch-size"), help: "With --ranks: the run's global batch (default: 12 windows, 64 images).")
    var batchSize: Int?

    @Option(help: "With --ranks: the run's --accumulate.")
    var accumulate = 1

    @Option(help: "With --ranks: the run's optimizer (sgd counts no momentum state).")
    var optimizer: OptimizerKind = .adamw

    @Flag(help: "With --ranks: the run writes checkpoints (--checkpoint-dir): count writing one on rank 0.")
    var checkpoints = false

    @Flag(help: "With --ranks: the run's --recompute (the residual blocks' insides kept once).")
    var recompute = false

    @Flag(help: "With --ranks: the run's --exact-sums (32 bytes more per parameter).")
    var exactSums = false

    func validate() throws {
        if let ranks, !(1...1024).contains(ranks) { throw ValidationError("--ranks must be in 1...1024, got \(ranks)") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if !(1...4096).contains(accumulate) { throw ValidationError("--accumulate must be in 1...4096, got \(accumulate)") }
    }
}

extension SummaryCommand {
    /// The memory table for `--ranks`, when given.
    func printMemory(_ built: BuiltModel, inputCount: Int, positions: Int) {
        guard let ranks = memory.ranks else { return }
        let batch = memory.batchSize ?? (positions > 1 ? 12 : 64), share = (batch + ranks - 1) / ranks
        let micro = (share + memory.accumulate - 1) / memory.accumulate
        var configuration = TrainingConfiguration(dataset: "", globalBatchSize: batch)
        configuration.accumulationSteps = memory.accumulate
        let outputs = built.layers.last.map { $0.outputCount } ?? 1
        let evaluation = Trainer.evaluationBatchSize(configuration, share: share, micro: micro, positions: positions,
            outputsPerPosition: outputs / positions,
            bytesPerSample: Sequential.activationBytes(built.layers, inputCount: inputCount, batchCapacity: 1))
        let plan = MemoryPlan(layers: built.layers, inputCount: inputCount, optimizer: memory.optimizer, momentum: 0,
                              sharding: memory.shard, worldSize: ranks, localRanks: ranks, batch: max(micro, evaluation),
                              sharedMemoryRanks: ranks, writesCheckpoints: memory.checkpoints, recompute: memory.recompute,
                              exactSums: memory.exactSums)
        let micros = (memory.accumulate > 1 ? " in \(memory.accumulate) micro-batches" : "") + (memory.recompute ? ", --recompute" : "")
            + (memory.exactSums ? ", --exact-sums" : "")
        print("memory per rank on \(ranks) rank\(ranks == 1 ? "" : "s") of one host (global batch \(batch)\(micros)"
            + "\(memory.shard.map { ", --shard \($0.rawValue)" } ?? "")):")
        plan.table.forEach { print($0) }
        if let available = MemoryPlan.availableBytes() {
            print("  available on this host      \(available >> 20) MiB: \(plan.perHost <= available ? "fits" : "does not fit")")
        }
    }
}
