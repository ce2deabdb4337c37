import DistrainKit
import DurableFiles
import ArgumentParser
import Datasets
import Foundation
import Selection
import Training

/// `distrain sweep --out DIR [--trials N] -- DATASET [training flags with lists or ranges]`.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Grid or random search over any training flags; every trial an ordinary run in its own folder, ranked by validation.",
        discussion: """
        After --, a training command whose flag values may be lists (a grid) or low:high ranges (random
        search with --trials N, log-uniform for positive ranges):
          distrain sweep --out runs/sweep -- fashion-mnist --epochs 5 --lr 3e-4,1e-3,3e-3 --batch-size 64,256
          distrain sweep --out runs/rs --trials 8 -- fashion-mnist --lr 1e-4:1e-2 --batch-size 32,64,128
        Trials are ranked on the validation split (--val-split, 0.1 when not given), never on the test set.
        Under mpirun every trial uses all ranks (the same exact data parallelism as one run). A stopped
        sweep continues with --resume: finished trials are kept, an interrupted one resumes from its checkpoint.
        """)

    @Option(help: "The sweep's folder: trial-NNN/ per trial, summary.csv and summary.json.")
    var out: String

    @Option(help: "Random search: this many trials drawn from the lists and ranges (default: the whole grid).")
    var trials: Int?

    @Option(help: "Seed of the random search's draws.")
    var seed: UInt64 = 1

    @Flag(help: "Continue a stopped sweep in --out (same command).")
    var resume = false

    @Argument(parsing: .postTerminator, help: "The training command: DATASET then flags.")
    var command: [String] = []

    func validate() throws {
        if let trials, trials < 1 || trials > 10_000 { throw ValidationError("--trials must be between 1 and 10000, got \(trials)") }
        if out.isEmpty { throw ValidationError("--out needs a folder") }
        _ = try plannedTrials()
    }

    /// Every trial's parsed options and command line; any bad flag or value is a usage error naming it.
    func plannedTrials() throws -> (dataset: SweepData, trials: [Trial]) {
        let specification: SweepSpecification
        do { specification = try SweepSpecification(arguments: command) } catch { throw ValidationError("\(error)") }
        // The image-folder flags every trial shares.
        let fixedOptions = try? TrainOptions.parse(Recipe.expandingFlags(specification.fixed))
        let tokens = isTokenShardFolder(specification.dataset)
        let dataset: SweepData = tokens ? .tokens(specification.dataset)
            : .registered(try registeredDataset(specification.dataset,
                                                images: try fixedOptions?.dataLocation.imageOptions ?? SourceOptions()))
        for forbidden in ["--checkpoint-dir", "--metrics", "--resume", "--kfold"]
        where specification.fixed.contains(forbidden) || specification.swept.contains(where: { $0.flag == forbidden }) {
            throw ValidationError("sweep sets \(forbidden) for each trial itself; remove it from the training command")
        }
        if specification.swept.contains(where: { $0.flag == "--local-ranks" }) {
            throw ValidationError("sweep: every trial runs on the same ranks; give --local-ranks one value")
        }
        if specification.swept.isEmpty {
            throw ValidationError("sweep: no flag has several values; give one as a list (--lr 1e-3,3e-3) or a range with "
                + "--trials (--lr 1e-4:1e-2)")
        }
        // Token folders rank by their own val split; other data holds out a tenth of the training set unless told.
        let validation = tokens || specification.fixed.contains("--val-split")
            || specification.swept.contains { $0.flag == "--val-split" }
        let draws: [[(flag: String, value: String)]]
        do { draws = try specification.trials(randomTrials: trials, seed: seed) } catch { throw ValidationError("\(error)") }
        return (dataset, try draws.enumerated().map { index, draw in
            let arguments = specification.arguments(for: draw) + (validation ? [] : ["--val-split", "0.1"])
            // Parsed with the trial's own folder, so flags that need one (--checkpoint-every) check as in a run.
            let folder = ["--checkpoint-dir", "\(out)/trial-\(String(format: "%03d", index + 1))"]
            do {
                let parsed = try TokenTrainArguments.parse(Recipe.expandingFlags(Array(arguments.dropFirst()) + folder))
                return Trial(values: draw.map { "\($0.flag) \($0.value)" }.joined(separator: " "), arguments: arguments,
                             options: parsed.options, tokens: tokens ? parsed.tokens : nil)
            } catch {
                let words = TokenTrainArguments.helpMessage().split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," })
                let flags = Set(words.filter { $0.hasPrefix("--") }.map { String($0.split(separator: " ")[0]) })
                if let unknown = arguments.dropFirst().first(where: { $0.hasPrefix("--") && !flags.contains($0) }) {
                    throw ValidationError("sweep: \(unknown) is not a training flag")
                }
                let values = draw.map { "\($0.flag) \($0.value)" }.joined(separator: " ")
                throw ValidationError("sweep: trial '\(values)': \(TrainOptions.message(for: error))")
            }
        })
    }

    func run() throws {
        StopSignals.resumeHint = "the same sweep command plus --resume"
        let (dataset, planned) = try plannedTrials()
        let first = planned[0].options
        let session = try TrainingSession(threads: first.resources.threads, collectiveTimeout: first.collectiveTimeout,
                                          localRanks: first.localRanks, precision: first.precision)
        let lock = try session.lockOnCoordinator(out)
        defer { withExtendedLifetime(lock) {} }
        let start = Date()
        try session.run {
            var data: DatasetSplits?
            if case let .registered(registered) = dataset {
                data = try session.loadCollectively(registered, directory: try first.dataLocation.directory(for: registered))
            }
            var results: [TrialResult] = []
            for (index, trial) in planned.enumerated() {
                results.append(try session.runTrial(sweepTrial(index + 1, trial, dataset: dataset, data: data),
                                                    of: planned.count, out: out, resume: resume))
            }
            if session.communicator.isCoordinator { try summarize(results, seconds: Date().timeIntervalSince(start)) }
        }
    }

    /// One trial as the library runs it: its plan from its flags, its training (token folders: a token run).
    private func sweepTrial(_ number: Int, _ trial: Trial, dataset: SweepData, data: DatasetSplits?) -> SweepTrial {
        let commandLine = shellQuoted(runnableCommand(trial.arguments))
        return SweepTrial(number: number, values: trial.values, arguments: trial.arguments) { session in
            guard case let .tokens(directory) = dataset, let tokens = trial.tokens else {
                var plan = RunPlan(options: trial.options, configuration: trial.options.configuration(dataset: dataset.registered!))
                plan.commandLine = commandLine
                return (plan, { try session.train($0, data: data!) })
            }
            let run = try TokenRun(directory: directory, name: URL(fileURLWithPath: directory).lastPathComponent,
                                   options: trial.options, tokens: tokens, communicator: session.communicator,
                                   validationAsSelection: true)
            var plan = RunPlan(options: trial.options, configuration: run.configuration)
            plan.commandLine = commandLine
            return (plan, {
                try session.train($0, data: run.data, objective: run.objective, builtModel: run.builtModel,
                                  makeModel: { try run.makeModel(communicator: $0) })
            })
        }
    }

    /// A trial's command line as typed at the shell: a dataset file or folder needs `train` before it.
    private func runnableCommand(_ arguments: [String]) -> [String] {
        let named = arguments.first.map { name in DatasetRegistry.all.contains { $0.name == name } } ?? false
        return ["distrain"] + (named ? [] : ["train"]) + arguments
    }

    /// summary.csv and summary.json, the ranked table, and the winning command.
    private func summarize(_ results: [TrialResult], seconds: Double) throws {
        let ranked = try writeSweepSummary(results, out: out)
        let monitor = ranked.first?.monitor ?? "val_loss"
        print("\nsweep: \(results.count) trials in \(String(format: "%.1f", seconds)) s, ranked by best \(monitor) (validation; "
            + "the test set never ranks)")
        let headings = ["rank", "trial", "best \(monitor)", "epoch", "final val acc", "test acc", "seconds"]
        print(headings.joined(separator: "  ") + "  values")
        // Each cell padded to its heading (String(format:)'s %-11@ ignores the width on Linux).
        func row(_ cells: [String]) -> String {
            zip(cells, headings).map { $0.padding(toLength: max($0.count, $1.count) + 2, withPad: " ", startingAt: 0) }.joined()
        }
        func cell(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "—" }
        for (rank, r) in ranked.enumerated() {
            print(row(["\(rank + 1)", "\(r.trial)", cell(r.bestValue, "%.4f"), "\(r.bestEpoch)",
                       cell(r.finalValidationAccuracy.map { 100 * $0 }, "%.2f%%"), cell(r.testAccuracy.map { 100 * $0 }, "%.2f%%"),
                       String(format: "%.1f", r.seconds)])
                  + r.values + (r.status == "ok" ? "" : "  (\(r.status))"))
        }
        if let best = ranked.first, best.bestValue != nil {
            print("best: \(shellQuoted(runnableCommand(best.arguments)))")
        }
        print("wrote \(out)/summary.csv and \(out)/summary.json")
    }
}

/// A sweep trial: its swept values, command line and parsed flags (the token flags for a token-shard folder).
struct Trial {
    let values: String
    let arguments: [String]
    let options: TrainOptions
    let tokens: TokenDataOptions?
}

/// What a sweep trains on: a dataset by name or path, or a token-shard folder.
enum SweepData {
    case registered(RegisteredDataset)
    case tokens(String)

    var registered: RegisteredDataset? {
        if case let .registered(dataset) = self { return dataset }
        return nil
    }
}

/// The training flags and the language-model flags together, as `distrain train` takes them.
struct TokenTrainArguments: ParsableArguments {
    @OptionGroup var options: TrainOptions
    @OptionGroup var tokens: TokenDataOptions
}
