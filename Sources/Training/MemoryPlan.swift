import Foundation
import Layers
import Optimizers
import Tensors

/// What one rank will hold while it trains, added up from the model's shapes before anything is allocated: the
/// memory preflight (`distrain summary --ranks N`, and the check before a run starts).
///
/// fp32 values and gradients (4 + 4 bytes per parameter), the optimizer's state (Adam 8, SGD with momentum 4), the
/// activations of one (micro-)batch or evaluation batch (every layer's output, its gradient and its workspace), the
/// other ranks' gradient slices a rank reads while summing in shared memory, and the runtime's own (libraries,
/// threads). Sharded (`--shard`), a rank keeps a 1/N slice of the optimizer state (stage 1), of the gradients too
/// plus the largest layer's in flight (stage 2), and of the parameters too plus the layer gathered (stage 3) — the
/// ZeRO paper's 16Ψ/N in fp32 — and stage 3 holds the whole parameters once at start-up, until they are sliced.
public struct MemoryPlan: Sendable {
    public var parameterCount: Int
    public var parameters: Int
    public var gradients: Int
    public var optimizerState: Int
    public var activations: Int
    /// Reading the other local ranks' gradient slices in the shared-memory sum.
    public var communication: Int
    public var runtime: Int
    /// What writing a checkpoint adds on the coordinator, for a moment: the files' bytes (nothing sharded: each rank
    /// writes its own slice where it lies — a cluster without a shared file system gathers onto the coordinator,
    /// which this plan does not count).
    public var checkpointWriting: Int
    /// Ranks sharing this host's memory.
    public var localRanks: Int
    public var isSharded: Bool
    /// `--recompute`: the residual blocks' insides counted once.
    public var recomputes: Bool
    public var sharding: ShardingStage?
    /// Stage 3's start-up: a rank initializes or restores only its slice, but reads each tensor of a checkpoint (or
    /// an `--init-from` file) whole, one at a time, to check it — twice for a tied head.
    public var startup: Int
    /// Whether the run writes checkpoints (`checkpointWriting` then counts on this host).
    public var writesCheckpoints: Bool
    /// `--exact-sums`: the gradients' exact integer sums (32 bytes per parameter) counted with the gradients.
    public var sumsExactly: Bool

    /// Each rank's box in the host's shared mailbox (`HostMailbox`: 2^22 floats).
    public static let mailboxBytes = 16 << 20

    /// Measured beside the rest (a small model's whole process): Swift, MPI, OpenBLAS and oneDNN with their threads.
    public static let runtimeBytes = 80 << 20

    /// - Parameters:
    ///   - batch: samples per forward pass on this rank (the micro-batch; an evaluation batch when larger).
    ///   - sharedMemoryRanks: ranks of this host that sum gradients in shared memory (1: none).
    public init(layers: [Layer], inputCount: Int, optimizer: OptimizerKind, momentum: Float, sharding: ShardingStage?,
                worldSize: Int, localRanks: Int, batch: Int, sharedMemoryRanks: Int, writesCheckpoints: Bool,
                recompute: Bool = false, exactSums: Bool = false) {
        let specs = layers.flatMap(\.parameterSpecs)
        let count = specs.reduce(0) { $0 + $1.shape.reduce(1, *) }
        // A tied head's weight is written a second time under its own name (PyTorch's state_dict has both).
        let tiedAliasCount = layers.flatMap(\.tiedParameters).reduce(0) { total, tie in
            total + (specs.first { $0.name == tie.tiedTo }?.shape.reduce(1, *) ?? 0)
        }
        parameterCount = count
        parameters = 4 * count
        gradients = 4 * count
        let statePerParameter = optimizer == .sgd ? (momentum > 0 ? 4 : 0) : 8
        let owned = sharding != nil && worldSize > 1 ? (count + worldSize - 1) / worldSize : count
        let windows = Self.layerWindows(layers, specs: specs)
        optimizerState = statePerParameter * owned
        let shardsGradients = sharding == .gradients || sharding == .parameters
        if sharding == .parameters && owned < count { parameters = 4 * min(count, owned + windows.gathered) }
        if shardsGradients && owned < count { gradients = 4 * min(count, owned + windows.inFlight) }
        if exactSums { gradients += ExactSums.bytes(count: count, scratchCount: windows.largestLayer) }
        sumsExactly = exactSums
        activations = Sequential.activationBytes(layers, inputCount: inputCount, batchCapacity: max(batch, 1),
                                                 recomputing: recompute)
        recomputes = recompute
        // Summed in shared memory, a rank reads the others' slices. Sharded, on one host the scatters and gathers pass
        // through a 16 MiB mailbox per rank; MPI's own, between hosts, copy a layer.
        let mailbox = sharedMemoryRanks > 1 && localRanks == worldSize
        communication = shardsGradients && owned < count ? (mailbox ? Self.mailboxBytes : 4 * windows.largestLayer)
            : sharedMemoryRanks > 1 ? 4 * count * (sharedMemoryRanks - 1) / sharedMemoryRanks : 0
        runtime = Self.runtimeBytes
        let largestTensor = specs.map { $0.shape.reduce(1, *) }.max() ?? 0
        startup = sharding == .parameters && owned < count ? 4 * owned + 8 * largestTensor + optimizerState + runtime : 0
        // Replicated, the coordinator builds each file in memory; sharded, every rank writes its slice in place.
        checkpointWriting = sharding != nil && owned < count ? 0 : 4 * (count + tiedAliasCount) + statePerParameter * count
        self.localRanks = localRanks
        isSharded = sharding != nil
        self.sharding = sharding
        self.writesCheckpoints = writesCheckpoints
    }

