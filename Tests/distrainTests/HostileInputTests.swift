import XCTest
import _TestSupport

/// Bad input from the command line, one test per class: each ends in one clear line and a non-zero exit,
/// quickly, losing nothing.
final class HostileInputTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() {
        root = makeTemporaryDirectory("hostile")
        writeSyntheticIDXDataset(directory: root, trainCount: 120, testCount: 30)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func run(_ arguments: [String], timeout: Double = 60) throws -> ProcessOutcome {
        try runProcess(distrain, arguments, timeout: timeout)
    }

    private func train(_ extra: [String], dataDirectory: String? = nil) throws -> ProcessOutcome {
        try run(["fashion-mnist", "--data-dir", dataDirectory ?? root, "--epochs", "1", "--threads", "1", "--no-progress"] + extra)
    }

    func testAnUnknownDatasetNameSaysSoAndListsTheChoices() throws {
        let outcome = try run(["fashion_mnist", "--epochs", "1"])
        XCTAssertEqual(outcome.exitCode, 64)
        XCTAssertTrue(outcome.standardError.contains("unknown command or dataset 'fashion_mnist' (did you mean 'fashion-mnist'?)"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("fashion-mnist, mnist, cifar10"), outcome.standardError)
        let train = try run(["train", "cifar11"])
        XCTAssertEqual(train.exitCode, 64)
        XCTAssertTrue(train.standardError.contains("unknown dataset 'cifar11': use one of fashion-mnist, mnist, cifar10"), train.standardError)
    }

    func testMoreThreadsThanCoresAreCappedAndTheHeaderShowsTheRealNumber() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let outcome = try train(["--epochs", "0", "--threads", "64"])
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("--threads 64 is more than the \(cores) cores"), outcome.standardError)
        XCTAssertTrue(outcome.standardOutput.contains("\(cores) BLAS thread"), outcome.standardOutput)
    }

    func testAnArchitectureThatDoesNotFitTheImagesIsAUsageErrorNamingTheLayer() throws {
        let tiny = root + "/tiny"
        try FileManager.default.createDirectory(atPath: tiny, withIntermediateDirectories: true)
        writeTinyIDXDataset(tiny, side: 7)
        let outcome = try train(["--model", "cnn"], dataDirectory: tiny)
        XCTAssertEqual(outcome.exitCode, 64, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("--model cnn does not fit 1x7x7 inputs: its layer 8: MaxPool2d(2) receives 1x1"), outcome.standardError)
        XCTAssertFalse(outcome.standardError.contains("Fatal error"), outcome.standardError)
    }

    func testAFIFOGivenAsADataOrMetricsFileIsNamedWithinASecond() throws {
        let fifos = root + "/fifos"
        try FileManager.default.createDirectory(atPath: fifos, withIntermediateDirectories: true)
        for name in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try FileManager.default.copyItem(atPath: "\(root)/\(name).gz", toPath: "\(fifos)/\(name).gz")
        }
        XCTAssertEqual(mkfifo("\(fifos)/train-images-idx3-ubyte", 0o644), 0)
        var start = Date()
        let data = try train([], dataDirectory: fifos)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(data.exitCode, 1)
        XCTAssertTrue(data.standardError.contains("\(fifos)/train-images-idx3-ubyte") && data.standardError.contains("FIFO"), data.standardError)
        XCTAssertEqual(mkfifo("\(root)/metrics.jsonl", 0o644), 0)
        start = Date()
        let metrics = try train(["--metrics", "\(root)/metrics.jsonl"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(metrics.exitCode, 1)
        XCTAssertTrue(metrics.standardError.contains("\(root)/metrics.jsonl") && metrics.standardError.contains("FIFO"), metrics.standardError)
    }

    func testACheckpointFolderThatCannotBeUsedIsAnErrorInTheFirstSecond() throws {
        FileManager.default.createFile(atPath: root + "/a-file", contents: Data("x".utf8))
        try FileManager.default.createSymbolicLink(atPath: root + "/loop-a", withDestinationPath: root + "/loop-b")
        try FileManager.default.createSymbolicLink(atPath: root + "/loop-b", withDestinationPath: root + "/loop-a")
        for (folder, expected) in [(root + "/a-file", "is a file, not a directory"), (root + "/loop-a", "ELOOP")] {
            let start = Date()
            let outcome = try train(["--checkpoint-dir", folder])
            XCTAssertEqual(outcome.exitCode, 1)
            XCTAssertLessThan(Date().timeIntervalSince(start), 5)
            XCTAssertTrue(outcome.standardError.contains("--checkpoint-dir \(folder) ") && outcome.standardError.contains(expected), outcome.standardError)
            XCTAssertFalse(outcome.standardOutput.contains("epoch 1/"), "refused before training")
        }
        guard getuid() == 0 else { throw XCTSkip("a read-only mount needs root; not root here, so the EROFS case did not run") }
        let readOnly = root + "/read-only"
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        guard try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", readOnly], timeout: 30).exitCode == 0 else {
            throw XCTSkip("cannot mount a tmpfs here")
        }
        defer { _ = try? runProcess("/bin/umount", [readOnly], timeout: 30) }
        let outcome = try train(["--checkpoint-dir", readOnly + "/runs"])
        XCTAssertEqual(outcome.exitCode, 1)
        XCTAssertTrue(outcome.standardError.contains("EROFS"), outcome.standardError)
    }

    /// A second job on a folder another job holds is refused, naming the holder; nothing is replaced.
    func testASecondJobOnTheSameCheckpointFolderIsRefused() throws {
        let folder = root + "/ck"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lock = open(folder + "/.lock", O_RDWR | O_CREAT, 0o644)
        defer { close(lock) }
        XCTAssertEqual(flock(lock, LOCK_EX | LOCK_NB), 0)
        _ = "pid 4242 on elsewhere\n".withCString { write(lock, $0, strlen($0)) }
        let outcome = try train(["--checkpoint-dir", folder])
        XCTAssertEqual(outcome.exitCode, 1)
        XCTAssertTrue(outcome.standardError.contains("another job holds it (pid 4242 on elsewhere)"), outcome.standardError)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [".lock"])
    }

    func testResumingAppendsToTheMetricsFile() throws {
        let common = ["--checkpoint-dir", root + "/ck", "--metrics", root + "/run.jsonl"]
        XCTAssertEqual(try train(common).exitCode, 0)
        let resumed = try train(common + ["--epochs", "2", "--resume", "auto"])
        XCTAssertEqual(resumed.exitCode, 0, resumed.standardError)
        let events = try readMetrics(root + "/run.jsonl").compactMap { $0["event"] as? String }
        XCTAssertEqual(events.filter { $0 == "start" }.count, 2, "\(events)")
        XCTAssertEqual(events.filter { $0 == "epoch" }.count, 2, "\(events)")
    }

    func testEvaluatingOnAnotherDatasetSaysSoInEvaluatesWords() throws {
        XCTAssertEqual(try train(["--checkpoint-dir", root + "/ck"]).exitCode, 0)
        let tiny = root + "/tiny"
        try FileManager.default.createDirectory(atPath: tiny, withIntermediateDirectories: true)
        writeTinyIDXDataset(tiny, side: 7)
        let outcome = try run(["evaluate", "--checkpoint", root + "/ck", "mnist", "--data-dir", tiny])
        XCTAssertEqual(outcome.exitCode, 1)
        XCTAssertTrue(outcome.standardError.contains("cannot evaluate \(root)/ck/step-00000002: it was trained on fashion-mnist (1x28x28 images, 10 classes), not on mnist (1x7x7 images, 10 classes)"), outcome.standardError)
        XCTAssertFalse(outcome.standardError.contains("resume"), outcome.standardError)
    }

    /// 20 training and 5 test images of side×side pixels, gzip IDX.
    private func writeTinyIDXDataset(_ directory: String, side: Int) {
        func put(_ bytes: [UInt8], _ name: String) { writeBytes(gzipCompress(bytes), to: "\(directory)/\(name).gz") }
        put(idxImagesFile(count: 20, rows: side, columns: side, pixels: (0..<(20 * side * side)).map { UInt8($0 % 251) }), "train-images-idx3-ubyte")
        put(idxLabelsFile((0..<20).map { UInt8($0 % 10) }), "train-labels-idx1-ubyte")
        put(idxImagesFile(count: 5, rows: side, columns: side, pixels: (0..<(5 * side * side)).map { UInt8($0 % 253) }), "t10k-images-idx3-ubyte")
        put(idxLabelsFile((0..<5).map { UInt8($0) }), "t10k-labels-idx1-ubyte")
    }
}
