import Collectives

/// Ranks that disagree on something they must share (flags, data, model, position in training).
public enum StartupError: Error, CustomStringConvertible {
    /// `values` by rank; `hosts` (by rank, when known) names where each rank runs.
    case disagreement(field: String, values: [Int: Int64], hosts: [String] = [])

    public var description: String {
        switch self {
        case let .disagreement(field, values, hosts):
            let groups = Dictionary(grouping: values.keys.sorted(), by: { values[$0]! })
            let parts = groups.sorted { $0.value[0] < $1.value[0] }.map { value, ranks -> String in
                let names = ranks.map { rank in hosts.indices.contains(rank) ? "\(rank) on \(hosts[rank])" : String(rank) }
                return "rank\(ranks.count > 1 ? "s" : "") \(names.joined(separator: ", ")): \(String(UInt64(bitPattern: value), radix: 16))"
            }
            return "ranks disagree on \(field) (\(parts.joined(separator: "; "))); start every rank with the same arguments, data and executable"
        }
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
