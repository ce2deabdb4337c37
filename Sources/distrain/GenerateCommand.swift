import ArgumentParser
import Collectives
import Foundation
import Generation
import Text
import Training

/// `distrain generate --checkpoint DIR --prompt TEXT`: text from a language model, streamed as it comes.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt with a trained language model (KV cache; tokens streamed to stdout).",
        discussion: """
        The checkpoint carries the tokenizer of the data it was trained on (else pass --tokenizer). A prompt longer \
        than the model's context keeps its last tokens (a warning says how many were dropped); past the context the \
        model sees the last context tokens, as nanoGPT's generate. Generation stops at <|endoftext|>.
        Example: distrain generate --checkpoint runs/kjv --prompt "In the beginning" --max-new-tokens 200 --top-k 40
        Under mpirun, rank 0 generates and the other ranks exit.
        """)

    @OptionGroup var checkpointOption: CheckpointOption
    var checkpoint: String { checkpointOption.checkpoint }

    @Option(help: "The text to continue (default: the end-of-text token alone, when the tokenizer has one).")
    var prompt: String?

    @Option(name: .customLong("max-new-tokens"), parsing: .unconditional, help: "Tokens to generate at most per sample.")
    var maxNewTokens = 200

    @Option(parsing: .unconditional, help: "Divides the logits before sampling; 0 is greedy.")
    var temperature = 0.8

    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Draw only from the k most likely tokens (1: greedy).")
    var topK: Int?

    @Option(name: .customLong("top-p"), parsing: .unconditional,
            help: "Draw only from the most likely tokens whose probabilities add up to p.")
    var topP = 1.0

    @Option(help: "Seed of the draws: the same seed, prompt and checkpoint give the same text.")
    var seed: UInt64 = 42

    @Option(name: .customLong("num-samples"), help: "Independent continuations of the prompt.")
    var numSamples = 1

    @Option(help: "A tokenizer.json to use instead of the one the checkpoint records.")
    var tokenizer: String?

    @OptionGroup var resources: ThreadOptions

    var sampling: SamplingSettings { SamplingSettings(temperature: temperature, topK: topK, topP: topP, seed: seed) }

    func validate() throws {
        if let problem = sampling.problem { throw ValidationError(problem) }
        if !(1...1_000_000).contains(maxNewTokens) {
            throw ValidationError("--max-new-tokens must be in 1...1000000, got \(maxNewTokens)")
        }
        if !(1...10_000).contains(numSamples) { throw ValidationError("--num-samples must be in 1...10000, got \(numSamples)") }
    }

    func run() throws {
        if let rank = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"], rank != "0" { return }
        let single = resources.makeSingleProcess()
        let saved: LanguageModelCheckpoint, tokenizer: Tokenizer, ids: [Int32]
        let generator: TextGenerator
        do {
            let (file, folder) = try readSavedModelFile(checkpoint, communicator: single)
            guard LanguageModelCheckpoint.holdsLanguageModel(file) else {
                throw ValidationError("\(folder) is not a language model (task \(recordedTask(file))); "
                    + "generate needs a checkpoint of a run on token data")
            }
            saved = try LanguageModelCheckpoint(file: file)
            tokenizer = try checkpointTokenizer(for: saved, folder: folder, override: self.tokenizer)
            ids = try promptIds(tokenizer, context: saved.context)
            generator = try TextGenerator(model: saved.model)
        } catch {
            printError("\(error)")
            throw ExitCode(error is ValidationError ? ExitCode.validationFailure.rawValue : 1)
        }
        let stops: Set<Int32> = tokenizer.endOfText.map { [$0] } ?? []
        for sample in 0..<numSamples {
            if sample > 0 { try writeStandardOutput("\n---\n") }
            if let prompt, !prompt.isEmpty { try writeStandardOutput(prompt) }  // the text continued, as nanoGPT's sample.py
            var sampler = Sampler(settings: sampling, vocabularySize: saved.vocabularySize, stream: UInt64(sample))
            let result = try generator.generate(prompt: ids, maxNewTokens: maxNewTokens, sampler: &sampler,
                                                stopTokens: stops) { token in
                if !stops.contains(token) { try writeStandardOutput(try tokenizer.decode([token])) }
                return true
            }
            try writeStandardOutput("\n")
            let ending = result.stoppedAtStopToken ? ", stopped at end-of-text" : ""
            FileHandle.standardError.write(Data(("distrain: \(result.tokens.count) tokens in "
                + "\(format(result.generationSeconds + result.promptSeconds, 2)) s (\(format(result.tokensPerSecond, 1)) "
                + "tokens/s after a \(ids.count)-token prompt in \(format(result.promptSeconds * 1000, 1)) ms)\(ending)\n").utf8))
        }
    }

    /// The prompt's ids, its last `context` when longer (with a warning).
    private func promptIds(_ tokenizer: Tokenizer, context: Int) throws -> [Int32] {
        var ids: [Int32]
        if let prompt, !prompt.isEmpty {
            ids = try tokenizer.encode(prompt)
        } else if let end = tokenizer.endOfText {
            ids = [end]
        } else {
            throw ValidationError("give --prompt: this tokenizer has no <|endoftext|> token to start from")
        }
        if ids.count > context {
            FileHandle.standardError.write(Data(("distrain: warning: the prompt is \(ids.count) tokens, the model's context "
                + "\(context); generating from its last \(context) (the first \(ids.count - context) dropped)\n").utf8))
            ids.removeFirst(ids.count - context)
        }
        return ids
    }
}

/// A language model's tokenizer: `override` (a tokenizer.json) or the one its checkpoint records; its
/// vocabulary must fit the model's.
func checkpointTokenizer(for saved: LanguageModelCheckpoint, folder: String, override path: String?) throws -> Tokenizer {
    let loaded: Tokenizer
    if let path {
        loaded = try Tokenizer.load(path: path)
    } else if let json = saved.tokenizerJSON {
        loaded = try Tokenizer.load(json: Data(json.utf8), source: "\(folder) (its tokenizer)")
    } else {
        throw ValidationError("\(folder) records no tokenizer (it predates distrain storing one); pass --tokenizer "
            + "with the tokenizer.json of the data it was trained on")
    }
    guard loaded.vocabularySize <= saved.vocabularySize else {
        throw ValidationError("the tokenizer has \(loaded.vocabularySize) tokens, the model only \(saved.vocabularySize); "
            + "give the tokenizer of the data it was trained on")
    }
    return loaded
}
