import ArgumentParser
import Collectives
import Datasets

/// `--recipe NAME`: a named bundle of model and training flags, for the training commands. It is
/// expanded into its flags before parsing, placed right after the command word, so any flag given on
/// the command line — before or after `--recipe` — overrides the recipe's (the last value wins).
enum Recipe: String, CaseIterable, ExpressibleByArgument {
    /// The recommended Fashion-MNIST CNN within five minutes on two cores: the `cnn-bn` preset on two
    /// in-process ranks (its convolutions use one core each), 10 epochs of AdamW with a cosine schedule
    /// after a warm-up epoch (decoupled weight decay 0.05), label smoothing, batch 128, horizontal flips
    /// only (crops slowed convergence within this budget), and their test-time counterpart: evaluations
    /// average each image with its mirror image, after epochs 5 and 10 only (each costs two forward
    /// passes over the test set). Chosen on a validation split; BENCHMARKS.md has the runs behind each choice.
    case fast
    /// nanoGPT's CPU recipe model (`gpt-mini`) on the KJV text, character level, beating nanoGPT's full-validation
    /// loss (1.6235 nats/char after its 2,000 steps, 113–125 s on 2 cores) in under a minute: two in-process ranks,
    /// 1,650 steps of 12 × 64 tokens, AdamW lr 2e-3 (β2 0.99, decay 0.1 on matrices), 100 warm-up steps, cosine to
    /// 1e-4, clipping at 1 — nanoGPT's hyper-parameters with a shorter schedule and twice its rate (BENCHMARKS.md).
    /// Give the text and the tokenizer: `distrain train data/kjv --tokenizer char --recipe kjv-char`.
    case kjvChar = "kjv-char"

    var flags: [String] {
        switch self {
        case .kjvChar:
            return ["--model", "gpt-mini", "--local-ranks", "2", "--context", "64", "--batch-size", "12", "--max-steps",
                    "1650", "--optimizer", "adamw", "--lr", "2e-3", "--beta2", "0.99", "--weight-decay", "0.1",
                    "--schedule", "cosine", "--warmup-steps", "100", "--min-lr", "1e-4", "--clip-grad-norm", "1"]
        case .fast:
            return ["--model", "cnn-bn", "--local-ranks", "2", "--epochs", "10", "--batch-size", "128",
                "--optimizer", "adamw", "--lr", "3e-3",
                    "--weight-decay", "0.05", "--schedule", "cosine", "--warmup-epochs", "1", "--label-smoothing", "0.1",
                    "--augment-padding", "0",
                    "--tta", "flip", "--eval-every", "5"]
        }
    }

    /// The flags for this launch: under mpirun the ranks are mpirun's (-n), so `--local-ranks`, a
    /// local-mode choice, is left out rather than refused.
    func flags(underMPIRun: Bool) -> [String] {
        guard underMPIRun, let index = flags.firstIndex(of: "--local-ranks") else { return flags }
        var words = flags
        words.removeSubrange(index...(index + 1))
        return words
    }

    /// For `--help`: each recipe and its flags.
    static var help: String {
        "A named bundle of flags; flags given beside it override its own (under mpirun its --local-ranks is left out). "
            + allCases.map { "\($0.rawValue): \($0.flags.joined(separator: " "))" }.joined(separator: "; ")
    }

    /// The commands that train and so take a recipe (a sweep expands its training command itself).
    static func appliesTo(_ command: String) -> Bool {
        command == "train" || command == "lr-find" || DatasetRegistry.all.contains { $0.name == command }
    }

    /// `arguments` (without the program name) with `--recipe NAME` / `--recipe=NAME` replaced by the
    /// recipe's flags right after the command word; unchanged when there is none or the name is unknown
    /// (ArgumentParser then names the valid recipes).
    static func expanding(_ arguments: [String], underMPIRun: Bool = MPICommunicator.isLaunchedByMPIRun) -> [String] {
        guard let command = arguments.first, appliesTo(command) else { return arguments }
        return [command] + expandingFlags(Array(arguments.dropFirst()), underMPIRun: underMPIRun)
    }

    /// Training flags (no command word) with a known `--recipe NAME` / `--recipe=NAME` replaced by the
    /// recipe's flags in front, so the flags given override them. A sweep's training command, whose
    /// dataset may be a file, uses this directly.
    static func expandingFlags(_ flags: [String], underMPIRun: Bool = MPICommunicator.isLaunchedByMPIRun) -> [String] {
        var words = flags, recipe: Recipe?
        if let index = words.firstIndex(of: "--recipe"), index + 1 < words.count, let named = Recipe(rawValue: words[index + 1]) {
            recipe = named
            words.removeSubrange(index...(index + 1))
        } else if let index = words.firstIndex(where: { $0.hasPrefix("--recipe=") }),
                  let named = Recipe(rawValue: String(words[index].dropFirst("--recipe=".count))) {
            recipe = named
            words.remove(at: index)
        }
        guard let recipe else { return flags }
        return recipe.flags(underMPIRun: underMPIRun) + words
    }
}
