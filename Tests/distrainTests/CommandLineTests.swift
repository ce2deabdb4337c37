import Crypto
import Tensors
import XCTest
import _TestSupport

/// The built `distrain` executable, run as a user would: flags, exit codes, messages.
final class CommandLineTests: XCTestCase {
    var distrain: String { builtProductsDirectory + "/distrain" }

    private func run(_ arguments: [String], timeout: Double = 120) throws -> ProcessOutcome {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: distrain), "no executable at \(distrain)")
        return try runProcess(distrain, arguments, timeout: timeout)
    }

    /// On a CPU OpenBLAS does not know (it took its SSE3 kernels in this test process too) the command starts
    /// again with the kernels the CPU flags support; a user's own OPENBLAS_CORETYPE is kept.
    func testCommandRunsOnTheKernelsTheCPUSupports() throws {
        func core(_ environment: [String: String]) throws -> String {
            let outcome = try runProcess(distrain, ["doctor"], extraEnvironment: environment, timeout: 60)
            XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
            let line = outcome.standardOutput.split(separator: "\n").first { $0.hasPrefix("BLAS:") } ?? ""
            return String(line.split(separator: "(core ").last?.dropLast() ?? "")
        }
        XCTAssertEqual(try core([:]), BLAS.unrecognizedCPUCoreType() ?? BLAS.coreName)
        XCTAssertEqual(try core(["OPENBLAS_CORETYPE": "Prescott"]), "Prescott")
    }

    func testInvalidFlagValuesAreUsageErrorsWithExit64() throws {
        let cases: [([String], String)] = [
            (["fashion-mnist", "--batch-size", "0"], "--batch-size"),
            (["fashion-mnist", "--recipe", "fast", "--recipe", "fast"], "--recipe is given 2 times; give one recipe"),
            (["fashion-mnist", "--label", "y"], "--label y names a CSV table's column"),
            (["fashion-mnist", "--task", "regression"], "--task regression needs a CSV table"),
            (["fashion-mnist", "--lr", "-0.1"], "--lr must be a positive number, got -0.1"),
            (["fashion-mnist", "--epochs", "-2"], "--epochs must be 0 or more, got -2"),
            (["predict", "--checkpoint", "x", "a.png", "--top-k", "-1"], "--top-k must be at least 1, got -1"),
            (["fashion-mnist", "--lr", "nan"], "--lr"),
            (["fashion-mnist", "--model", "resnet"], "resnet"),
            (["fashion-mnist", "--optimizer", "rmsprop"], "rmsprop"),
            (["fashion-mnist", "--epochs", "-1"], "--epochs"),
            (["fashion-mnist", "--threads", "0"], "--threads"),
            (["fashion-mnist", "--nesterov"], "--nesterov"),
            (["fashion-mnist", "--bucket-mb", "0"], "--bucket-mb"),
            (["fashion-mnist", "--augment-padding", "-1"], "--augment-padding"),
            (["fashion-mnist", "--eval-every", "0"], "--eval-every must be at least 1 epoch"),
            (["fashion-mnist", "--tta", "mirror"], "mirror"),
            (["evaluate", "--checkpoint", "x", "fashion-mnist", "--tta", "rotate"], "rotate"),
            (["fashion-mnist", "--gradient-sum", "shm"], "--gradient-sum"),
            (["bench", "--gradient-sum", "nccl"], "--gradient-sum"),
            (["fashion-mnist", "--shard", "layers"], "layers"),
            (["fashion-mnist", "--shard", "parameters", "--wire", "bf16"], "--wire bf16 changes the replicated gradient sum"),
            (["fashion-mnist", "--shard", "gradients", "--overlap"], "--overlap changes the replicated gradient sum"),
            (["fashion-mnist", "--epochs", "many"], "many"),
            (["fashion-mnist", "--no-such-flag"], "--no-such-flag"),
            (["mnist"], "--data-dir"),
            (["download", "mnist"], "only cifar10"),
            (["download", "cifar10", "--url", "http://127.0.0.1/x"], "--md5"),
            (["download", "cifar10", "--url", "http://127.0.0.1/x", "--md5", "xyz"], "32 hexadecimal"),
            (["cifar10", "--batch-size", "-5"], "--batch-size"),
            (["fashion-mnist", "--resume", "auto"], "--checkpoint-dir"),
            (["fashion-mnist", "--checkpoint-every", "5"], "--checkpoint-dir"),
            (["fashion-mnist", "--checkpoint-dir", "x", "--keep", "0"], "--keep"),
            (["evaluate", "fashion-mnist"], "--checkpoint"),
            (["evaluate", "--checkpoint", "x", "imagenet"], "imagenet"),
        ]
        for (arguments, fragment) in cases {
            let outcome = try run(arguments, timeout: 60)
            XCTAssertEqual(outcome.exitCode, 64, "\(arguments): \(outcome.standardError)")
            XCTAssertTrue(outcome.standardError.contains(fragment), "\(arguments): stderr lacks \(fragment): \(outcome.standardError)")
            XCTAssertTrue(outcome.standardError.hasPrefix("distrain: error: "), "one prefix for every error: \(outcome.standardError)")
        }
    }

    /// `--precision bf16` trains where the CPU has bf16 dot products (its header says so) and is refused elsewhere.
    func testBF16PrecisionTrainsWhereTheCPUHasItAndIsRefusedElsewhere() throws {
        let directory = makeTemporaryDirectory("bf16")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 200, testCount: 40)
        let outcome = try run(["fashion-mnist", "--epochs", "1", "--precision", "bf16", "--data-dir", directory, "--threads", "1",
                               "--no-progress"], timeout: 120)
        if BLAS.supportsBF16 {
            XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
            XCTAssertTrue(outcome.standardOutput.contains("large GEMMs in bf16 with fp32 accumulation"), outcome.standardOutput)
        } else {
            XCTAssertEqual(outcome.exitCode, 64)
            XCTAssertTrue(outcome.standardError.contains("--precision bf16 needs a CPU with bf16 dot products"), outcome.standardError)
        }
    }

    /// --recipe fast expands into its flags; flags beside it — before or after — override them; --help
    /// lists the recipes; an unknown one is a usage error naming the choices.
    func testRecipesExpandAndFlagsBesideThemWin() throws {
        let directory = makeTemporaryDirectory("recipe")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 200, testCount: 40)
        let outcome = try run(["fashion-mnist", "--epochs", "1", "--recipe", "fast", "--data-dir", directory, "--threads", "1",
                               "--no-progress", "--lr", "0.002", "--metrics", directory + "/m.jsonl"])
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        let start = try XCTUnwrap(try readMetrics(directory + "/m.jsonl").first)
        XCTAssertEqual(start["model"] as? String, "cnn-bn", "from the recipe")
        XCTAssertEqual(start["augment"] as? Bool, true, "the recipe's horizontal flips")
        XCTAssertEqual(start["tta"] as? String, "flip", "the recipe's test-time flips")
        XCTAssertEqual(start["eval_every"] as? Int, 5)
        XCTAssertEqual(start["augment_padding"] as? Int, 0, "flips only")
        let plain = try run(["fashion-mnist", "--epochs", "1", "--recipe", "fast", "--no-augment", "--data-dir", directory,
                             "--threads", "1",
                             "--no-progress", "--train-limit", "64", "--metrics", directory + "/plain.jsonl"])
        XCTAssertEqual(plain.exitCode, 0, plain.standardError)
        XCTAssertEqual(try XCTUnwrap(try readMetrics(directory + "/plain.jsonl").first)["augment"] as? Bool, false,
                       "--no-augment beside the recipe wins")
        XCTAssertEqual(start["world_size"] as? Int, 2, "the recipe's two local ranks")
        XCTAssertEqual(start["optimizer"] as? String, "adamw")
        XCTAssertEqual(start["global_batch"] as? Int, 128)
        XCTAssertEqual(start["schedule"] as? String, "cosine")
        XCTAssertEqual(start["epochs"] as? Int, 1, "--epochs before --recipe still wins")
        XCTAssertEqual(start["lr"] as! Double, 0.002, accuracy: 1e-9, "--lr after --recipe wins")
        XCTAssertTrue((start["command_line"] as? String ?? "").contains("--recipe fast"), "the metrics keep the command as typed")
        let help = try run(["fashion-mnist", "--help"])
        XCTAssertTrue(help.standardOutput.contains("--recipe <recipe>") && help.standardOutput.contains("fast: --model cnn-bn"),
                      help.standardOutput)
        let unknown = try run(["fashion-mnist", "--recipe", "slow"])
        XCTAssertEqual(unknown.exitCode, 64)
        XCTAssertTrue(unknown.standardError.contains("Please provide one of 'fast'"), unknown.standardError)
    }

    /// A recipe inside a sweep's training command and beside lr-find is the same bundle of flags (it
    /// was once parsed and ignored there: the trials trained the default MLP).
    func testRecipesApplyInSweepsAndLRFind() throws {
        let directory = makeTemporaryDirectory("recipe-sweep")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 200, testCount: 40)
        let sweep = try run(["sweep", "--out", directory + "/sweep", "--", "fashion-mnist", "--recipe", "fast", "--epochs", "1",
                             "--train-limit", "128", "--data-dir", directory, "--threads", "1", "--lr", "1e-3,2e-3"])
        XCTAssertEqual(sweep.exitCode, 0, sweep.standardError)
        for (trial, lr) in [("001", 0.001), ("002", 0.002)] {
            let start = try XCTUnwrap(try readMetrics("\(directory)/sweep/trial-\(trial)/metrics.jsonl").first)
            XCTAssertEqual(start["model"] as? String, "cnn-bn", "trial \(trial): the recipe's model")
            XCTAssertEqual(start["world_size"] as? Int, 2, "trial \(trial): the recipe's two local ranks")
            XCTAssertEqual(start["optimizer"] as? String, "adamw")
            XCTAssertEqual(start["lr"] as! Double, lr, accuracy: 1e-9, "the swept --lr beats the recipe's")
        }
        let mixed = try run(["sweep", "--out", directory + "/mixed", "--", "fashion-mnist", "--recipe", "fast", "--local-ranks", "1,2",
                             "--data-dir", directory])
        XCTAssertEqual(mixed.exitCode, 64)
        XCTAssertTrue(mixed.standardError.contains("give --local-ranks one value"), mixed.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/mixed"), "nothing written for a refused sweep")
        let finder = try run(["lr-find", "fashion-mnist", "--recipe", "fast", "--steps", "10", "--train-limit", "128",
                              "--data-dir", directory, "--threads", "1"])
        XCTAssertEqual(finder.exitCode, 0, finder.standardError)
        XCTAssertTrue(finder.standardOutput.contains("(adamw, global batch 128)"), finder.standardOutput)
    }

    /// --local-ranks 3: three data-parallel ranks as threads of one process give one rank's results
    /// (the same losses to 1e-5, the same accuracies), and the header says so; under mpirun it is refused.
    func testLocalRanksTrainLikeOneRank() throws {
        let directory = makeTemporaryDirectory("local-ranks")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 200, testCount: 40)
        let common = ["fashion-mnist", "--data-dir", directory, "--epochs", "2", "--batch-size", "30", "--no-progress"]
        let three = try run(common + ["--local-ranks", "3", "--metrics", directory + "/three.jsonl"])
        XCTAssertEqual(three.exitCode, 0, three.standardError)
        XCTAssertTrue(three.standardOutput.contains("3 ranks (in-process"), three.standardOutput)
        let one = try run(common + ["--metrics", directory + "/one.jsonl"])
        XCTAssertEqual(one.exitCode, 0, one.standardError)
        let a = try readMetrics(directory + "/three.jsonl").filter { $0["event"] as? String == "epoch" }
        let b = try readMetrics(directory + "/one.jsonl").filter { $0["event"] as? String == "epoch" }
        XCTAssertEqual(a.count, 2)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x["test_accuracy"] as? Double, y["test_accuracy"] as? Double)
            XCTAssertEqual(x["train_loss"] as! Double, y["train_loss"] as! Double, accuracy: 1e-5 * abs(y["train_loss"] as! Double))
        }
        XCTAssertEqual(try run(["fashion-mnist", "--local-ranks", "0"]).exitCode, 64)
        if let mpirun = findOnPath("mpirun") {
            let refused = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain] + common + ["--local-ranks", "2"], timeout: 60)
            XCTAssertNotEqual(refused.exitCode, 0)
            XCTAssertTrue(refused.standardError.contains("--local-ranks is for local mode"), refused.standardError)
            // A recipe's --local-ranks is a local-mode choice: under mpirun the ranks are mpirun's.
            let recipe = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain] + common
                                            + ["--recipe", "fast", "--epochs", "1", "--metrics", directory + "/recipe.jsonl"], timeout: 120)
            XCTAssertEqual(recipe.exitCode, 0, recipe.standardError)
            let start = try XCTUnwrap(try readMetrics(directory + "/recipe.jsonl").first)
            XCTAssertEqual(start["world_size"] as? Int, 2, "mpirun's two ranks")
            XCTAssertEqual(start["communicator"] as? String, "MPI")
            XCTAssertEqual(start["model"] as? String, "cnn-bn", "the rest of the recipe")
        }
    }

    func testHelpShowsExamples() throws {
        let outcome = try run(["--help"], timeout: 60)
        XCTAssertEqual(outcome.exitCode, 0)
        XCTAssertTrue(outcome.standardOutput.contains("mpirun -n 4 distrain fashion-mnist"), outcome.standardOutput)
        let sub = try run(["fashion-mnist", "--help"], timeout: 60)
        XCTAssertTrue(sub.standardOutput.contains("--batch-size"), sub.standardOutput)
    }

    func testBadDataIsOneLineErrorNamingTheFile() throws {
        let directory = makeTemporaryDirectory("bad-data")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 50, testCount: 20)
        writeBytes(idxLabelsFile([1, 2, 11]), to: "\(directory)/t10k-labels-idx1-ubyte.gz")
        let outcome = try run(["fashion-mnist", "--data-dir", directory, "--epochs", "1"])
        XCTAssertEqual(outcome.exitCode, 1)
        let lines = outcome.standardError.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, outcome.standardError)
        XCTAssertTrue(outcome.standardError.hasPrefix("distrain: error: \(directory)/t10k-labels-idx1-ubyte.gz"), outcome.standardError)

        let missing = try run(["fashion-mnist", "--data-dir", directory + "/nowhere"])
        XCTAssertEqual(missing.exitCode, 1)
        XCTAssertTrue(missing.standardError.contains("nowhere"), missing.standardError)
    }

    func testUnwritableMetricsFileIsAnError() throws {
        let directory = makeTemporaryDirectory("metrics")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 50, testCount: 20)
        let outcome = try run(["fashion-mnist", "--data-dir", directory, "--metrics", directory + "/no/such/dir/m.jsonl"])
        XCTAssertEqual(outcome.exitCode, 1)
        XCTAssertTrue(outcome.standardError.contains("no/such/dir/m.jsonl"), outcome.standardError)
    }

    func testLocalRunWritesMetricsWithTheDocumentedKeys() throws {
        let directory = makeTemporaryDirectory("local-run")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 300, testCount: 100)
        let metrics = directory + "/m.jsonl"
        let outcome = try run(["fashion-mnist", "--data-dir", directory, "--epochs", "2", "--batch-size", "32", "--metrics", metrics])
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        let events = try readMetrics(metrics)
        XCTAssertEqual(events.map { $0["event"] as? String }, ["start", "epoch", "epoch", "end"])
        for key in ["dataset", "model", "parameters", "world_size", "global_batch", "optimizer", "lr", "seed",
                    "threads_per_rank", "blas", "train_samples", "test_samples", "per_rank_batch"] {
            XCTAssertNotNil(events[0][key], "start lacks \(key)")
        }
        for key in ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "samples_per_second",
                    "compute_seconds", "communication_seconds", "data_seconds"] {
            XCTAssertNotNil(events[1][key], "epoch lacks \(key)")
        }
        for key in ["test_accuracy", "precision_macro", "recall_macro", "f1_macro", "confusion_matrix", "seconds"] {
            XCTAssertNotNil(events[3][key], "end lacks \(key)")
        }
        XCTAssertEqual(events[0]["world_size"] as? Int, 1)
        XCTAssertEqual(events[0]["train_samples"] as? Int, 300)
        let confusion = events[3]["confusion_matrix"] as? [[Int]]
        XCTAssertEqual(confusion?.count, 10)
        XCTAssertEqual(confusion?.flatMap { $0 }.reduce(0, +), 100)
        XCTAssertTrue(outcome.standardOutput.contains("Confusion matrix") || outcome.standardOutput.contains("confusion"),
                      outcome.standardOutput)
    }
}

