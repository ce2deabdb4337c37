import Foundation

/// What a finished child process did.
public struct ProcessOutcome {
    public var exitCode: Int32
    public var standardOutput: String
    public var standardError: String
    public var seconds: Double
    /// True when the deadline passed and the process was killed.
    public var timedOut: Bool
}

/// Runs `executable` with `arguments`, killing it after `timeout` seconds.
///
/// The child's environment is ours without OMPI_*, PMIX_* and OPAL_* variables (an MPI_Init in the
/// parent leaves them behind, and they make a child mpirun exit 1 silently), plus `extraEnvironment`.
public func runProcess(_ executable: String, _ arguments: [String], extraEnvironment: [String: String] = [:],
                       timeout: Double) throws -> ProcessOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment.filter { key, _ in
        !key.hasPrefix("OMPI_") && !key.hasPrefix("PMIX_") && !key.hasPrefix("OPAL_")
    }
    environment.merge(extraEnvironment) { $1 }
    process.environment = environment
    let outPipe = Pipe(), errPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    let start = Date()
    try process.run()
    // Drain both pipes concurrently so a chatty child never blocks on a full pipe.
    let collected = CollectedOutput()
    let group = DispatchGroup()
    for (index, pipe) in [outPipe, errPipe].enumerated() {
        group.enter()
        Thread.detachNewThread {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            collected.set(index, String(decoding: data, as: UTF8.self))
            group.leave()
        }
    }
    var timedOut = false
    while process.isRunning {
        if Date().timeIntervalSince(start) > timeout {
            timedOut = true
            process.terminate()
            Thread.sleep(forTimeInterval: 2)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            break
        }
        Thread.sleep(forTimeInterval: 0.05)
    }
    process.waitUntilExit()
    let seconds = Date().timeIntervalSince(start)
    _ = group.wait(timeout: .now() + 10)
    return ProcessOutcome(exitCode: process.terminationStatus, standardOutput: collected.get(0),
                          standardError: collected.get(1), seconds: seconds, timedOut: timedOut)
}

private final class CollectedOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var texts = ["", ""]
    func set(_ index: Int, _ text: String) { lock.lock(); texts[index] = text; lock.unlock() }
    func get(_ index: Int) -> String { lock.lock(); defer { lock.unlock() }; return texts[index] }
}

/// The directory holding the products `swift build`/`swift test` built (next to the .xctest bundle).
public var builtProductsDirectory: String {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    // On Linux argv[0] is the .xctest file itself; step up to its directory.
    while url.pathExtension == "xctest" || url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
    return url.path
}

/// Absolute path of a program on PATH, or nil.
public func findOnPath(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// mpirun arguments for `ranks` ranks on this one machine: root and oversubscription flags only when needed.
public func localMPIRunArguments(ranks: Int) -> [String] {
    var arguments = ["-n", "\(ranks)"]
    if getuid() == 0 { arguments.append("--allow-run-as-root") }
    let cores = ProcessInfo.processInfo.activeProcessorCount
    if ranks > cores { arguments.append("--oversubscribe") }
    // Single-node transports: faster start-up, no network probing.
    arguments += ["--mca", "pml", "ob1", "--mca", "btl", "self,vader"]
    return arguments
}
