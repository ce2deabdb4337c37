import Tensors
import XCTest
import Collectives
import Datasets
import Layers
import Optimizers
import SafeTensors
import Text
@testable import Training
import _TestSupport

/// A language model on a token-shard folder (`distrain tokenize`'s output): N ranks give one rank's
/// parameters and exact evaluation, a resumed run continues exactly, and the loss falls.
final class TokenTrainingTests: XCTestCase {
    private static let context = 8

    /// A folder of 24 generated documents, a 300-token BPE vocabulary, shards with a validation split.
    private static let shards: String = {
        let corpus = makeTemporaryDirectory("token-corpus")
        let words = ["the", "earth", "was", "without", "form", "and", "void", "light", "God", "said", "let", "there", "be"]
        var state: UInt64 = 7
        for document in 0..<24 {
            var text = ""
            for _ in 0..<60 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                text += words[Int(state >> 33) % words.count] + (state >> 60 == 0 ? ".\n" : " ")
            }
            writeBytes(Array(text.utf8), to: corpus + "/doc-\(document + 10).txt")
        }
        let files = try! CorpusFiles.expand([corpus])
        var training = TokenizerTrainingOptions()
        training.vocabularySize = 300
        let tokenizer = try! TokenizerTraining.train(files: files, options: training)
        var options = TokenizationOptions(outputDirectory: corpus + "/tokens")
        options.validationFraction = 0.25
        options.shardTokens = 700  // several shards: windows straddle shard boundaries
        _ = try! CorpusTokenization.run(files: files, tokenizer: tokenizer, options: options)
        return options.outputDirectory
    }()

    private func data(trainWindows: Int) throws -> TrainingData {
        let train = try TokenWindowDataset(directory: Self.shards, split: "train", contextLength: Self.context)
        let test = try TokenWindowDataset(directory: Self.shards, split: "val", contextLength: Self.context)
        return TrainingData(name: "tokens", train: train.firstSamples(trainWindows), test: test)
    }

    private let spec = "Embedding(300, 16)\nLinear(16, 32)\nGELU()\nLinear(32, 300)\n"

    /// Pre-LayerNorm transformer blocks: attention and an MLP, each on a residual path.
    private let transformer = """
    Embedding(300, 16)
    Residual(
        LayerNorm(16)
        CausalSelfAttention(16, 2)
    )
    Residual(
        LayerNorm(16)
        Linear(16, 64)
        GELU()
        Linear(64, 16)
    )
    LayerNorm(16)
    Linear(16, 300)
    """

    /// GPT-2's layout: learned positions, dropout on both residual paths, tanh GELU, a head tied to the table.
    private let tiedGPT = """
    wte = Embedding(300, 16, std=0.02)
    wpe = PositionEmbedding(8, 16)
    Residual(
        LayerNorm(16)
        CausalSelfAttention(16, 2)
        Dropout(0.1)
    )
    Residual(
        LayerNorm(16)
        Linear(16, 64)
        GELU(approximate='tanh')
        Linear(64, 16)
        Dropout(0.1)
    )
    ln_f = LayerNorm(16)
    head = Linear(16, 300, bias=False, tied_to='wte')
    """

    private func train(world: Int, epochs: Int, windows: Int = 41, checkpoints: String? = nil, resume: String? = nil,
                       spec specText: String? = nil, clip: Float? = nil, maxSteps: Int? = nil, evaluateEverySteps: Int? = nil,
                       reporter: TrainingReporter? = nil, accumulate: Int? = nil, capacity: UnsafeMutablePointer<Int>? = nil,
                       shard: ShardingStage? = nil, optimizer: OptimizerKind = .sgd, every: Int? = nil, recompute: Bool = false,
                       steps: UnsafeMutablePointer<Int>? = nil, exactSums: Bool = false)
        throws -> (parameters: [Float], result: EvaluationResult) {
        let data = try self.data(trainWindows: windows)
        let test = data.test as! TokenWindowDataset
        let objective = NextTokenObjective(vocabularySize: 300, positions: Self.context, bytesPerToken: test.bytesPerToken)
        var configuration = TrainingConfiguration(dataset: "tokens", epochs: epochs, globalBatchSize: 8, optimizer: optimizer,
                                                  learningRate: optimizer == .sgd ? 0.1 : 1e-3, momentum: 0.5)
        configuration.sharding = shard
        configuration.decaysMatricesOnly = optimizer == .adamw ? true : nil
        configuration.weightDecay = optimizer == .adamw ? 0.1 : 0
        configuration.clipGradientNorm = clip
        configuration.maxSteps = maxSteps
        configuration.evaluateEverySteps = evaluateEverySteps
        configuration.accumulationSteps = accumulate
        configuration.recompute = recompute ? true : nil
        configuration.exactSums = exactSums ? true : nil
        let spec = try ModelSpec(parsing: specText ?? self.spec, source: "lm.spec")
        return try InProcessGroup(size: world, timeoutSeconds: 120).run { comm in
            // Each rank builds its own layers (a BuiltModel's layers are objects: shared, they would race).
            let model = try spec.build(inputShape: [Self.context], outputShape: objective.outputShape)
                .makeSequential(inputShape: [Self.context])
            // Stage 3 initializes only the rank's slice (as `makeModel(communicator:)` does): the rest is never held.
            let initialized = shard == .parameters && world > 1 ? comm.ownedShard(of: model.parameters.count) : nil
            model.parameters.initializeKaimingUniform(seed: 5, in: initialized)
            if let initialized {
                XCTAssertTrue(model.parameters.values.indices.allSatisfy { initialized ~= $0 || model.parameters.values[$0] == 0 })
            }
            let loaded = try resume.map { try LoadedCheckpoint.load(directory: $0, communicator: comm) }
            let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model, communicator: comm), data: data,
                                      objective: objective, configuration: configuration, communicator: comm,
                                      reporter: reporter, checkpointing: checkpoints.map { CheckpointSettings(directory: $0, everySteps: every) },
                                      resume: loaded)
            let result = try trainer.run()
            if let passes = trainer.shardedPasses { try Self.checkOnlyOwnSlicesRemain(passes, rank: comm.rank) }
            try trainer.shardedPasses?.gatherWholeParameters()  // stage 3: rank 0 holds only its slice
            if comm.rank == 0 { steps?.pointee = trainer.globalStep }
            if comm.rank == 0 { capacity?.pointee = model.batchCapacity }
            return (Array(model.parameters.values), result)
        }[0]
    }

    func testWindowsAreTheTokenStreamAndTheTokensThatFollow() throws {
        let train = try TokenWindowDataset(directory: Self.shards, split: "train", contextLength: Self.context)
        let manifest = try TokenManifest.load(directory: Self.shards)
        let stream = try manifest.shards("train").flatMap { record -> [Int32] in
            let shard = try TokenShard(path: Self.shards + "/" + record.file)
            return (0..<shard.count).map { shard.token($0) }
        }
        XCTAssertGreaterThanOrEqual(manifest.shards("train").count, 2)
        XCTAssertEqual(train.count, (stream.count - 1) / Self.context)
        let rows: [Int32] = [0, Int32(train.count - 1), 3]
        let inputs = UnsafeMutablePointer<Float>.allocate(capacity: rows.count * Self.context)
        defer { inputs.deallocate() }
        let targets = TargetBuffer(rows: rows.count, for: train)
        try rows.withUnsafeBufferPointer { try train.gather($0, into: inputs, targets: targets, augmentation: nil) }
        for (row, window) in rows.enumerated() {
            for j in 0..<Self.context {
                XCTAssertEqual(inputs[row * Self.context + j], Float(stream[Int(window) * Self.context + j]))
                XCTAssertEqual(targets.indices[row * Self.context + j], stream[Int(window) * Self.context + j + 1])
            }
        }
        XCTAssertEqual(stream.first, manifest.endOfText, "each document starts after an end-of-text token")
    }

    func testTwoAndThreeRanksGiveTheParametersAndEvaluationOfOne() throws {
        // 41 windows in batches of 8: the last batch has one window, so the other ranks' shares are empty.
        let one = try train(world: 1, epochs: 6)
        for world in [2, 3] {
            let many = try train(world: world, epochs: 6)
            assertClose(many.parameters, one.parameters, relative: 1e-5, "parameters, \(world) ranks")
            XCTAssertEqual(many.result.meanLoss, one.result.meanLoss, accuracy: 1e-6 * one.result.meanLoss)
            XCTAssertEqual(many.result.sampleCount, one.result.sampleCount)
        }
        let test = try TokenWindowDataset(directory: Self.shards, split: "val", contextLength: Self.context)
        XCTAssertEqual(one.result.sampleCount, Int64(test.count * Self.context), "every validation position scored once")
        XCTAssertEqual(one.result.metrics.map(\.name), ["loss", "perplexity", "accuracy", "bits_per_byte"])
        XCTAssertEqual(one.result.metric("perplexity")!, exp(one.result.meanLoss), accuracy: 1e-9 * exp(one.result.meanLoss))
        let bitsPerByte = one.result.meanLoss / log(2) / test.bytesPerToken!
        XCTAssertEqual(one.result.metric("bits_per_byte")!, bitsPerByte, accuracy: 1e-12)
        XCTAssertLessThan(one.result.meanLoss, log(300) - 1, "the model learns the corpus's words (uniform: ln 300)")
    }

    func testATransformerOnThreeRanksGivesTheParametersOfOne() throws {
        let one = try train(world: 1, epochs: 6, spec: transformer)  // 36 steps, the last batch of each epoch 1 window
        let three = try train(world: 3, epochs: 6, spec: transformer)
        assertClose(three.parameters, one.parameters, relative: 1e-5, "parameters, 3 ranks")
        XCTAssertEqual(three.result.meanLoss, one.result.meanLoss, accuracy: 1e-6 * one.result.meanLoss)
        XCTAssertLessThan(one.result.meanLoss, log(300) - 1, "it learns")
    }

    /// `--precision bf16`: every GEMM's operands rounded to bf16, sums in fp32. Three ranks and one agree closely —
    /// not to fp32's 1e-5: an fp32 last-bit difference between the two runs' gradient sums can flip a bf16 rounding
    /// of a weight, and the flip is 2⁻⁹ of it — and the run learns as the fp32 one does.
    func testBF16GEMMsTrainLikeFP32AndAgreeAcrossRanks() throws {
        try XCTSkipUnless(BLAS.supportsBF16, "this CPU has no bf16 dot products; the CLI refuses --precision bf16 here")
        let fp32 = try train(world: 1, epochs: 6, spec: transformer)
        BLAS.precision = .bf16
        defer { BLAS.precision = .fp32 }
        let one = try train(world: 1, epochs: 6, spec: transformer)
        let three = try train(world: 3, epochs: 6, spec: transformer)
        XCTAssertNotEqual(one.parameters, fp32.parameters, "bf16 really computed")
        let difference = maximumRelativeDifference(three.parameters, one.parameters)
        print("bf16, 3 ranks against 1: max |Δ| / max |w| = \(difference)")
        XCTAssertLessThan(difference, 1e-3, "parameters, 3 ranks against 1, both bf16")
        XCTAssertEqual(one.result.meanLoss, fp32.result.meanLoss, accuracy: 0.01 * fp32.result.meanLoss, "loss as fp32's")
        XCTAssertEqual(three.result.meanLoss, one.result.meanLoss, accuracy: 1e-3 * one.result.meanLoss)
    }

    /// 36 steps with dropout, the last batch of each epoch one window (two of three ranks hold none).
    /// With global-norm clipping at 0.5 (below the gradients' norm early on, so it acts).
    func testATiedGPTWithDropoutOnThreeRanksGivesTheParametersOfOne() throws {
        let one = try train(world: 1, epochs: 6, spec: tiedGPT, clip: 0.5)
        let three = try train(world: 3, epochs: 6, spec: tiedGPT, clip: 0.5)
        let unclipped = try train(world: 1, epochs: 6, spec: tiedGPT)
        XCTAssertNotEqual(one.parameters, unclipped.parameters, "clipping acted")
        XCTAssertEqual(one.parameters.count, 300 * 16 + 8 * 16 + 2 * 16 + (4 * 16 * 16 + 4 * 16) + 2 * 16
                           + (16 * 64 + 64 + 64 * 16 + 16) + 2 * 16,
                       "one table for the embedding and the head")
        assertClose(three.parameters, one.parameters, relative: 1e-5, "parameters, 3 ranks")
        XCTAssertEqual(three.result.meanLoss, one.result.meanLoss, accuracy: 1e-6 * one.result.meanLoss)
        XCTAssertLessThan(one.result.meanLoss, log(300) - 1, "it learns")
    }

    /// `--accumulate`: 36 steps of a tied GPT with dropout and clipping in 3 micro-batches on one rank, and in 2 on each
    /// of 3 ranks (shares of 3, 3, 2 windows; the last batch of each epoch one window: empty micro-batches), give the
    /// parameters of one rank taking each batch whole; the buffers hold one micro-batch.
    func testAccumulatedMicroBatchesGiveTheParametersOfWholeBatches() throws {
        let capacity = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { capacity.deallocate() }
        let whole = try train(world: 1, epochs: 6, spec: tiedGPT, clip: 0.5, capacity: capacity)
        XCTAssertGreaterThanOrEqual(capacity.pointee, 8)
        let accumulated = try train(world: 1, epochs: 6, spec: tiedGPT, clip: 0.5, accumulate: 3, capacity: capacity)
        XCTAssertEqual(capacity.pointee, 3, "a micro-batch of at most ⌈8 / 3⌉ windows")
        assertClose(accumulated.parameters, whole.parameters, relative: 1e-5, "1 rank, 3 micro-batches")
        XCTAssertNotEqual(accumulated.parameters, whole.parameters, "another summation order: not bitwise, so the test sees it")
        let ranks = try train(world: 3, epochs: 6, spec: tiedGPT, clip: 0.5, accumulate: 2)
        assertClose(ranks.parameters, whole.parameters, relative: 1e-5, "3 ranks, 2 micro-batches each")
        XCTAssertEqual(ranks.result.meanLoss, whole.result.meanLoss, accuracy: 1e-6 * whole.result.meanLoss)
    }

    /// `--exact-sums` on a tied GPT (embeddings, LayerNorm, attention, dropout, GELU, a tied head; AdamW with
    /// clipping and decay groups): 1, 2 and 3 ranks give the same bits over 36 steps, with empty micro-batches.
    func testExactSumsGiveATiedGPTOneRanksBitsOnEveryWorldSize() throws {
        let one = try train(world: 1, epochs: 6, spec: tiedGPT, clip: 0.5, optimizer: .adamw, exactSums: true)
        for world in [2, 3] {
            let many = try train(world: world, epochs: 6, spec: tiedGPT, clip: 0.5, optimizer: .adamw, exactSums: true)
            let differing = zip(many.parameters, one.parameters).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "\(world) ranks: parameters that differ from one rank's")
            // The evaluation too: one GEMM per sample, its sums exact — the same test loss to the bit.
            XCTAssertEqual(many.result.meanLoss.bitPattern, one.result.meanLoss.bitPattern, "\(world) ranks")
        }
        let sharded = try train(world: 3, epochs: 6, spec: tiedGPT, clip: 0.5, shard: .optimizer, optimizer: .adamw,
                                exactSums: true)
        XCTAssertEqual(zip(sharded.parameters, one.parameters).filter { $0.bitPattern != $1.bitPattern }.count, 0,
                       "3 ranks with --shard optimizer (the whole exact sum, each rank updating its slice)")
        let recomputed = try train(world: 2, epochs: 6, spec: tiedGPT, clip: 0.5, optimizer: .adamw, recompute: true,
                                   exactSums: true)
        XCTAssertEqual(zip(recomputed.parameters, one.parameters).filter { $0.bitPattern != $1.bitPattern }.count, 0,
                       "2 ranks with --recompute (the blocks' forward again, with the same exact context)")
        let accumulated = try train(world: 3, epochs: 6, spec: tiedGPT, clip: 0.5, accumulate: 2, optimizer: .adamw,
                                    exactSums: true)
        XCTAssertEqual(zip(accumulated.parameters, one.parameters).filter { $0.bitPattern != $1.bitPattern }.count, 0,
                       "3 ranks in 2 micro-batches: exact sums do not depend on the micro-batches either (no BatchNorm)")
        // The same training as float sums where training is well-conditioned (SGD: Adam turns last bits of a near-zero
        // gradient into a fraction of a step).
        let exactSGD = try train(world: 1, epochs: 6, spec: tiedGPT, exactSums: true)
        assertClose(exactSGD.parameters, try train(world: 1, epochs: 6, spec: tiedGPT).parameters, relative: 1e-5,
                    "exact and float sums train alike")
    }

    /// `--max-steps`: 12 steps are exactly two epochs of 6; 8 stop two steps into the second epoch, which is
    /// the 8-step prefix of the longer run (a constant rate: the schedule does not depend on the length).
    func testMaxStepsStopsAtThatStepAndCountsEpochsFromIt() throws {
        let steps = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { steps.deallocate() }
        let twoEpochs = try train(world: 1, epochs: 2)
        let twelve = try train(world: 2, epochs: 99, maxSteps: 12, steps: steps)
        XCTAssertEqual(steps.pointee, 12)
        assertClose(twelve.parameters, twoEpochs.parameters, relative: 1e-5, "12 steps = 2 epochs of 6")
        let eight = try train(world: 1, epochs: 99, maxSteps: 8, steps: steps)
        XCTAssertEqual(steps.pointee, 8)
        XCTAssertNotEqual(eight.parameters, twoEpochs.parameters)
    }

    /// `--eval-every-steps 4` on 3 ranks: evaluations after steps 4 and 8 of each 6-step epoch's run (not at an epoch's
    /// end, which evaluates anyway), the same numbers as the test set's exact evaluation, and training untouched.
    func testEvaluationsEveryFewStepsLeaveTrainingBitwiseTheSame() throws {
        final class Recorder: TrainingReporter {
            var evaluations: [StepEvaluationRecord] = []
            func started(_ record: StartRecord) throws {}
            func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double?) {}
            func epochCompleted(_ record: EpochRecord) throws {}
            func finished(_ record: FinalRecord) throws {}
            func evaluatedAtStep(_ record: StepEvaluationRecord) throws { evaluations.append(record) }
        }
        let recorder = Recorder()
        let plain = try train(world: 3, epochs: 2)
        let evaluated = try train(world: 3, epochs: 2, evaluateEverySteps: 4, reporter: recorder)
        XCTAssertEqual(evaluated.parameters, plain.parameters, "evaluating in between changes no training bit")
        XCTAssertEqual(recorder.evaluations.map(\.step), [4, 8], "steps 4 and 8 of 12 (6 per epoch; 12 ends the run)")
        XCTAssertEqual(recorder.evaluations.map(\.split), ["test", "test"])
        XCTAssertEqual(recorder.evaluations.map(\.epoch), [1, 2])
        let loss = try XCTUnwrap(recorder.evaluations.first?.metrics.first { $0.name == "loss" }?.value)
        XCTAssertTrue(loss.isFinite && loss > 0 && loss < log(300.0) + 1, "\(loss)")
    }

    /// The checkpoint holds the table under both names (as PyTorch's state_dict does) and resumes bitwise.
    func testATiedGPTResumesExactly() throws {
        let root = makeTemporaryDirectory("tied-checkpoints")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = try train(world: 1, epochs: 3, spec: tiedGPT)
        _ = try train(world: 1, epochs: 1, checkpoints: root, spec: tiedGPT)
        let file = try SafeTensors.decode(Array(try Data(contentsOf: URL(fileURLWithPath: "\(root)/step-00000006/model.safetensors"))),
                                          path: "model.safetensors")
        XCTAssertEqual(file.entries["head.weight"]?.shape, [300, 16])
        XCTAssertEqual(file.entries["wte.weight"]?.shape, [300, 16])
        let resumed = try train(world: 1, epochs: 3, checkpoints: root, resume: "\(root)/step-00000006", spec: tiedGPT)
        XCTAssertEqual(resumed.parameters, straight.parameters, "bitwise on the same world size")
    }

    func testAResumedRunContinuesExactly() throws {
        let root = makeTemporaryDirectory("token-checkpoints")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = try train(world: 1, epochs: 3)
        _ = try train(world: 1, epochs: 1, checkpoints: root)
        let resumed = try train(world: 2, epochs: 3, checkpoints: root, resume: "\(root)/step-00000006")
        assertClose(resumed.parameters, straight.parameters, relative: 1e-5, "resumed on 2 ranks")
        let resumedAlone = try train(world: 1, epochs: 3, checkpoints: root, resume: "\(root)/step-00000006")
        XCTAssertEqual(resumedAlone.parameters, straight.parameters, "bitwise on the same world size")
    }

    /// `--recompute`: the residual blocks share their inner buffers and run forward again before backward — the same
    /// arithmetic, dropout masks included, so the same parameters bitwise, alone and at stage 3 on 3 ranks; the plan
    /// counts the blocks' insides once. A model without residual blocks, or with BatchNorm in one, is refused.
    func testRecomputingTheBlocksGivesTheSameParametersInLessMemory() throws {
        let kept = try train(world: 1, epochs: 6, spec: tiedGPT, clip: 0.5, optimizer: .adamw)
        let recomputed = try train(world: 1, epochs: 6, spec: tiedGPT, clip: 0.5, optimizer: .adamw, recompute: true)
        XCTAssertEqual(recomputed.parameters, kept.parameters, "recomputed: bitwise")
        XCTAssertEqual(recomputed.result.meanLoss, kept.result.meanLoss)
        let sharded = try train(world: 3, epochs: 6, spec: tiedGPT, shard: .parameters, optimizer: .adamw)
        let both = try train(world: 3, epochs: 6, spec: tiedGPT, shard: .parameters, optimizer: .adamw, recompute: true)
        XCTAssertEqual(both.parameters, sharded.parameters, "recomputed at stage 3 on 3 ranks: bitwise")
        let layers = try ModelSpec(parsing: tiedGPT, source: "gpt.spec").build(inputShape: [Self.context], outputShape: [Self.context, 300]).layers
        let blocks = layers.compactMap { $0 as? Residual }.map { $0.bufferBytes(batchCapacity: 4) }
        let attention = CausalSelfAttention(positions: Self.context, features: 16, heads: 2, name: "a").workspaceBytes(batchCapacity: 4)
        XCTAssertEqual(blocks.count, 2)
        XCTAssertEqual(Sequential.activationBytes(layers, inputCount: Self.context, batchCapacity: 4, recomputing: true),
                       Sequential.activationBytes(layers, inputCount: Self.context, batchCapacity: 4) - blocks.reduce(0, +) + blocks.max()!,
                       "one block's insides kept (its one attention layer's buffers are already counted once)")
        XCTAssertGreaterThan(attention, 0)
        let model = try ModelSpec(parsing: tiedGPT, source: "gpt.spec").build(inputShape: [Self.context], outputShape: [Self.context, 300])
            .makeSequential(inputShape: [Self.context])
        XCTAssertNil(model.recomputeResidualBlocks())
        XCTAssertTrue(model.layers.compactMap { $0 as? Residual }.allSatisfy(\.recomputes))
        let plain = try ModelSpec(parsing: spec, source: "lm.spec").build(inputShape: [Self.context], outputShape: [Self.context, 300])
        XCTAssertEqual(plain.makeSequential(inputShape: [Self.context]).recomputeResidualBlocks(), "the model has no residual blocks to recompute")
        let normalized = try ModelSpec(parsing: "Linear(4, 4)\nResidual(\n    Linear(4, 4)\n    BatchNorm1d(4)\n)\nLinear(4, 2)",
                                       source: "bn.spec").build(inputShape: [4], outputShape: [2])
        XCTAssertNotNil(normalized.makeSequential(inputShape: [4]).recomputeResidualBlocks()?.contains("BatchNorm"))
    }

    /// A language model counts correct predictions per position — up to `context` per window seen, more than the
    /// windows: a mid-epoch checkpoint whose counts say so resumes (sharded, on another world size) and continues as
    /// the uninterrupted run; one beyond that is refused as damaged.
    func testAMidEpochLanguageModelCheckpointCountsPositions() throws {
        let root = makeTemporaryDirectory("token-mid-epoch")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = try train(world: 1, epochs: 3)
        _ = try train(world: 3, epochs: 2, checkpoints: root, shard: .parameters, every: 10)  // epoch 2, batch 4 of 6
        let path = root + "/step-00000010/state.json"
        var state = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let seen = try XCTUnwrap(state["partialSeen"] as? Int)
        XCTAssertEqual(seen, 32, "4 batches of 8 windows")
        func resume(correct: Int) throws -> [Float] {
            state["partialCorrect"] = correct
            try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: path))
            return try train(world: 2, epochs: 3, checkpoints: root + "/resumed-\(correct)", resume: root + "/step-00000010",
                             shard: .gradients).parameters
        }
        assertClose(try resume(correct: seen * Self.context), straight.parameters, relative: 1e-5, "every position correct")
        XCTAssertThrowsError(try resume(correct: seen * Self.context + 1)) {
            XCTAssertTrue("\($0)".contains("257 correct of 32 seen") && "\($0)".contains("damaged"), "\($0)")
        }
    }

    /// `--shard optimizer` (ZeRO-1): 36 steps of a tied GPT with dropout and clipping, AdamW with decay groups, on 3
    /// ranks (empty shares in each epoch's last batch) give the replicated 3-rank run's parameters bitwise; with SGD and
    /// momentum (well-conditioned, where N ranks = 1 rank is promised to 1e-5), 2 and 3 sharded ranks give one rank's.
    func testShardedOptimizerStateGivesTheReplicatedParameters() throws {
        let replicated = try train(world: 3, epochs: 6, spec: tiedGPT, clip: 0.5, optimizer: .adamw)
        let sharded = try train(world: 3, epochs: 6, spec: tiedGPT, clip: 0.5, shard: .optimizer, optimizer: .adamw)
        XCTAssertEqual(sharded.parameters, replicated.parameters, "the same update, slice by slice: bitwise")
        let one = try train(world: 1, epochs: 6, spec: tiedGPT, clip: 0.5)
        for world in [2, 3] {
            let momentum = try train(world: world, epochs: 6, spec: tiedGPT, clip: 0.5, shard: .optimizer)
            assertClose(momentum.parameters, one.parameters, relative: 1e-5, "SGD, \(world) sharded ranks against 1")
        }
    }

    /// `--shard gradients` and `--shard parameters` (ZeRO-2, -3): gradients reduce-scattered layer by layer, parameters
    /// gathered for each layer's passes. AdamW with decay groups on 3 ranks (empty shares) gives the replicated 3-rank
    /// run's parameters bitwise (each gradient is the same sum); with clipping (its norm summed slice by slice), SGD
    /// with momentum on 2 and 3 ranks, and with 2 micro-batches, gives one rank's.
    func testShardedGradientsAndParametersGiveTheReplicatedParameters() throws {
        let replicated = try train(world: 3, epochs: 6, spec: tiedGPT, optimizer: .adamw)
        let one = try train(world: 1, epochs: 6, spec: tiedGPT, clip: 0.5)
        for stage in [ShardingStage.gradients, .parameters] {
            let sharded = try train(world: 3, epochs: 6, spec: tiedGPT, shard: stage, optimizer: .adamw)
            XCTAssertEqual(sharded.parameters, replicated.parameters, "AdamW, 3 ranks, --shard \(stage): bitwise")
            XCTAssertEqual(sharded.result.meanLoss, replicated.result.meanLoss, "the same evaluation")
            for world in [2, 3] {
                let momentum = try train(world: world, epochs: 6, spec: tiedGPT, clip: 0.5, shard: stage)
                assertClose(momentum.parameters, one.parameters, relative: 1e-5, "SGD, \(world) ranks, --shard \(stage)")
            }
        }
        let accumulated = try train(world: 3, epochs: 6, spec: tiedGPT, clip: 0.5, accumulate: 2, shard: .parameters)
        assertClose(accumulated.parameters, one.parameters, relative: 1e-5, "--accumulate 2 --shard parameters, 3 ranks")
    }

    /// After sharded training a rank keeps only its own slice: every other rank's gradients (stages 2, 3) and
    /// parameters (stage 3) read as zeros — their pages given back, or zeroed where a page straddles two slices.
    private static func checkOnlyOwnSlicesRemain(_ passes: ShardedPasses, rank: Int) throws {
        let store = passes.store, owned = passes.owned
        let others = (0..<store.count).filter { !owned.contains($0) }
        XCTAssertFalse(owned.isEmpty || others.isEmpty, "rank \(rank) owns a proper slice")
        XCTAssertTrue(others.allSatisfy { store.gradients[$0] == 0 }, "rank \(rank): only its own gradients remain")
        XCTAssertTrue(owned.contains { store.gradients[$0] != 0 }, "rank \(rank): its own gradients are there")
        if passes.shardsParameters {
            XCTAssertTrue(others.allSatisfy { store.values[$0] == 0 }, "rank \(rank): only its own parameters remain")
        }
    }

    /// Sharded checkpoints are the replicated files: written by 3 sharded ranks, resumed on 2 sharded ranks and on 1
    /// replicated rank, they continue as the uninterrupted run; the optimizer file equals the replicated run's.
    func testShardedCheckpointsResumeOnAnyWorldSizeAndSharding() throws {
        let root = makeTemporaryDirectory("sharded-checkpoints")
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try train(world: 3, epochs: 1, checkpoints: root + "/sharded", shard: .optimizer, optimizer: .adamw)
        _ = try train(world: 3, epochs: 1, checkpoints: root + "/replicated", optimizer: .adamw)
        _ = try train(world: 3, epochs: 1, checkpoints: root + "/zero3", shard: .parameters, optimizer: .adamw)
        // Without a file system every rank sees, the coordinator gathers the slices and writes alone: the same files.
        CheckpointWriter.pretendsFoldersAreInvisible = true
        _ = try train(world: 3, epochs: 1, checkpoints: root + "/gathered", shard: .parameters, optimizer: .adamw)
        CheckpointWriter.pretendsFoldersAreInvisible = false
        for file in ["optimizer.safetensors", "model.safetensors"] {
            let files = try ["sharded", "zero3", "gathered", "replicated"].map {
                try Data(contentsOf: URL(fileURLWithPath: "\(root)/\($0)/step-00000006/\(file)"))
            }
            XCTAssertEqual(files[0], files[3], "--shard optimizer writes \(file) in parallel, as the replicated run")
            XCTAssertEqual(files[1], files[3], "--shard parameters writes \(file) in parallel, as the replicated run")
            XCTAssertEqual(files[2], files[3], "--shard parameters, gathered onto the coordinator: \(file) as replicated")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root + "/gathered").filter { $0.hasPrefix(".tmp") }
        XCTAssertEqual(leftovers, [], "the abandoned parallel folder is removed")
        // AdamW, 3 ranks: sharded → replicated continues bitwise as the uninterrupted replicated run.
        let straightThree = try train(world: 3, epochs: 3, optimizer: .adamw)
        let replicatedAgain = try train(world: 3, epochs: 3, checkpoints: root + "/again",
                                        resume: "\(root)/sharded/step-00000006", optimizer: .adamw)
        XCTAssertEqual(replicatedAgain.parameters, straightThree.parameters, "3 sharded → 3 replicated, bitwise")
        // SGD with momentum across world sizes: 3 sharded → 2 sharded, and → 1 replicated, as one uninterrupted rank.
        let straight = try train(world: 1, epochs: 3)
        _ = try train(world: 3, epochs: 1, checkpoints: root + "/momentum", shard: .optimizer)
        let onTwo = try train(world: 2, epochs: 3, checkpoints: root + "/momentum", resume: "\(root)/momentum/step-00000006",
                              shard: .optimizer)
        assertClose(onTwo.parameters, straight.parameters, relative: 1e-5, "3 sharded → 2 sharded")
        let alone = try train(world: 1, epochs: 3, checkpoints: root + "/alone", resume: "\(root)/momentum/step-00000006")
        assertClose(alone.parameters, straight.parameters, relative: 1e-5, "3 sharded → 1 replicated")
        // Stage 3 → stage 2 on another world size → stage 3 again, and → replicated.
        _ = try train(world: 3, epochs: 1, checkpoints: root + "/stage3", shard: .parameters)
        _ = try train(world: 2, epochs: 2, checkpoints: root + "/stage3", resume: "\(root)/stage3/step-00000006",
                      shard: .gradients)
        let backToThree = try train(world: 3, epochs: 3, checkpoints: root + "/stage3",
                                    resume: "\(root)/stage3/step-00000012", shard: .parameters)
        assertClose(backToThree.parameters, straight.parameters, relative: 1e-5, "3 → 2 → 3 ranks, stages 3, 2, 3")
        let replicatedFromThree = try train(world: 2, epochs: 3, checkpoints: root + "/stage3-replicated",
                                            resume: "\(root)/stage3/step-00000006")
        assertClose(replicatedFromThree.parameters, straight.parameters, relative: 1e-5, "stage 3 → 2 replicated ranks")
    }

    func testTokenIdsBeyondTheModelsVocabularyAreFoundBeforeTraining() throws {
        XCTAssertThrowsError(try TokenWindowDataset(directory: Self.shards, split: "train", contextLength: 8, vocabularySize: 100)) {
            XCTAssertTrue("\($0)".contains("train_000000.bin: token"), "\($0)")
            XCTAssertTrue("\($0)".contains("is outside the model's vocabulary of 100"), "\($0)")
        }
        XCTAssertThrowsError(try TokenWindowDataset(directory: Self.shards, split: "val", contextLength: 1_000_000)) {
            XCTAssertTrue("\($0)".contains("shorter than one window of 1000000 + 1"), "\($0)")
        }
    }
}
