import CKernels
import DistrainKit
import DurableFiles
import ArgumentParser
import Foundation
import Training

/// `distrain supervise -- COMMAND…`: reruns a failed training job with `--resume auto`, as torchrun's
/// `--max-restarts`, optionally on the hosts of a hostfile that still answer.
///
/// A subcommand rather than a launch/ script: it parses the job's command line (checkpoint folder,
/// hostfile, rank count) and reads the checkpoint pointers with the same code as training, and its
/// refusals read like every other distrain error. It is not an MPI program: it runs beside mpirun.
struct SuperviseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervise",
        abstract: "Rerun a failed training job with --resume auto, up to --max-restarts times, on the hosts still reachable.",
        discussion: """
        COMMAND is the whole job (mpirun and its options, or distrain alone) and must name --checkpoint-dir:
        every restart appends --resume auto, so it continues from the newest checkpoint (exactly, also on a
        different number of ranks). With --hostfile, each (re)start probes the hostfile's hosts (--probe,
        {host} replaced) and runs on those that answer: the command's --hostfile and -n/-np are rewritten.
        It stops retrying when --give-up-after attempts in a row fail without writing a new checkpoint (a
        failure a restart cannot fix, e.g. at start-up), at the restart limit, and when it is itself
        stopped (SIGINT, SIGTERM: passed on to the job). Exit status: the job's last.
        Example: distrain supervise --max-restarts 3 --hostfile hosts -- \\
                   mpirun --hostfile hosts -n 6 distrain fashion-mnist --checkpoint-dir runs/x --epochs 20
        """)

    @Option(name: .customLong("max-restarts"), help: "Restarts after the first attempt (0: run once).")
    var maxRestarts = 3

    @Option(name: .customLong("give-up-after"), help: "Consecutive failed attempts without a new checkpoint before giving up.")
    var giveUpAfter = 2

    @Option(help: "A hostfile ('host slots=N' lines): restart on its hosts that answer --probe.")
    var hostfile: String?

    @Option(help: "Shell command that succeeds when {host} is up.")
    var probe = "ssh -o BatchMode=yes -o ConnectTimeout=5 {host} true"

    @Argument(parsing: .postTerminator, help: "The job: -- mpirun … distrain … --checkpoint-dir DIR …")
    var command: [String] = []

    /// The job's words without the leading "--".
    var job: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        if maxRestarts < 0 { throw ValidationError("--max-restarts must be 0 or more, got \(maxRestarts)") }
        if giveUpAfter < 1 { throw ValidationError("--give-up-after must be at least 1, got \(giveUpAfter)") }
        if job.isEmpty {
            throw ValidationError("give the job to supervise after --, e.g. -- mpirun -n 4 distrain fashion-mnist "
                + "--checkpoint-dir runs/x")
        }
        if value(after: ["--checkpoint-dir"]) == nil {
            throw ValidationError("the job names no --checkpoint-dir; supervise restarts with --resume auto, which continues from it")
        }
        let namesHosts = value(after: ["--hostfile", "-hostfile", "--machinefile", "-machinefile"]) != nil
        let namesRanks = value(after: ["-n", "-np", "--n", "--np"]) != nil
        if hostfile != nil && !(namesHosts && namesRanks) {
            throw ValidationError("with --hostfile, the job must be an mpirun with --hostfile and -n, which supervise rewrites "
                + "for the hosts that answer")
        }
    }

    /// The word after the first of `flags` in the job, or nil.
    private func value(after flags: [String], in words: [String]? = nil) -> String? {
        let words = words ?? job
        guard let index = words.firstIndex(where: { flags.contains($0) }), index + 1 < words.count else { return nil }
        return words[index + 1]
    }

    func run() throws {
        let checkpoints = value(after: ["--checkpoint-dir"])!
        SupervisorSignals.install()
        var words = job, restarts = 0, failuresWithoutProgress = 0
        while true {
            if let hostfile { words = try onReachableHosts(words, hostfile: hostfile, attempt: restarts) }
            let before = CheckpointWriter.pointer("latest", in: checkpoints)
            let started = monotonicSeconds()
            report(restarts == 0 ? "running: \(shellQuoted(words))" : "restart \(restarts) of \(maxRestarts): \(shellQuoted(words))")
            let status = try runJob(words)
            let seconds = monotonicSeconds() - started
            if status == 0 {
                report("the job finished" + (restarts == 0 ? "" : " after \(restarts) restart\(restarts == 1 ? "" : "s")"))
                return
            }
            let after = CheckpointWriter.pointer("latest", in: checkpoints)
            let progress = after != nil && after != before
            let written = progress ? " (written in this attempt)" : " (none written in this attempt)"
            report("attempt \(restarts + 1) failed (exit \(status) after \(format(seconds, 1)) s); latest checkpoint: "
                + "\(after ?? "none")\(written)")
            if let signal = SupervisorSignals.received {
                report("stopped by \(signal); not restarting")
                throw ExitCode(status)
            }
            if status == ExitCode.validationFailure.rawValue {
                report("not restarting: exit 64 is a usage error (a flag or input the job refused at start), which a restart "
                    + "cannot fix; see the job's message above")
                throw ExitCode(status)
            }
            failuresWithoutProgress = progress ? 0 : failuresWithoutProgress + 1
            if failuresWithoutProgress >= giveUpAfter {
                let attempts = "\(failuresWithoutProgress) attempt\(failuresWithoutProgress == 1 ? "" : "s")"
                report("giving up: \(attempts) in a row failed without writing a checkpoint, so restarting cannot help (a "
                    + "failure at start-up, or one that recurs before the next checkpoint); see the job's output above")
                throw ExitCode(status)
            }
            if restarts >= maxRestarts {
                report("giving up: the restart limit (--max-restarts \(maxRestarts)) is reached")
                throw ExitCode(status)
            }
            restarts += 1
            if !words.contains("--resume") { words += ["--resume", "auto"] }
        }
    }

    /// The hidden first argument under which distrain starts a job tied to its supervisor (`execTiedToParent`).
    static let trampoline = "__supervised-job"

    /// Becomes `words` (found on PATH) with SIGTERM set to arrive when the supervisor dies — even by SIGKILL, which
    /// it cannot pass on — so the job checkpoints and stops instead of running on as an orphan. Never returns.
    static func execTiedToParent(_ words: [String]) -> Never {
        if distrain_exit_with_parent(SIGTERM) != 0 {
            FileHandle.standardError.write(Data("distrain supervise: the supervisor is gone; not starting the job\n".utf8))
            Foundation.exit(1)
        }
        var arguments = words.map { strdup($0) } + [nil]
        execvp(words[0], &arguments)
        FileHandle.standardError.write(Data("distrain supervise: cannot start \(words[0]): \(String(cString: strerror(errno)))\n".utf8))
        Foundation.exit(127)
    }

    /// Runs the job, passing the supervisor's stop signals on; returns its exit status (128 + signal if killed).
    private func runJob(_ words: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = [Self.trampoline] + words
        do { try process.run() } catch {
            throw ValidationError("cannot start \(words[0]): \(error.localizedDescription)")
        }
        SupervisorSignals.child = process.processIdentifier
        process.waitUntilExit()
        SupervisorSignals.child = 0
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// The job's words with --hostfile pointing at the hosts of `hostfile` that answer the probe, and -n
    /// their slots; throws when none answers.
    private func onReachableHosts(_ words: [String], hostfile: String, attempt: Int) throws -> [String] {
        let hosts = try parseHostfile(hostfile)
        var reachable: [(name: String, slots: Int)] = [], lost: [String] = []
        for host in hosts {
            if probeSucceeds(host.name) { reachable.append(host) } else { lost.append(host.name) }
        }
        if reachable.isEmpty {
            report("giving up: no host of \(hostfile) answers the probe (\(probe))")
            throw ExitCode(69)
        }
        let slots = reachable.reduce(0) { $0 + $1.slots }
        let path = NSTemporaryDirectory() + "distrain-supervise-\(getpid())-\(attempt).hosts"
        try writeFileAtomically(reachable.map { "\($0.name) slots=\($0.slots)" }.joined(separator: "\n") + "\n", to: path)
        report("hosts answering: \(reachable.map { "\($0.name) (\($0.slots))" }.joined(separator: ", "))"
               + (lost.isEmpty ? "" : "; not answering: \(lost.joined(separator: ", "))") + " — \(slots) ranks")
        var rewritten = words
        for (index, word) in words.enumerated() where index + 1 < words.count {
            if ["--hostfile", "-hostfile", "--machinefile", "-machinefile"].contains(word) { rewritten[index + 1] = path }
            if ["-n", "-np", "--n", "--np"].contains(word) { rewritten[index + 1] = String(slots) }
        }
        return rewritten
    }

    private func probeSucceeds(_ host: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", probe.replacingOccurrences(of: "{host}", with: host)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    private func report(_ message: String) {
        FileHandle.standardError.write(Data("distrain supervise: \(message)\n".utf8))
    }
}

