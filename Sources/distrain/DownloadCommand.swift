import ArgumentParser
import Datasets
import Downloads
import Foundation

/// `distrain download cifar10 [--to DIR]`: fetch, verify and unpack a dataset.
struct DownloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download a dataset: cifar10 (the official binary version, 170 MB, MD5-checked).",
        discussion: """
        The archive is downloaded and unpacked in a temporary folder inside DIR and moved into place only
        when complete and verified, so DIR/cifar-10-batches-bin is either absent or whole.
        --url and --md5 point at a mirror (or a test server) instead of the official file.
        """)

    @Argument(help: "The dataset: cifar10.")
    var dataset: String

    @Option(help: "Parent folder for cifar-10-batches-bin (default: $DISTRAIN_DATA, else ./data).")
    var to: String?

    @Option(help: "Download from this URL instead of the official one.")
    var url: String?

    @Option(help: "The MD5 the file must have (required with --url).")
    var md5: String?

    func validate() throws {
        if dataset != "cifar10" {
            throw ValidationError("cannot download '\(dataset)': only cifar10 is downloadable (Fashion-MNIST comes with 'apt-get install dataset-fashion-mnist')")
        }
        if (url == nil) != (md5 == nil) { throw ValidationError("--url and --md5 go together") }
        if let md5, md5.count != 32 || !md5.allSatisfy(\.isHexDigit) {
            throw ValidationError("--md5 must be 32 hexadecimal digits, got '\(md5)'")
        }
        if let to, to.isEmpty { throw ValidationError("--to needs a directory") }
    }

    func run() throws {
        let root = to ?? CIFAR10.defaultDirectory
        let source = url.map { DownloadSource(url: $0, md5: md5!) } ?? .officialCIFAR10
        let reporter = DownloadProgress(isTerminal: isatty(STDERR_FILENO) != 0)
        FileHandle.standardError.write(Data("distrain: downloading \(source.url) into \(root)\n".utf8))
        do {
            let result = try fetchCIFAR10(into: root, source: source, progress: reporter.update)
            reporter.finish()
            print(result.alreadyPresent ? "CIFAR-10 is already in \(result.folder)" : "CIFAR-10 is ready in \(result.folder) (MD5 verified)")
            let flag = root == CIFAR10.defaultDirectory ? "" : " --data-dir \(root)"
            print("train with: mpirun -n 4 distrain cifar10\(flag)   (or: distrain cifar10\(flag))")
        } catch {
            reporter.finish()
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}

/// Download progress on stderr: a rewritten line on a terminal, a line every 10% otherwise.
final class DownloadProgress: @unchecked Sendable {
    private let isTerminal: Bool
    private let lock = NSLock()
    private var lastReported = -1
    private var lastDraw = 0.0
    private let start = Date()

    init(isTerminal: Bool) { self.isTerminal = isTerminal }

    func update(received: Int64, expected: Int64?) {
        lock.lock(); defer { lock.unlock() }
        let megabytes = Double(received) / 1_048_576
        let rate = megabytes / max(Date().timeIntervalSince(start), 1e-3)
        let percent = expected.map { Int(Double(received) * 100 / Double(max($0, 1))) }
        if isTerminal {
            let now = Date().timeIntervalSince(start)
            if now - lastDraw < 0.2 && received != expected { return }
            lastDraw = now
            let total = expected.map { String(format: " of %.1f", Double($0) / 1_048_576) } ?? ""
            let text = String(format: "\r  %.1f%@ MB  %@  %.1f MB/s", megabytes, total, percent.map { "\($0)%" } ?? "", rate)
            FileHandle.standardError.write(Data(text.utf8))
        } else if let percent, percent / 10 > lastReported {
            lastReported = percent / 10
            FileHandle.standardError.write(Data(String(format: "  %d%%  %.1f MB  %.1f MB/s\n", percent, megabytes, rate).utf8))
        }
    }

    func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
