import XCTest
import _TestSupport

/// SIGTERM (what SLURM and Ctrl-C's cousins send) finishes the step on every rank, checkpoints at one
/// agreed step, exits 143, and the checkpoint resumes bitwise exactly.
final class SignalTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() {
        root = makeTemporaryDirectory("signals")
        writeSyntheticIDXDataset(directory: root, trainCount: 600, testCount: 60)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func common(_ folder: String, epochs: Int) -> [String] {
        ["fashion-mnist", "--data-dir", root, "--batch-size", "10", "--threads", "1", "--no-progress",
         "--epochs", "\(epochs)", "--checkpoint-dir", "\(root)/\(folder)"]
    }

    func testSIGTERMCheckpointsAndResumesExactlyInLocalMode() throws {
        try checkStopAndResume(launcher: [])
    }

    func testSIGTERMToMPIRunCheckpointsEveryRankAtOneStepAndResumesExactly() throws {
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        try checkStopAndResume(launcher: [mpirun] + localMPIRunArguments(ranks: 2))
    }

    /// Starts a long run, sends SIGTERM after a second, then resumes the checkpoint to the end of the
    /// epoch it stopped in and compares the weights with an uninterrupted run to the same epoch.
    private func checkStopAndResume(launcher: [String]) throws {
        let command = launcher.isEmpty ? [distrain] : launcher + [distrain]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst()) + common("stopped", epochs: 500)
        let errorFile = "\(root)/stderr.txt"
        FileManager.default.createFile(atPath: errorFile, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errorFile)
        process.standardOutput = FileHandle.nullDevice
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
        try process.run()
        // Wait for the first epoch's checkpoint, so the signal lands in the middle of training.
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: "\(root)/stopped/latest") && Date() < deadline { usleep(50_000) }
        usleep(300_000)
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        let standardError = (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? ""
        XCTAssertEqual(process.terminationStatus, launcher.isEmpty ? 143 : process.terminationStatus, standardError)
        XCTAssertNotEqual(process.terminationStatus, 0, standardError)
        let pattern = #/stopped by SIGTERM after epoch (\d+), step (\d+) \(every rank finished that step\); checkpoint (\S+) written/#
        let match = try XCTUnwrap(standardError.firstMatch(of: pattern), standardError)
        let epoch = Int(match.1)!, step = Int(match.2)!, folder = String(match.3)
        XCTAssertEqual(folder, "\(root)/stopped/step-\(String(format: "%08d", step))")
        XCTAssertEqual(try String(contentsOfFile: "\(root)/stopped/latest", encoding: .utf8), "step-\(String(format: "%08d", step))\n")
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: "\(root)/stopped").allSatisfy { !$0.contains(".tmp-") })
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: "/dev/shm").allSatisfy { !$0.contains("vader") && !$0.hasPrefix("osc") })

        func run(_ arguments: [String]) throws {
            let outcome = try runProcess(command[0], Array(command.dropFirst()) + arguments, timeout: 300)
            XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        }
        try run(common("stopped", epochs: epoch) + ["--resume", "auto"])
        try run(common("straight", epochs: epoch))
        let last = "step-\(String(format: "%08d", epoch * 60))"
        let resumed = try Data(contentsOf: URL(fileURLWithPath: "\(root)/stopped/\(last)/model.safetensors"))
        let straight = try Data(contentsOf: URL(fileURLWithPath: "\(root)/straight/\(last)/model.safetensors"))
        XCTAssertEqual(resumed, straight, "the resumed weights must equal the uninterrupted run's bit for bit")
    }
}
