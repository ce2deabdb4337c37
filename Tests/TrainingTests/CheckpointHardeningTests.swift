import XCTest
import Collectives
import Datasets
import Layers
import SafeTensors
@testable import Training
import _TestSupport

/// A checkpoint is checked as hard as a data file, and its folder belongs to one job.
final class CheckpointHardeningTests: XCTestCase {
    private var root = ""
    override func setUp() { root = makeTemporaryDirectory("hardening") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private let data = syntheticSplits(train: 40, test: 8)
    private func configuration(epochs: Int) -> TrainingConfiguration {
        TrainingConfiguration(dataset: "synthetic", epochs: epochs, globalBatchSize: 8)  // 5 steps per epoch
    }

    @discardableResult
    private func train(epochs: Int, resume: String? = nil, keep: Int = 3) throws -> Trainer {
        let communicator = InProcessCommunicator.single()
        let loaded = try resume.map { try LoadedCheckpoint.load(directory: $0, communicator: communicator) }
        let trainer = try makeTrainer(configuration: configuration(epochs: epochs), data: data, communicator: communicator,
                                      checkpointing: CheckpointSettings(directory: root, keep: keep), resume: loaded)
        try trainer.run()
        return trainer
    }

    private func edit(_ file: String, in folder: String, _ change: (inout [UInt8]) -> Void) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(file)")))
        change(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(folder)/\(file)"))
    }

    private func editState(in folder: String, _ change: (inout [String: Any]) -> Void) throws {
        let url = URL(fileURLWithPath: "\(folder)/\(CheckpointFile.state)")
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    private func resumeError(_ folder: String) -> String {
        do { try train(epochs: 3, resume: folder); return "resumed" } catch { return "\(error)" }
    }

    // MARK: the folder

    func testASecondJobOnTheFolderIsRefusedAndACrashedOneLeavesNoLock() throws {
        var first: CheckpointDirectoryLock? = try CheckpointDirectoryLock(path: root)
        XCTAssertThrowsError(try CheckpointDirectoryLock(path: root)) { error in
            XCTAssertTrue("\(error)".contains("another job holds it (pid \(getpid())"), "\(error)")
        }
        first = nil  // the process ending (or this) releases the kernel's lock
        XCTAssertNil(first)
        XCTAssertNoThrow(try CheckpointDirectoryLock(path: root))
    }

    func testLeftoversOfAKilledWriterAreRemovedAndNeverTakenForACheckpoint() throws {
        try train(epochs: 1)  // step-00000005
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/.tmp-step-00000010-4242", withIntermediateDirectories: false)
        try Data("x".utf8).write(to: URL(fileURLWithPath: "\(root)/latest.tmp-4242"))
        try fm.createDirectory(atPath: "\(root)/.pruning-step-00000003", withIntermediateDirectories: false)
        // A half-pruned (or half-copied) folder: state.json but no weights.
        try fm.createDirectory(atPath: "\(root)/step-00000099", withIntermediateDirectories: false)
        try fm.copyItem(atPath: "\(root)/step-00000005/state.json", toPath: "\(root)/step-00000099/state.json")
        XCTAssertEqual(try CheckpointWriter.resolveResume("auto", checkpointRoot: root), "\(root)/step-00000005")
        _ = try CheckpointDirectoryLock(path: root)
        let left = try fm.contentsOfDirectory(atPath: root).sorted()
        XCTAssertEqual(left, [".lock", "best", "latest", "step-00000005"])
    }

    func testResumeAutoFollowsTheContinuedRunAfterARewind() throws {
        try train(epochs: 3)  // step-5, -10, -15; latest = step-15
        let rewound = try train(epochs: 2, resume: "\(root)/step-00000005")  // continues, writes step-10 again
        XCTAssertEqual(rewound.globalStep, 10)
        XCTAssertTrue(pathExists("\(root)/step-00000015"), "the abandoned run's newer checkpoint is still there")
        XCTAssertEqual(try CheckpointWriter.resolveResume("auto", checkpointRoot: root), "\(root)/step-00000010")
        // Pruning keeps the most recently written (and never latest or best).
        try train(epochs: 4, resume: "\(root)/step-00000010", keep: 2)  // writes step-15 (again) and step-20
        let best = CheckpointWriter.pointer("best", in: root)
        XCTAssertEqual(Set(CheckpointWriter.checkpointNames(in: root)), Set(["step-00000015", "step-00000020"] + [best].compactMap { $0 }))
        XCTAssertEqual(CheckpointWriter.pointer("latest", in: root), "step-00000020")
    }

    // MARK: state.json

    func testOverflowingAndInconsistentPositionsAreRefused() throws {
        try train(epochs: 1)
        let folder = "\(root)/step-00000005"
        for (field, value) in [("epoch", Int.max), ("globalStep", Int.max), ("nextBatch", Int.max), ("partialSeen", -1),
                               ("samplesDoneInEpoch", Int.max), ("worldSize", 0)] as [(String, Int)] {
            let backup = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/state.json"))
            try editState(in: folder) { $0[field] = value }
            let message = resumeError(folder)
            XCTAssertTrue(message.contains("state.json") && message.contains(field), "\(field): \(message)")
            try backup.write(to: URL(fileURLWithPath: "\(folder)/state.json"))
        }
        // In range but absurd: epoch 1000 with the step count of epoch 1 would train nothing and "succeed".
        try editState(in: folder) { $0["epoch"] = 1000 }
        let message = resumeError(folder)
        XCTAssertTrue(message.contains("inconsistent"), message)
    }

    // MARK: the tensors

    func testNonFiniteWeightsOrOptimizerStateAreRefusedByResumeAndEvaluate() throws {
        try train(epochs: 1)
        let folder = "\(root)/step-00000005"
        let model = try SafeTensors.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: "\(folder)/model.safetensors"))), path: "m")
        let offset = model.entries["1.weight"]!.byteRange.lowerBound + 4 * 17
        try edit("model.safetensors", in: folder) { bytes in
            withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { for i in 0..<4 { bytes[offset + i] = $0[i] } }
        }
        XCTAssertTrue(resumeError(folder).contains("tensor 1.weight holds NaN"), resumeError(folder))
        let file = try SafeTensors.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: "\(folder)/model.safetensors"))), path: "m")
        XCTAssertThrowsError(try CheckpointModel(file: file)) { XCTAssertTrue("\($0)".contains("NaN"), "\($0)") }
    }

    func testMetadataCannotMakeUsAllocate() throws {
        try train(epochs: 1)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(root)/step-00000005/model.safetensors")))
        let file = try SafeTensors.decode(bytes, path: "m")
        var metadata = file.metadata
        metadata["input_shape"] = "1x4096x4096"  // an mlp on that would be 2.1 billion weights (8.6 GB)
        let tensors = file.entries.keys.sorted().map { name -> TensorToWrite in
            let entry = file.entries[name]!
            let values = bytes[entry.byteRange].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return TensorToWrite(name: name, shape: entry.shape, values: values.withUnsafeBufferPointer { UnsafeBufferPointer(start: UnsafePointer(strdupFloats($0)), count: $0.count) })
        }
        let bomb = try SafeTensors.decode(SafeTensors.encode(tensors, metadata: metadata), path: "bomb.safetensors")
        var message = ""
        withBoundedMemoryAndTime(headroomBytes: 256 << 20, timeoutSeconds: 30) {
            do { _ = try CheckpointModel(file: bomb); message = "built" } catch { message = "\(error)" }
        }
        // Refused before anything is allocated: the spec in the same metadata does not fit the claimed input
        // (and without a spec, the tensors would not: "needs tensor 1.weight of shape [128, 16777216]").
        XCTAssertTrue(message.hasPrefix("bomb.safetensors: ") && message.contains("16777216"), message)
    }
}

/// A copy of `values` that lives for the rest of the test process (TensorToWrite borrows its floats).
private func strdupFloats(_ values: UnsafeBufferPointer<Float>) -> UnsafeMutablePointer<Float> {
    let copy = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
    copy.initialize(from: values.baseAddress!, count: values.count)
    return copy
}
