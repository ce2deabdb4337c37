import ArgumentParser
import Collectives
import DistrainKit
import Datasets
import Foundation
import Layers
import Tensors
import Training

/// `distrain doctor`: is this machine (or this mpirun allocation) ready to train?
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check every rank: host, BLAS, threads vs cores, sgemm speed, allreduce latency and bandwidth, matching executables and data.",
        discussion: """
        Run it the way you will train:  mpirun --hostfile hostfiles/my-cluster -n 64 distrain doctor --dataset fashion-mnist
        Ends with GO or NO-GO and the reasons (exit 0 or 1).
        """)

    @Option(help: "Model whose gradient size the allreduce bandwidth is measured at.")
    var model = "mlp"

    @Option(help: "Input shape CxHxW for a model spec (default 1x28x28).")
    var input = "1x28x28"

    @Option(help: "Also check that every host has the same files of this dataset: \(DatasetRegistry.names).")
    var dataset: String?

    @OptionGroup var dataLocation: DataLocationOptions

    @OptionGroup var resources: ThreadOptions

    @Option(name: .customLong("gradient-sum"), help: "The gradient sum to time: auto (shared memory within each host) or allreduce.")
    var gradientSum: SumMethod = .auto

    func validate() throws {
        _ = try ModelChoice(model)
        _ = try parseInputShape(input)
        if let dataset { _ = try dataLocation.directory(for: try registeredDataset(dataset)) }
    }

    func run() throws {
        let communicator = try makeCommunicator()
        let (threads, _) = threadsPerRank(requested: resources.threads, communicator: communicator)
        BLAS.setThreadCount(threads)
        var go = true
        try runCollectively(communicator) {
            let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            let sgemm = measureSGEMM()
            let choice = try ModelChoice(model)
            let shape = choice.file == nil ? benchmarkInputShape(choice.preset) : try parseInputShape(input)
            let gradientCount = try choice.build(inputShape: shape, classes: 10).rows.reduce(0) { $0 + $1.parameters }
            let (latency, bandwidth) = try measureAllreduce(communicator, floats: gradientCount)
            let (sumMicroseconds, sumPath) = try measureGradientSum(communicator, floats: gradientCount)
            let dataChecksum = datasetChecksum()
            let row: [Int64] = [Int64(communicator.localRank), Int64(communicator.localSize), Int64(cores), Int64(threads),
                                Int64(bitPattern: sgemm.bitPattern), Int64(bitPattern: latency.bitPattern), Int64(bitPattern: bandwidth.bitPattern),
                                Int64(executableChecksum), dataChecksum.map(Int64.init) ?? -1,
                                Int64(bitPattern: sumMicroseconds.bitPattern)]
            let table = try communicator.allGather(row)
            let hosts = try communicator.allGather(text: communicator.hostName)
            let blas = try communicator.allGather(text: BLAS.summary)
            var verdict = true
            if communicator.isCoordinator {
                verdict = report(table: table, hosts: hosts, blas: blas, gradientCount: gradientCount, sumPath: sumPath,
                                 communicator: communicator)
            }
            var agreed: [Int64] = [verdict ? 0 : 1]
            try communicator.allreduce(&agreed, .max)
            go = agreed[0] == 0
        }
        if !go { throw ExitCode.failure }
    }

    /// Single-precision GEMM speed on this rank's threads, GFLOP/s (512³ products for ~0.3 s).
    private func measureSGEMM() -> Double {
        let n = 512
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n), b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
        gemm(.none, .none, m: n, n: n, k: n, a: a, b: b, beta: 0, c: c)  // warm-up
        var repetitions = 0
        let start = monotonicSeconds()
        while monotonicSeconds() - start < 0.3 || repetitions < 3 {
            gemm(.none, .none, m: n, n: n, k: n, a: a, b: b, beta: 0, c: c)
            repetitions += 1
        }
        return 2 * Double(n * n * n) * Double(repetitions) / (monotonicSeconds() - start) / 1e9
    }

    /// Median latency of a one-float allreduce (µs) and algorithm bandwidth of a gradient-sized one (GB/s).
    private func measureAllreduce(_ communicator: Communicator, floats: Int) throws -> (Double, Double) {
        if communicator.size == 1 { return (0, 0) }
        var one: [Float] = [1]
        var times: [Double] = []
        for _ in 0..<60 {
            let start = monotonicSeconds()
            try communicator.allreduce(&one, .sum)
            times.append(monotonicSeconds() - start)
        }
        let latency = times.dropFirst(10).sorted()[25] * 1e6
        var gradient = [Float](repeating: 1, count: floats)
        times = []
        for _ in 0..<12 {
            try communicator.barrier()
            let start = monotonicSeconds()
            try communicator.allreduce(&gradient, .sum)
            times.append(monotonicSeconds() - start)
        }
        let median = times.dropFirst(2).sorted()[5]
        return (latency, Double(floats * 4) / median / 1e9)
    }

    /// Median time of the gradient sum training does (the communicator's sum arena, at the model's
    /// gradient size) in µs, and how it travels.
    private func measureGradientSum(_ communicator: Communicator, floats: Int) throws -> (Double, String) {
        let arena = try communicator.makeSumArena(count: floats, bucketElements: 1_048_576, method: gradientSum)
        var times: [Double] = []
        for _ in 0..<22 {
            arena.buffer.update(repeating: 1)  // sums of sums would overflow with many ranks
            try communicator.barrier()
            let start = monotonicSeconds()
            _ = try arena.sumOverRanks { _ in }
            times.append(monotonicSeconds() - start)
        }
        return (times.dropFirst(2).sorted()[10] * 1e6, arena.summary)
    }

    /// CRC-32 over the dataset's files on this host (nil: no --dataset; 0: files unreadable).
    private func datasetChecksum() -> UInt32? {
        guard let dataset else { return nil }
        guard let registered = try? registeredDataset(dataset), let directory = try? dataLocation.directory(for: registered) else { return 0 }
        let paths = registered.files(directory)
        var combined: UInt32 = 0
        for path in paths {
            guard let crc = try? fileChecksum(path) else { return 0 }
            combined = combined &* 16_777_619 ^ crc
        }
        return combined == 0 ? 1 : combined
    }

    /// Prints the table and the verdict; returns true for GO.
    private func report(table: [[Int64]], hosts: [String], blas: [String], gradientCount: Int, sumPath: String,
                        communicator: Communicator) -> Bool {
        func double(_ value: Int64) -> Double { Double(bitPattern: UInt64(bitPattern: value)) }
        print("distrain doctor: \(communicator.size) rank\(communicator.size == 1 ? "" : "s") (\(communicator.kind)), gradient of \(model) = \(grouped(Double(gradientCount))) floats, summed by \(sumPath)")
        print(pad("rank", 5) + pad("host", 16) + pad("local", 7) + pad("threads/cores", 15) + pad("sgemm GFLOP/s", 15)
              + pad("allreduce µs", 14) + pad("MB/s", 8) + pad("sum µs", 9) + pad("executable", 11) + "data")
        for (rank, row) in table.enumerated() {
            let data = row[8] < 0 ? "-" : row[8] == 0 ? "MISSING" : String(UInt32(truncatingIfNeeded: row[8]), radix: 16)
            print(pad(String(rank), 5) + pad(hosts[rank], 16) + pad("\(row[0])/\(row[1])", 7)
                  + pad("\(row[3])×\(row[1]) of \(row[2])", 15) + pad(format(double(row[4]), 1), 15)
                  + pad(format(double(row[5]), 1), 14) + pad(format(double(row[6]) * 1000, 0), 8)
                  + pad(format(double(row[9]), 1), 9)
                  + pad(String(UInt32(truncatingIfNeeded: row[7]), radix: 16), 11) + data)
        }
        print("BLAS: " + Set(blas).sorted().joined(separator: " | "))
        var problems: [String] = [], warnings: [String] = []
        func hostsOf(_ ranks: [Int]) -> String { Set(ranks.map { hosts[$0] }).sorted().joined(separator: ", ") }
        let executables = Dictionary(grouping: table.indices, by: { table[$0][7] })
        if executables.count > 1 {
            problems.append("executables differ: " + executables.values.map { "host(s) \(hostsOf($0))" }.sorted().joined(separator: " vs ") + " — install the same distrain build everywhere")
        }
        if dataset != nil {
            let missing = table.indices.filter { table[$0][8] == 0 }
            if !missing.isEmpty { problems.append("dataset files missing or unreadable on \(hostsOf(missing))") }
            let sums = Dictionary(grouping: table.indices.filter { table[$0][8] > 0 }, by: { table[$0][8] })
            if sums.count > 1 {
                problems.append("dataset files differ: " + sums.values.map { "host(s) \(hostsOf($0))" }.sorted().joined(separator: " vs "))
            }
        }
        for host in Set(hosts) {
            let ranks = table.indices.filter { hosts[$0] == host }
            let row = table[ranks[0]]
            if row[3] * row[1] > row[2] {
                warnings.append("host \(host): \(row[1]) ranks × \(row[3]) threads exceed \(row[2]) cores (oversubscribed: slower, not wrong)")
            }
        }
        let speeds = table.map { double($0[4]) }.sorted()
        let medianSpeed = speeds[speeds.count / 2]
        let slow = table.indices.filter { double(table[$0][4]) < 0.5 * medianSpeed }
        if !slow.isEmpty { warnings.append("sgemm on rank(s) \(slow.map(String.init).joined(separator: ", ")) is under half the median \(format(medianSpeed, 1)) GFLOP/s") }
        if communicator.size > 1 {
            let latencies = table.map { double($0[5]) }
            if let worst = latencies.max(), worst > 1000 { warnings.append("allreduce latency up to \(format(worst, 0)) µs: check the network (btl_tcp_if_include)") }
        }
        for warning in warnings { print("warning: \(warning)") }
        for problem in problems { print("problem: \(problem)") }
        print(problems.isEmpty ? "GO: every rank can train\(warnings.isEmpty ? "" : " (see the warnings)")" : "NO-GO: \(problems.count) problem\(problems.count == 1 ? "" : "s") above")
        fflush(nil)
        return problems.isEmpty
    }
}
