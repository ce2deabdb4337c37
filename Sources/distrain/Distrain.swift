import ArgumentParser
import Datasets
import Foundation
import Tensors

/// The `distrain` command: one subcommand per dataset (and tool).
@main
struct Distrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distrain",
        abstract: "Data-parallel neural-network training on CPUs with MPI and OpenBLAS.",
        discussion: """
        Run one process locally, or many under mpirun; --batch-size is always the GLOBAL batch.

        Examples:
          distrain fashion-mnist                                  # seed MLP, Adam 1e-3, batch 64, 10 epochs
          distrain fashion-mnist --model cnn --epochs 15 --schedule cosine
          mpirun -n 4 distrain fashion-mnist --batch-size 256 --metrics run.jsonl
          distrain download cifar10 && mpirun -n 4 distrain cifar10 --model lenet --optimizer sgd --lr 0.01 --momentum 0.9
          distrain mnist --data-dir ~/data/mnist --model lenet
          mpirun -n 4 distrain fashion-mnist --model cnn --checkpoint-dir runs/cnn      # stop any time, then:
          mpirun -n 4 distrain fashion-mnist --model cnn --checkpoint-dir runs/cnn --resume auto
          distrain evaluate --checkpoint runs/cnn fashion-mnist
        """,
        subcommands: [FashionMNISTCommand.self, MNISTCommand.self, CIFAR10Command.self, TrainCommand.self,
                      EvaluateCommand.self, PredictCommand.self, SummaryCommand.self, ExportCommand.self,
                      CompareCommand.self, LRFindCommand.self, SweepCommand.self, ReportCommand.self,
                      PruneCommand.self, QuantizeCommand.self, SuperviseCommand.self, DownloadCommand.self,
                      DoctorCommand.self, BenchCommand.self, TokenizerCommand.self, TokenizeCommand.self,
                      GenerateCommand.self, ServeCommand.self]
    )

    /// Catches a mistyped command or dataset before ArgumentParser does: it would complain about the
    /// first flag ("Unknown option '--epochs'") instead of the word that is wrong.
    static func main() {
        if CommandLine.arguments.count > 2 && CommandLine.arguments[1] == SuperviseCommand.trampoline {
            SuperviseCommand.execTiedToParent(Array(CommandLine.arguments.dropFirst(2)))
        }
        restartWithRecognizedBLASKernels()
        refuseArgumentsThatAreNotUTF8()
        let commands = configuration.subcommands.map { $0._commandName } + ["help"]
        if let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-"), !commands.contains(first) {
            let squeezed = first.lowercased().replacingOccurrences(of: "_", with: "").replacingOccurrences(of: "-", with: "")
            let suggestion = commands.first { $0.replacingOccurrences(of: "-", with: "") == squeezed }
            let hint = suggestion.map { " (did you mean '\($0)'?)" } ?? ""
            let others = commands.filter { name in !DatasetRegistry.all.contains { $0.name == name } }
            let message = "distrain: error: unknown command or dataset '\(first)'\(hint); datasets: \(DatasetRegistry.names); "
                + "commands: \(others.joined(separator: ", ")); see 'distrain --help'\n"
            FileHandle.standardError.write(Data(message.utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        run(Recipe.expanding(joiningNegativeValues(Array(CommandLine.arguments.dropFirst()))))
    }

    /// An argument whose bytes are not UTF-8 (a file name from another system) reaches Swift with U+FFFD in place of
    /// those bytes — a path that opens nothing, reported as "No such file". Said as what it is, before anything runs.
    private static func refuseArgumentsThatAreNotUTF8() {
        for index in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[index], String(validatingCString: raw) == nil else { continue }
            let shown = String(decoding: UnsafeRawBufferPointer(start: raw, count: strlen(raw)), as: UTF8.self)
            let message = "distrain: error: argument \(index) ('\(shown.prefix(80))') is not valid UTF-8; distrain reads "
                + "paths as UTF-8 — rename the file or folder (e.g. with convmv) and pass the new name\n"
            FileHandle.standardError.write(Data(message.utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
    }

    /// `--lr -0.1` as `--lr=-0.1`: a value that starts with a minus would otherwise be read as a flag ("Missing value
    /// for '--lr'"), where the option's own check names what is wrong with it. Up to a `--` (a sweep's command).
    static func joiningNegativeValues(_ arguments: [String]) -> [String] {
        var joined: [String] = [], index = 0
        let end = arguments.firstIndex(of: "--") ?? arguments.count
        while index < arguments.count {
            let word = arguments[index]
            if index + 1 < end, word.hasPrefix("--"), !word.contains("="), word != "--",
               let next = arguments[index + 1].first, next == "-", Double(arguments[index + 1]) != nil {
                joined.append(word + "=" + arguments[index + 1])
                index += 2
            } else {
                joined.append(word)
                index += 1
            }
        }
        return joined
    }

    /// OpenBLAS picks its kernels when the library loads, before `main`, from `OPENBLAS_CORETYPE` or its CPU
    /// table; on a CPU its table lacks it takes the SSE3 ones at a sixth of the speed. Then the process starts
    /// itself again (same pid, same arguments, before MPI is initialized) with the core type the CPU flags
    /// support. A user's own `OPENBLAS_CORETYPE` is always kept.
    private static func restartWithRecognizedBLASKernels() {
        guard getenv("OPENBLAS_CORETYPE") == nil, let core = BLAS.unrecognizedCPUCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")  // exec failed: carry on with the generic kernels
    }

    /// Every error line starts "distrain: error:", ArgumentParser's validation messages too ("Error: …").
    static func uniformPrefix(_ message: String) -> String {
        if message.hasPrefix("Error: ") { return "distrain: error: " + message.dropFirst("Error: ".count) }
        return message.hasPrefix("distrain: ") ? message : "distrain: error: " + message
    }

    /// ParsableCommand.main, except that an error's message goes to stderr in ONE write: under mpirun
    /// every rank reports it, and ArgumentParser's several small writes interleaved the ranks' copies
    /// character by character. Help and other clean exits keep ArgumentParser's own handling.
    static func run(_ arguments: [String]) {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            let message = fullMessage(for: error)  // empty: the command printed its own error (ExitCode)
            if !message.isEmpty { FileHandle.standardError.write(Data((uniformPrefix(message) + "\n").utf8)) }
            Foundation.exit(code.rawValue)
        }
        // Output lost to a full disk or a closed pipe must not end in exit 0: check the buffered stdout.
        if fflush(stdout) != 0 || ferror(stdout) != 0 {
            FileHandle.standardError.write(Data("distrain: error: cannot write the output: \(String(cString: strerror(errno)))\n".utf8))
            Foundation.exit(ExitCode.failure.rawValue)
        }
        Foundation.exit(ExitCode.success.rawValue)
    }
}
