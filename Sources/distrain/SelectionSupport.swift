import DurableFiles
import Collectives
import Foundation
import Selection
import Training

/// A small JSON file (a fold's or trial's result) read on the coordinator and given to every rank;
/// nil when it does not exist. A file that exists but does not decode is an error naming it.
func readOnCoordinator<T: Decodable>(_ session: TrainingSession, _ path: String, as type: T.Type) throws -> T? {
    var bytes: [UInt8] = [], localError: Error?
    if session.communicator.isCoordinator, FileManager.default.fileExists(atPath: path) {
        do { bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch { localError = error }
    }
    try session.communicator.agreeOnSuccess(localError)
    bytes = try session.communicator.broadcast(bytes: bytes, root: 0)
    guard !bytes.isEmpty else { return nil }
    do {
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    } catch {
        throw SelectionError(message: "\(path) is not a result this version wrote; remove it or use a new folder")
    }
}

/// Writes `value` as JSON from the coordinator, atomically; every rank learns whether it worked.
func writeOnCoordinator<T: Encodable>(_ session: TrainingSession, _ value: T, to path: String) throws {
    var localError: Error?
    if session.communicator.isCoordinator {
        do { try writeJSONAtomically(value, to: path) } catch { localError = error }
    }
    try session.communicator.agreeOnSuccess(localError)
}

/// Creates a folder (and its parents) on the coordinator; every rank learns whether it worked.
func createFolderOnCoordinator(_ session: TrainingSession, _ path: String) throws {
    var localError: Error?
    if session.communicator.isCoordinator {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            localError = SelectionError(message: "cannot create \(path): \(error.localizedDescription)")
        }
    }
    try session.communicator.agreeOnSuccess(localError)
}

/// Pretty JSON written to a temporary file beside `path`, then renamed: never half a file.
func writeJSONAtomically<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try writeFileAtomically(String(decoding: try encoder.encode(value), as: UTF8.self) + "\n", to: path)
}

