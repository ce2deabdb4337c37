import ArgumentParser
import Foundation
import Text

/// `distrain tokenize --tokenizer tok.json CORPUS… --out DIR`: a corpus as llm.c token shards.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode a corpus into llm.c token shards (train_*.bin, val_*.bin) with a manifest, streaming.",
        discussion: """
        Example: distrain tokenize --tokenizer kjv-4096.json data/kjv --out data/kjv-tokens
        Each document gets <|endoftext|> before it; whole documents go to the validation split (--val-fraction,
        chosen by --seed). Shards and the manifest are written atomically: an interrupted run leaves no half
        shard, and running the same command again finishes the job. Memory is bounded by a few chunks of text.
        """)

    @Option(help: "The tokenizer.json to encode with (distrain tokenizer train, or GPT-2's).")
    var tokenizer: String

    @Argument(help: "Text files, folders of them, or JSON Lines files with --field.")
    var corpus: [String]

    @Option(help: "The folder to write (created; refused if it holds anything but this same tokenization).")
    var out: String

    @Option(name: .customLong("shard-tokens"), help: "Tokens per shard file.")
    var shardTokens = 100_000_000

    @Option(name: .customLong("val-fraction"), help: "Share of documents held out for validation (0 for none).")
    var valFraction = 0.1

    @Option(help: "Chooses which documents are held out.")
    var seed: UInt64 = 0

    @OptionGroup var reading: CorpusReadingOptions

    func validate() throws {
        if corpus.isEmpty { throw ValidationError("give at least one corpus file or folder") }
        if !(1...Int(Int32.max)).contains(shardTokens) {
            throw ValidationError("--shard-tokens must be in 1...\(Int32.max) (the header's count is an int32)")
        }
        if !(valFraction >= 0 && valFraction < 1) { throw ValidationError("--val-fraction must be in [0, 1), got \(valFraction)") }
    }

    func run() throws {
        do {
            let loaded = try Tokenizer.load(path: tokenizer)
            let files = try CorpusFiles.expand(corpus)
            var options = TokenizationOptions(outputDirectory: out)
            options.shardTokens = shardTokens
            options.validationFraction = valFraction
            options.seed = seed
            options.threads = reading.threadCount
            options.corpus = reading.corpus
            let progress = TokenizeProgress(isTerminal: isatty(2) != 0)
            let manifest = try CorpusTokenization.run(files: files, tokenizer: loaded, options: options,
                                                      progress: progress.update)
            progress.finish()
            for split in ["train", "val"] {
                let shards = manifest.shards(split)
                guard !shards.isEmpty else { continue }
                let tokens = shards.reduce(0) { $0 + $1.tokens }, bytes = shards.reduce(0) { $0 + $1.textBytes }
                let documents = shards.reduce(0) { $0 + $1.documents }
                print("\(split): \(tokens) tokens in \(shards.count) shard\(shards.count == 1 ? "" : "s"), \(documents) "
                    + "documents, \(bytes) bytes of text (\(String(format: "%.2f", Double(bytes) / Double(max(tokens, 1)))) bytes/token)")
            }
            print("→ \(out)/\(TokenManifest.fileName)")
        } catch let error as TextError {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}

/// Progress of a tokenization on stderr: MB done, MB/s and the time left; rewritten on a terminal,
/// every 10% otherwise.
final class TokenizeProgress {
    private let isTerminal: Bool
    private var lastTenth = -1

    init(isTerminal: Bool) { self.isTerminal = isTerminal }

    func update(_ progress: TokenizationProgress) {
        let done = Double(progress.bytesRead) / 1e6, total = Double(max(progress.totalBytes, 1)) / 1e6
        let rate = done / max(progress.seconds, 1e-3)
        let left = rate > 0 ? max(total - done, 0) / rate : 0
        let line = String(format: "  %.1f of %.1f MB  %.1f MB/s  %d tokens  ETA %.0f s", done, total, rate,
                          progress.tokens, left)
        if isTerminal {
            FileHandle.standardError.write(Data(("\r" + line).utf8))
        } else if Int(min(done / total, 1) * 10) > lastTenth {
            lastTenth = Int(min(done / total, 1) * 10)
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    func finish() { if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) } }
}
