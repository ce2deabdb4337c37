import XCTest
import Collectives
import Datasets
import Layers
import SafeTensors
@testable import Training
import _TestSupport

/// 1,350 seeded mutations of a real checkpoint — state.json, model.safetensors, optimizer.safetensors —
/// pushed through everything `--resume` and `evaluate` do with them, under an address-space cap and a
/// deadline: each either loads or is a thrown one-line error; never a crash, a hang or a huge allocation.
final class CheckpointFuzzTests: XCTestCase {
    func testMutatedCheckpointsOnlyEverThrow() throws {
        let root = makeTemporaryDirectory("checkpoint-fuzz")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = syntheticSplits(train: 40, test: 8)
        let configuration = TrainingConfiguration(dataset: "synthetic", epochs: 1, globalBatchSize: 8)
        let communicator = InProcessCommunicator.single()
        try makeTrainer(configuration: configuration, data: data, communicator: communicator,
                        checkpointing: CheckpointSettings(directory: root)).run()
        let folder = "\(root)/step-00000005"
        func read(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name)"))) }
        let original = [try read(CheckpointFile.state), try read(CheckpointFile.model), try read(CheckpointFile.optimizer)]

        var cases: [[[UInt8]]] = []
        for mutated in stateMutations(of: original[0], count: 450) { cases.append([mutated, original[1], original[2]]) }
        for mutated in seededMutations(of: original[1], count: 450, seed: 11, fieldOffsets: [0, 4]) { cases.append([original[0], mutated, original[2]]) }
        for mutated in seededMutations(of: original[2], count: 450, seed: 12, fieldOffsets: [0, 4]) { cases.append([original[0], original[1], mutated]) }

        var outcomes = (loaded: 0, refused: 0)
        withBoundedMemoryAndTime(headroomBytes: 512 << 20, timeoutSeconds: 300) {
            for files in cases {
                do {
                    let checkpoint = try LoadedCheckpoint(directory: folder, stateBytes: files[0], modelBytes: files[1], optimizerBytes: files[2])
                    _ = try CheckpointModel(file: checkpoint.model)
                    _ = try makeTrainer(configuration: configuration, data: data, communicator: communicator, resume: checkpoint)
                    outcomes.loaded += 1
                } catch {
                    let message = "\(error)"
                    XCTAssertFalse(message.isEmpty || message.contains("\n"), "not a one-line error: \(message)")
                    outcomes.refused += 1
                }
            }
        }
        XCTAssertEqual(outcomes.loaded + outcomes.refused, 1350)
        // Flipped bits in the float data mostly leave valid, finite weights (those load); the rest must not.
        XCTAssertGreaterThan(outcomes.refused, 700, "mutations caught: \(outcomes.refused), loaded: \(outcomes.loaded)")
        print("checkpoint fuzz: \(cases.count) mutations, \(outcomes.refused) refused with a one-line error, \(outcomes.loaded) loaded")
    }

    /// Byte mutations of state.json, and every field set to hostile values (extremes, wrong types).
    private func stateMutations(of original: [UInt8], count: Int) -> [[UInt8]] {
        let object = try! JSONSerialization.jsonObject(with: Data(original)) as! [String: Any]
        let keys = object.keys.sorted()
        let hostile: [Any] = [Int.max, Int.min, -1, 0, 1 << 41, 1e308, -0.5, "x", NSNull(), [1, 2], ["a": 1], true]
        var result: [[UInt8]] = []
        for (index, key) in keys.enumerated() {
            for (offset, value) in hostile.enumerated() where result.count < count / 2 {
                var changed = object
                changed[key] = value
                if (index + offset) % 3 == 0 { changed.removeValue(forKey: key) }
                result.append([UInt8](try! JSONSerialization.data(withJSONObject: changed)))
            }
        }
        return result + seededMutations(of: original, count: count - result.count, seed: 10, fieldOffsets: [])
    }
}
