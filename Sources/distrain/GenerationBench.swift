import ArgumentParser
import Foundation
import Generation
import Layers
import Tensors
import Training

/// `distrain bench --generate`: greedy generation at batch 1 from a random prompt with random weights, as
/// `../shared/reference/lm/gen_time.py` times nanoGPT's and Hugging Face's `generate`.
struct GenerationBenchOptions: ParsableArguments {
    @Flag(help: "Time text generation (batch 1, greedy, KV cache) of --model instead of training.")
    var generate = false

    @Option(name: .customLong("vocab-size"), help: ArgumentHelp("Language models: the vocabulary of the random model "
        + "(default: 65 characters for gpt-mini and gpt-char, GPT-2's 50,257 otherwise)."))
    var vocabulary: Int?

    @Option(help: ArgumentHelp("Language models: the context (default: the GPT preset's positions); with a spec file it "
        + "makes the spec a language model on token windows."))
    var context: Int?

    /// The vocabulary for `choice`.
    func vocabularySize(_ choice: ModelChoice) -> Int {
        vocabulary ?? ([GPTPreset.gptMini, .gptChar].contains(choice.gpt) ? 65 : 50_257)
    }

    /// What a training benchmark of `choice` trains on: token windows for a GPT preset, or a spec given --context.
    func tokenBenchmark(_ choice: ModelChoice) -> TokenBenchmark? {
        guard choice.gpt != nil || (choice.file != nil && context != nil) else { return nil }
        let positions = context ?? choice.gpt?.blockSize ?? 64
        return TokenBenchmark(vocabulary: vocabularySize(choice), context: positions, gpt: choice.gpt)
    }

    @Option(name: .customLong("prompt-tokens"), help: "--generate: random prompt tokens.")
    var promptTokens = 16

    @Option(name: .customLong("new-tokens"), help: "--generate: tokens generated per repetition.")
    var newTokens = 64

    func validate() throws {
        if let vocabulary, !(2...(1 << 24)).contains(vocabulary) { throw ValidationError("--vocab-size must be in 2...16777216") }
        if let context, !(1...65_536).contains(context) { throw ValidationError("--context must be in 1...65536") }
        guard generate else { return }
        if promptTokens < 1 || newTokens < 1 { throw ValidationError("--prompt-tokens and --new-tokens must be at least 1") }
    }

    /// Builds the random model, warms up, and prints tokens/s over `repetitions` timed generations.
    func run(model name: String, repetitions: Int, threads: Int, json: Bool) throws {
        let choice = try ModelChoice(name)
        let positions = context ?? choice.gpt?.blockSize ?? 1024, vocabularySize = self.vocabularySize(choice)
        guard promptTokens <= positions else { throw ValidationError("--prompt-tokens \(promptTokens) exceed the context \(positions)") }
        var configuration = TrainingConfiguration(dataset: "bench", model: choice.preset)
        configuration.gptPreset = choice.gpt
        configuration.modelFile = choice.file
        let model = try configuration.makeModel(inputShape: [positions], outputShape: [positions, vocabularySize])
        let generator = try TextGenerator(model: model)
        var random = SeededGenerator(seed: 0, keys: 0x4245_4E43)
        let prompt = (0..<promptTokens).map { _ in Int32(random.nextInt(below: vocabularySize)) }
        var sampler = Sampler(settings: SamplingSettings(temperature: 0), vocabularySize: vocabularySize)
        _ = generator.generate(prompt: prompt, maxNewTokens: 4, sampler: &sampler)
        var rates: [Double] = [], decodeRates: [Double] = []
        for _ in 0..<repetitions {
            let result = generator.generate(prompt: prompt, maxNewTokens: newTokens, sampler: &sampler)
            rates.append(Double(newTokens) / (result.promptSeconds + result.generationSeconds))
            decodeRates.append(result.tokensPerSecond)
        }
        let median = rates.sorted()[rates.count / 2], decode = decodeRates.sorted()[decodeRates.count / 2]
        // Decoding a token reads every weight once: the bytes it must move from memory.
        let weightBytes = Double(model.parameters.count * MemoryLayout<Float>.size)
        let bandwidth = decode * weightBytes / 1e9
        if json {
            print(JSONValue.object([("model", .string(name)), ("threads", .int(threads)), ("vocab_size", .int(vocabularySize)),
                                    ("context", .int(positions)), ("prompt_tokens", .int(promptTokens)), ("new_tokens", .int(newTokens)),
                                    ("tokens_per_second", .number(median)), ("decode_tokens_per_second", .number(decode)),
                                    ("tokens_per_second_all", .array(rates.map { .number($0) })),
                                    ("weight_bytes", .number(weightBytes)), ("weight_gb_per_second", .number(bandwidth))]).serialized)
        } else {
            print("\(name): \(model.parameters.count) parameters, greedy generation of \(newTokens) tokens after \(promptTokens), "
                + "\(threads) thread(s): \(format(median, 1)) tokens/s (median of \(repetitions); "
                + "\(rates.map { format($0, 1) }.joined(separator: ", "))), decoding alone \(format(decode, 1)) tokens/s = "
                + "\(format(bandwidth, 1)) GB/s of weights read")
        }
    }
}