    /// The parameters a layer's passes gather at once (its own and the ones it is tied to, the most of any layer),
    /// the gradients in flight during backward (at each layer its own, and the tied tables a later layer has added to
    /// and whose own layer has not run yet — the most of any layer), and the largest layer's own.
    static func layerWindows(_ layers: [Layer], specs: [ParameterSpec]) -> (gathered: Int, inFlight: Int, largestLayer: Int) {
        func size(_ name: String) -> Int { specs.first { $0.name == name }?.shape.reduce(1, *) ?? 0 }
        let own = layers.map { $0.parameterSpecs.reduce(0) { $0 + $1.shape.reduce(1, *) } }
        let owner = Dictionary(layers.enumerated().flatMap { index, layer in layer.parameterSpecs.map { ($0.name, index) } },
                               uniquingKeysWith: { first, _ in first })
        // (the tying layer, the table's own layer, its size)
        let ties = layers.enumerated().flatMap { index, layer in
            layer.tiedParameters.map { (from: index, to: owner[$0.tiedTo] ?? index, size: size($0.tiedTo)) }
        }
        let gathered = layers.indices.map { index in own[index] + ties.filter { $0.from == index }.reduce(0) { $0 + $1.size } }
        let inFlight = layers.indices.map { index in
            own[index] + ties.filter { $0.to < index && index <= $0.from }.reduce(0) { $0 + $1.size }
        }
        return (gathered.max() ?? 0, inFlight.max() ?? 0, own.max() ?? 0)
    }

    /// One rank's steady-state bytes.
    public var perRank: Int { parameters + gradients + optimizerState + activations + communication + runtime }

    /// One rank's most: the steady state, or stage 3's start-up when that is more.
    public var peakPerRank: Int { max(perRank, startup) }

    /// This host's bytes: its ranks, and the coordinator's checkpoint writing on top when the run writes them.
    public var perHost: Int { localRanks * peakPerRank + (writesCheckpoints ? checkpointWriting : 0) }

    /// The table `summary` prints and a refused run shows.
    public var table: [String] {
        func mib(_ bytes: Int) -> String { String(format: "%9.0f MiB", Double(bytes) / 1_048_576) }
        return [
            "  parameters (fp32)          \(mib(parameters))",
            (sumsExactly ? "  gradients (+ exact sums)   " : "  gradients (fp32)           ") + mib(gradients),
            "  optimizer state            \(mib(optimizerState))",
            "  activations and workspace  \(mib(activations))",
            "  gradient sum, gathers      \(mib(communication))",
            "  runtime                    \(mib(runtime))",
            "  per rank                   \(mib(perRank))",
        ] + (startup > perRank ? ["  start-up                   \(mib(startup)) (reading the largest tensor whole)"] : []) + [
            "  checkpoint writing, rank 0 \(mib(checkpointWriting)) (for a moment; \(writesCheckpoints ? "counted" : "no checkpoints"))",
            "  this host (\(localRanks) rank\(localRanks == 1 ? "" : "s"))       \(mib(perHost))",
        ]
    }

    /// The host's available memory (MemAvailable of /proc/meminfo), nil where it cannot be read — or less, when
    /// `DISTRAIN_MEMORY_LIMIT_MB` says to leave the rest of the host to others.
    public static func availableBytes() -> Int? {
        let limit = ProcessInfo.processInfo.environment["DISTRAIN_MEMORY_LIMIT_MB"].flatMap { Int($0) }.map { $0 << 20 }
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return limit }
        return min(kilobytes * 1024, limit ?? .max)
    }

    /// The parts in one line: "parameters 1173 MiB, gradients 1173 MiB, …".
    public var summaryLine: String {
        let parts = [("parameters", parameters), ("gradients", gradients), ("optimizer state", optimizerState),
                     ("activations", activations), ("gradient sum", communication), ("runtime", runtime)]
        return parts.map { "\($0.0) \($0.1 >> 20) MiB" }.joined(separator: ", ")
            + (startup > perRank ? " (\(startup >> 20) MiB at start-up)" : "")
            + " per rank × \(localRanks)" + (writesCheckpoints ? " + \(checkpointWriting >> 20) MiB writing a checkpoint" : "")
    }

    /// Throws `MemoryPlanError` when this host's ranks would need more than `available` bytes, with the table and
    /// what would make it fit.
    public func check(available: Int?) throws {
        guard let available, perHost > available else { return }
        var remedies: [String] = []
        switch sharding {
        case nil:
            remedies.append("--shard parameters (optimizer state, gradients and parameters split over the ranks; "
                + "--shard optimizer or gradients split less)")
        case .optimizer?, .gradients?: remedies.append("--shard parameters (the parameters and gradients split too)")
        case .parameters?: break
        }
        if activations > perRank / 4 { remedies.append("--accumulate K (a K-th of the activations)") }
        if activations > perRank / 4 && !recomputes { remedies.append("--recompute (the residual blocks' insides kept once)") }
        remedies.append("fewer ranks on this host, or more hosts")
        throw MemoryPlanError(needed: perHost, available: available, plan: summaryLine, remedies: remedies)
    }
}

/// A run that would not fit in memory, refused before allocating.
public struct MemoryPlanError: Error, CustomStringConvertible {
    public let needed: Int
    public let available: Int
    public let plan: String
    public let remedies: [String]

    public var description: String {
        "this host's ranks need about \(needed >> 20) MiB and \(available >> 20) MiB are available: not started, "
            + "nothing allocated (\(plan)). Try \(remedies.joined(separator: "; ")); distrain summary --ranks N shows the plan"
    }
}