/// 'host slots=N' lines (comments and blank lines skipped; slots default 1), as Open MPI reads them.
func parseHostfile(_ path: String) throws -> [(name: String, slots: Int)] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ValidationError("cannot read the hostfile \(path)")
    }
    var hosts: [(name: String, slots: Int)] = []
    for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
            .map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        if line.isEmpty { continue }
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        var slots = 1
        for field in fields.dropFirst() where field.hasPrefix("slots=") {
            guard let value = Int(field.dropFirst(6)), value > 0 else {
                throw ValidationError("\(path) line \(number + 1): '\(field)' is not a positive slot count")
            }
            slots = value
        }
        hosts.append((String(fields[0]), slots))
    }
    if hosts.isEmpty { throw ValidationError("the hostfile \(path) names no host") }
    return hosts
}

/// The supervisor's SIGINT/SIGTERM: remembered (no restart after them) and passed on to the job.
enum SupervisorSignals {
    nonisolated(unsafe) static var child: pid_t = 0
    nonisolated(unsafe) static var number: Int32 = 0

    static var received: String? { number == 0 ? nil : (number == SIGINT ? "SIGINT" : "SIGTERM") }

    static func install() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { number in
                SupervisorSignals.number = number
                if SupervisorSignals.child > 0 { kill(SupervisorSignals.child, number) }
            }
        }
    }
}
