import Layers
import Optimizers
import Training
import XCTest

/// The memory preflight's arithmetic against hand-computed bytes, and its verdict.
final class MemoryPlanTests: XCTestCase {
    /// Embedding(10, 4) then Linear(4, 10) per position, windows of 3 tokens: 40 + 40 + 10 = 90 parameters.
    private func layers() throws -> [Layer] {
        try ModelSpec(parsing: "Embedding(10, 4)\nLinear(4, 10)", source: "test").build(inputShape: [3], outputShape: [3, 10]).layers
    }

    func testBytesAreTheHandCountedOnes() throws {
        let plan = MemoryPlan(layers: try layers(), inputCount: 3, optimizer: .adamw, momentum: 0, sharding: nil, worldSize: 4,
                              localRanks: 4, batch: 2, sharedMemoryRanks: 4, writesCheckpoints: false)
        XCTAssertEqual(plan.parameterCount, 90)
        XCTAssertEqual(plan.parameters, 360)
        XCTAssertEqual(plan.gradients, 360)
        XCTAssertEqual(plan.optimizerState, 720, "Adam's two moments")
        // Floats: the input 2·3, the embedding's output and gradient 2·(2·3·4), the head's 2·(2·3·10).
        XCTAssertEqual(plan.activations, 4 * (6 + 48 + 120))
        XCTAssertEqual(plan.communication, 4 * 90 * 3 / 4, "three of four ranks' slices read in the shared-memory sum")
        XCTAssertEqual(plan.perRank, 360 + 360 + 720 + 696 + 270 + MemoryPlan.runtimeBytes)
        XCTAssertEqual(plan.perHost, 4 * plan.perRank, "no checkpoints: none counted")
        let sharded = MemoryPlan(layers: try layers(), inputCount: 3, optimizer: .adamw, momentum: 0, sharding: .optimizer,
                                 worldSize: 4, localRanks: 4, batch: 2, sharedMemoryRanks: 4, writesCheckpoints: true)
        XCTAssertEqual(sharded.optimizerState, 8 * 23, "⌈90 / 4⌉ parameters' moments")
        XCTAssertEqual(sharded.checkpointWriting, 0, "each rank writes its slice in place")
        XCTAssertEqual(sharded.perHost, 4 * sharded.perRank + sharded.checkpointWriting)
        let sgd = MemoryPlan(layers: try layers(), inputCount: 3, optimizer: .sgd, momentum: 0.9, sharding: nil, worldSize: 1,
                             localRanks: 1, batch: 2, sharedMemoryRanks: 1, writesCheckpoints: false)
        XCTAssertEqual(sgd.optimizerState, 360, "one momentum buffer")
        XCTAssertEqual(sgd.communication, 0)
        let exact = MemoryPlan(layers: try layers(), inputCount: 3, optimizer: .sgd, momentum: 0.9, sharding: nil, worldSize: 1,
                               localRanks: 1, batch: 2, sharedMemoryRanks: 1, writesCheckpoints: false, exactSums: true)
        // --exact-sums: four Int64 limbs per parameter and the out-of-range counter, and one layer's floats of scratch
        // (the largest layer: the embedding's 40 or the head's 50).
        XCTAssertEqual(exact.gradients, 360 + 8 * (4 * 90 + 1) + 4 * 50)
        XCTAssertTrue(exact.table.contains { $0.contains("gradients (+ exact sums)") }, "\(exact.table)")
    }

    /// ZeRO-2 and -3: ⌈90 / 4⌉ = 23 owned values of each arena, plus the largest layer's (the head's 50) in flight;
    /// stage 3 initializes or restores only its slice. A tied head gathers the table it is tied to, and the
    /// table's gradient waits for the embedding's backward beside each layer's in between (not beside its own).
    func testStagesTwoAndThreeKeepSlicesAndOneLayer() throws {
        func plan(_ layers: [Layer], _ stage: ShardingStage) -> MemoryPlan {
            MemoryPlan(layers: layers, inputCount: 3, optimizer: .adamw, momentum: 0, sharding: stage, worldSize: 4,
                       localRanks: 4, batch: 2, sharedMemoryRanks: 4, writesCheckpoints: true)
        }
        let gradients = plan(try layers(), .gradients), parameters = plan(try layers(), .parameters)
        XCTAssertEqual([gradients.parameters, gradients.gradients, gradients.optimizerState], [360, 4 * (23 + 50), 8 * 23])
        XCTAssertEqual(gradients.communication, MemoryPlan.mailboxBytes, "one host: the mailbox, no shared-memory reads")
        let acrossHosts = MemoryPlan(layers: try layers(), inputCount: 3, optimizer: .adamw, momentum: 0, sharding: .gradients,
                                     worldSize: 8, localRanks: 4, batch: 2, sharedMemoryRanks: 4, writesCheckpoints: true)
        XCTAssertEqual(acrossHosts.communication, 4 * 50, "between hosts MPI's reduce-scatter copies a layer")
        XCTAssertEqual(gradients.startup, 0)
        XCTAssertEqual([parameters.parameters, parameters.gradients], [4 * (23 + 50), 4 * (23 + 50)])
        XCTAssertEqual(parameters.startup, 4 * 23 + 8 * 40 + 8 * 23 + MemoryPlan.runtimeBytes,
                       "its slice, and the largest tensor (the table's or the head's 40) read whole twice")
        XCTAssertEqual(parameters.perHost, 4 * max(parameters.perRank, parameters.startup))
        let spec = "wte = Embedding(10, 4)\nLinear(4, 100)\nLinear(100, 4)\nhead = Linear(4, 10, bias=False, tied_to='wte')"
        let tied = try ModelSpec(parsing: spec, source: "test").build(inputShape: [3], outputShape: [3, 10]).layers
        let tiedPlan = plan(tied, .parameters)  // 40 + 500 + 404 = 944 parameters, 236 owned
        XCTAssertEqual(tiedPlan.parameters, 4 * (236 + 500), "the largest layer gathered (the head gathers only 40)")
        XCTAssertEqual(tiedPlan.gradients, 4 * (236 + 500 + 40), "the largest layer's, beside the table's waiting for the embedding")
    }

    /// An attention layer's workspace is what it allocates: qkv and its gradient, heads' outputs and gradient,
    /// probabilities, one head's score gradient.
    func testAttentionWorkspaceIsItsBuffers() {
        let attention = CausalSelfAttention(positions: 8, features: 16, heads: 2, name: "a")
        let rows = 3 * 8
        XCTAssertEqual(attention.workspaceBytes(batchCapacity: 3), 4 * (2 * rows * 48 + 2 * rows * 16 + 3 * 2 * 64 + 64))
    }

    func testTheVerdictNamesTheRemedies() throws {
        let plan = MemoryPlan(layers: try layers(), inputCount: 3, optimizer: .adamw, momentum: 0, sharding: nil, worldSize: 2,
                              localRanks: 2, batch: 2, sharedMemoryRanks: 2, writesCheckpoints: false)
        XCTAssertNoThrow(try plan.check(available: plan.perHost))
        XCTAssertNoThrow(try plan.check(available: nil), "unknown memory: no verdict")
        XCTAssertThrowsError(try plan.check(available: plan.perHost - 1)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("not started, nothing allocated") && text.contains("--shard optimizer"), text)
            XCTAssertFalse(text.contains("\n"), "one line")
        }
    }
}
