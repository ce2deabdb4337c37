import DistrainKit
import DurableFiles
import Collectives
import Foundation
import Selection
import Training

/// A small JSON file (a fold's or trial's result) read on the coordinator and given to every rank;
/// nil when it does not exist. A file that exists but does not decode is an error naming it.
func readOnCoordinator<T: Decodable>(_ session: TrainingSession, _ path: String, as type: T.Type) throws -> T? {
    let read = try session.communicator.onCoordinator { () -> [UInt8] in
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
    let bytes = try session.communicator.broadcast(bytes: read ?? [], root: 0)
    guard !bytes.isEmpty else { return nil }
    do {
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    } catch {
        throw SelectionError(message: "\(path) is not a result this version wrote; remove it or use a new folder")
    }
}

/// Writes `value` as JSON from the coordinator, atomically; every rank learns whether it worked.
func writeOnCoordinator<T: Encodable>(_ session: TrainingSession, _ value: T, to path: String) throws {
    try session.communicator.onCoordinator { try writeJSONAtomically(value, to: path) }
}

/// Creates a folder (and its parents) on the coordinator; every rank learns whether it worked.
func createFolderOnCoordinator(_ session: TrainingSession, _ path: String) throws {
    try session.communicator.onCoordinator {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw SelectionError(message: "cannot create \(path): \(error.localizedDescription)")
        }
    }
}

/// Pretty JSON written to a temporary file beside `path`, then renamed: never half a file.
func writeJSONAtomically<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try writeFileAtomically(String(decoding: try encoder.encode(value), as: UTF8.self) + "\n", to: path)
}