/// The JSON Lines metrics file as dictionaries.
func readMetrics(_ path: String) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return try text.split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}

/// `distrain download cifar10` then `distrain cifar10`, as a user would, against a local server.
final class DownloadCommandTests: XCTestCase {
    func testDownloadThenTrain() throws {
        let root = makeTemporaryDirectory("download-cli")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var entries: [(name: String, bytes: [UInt8])] = []
        for batch in 1...5 {
            entries.append(("cifar-10-batches-bin/data_batch_\(batch).bin", syntheticCIFARBatch(count: 10, seed: UInt64(batch)).bytes))
        }
        entries.append(("cifar-10-batches-bin/test_batch.bin", syntheticCIFARBatch(count: 10, seed: 50).bytes))
        let tarball = gzipCompress(tarArchive(entries))
        let md5 = Insecure.MD5.hash(data: tarball).map { String(format: "%02x", $0) }.joined()
        let server = try LocalHTTPServer(routes: ["/c.tgz": tarball])
        defer { server.stop() }
        let distrain = builtProductsDirectory + "/distrain"
        let wrong = try runProcess(distrain, ["download", "cifar10", "--to", root, "--url", server.url("/c.tgz"),
                                              "--md5", String(repeating: "1", count: 32)], timeout: 60)
        XCTAssertEqual(wrong.exitCode, 1)
        XCTAssertTrue(wrong.standardError.contains("MD5 \(md5)"), wrong.standardError)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root), [])

        let download = try runProcess(distrain, ["download", "cifar10", "--to", root, "--url", server.url("/c.tgz"), "--md5", md5],
                                      timeout: 60)
        XCTAssertEqual(download.exitCode, 0, download.standardError)
        XCTAssertTrue(download.standardOutput.contains("MD5 verified"), download.standardOutput)
        let train = try runProcess(distrain, ["cifar10", "--data-dir", root, "--epochs", "1", "--batch-size", "10"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        XCTAssertTrue(train.standardOutput.contains("augmentation"), train.standardOutput)
    }
}
