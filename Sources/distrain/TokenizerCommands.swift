import ArgumentParser
import Foundation
import Text

extension SplitPattern: ExpressibleByArgument {}
extension DocumentSplitting: ExpressibleByArgument {}
extension InvalidUTF8Policy: ExpressibleByArgument {}

/// How to read a corpus: shared by `tokenizer train` and `tokenize`.
struct CorpusReadingOptions: ParsableArguments {
    @Option(help: "JSON Lines corpus: the string field holding each record's text (default: plain text files).")
    var field: String?

    @Option(name: .customLong("split-documents"),
            help: "What a document is: file (each file or record), blank-lines (blocks between blank lines), lines.")
    var splitDocuments: DocumentSplitting = .file

    @Option(name: .customLong("invalid-utf8"), help: "Bytes that are not UTF-8: error (stop, naming file and offset) or replace (U+FFFD).")
    var invalidUTF8: InvalidUTF8Policy = .error

    @Option(help: "Threads that tokenize (default: the cores of this host).")
    var threads: Int?

    func validate() throws {
        if let field, field.isEmpty { throw ValidationError("--field needs a field name, e.g. --field text") }
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be in 1...1024, got \(threads)") }
    }

    var corpus: CorpusOptions {
        CorpusOptions(jsonField: field, splitting: splitDocuments, invalidUTF8: invalidUTF8)
    }

    var threadCount: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }
}

/// `distrain tokenizer …`: train a tokenizer, or encode and decode with one.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train a byte-level BPE (or character-level) tokenizer, or encode and decode text with one.",
        subcommands: [TokenizerTrainCommand.self, TokenizerEncodeCommand.self, TokenizerDecodeCommand.self])
}

