import XCTest
import _TestSupport

/// `distrain quantize` from the command line: the int8 file, evaluate/predict/bench on it (1 and 2 ranks),
/// and every bad request refused by name.
final class QuantizeCommandTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() {
        root = makeTemporaryDirectory("quantize-cli")
        writeSyntheticIDXDataset(directory: root, trainCount: 300, testCount: 200)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private var data: [String] { ["--data-dir", root, "--threads", "1"] }

    private func header(_ path: String) throws -> (header: [String: Any], dataStart: Int, bytes: [UInt8]) {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let length = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        return (try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any], 8 + length, bytes)
    }

    private func accuracy(_ output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix("micro precision") }.map(String.init)
    }

    func testQuantizedModelsAreSmallerEvaluateAlikeAndRunEverywhere() throws {
        let train = try runProcess(distrain, ["fashion-mnist"] + data + ["--epochs", "3", "--no-progress", "--checkpoint-dir", root + "/base"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        let quantize = try runProcess(distrain, ["quantize", "--checkpoint", root + "/base", "fashion-mnist"] + data + ["--calibration", "100", "--out", root + "/int8"], timeout: 120)
        XCTAssertEqual(quantize.exitCode, 0, quantize.standardError)
        XCTAssertTrue(quantize.standardOutput.contains("file size") && quantize.standardOutput.contains("  1.weight    weight scales"), quantize.standardOutput)

        let (file, _, _) = try header(root + "/int8/model.safetensors")
        XCTAssertEqual((file["1.weight"] as! [String: Any])["dtype"] as? String, "I8")
        XCTAssertEqual((file["1.weight"] as! [String: Any])["shape"] as? [Int], [128, 784])
        XCTAssertEqual((file["1.weight_scale"] as! [String: Any])["shape"] as? [Int], [128])
        XCTAssertEqual((file["1.bias"] as! [String: Any])["dtype"] as? String, "F32")
        let scheme = try JSONSerialization.jsonObject(with: Data(((file["__metadata__"] as! [String: String])["quantization"] ?? "").utf8)) as! [String: Any]
        XCTAssertEqual(scheme["calibration_samples"] as? Int, 100)

        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/int8/quantization.json"))) as! [String: Any]
        let fp32Bytes = summary["fp32Bytes"] as! Int, int8Bytes = summary["int8Bytes"] as! Int
        XCTAssertGreaterThan(Double(fp32Bytes) / Double(int8Bytes), 3.8, "int8 weights: a quarter of the bytes, plus scales and biases")
        let fp32Accuracy = summary["fp32Accuracy"] as! Double, int8Accuracy = summary["int8Accuracy"] as! Double
        XCTAssertGreaterThan(fp32Accuracy, 0.3, "the float model learned the synthetic classes")
        XCTAssertEqual(int8Accuracy, fp32Accuracy, accuracy: 0.03)

        // evaluate runs the saved int8 model and reproduces the accuracy quantize measured, on 1 and 2 ranks.
        let evaluate = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/int8", "fashion-mnist", "--data-dir", root, "--threads", "1"], timeout: 60)
        XCTAssertEqual(evaluate.exitCode, 0, evaluate.standardError)
        XCTAssertEqual(accuracy(evaluate.standardOutput), "micro precision = recall = F1 = accuracy = \(String(format: "%.4f", int8Accuracy))")
        writeBytes(npyFile(dtype: "|u1", shape: [2, 28, 28], data: (0..<1568).map { UInt8($0 % 251) }), to: root + "/two.npy")
        let predict = try runProcess(distrain, ["predict", "--checkpoint", root + "/int8", root + "/two.npy", "--threads", "1"], timeout: 60)
        XCTAssertEqual(predict.exitCode, 0, predict.standardError)
        XCTAssertTrue(predict.standardOutput.contains("two.npy[1]  "), predict.standardOutput)
        let bench = try runProcess(distrain, ["bench", "--inference", root + "/base", "--inference", root + "/int8", "--inference-batch-sizes", "1,16",
                                              "--repetitions", "1", "--threads", "1"], timeout: 60)
        XCTAssertEqual(bench.exitCode, 0, bench.standardError)
        XCTAssertTrue(bench.standardOutput.contains("int8  ") && bench.standardOutput.contains("second ÷ first: batch 1"), bench.standardOutput)
        if let mpirun = findOnPath("mpirun") {
            let twoRanks = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain, "evaluate", "--checkpoint", root + "/int8", "fashion-mnist", "--data-dir", root, "--threads", "1"], timeout: 120)
            XCTAssertEqual(twoRanks.exitCode, 0, twoRanks.standardError)
            XCTAssertEqual(accuracy(twoRanks.standardOutput), accuracy(evaluate.standardOutput))
        }

        // Bad requests, each refused by name before anything is written.
        let refusals: [([String], String)] = [
            (["quantize", "--checkpoint", root + "/int8", "fashion-mnist", "--out", root + "/again"] + data, "is already an int8 model"),
            (["prune", "--checkpoint", root + "/int8", "fashion-mnist", "--sparsity", "0.5", "--out", root + "/pruned"] + data, "is an int8 model written by distrain quantize"),
            (["fashion-mnist", "--resume", root + "/int8", "--epochs", "4"] + data, "is an int8 model written by distrain quantize"),
            (["quantize", "--checkpoint", root + "/base", "fashion-mnist", "--calibration", "301", "--out", root + "/big"] + data, "--calibration 301 is more than the 300 training samples"),
            (["quantize", "--checkpoint", root + "/base", "fashion-mnist", "--out", root + "/int8"] + data, "int8/model.safetensors already exists"),
            (["export", "--pytorch", root + "/int8"], "is an int8 model (distrain quantize), which nn.Linear and nn.Conv2d cannot load"),
            (["quantize", "--checkpoint", root + "/base", "fashion-mnist", "--out", root + "/base"] + data,
             "holds a training run's checkpoints; an int8 model.safetensors there would take their place"),
        ]
        for (arguments, message) in refusals {
            let run = try runProcess(distrain, arguments, timeout: 60)
            XCTAssertNotEqual(run.exitCode, 0, arguments.joined(separator: " "))
            XCTAssertTrue(run.standardError.contains(message), "\(arguments.joined(separator: " ")): \(run.standardError)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/big/model.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/base/model.safetensors"), "the run's folder untouched")
        XCTAssertEqual(try runProcess(distrain, ["quantize", "--checkpoint", root + "/base", "fashion-mnist", "--calibration", "0", "--out", root + "/zero"], timeout: 30).exitCode, 64)

        // A zero scale written into the file: evaluate names the tensor instead of dividing by it.
        let (damagedHeader, dataStart, bytes) = try header(root + "/int8/model.safetensors")
        var damaged = bytes
        let offset = dataStart + ((damagedHeader["3.weight_scale"] as! [String: Any])["data_offsets"] as! [Int])[0]
        for i in 0..<4 { damaged[offset + i] = 0 }
        writeBytes(damaged, to: root + "/int8/model.safetensors")
        let bad = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/int8", "fashion-mnist", "--data-dir", root], timeout: 60)
        XCTAssertEqual(bad.exitCode, 1)
        XCTAssertTrue(bad.standardError.contains("tensor 3.weight_scale holds the scale 0.0; scales must be positive and finite"), bad.standardError)
    }
}
