import Collectives

/// Ranks that disagree on something they must share (flags, data, model, position in training).
public enum StartupError: Error, CustomStringConvertible {
    /// `values` by rank; `hosts` (by rank, when known) names where each rank runs.
    case disagreement(field: String, values: [Int: Int64], hosts: [String] = [])
    /// A command-line setting differs: its flag and each rank's value.
    case settingDisagreement(flag: String, values: [Int: String], hosts: [String] = [])

    public var description: String {
        switch self {
        case let .disagreement(field, values, hosts):
            let hex = values.mapValues { String(UInt64(bitPattern: $0), radix: 16) }
            return "ranks disagree on \(field) (\(Self.byRank(hex, hosts: hosts))); start every rank with the same "
                + "arguments, data and executable"
        case let .settingDisagreement(flag, values, hosts):
            return "ranks disagree on the configuration: \(flag) differs (\(Self.byRank(values, hosts: hosts))); "
                + "start every rank with the same arguments"
        }
    }

    /// "ranks 0 on h1, 1 on h1: a; rank 2 on h2: b": the ranks grouped by the value they hold.
    private static func byRank(_ values: [Int: String], hosts: [String]) -> String {
        let groups = Dictionary(grouping: values.keys.sorted(), by: { values[$0]! })
        return groups.sorted { $0.value[0] < $1.value[0] }.map { value, ranks -> String in
            let names = ranks.map { rank in hosts.indices.contains(rank) ? "\(rank) on \(hosts[rank])" : String(rank) }
            return "rank\(ranks.count > 1 ? "s" : "") \(names.joined(separator: ", ")): \(value)"
        }.joined(separator: "; ")
    }
}

extension Communicator {
    /// Throws on every rank unless every rank holds the same value of each named field, naming the first
    /// field that differs and which ranks hold which value (and, with `namingHosts`, where they run).
    /// Collective: every rank calls it with the same field names.
    func requireAgreement(on fields: [(name: String, value: Int64)], namingHosts: Bool = false) throws {
        if size == 1 { return }
        let table = try allGather(fields.map(\.value))
        for (index, field) in fields.enumerated() {
            let values = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($0.offset, $0.element[index]) })
            if Set(values.values).count > 1 {
                let hosts = namingHosts ? try allGather(text: hostName) : []
                throw StartupError.disagreement(field: field.name, values: values, hosts: hosts)
            }
        }
    }
}

extension Communicator {
    /// Throws on every rank unless every rank was started with the same settings, naming the first flag
    /// that differs and each rank's value. Collective.
    func requireSameSettings(_ configuration: TrainingConfiguration) throws {
        if size == 1 { return }
        let settings = configuration.settingsByFlag
        let separator: Character = "\u{1}"
        let table = try allGather(text: settings.map(\.value).joined(separator: String(separator)))
            .map { $0.split(separator: separator, omittingEmptySubsequences: false).map(String.init) }
        for (index, setting) in settings.enumerated() {
            let values = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($0.offset,
                $0.element.indices.contains(index) ? $0.element[index] : "?") })
            if Set(values.values).count > 1 {
                throw StartupError.settingDisagreement(flag: setting.flag, values: values, hosts: try allGather(text: hostName))
            }
        }
    }
}

extension TrainingConfiguration {
    /// Every setting as its command-line flag and value, for naming what ranks disagree on.
    var settingsByFlag: [(flag: String, value: String)] {
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "none" }
        return [("the dataset", dataset), ("--model", "\(modelLabel) (\(modelIdentity))"), ("--epochs", "\(epochs)"),
                ("--batch-size", "\(globalBatchSize)"), ("--optimizer", optimizer.rawValue), ("--lr", "\(learningRate)"),
                ("--momentum", "\(momentum)"), ("--nesterov", "\(nesterov)"), ("--weight-decay", "\(weightDecay)"),
                ("--schedule", schedule.rawValue), ("--warmup-epochs", "\(warmupEpochs)"), ("--step-epochs", text(stepEpochs)),
                ("--gamma", "\(gamma)"), ("--seed", "\(seed)"), ("--train-limit", text(trainLimit)), ("--test-limit", text(testLimit)),
                ("--bucket-mb", "\(bucketMegabytes)"), ("the evaluation batch", "\(evaluationBatchSize)"),
                ("--augment", "\(augment)"), ("--augment-padding", text(augmentPadding)), ("--on-nonfinite", onNonFinite.rawValue),
                ("--val-split", text(validationSplit)), ("--kfold", text(foldCount)), ("the fold", text(fold)),
                ("--monitor", text(monitor?.rawValue)), ("--early-stop", text(earlyStopPatience)),
                ("--plateau-factor", text(plateauFactor)), ("--plateau-patience", text(plateauPatience)),
                ("--min-lr", text(minimumLearningRate)), ("--label-smoothing",
                    text(labelSmoothing)), ("--test-each-epoch", text(testEachEpoch)),
                ("--tta", text(testTimeAugmentation?.rawValue)), ("--eval-every", text(evaluationInterval))]
    }
}
