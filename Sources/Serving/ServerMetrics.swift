import Foundation

/// Counters, gauges and histograms of the server, exposed at /metrics in Prometheus' text format (0.0.4).
/// Every update takes one lock for a few dictionary operations; label sets are bounded (endpoints and
/// statuses the server itself produces, model names given at start).
public final class ServerMetrics: @unchecked Sendable {
    private struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0, count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            for (index, bound) in bounds.enumerated() where value <= bound { counts[index] += 1 }
            sum += value
            count += 1
        }
    }

    private static let latencyBounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    private static let batchBounds: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    private let lock = NSLock()
    private var requests: [String: Int] = [:]          // "endpoint\tstatus"
    private var latency: [String: Histogram] = [:]     // endpoint
    private var batchSizes: [String: Histogram] = [:]  // model
    private var decodeBatches: [String: Histogram] = [:]
    private var counters: [String: Double] = [:]       // "name{labels}"
    private var gauges: [String: Double] = [:]

    public init() {}

    func record(endpoint: String, status: Int, seconds: Double) {
        locked {
            requests["\(endpoint)\t\(status)", default: 0] += 1
            latency[endpoint, default: Histogram(bounds: Self.latencyBounds)].observe(seconds)
        }
    }

    func observeBatch(model: String, size: Int, seconds: Double) {
        locked { batchSizes[model, default: Histogram(bounds: Self.batchBounds)].observe(Double(size)) }
    }

    func observeDecodeStep(model: String, sequences: Int, seconds: Double) {
        locked {
            decodeBatches[model, default: Histogram(bounds: Self.batchBounds)].observe(Double(sequences))
            // Tokens per second of the last steps (an exponential average over about 20 steps).
            let rate = seconds > 0 ? Double(sequences) / seconds : 0, key = label("distrain_generation_tokens_per_second", model)
            gauges[key] = gauges[key].map { 0.95 * $0 + 0.05 * rate } ?? rate
        }
    }

    func setQueueDepth(model: String, _ depth: Int) {
        locked { gauges[label("distrain_queue_depth", model)] = Double(depth) }
    }

    func setRunningSequences(model: String, _ count: Int) {
        locked { gauges[label("distrain_running_sequences", model)] = Double(count) }
    }

    func rejected(model: String) { add(label("distrain_rejected_requests_total", model), 1) }
    func generatedTokens(model: String, _ count: Int) { add(label("distrain_generated_tokens_total", model), Double(count)) }
    func promptTokens(model: String, _ count: Int) { add(label("distrain_prompt_tokens_total", model), Double(count)) }
    func finishedCompletion(model: String, reason: String) {
        add("distrain_completions_total{model=\"\(escaped(model))\",finish_reason=\"\(reason)\"}", 1)
    }

    /// The value of a counter or gauge by its full name with labels (tests).
    public func value(_ key: String) -> Double? { locked { counters[key] ?? gauges[key] } }

    /// Requests answered with `status` at `endpoint` (tests).
    public func requestCount(endpoint: String, status: Int) -> Int { locked { requests["\(endpoint)\t\(status)"] ?? 0 } }

    /// Samples per forward pass of a model so far: (upper bound, passes with at most that many) (tests, reports).
    public func batchSizeBuckets(model: String) -> [(bound: Double, count: Int)] {
        locked { batchSizes[model].map { Array(zip($0.bounds, $0.counts)).map { (bound: $0.0, count: $0.1) } } ?? [] }
    }

    /// Prometheus text exposition format.
    public func exposition() -> String {
        locked {
            var text = "# HELP distrain_http_requests_total Requests answered, by endpoint and status.\n"
            text += "# TYPE distrain_http_requests_total counter\n"
            for key in requests.keys.sorted() {
                let parts = key.split(separator: "\t", omittingEmptySubsequences: false)
                text += "distrain_http_requests_total{endpoint=\"\(escaped(String(parts[0])))\",status=\"\(parts[1])\"} "
                    + "\(requests[key]!)\n"
            }
            text += histogramText("distrain_http_request_duration_seconds", "Time from request head to response head.",
                                  latency, label: "endpoint")
            text += histogramText("distrain_batch_size", "Samples per forward pass (dynamic batching).", batchSizes,
                                  label: "model")
            text += histogramText("distrain_decode_batch_size", "Sequences per decode step (continuous batching).",
                                  decodeBatches, label: "model")
            for (values, type) in [(counters, "counter"), (gauges, "gauge")] {
                var typed = Set<String>()
                for key in values.keys.sorted() {
                    let metric = String(key.prefix { $0 != "{" })
                    if typed.insert(metric).inserted { text += "# TYPE \(metric) \(type)\n" }
                    text += "\(key) \(format(values[key]!))\n"
                }
            }
            return text
        }
    }

    private func histogramText(_ name: String, _ help: String, _ histograms: [String: Histogram], label: String) -> String {
        var text = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for key in histograms.keys.sorted() {
            let histogram = histograms[key]!, labels = "\(label)=\"\(escaped(key))\""
            for (bound, count) in zip(histogram.bounds, histogram.counts) {
                text += "\(name)_bucket{\(labels),le=\"\(format(bound))\"} \(count)\n"
            }
            text += "\(name)_bucket{\(labels),le=\"+Inf\"} \(histogram.count)\n"
            text += "\(name)_sum{\(labels)} \(format(histogram.sum))\n\(name)_count{\(labels)} \(histogram.count)\n"
        }
        return text
    }

    private func add(_ key: String, _ amount: Double) { locked { counters[key, default: 0] += amount } }

    private func label(_ name: String, _ model: String) -> String { "\(name){model=\"\(escaped(model))\"}" }

    private func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}