/// `distrain tokenizer train CORPUS… --vocab-size N --out tok.json`.
struct TokenizerTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Learn a byte-level BPE vocabulary (GPT-2's scheme) from text; writes a Hugging Face tokenizer.json.",
        discussion: """
        Example: distrain tokenizer train data/kjv --vocab-size 4096 --out kjv-4096.json
        The file loads with tokenizers.Tokenizer.from_file and encodes to the same ids distrain does.
        Ties between pairs of equal count merge the smaller (left id, right id) first: the result depends only
        on the text and the options, never on --threads.
        """)

    @Argument(help: "Text files, folders of them (walked recursively), or JSON Lines files with --field.")
    var corpus: [String]

    @Option(name: .customLong("vocab-size"), help: "Tokens in the vocabulary: 256 bytes + merges + special tokens.")
    var vocabSize = 4096

    @Option(help: "The tokenizer.json to write (refused if it exists).")
    var out: String

    @Option(help: "How text is cut before merging: gpt2, gpt4 (cl100k), none.")
    var pattern: SplitPattern = .gpt2

    @Option(name: .customLong("special"), help: "Special tokens (repeatable; default <|endoftext|>).")
    var special: [String] = []

    @Flag(help: "A character-level vocabulary (one id per character of the text, nanoGPT's shakespeare_char).")
    var char = false

    @OptionGroup var reading: CorpusReadingOptions

    func validate() throws {
        if corpus.isEmpty { throw ValidationError("give at least one corpus file or folder") }
        if !char && !(256...BPETrainer.maximumVocabularySize).contains(vocabSize) {
            throw ValidationError("--vocab-size must be in 257...\(BPETrainer.maximumVocabularySize), got \(vocabSize)")
        }
        if special.contains(where: { $0.isEmpty }) { throw ValidationError("--special needs a non-empty token") }
        if FileManager.default.fileExists(atPath: out) {
            throw ValidationError("--out \(out) exists; distrain does not replace it: choose another name or move it")
        }
    }

    func run() throws {
        do {
            let files = try CorpusFiles.expand(corpus)
            var options = TokenizerTrainingOptions()
            options.vocabularySize = vocabSize
            options.pattern = pattern
            options.specialTokens = special.isEmpty ? ["<|endoftext|>"] : special
            options.characterLevel = char
            options.threads = reading.threadCount
            options.corpus = reading.corpus
            let started = Date()
            let tokenizer = try TokenizerTraining.train(files: files, options: options)
            let seconds = Date().timeIntervalSince(started)
            try tokenizer.write(to: out)
            print("\(tokenizer.kind.rawValue) tokenizer: \(tokenizer.vocabularySize) tokens "
                + "(\(tokenizer.mergeRules.count) merges, \(tokenizer.specialTokens.count) special) from \(files.count) "
                + "file\(files.count == 1 ? "" : "s") in \(String(format: "%.2f", seconds)) s → \(out)")
        } catch let error as TextError {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}

/// `distrain tokenizer encode --tokenizer tok.json FILE`: the ids of a file's text, one line of numbers.
struct TokenizerEncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Print the token ids of a text file (or - for stdin), space-separated.")

    @Option(help: "A tokenizer.json (distrain's, GPT-2's, or any byte-level BPE).")
    var tokenizer: String

    @Argument(help: "The text file to encode, or - for standard input.")
    var file: String

    @Option(name: .customLong("invalid-utf8"), help: "error or replace.")
    var invalidUTF8: InvalidUTF8Policy = .error

    func run() throws {
        do {
            let loaded = try Tokenizer.load(path: tokenizer)
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try readSmallFile(file)
            let ids = try data.withUnsafeBytes { raw -> [Int32] in
                let bytes = raw.bindMemory(to: UInt8.self)
                var ids: [Int32] = []
                if let bad = UTF8Validation.firstInvalidOffset(bytes) {
                    guard invalidUTF8 == .replace else { throw TextError.invalidUTF8(path: file, offset: bad) }
                    var repaired = UTF8Validation.replacingInvalid(bytes)
                    try repaired.withUnsafeMutableBufferPointer {
                        try loaded.makeEncoder().encode(UnsafeBufferPointer($0), appendingTo: &ids)
                    }
                } else {
                    try loaded.makeEncoder().encode(bytes, appendingTo: &ids)
                }
                return ids
            }
            try writeStandardOutput(ids.map(String.init).joined(separator: " ") + "\n")
        } catch let error as TextError {
            printError("\(error)")
            throw ExitCode.failure
        }
    }

    private func readSmallFile(_ path: String) throws -> Data {
        let files = try CorpusFiles.expand([path])
        guard files == [path], let data = FileManager.default.contents(atPath: path) else {
            throw TextError.unreadable(path: path, reason: "give one text file")
        }
        return data
    }
}

/// `distrain tokenizer decode --tokenizer tok.json ID…`: the text of token ids.
struct TokenizerDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Print the text that token ids stand for (ids as arguments or on stdin).")

    @Option(help: "A tokenizer.json.")
    var tokenizer: String

    @Argument(help: "Token ids (default: read from standard input, separated by white space).")
    var ids: [String] = []

    func run() throws {
        do {
            let loaded = try Tokenizer.load(path: tokenizer)
            let words = ids.isEmpty
                ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(),
                    as: UTF8.self).split(whereSeparator: \.isWhitespace).map(String.init)
                : ids
            let numbers = try words.map { word -> Int32 in
                guard let id = Int32(word) else { throw ValidationError("'\(word.prefix(20))' is not a token id") }
                return id
            }
            let bytes = try loaded.decode(numbers)
            try writeStandardOutput(bytes)
        } catch let error as TextError {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}

/// Writes to stdout and fails (exit 1 with the reason) when the write does not complete: a full disk or
/// a closed pipe must not end in exit 0 with the output lost.
func writeStandardOutput(_ text: String) throws { try writeStandardOutput(Array(text.utf8)) }

/// Writes bytes to stdout, failing as `writeStandardOutput(_: String)` does.
func writeStandardOutput(_ bytes: [UInt8]) throws {
    fflush(stdout)
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + written, bytes.count - written) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else {
            printError("cannot write the output: \(String(cString: strerror(errno)))")
            throw ExitCode.failure
        }
        written += n
    }
}
