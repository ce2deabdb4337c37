import Collectives
import DurableFiles
import Foundation
import Selection
import Training

extension TrainingSession {
    /// A small JSON file (a fold's or trial's result) read on the coordinator and given to every rank;
    /// nil when it does not exist. A file that exists but does not decode is an error naming it.
    public func readOnCoordinator<T: Decodable>(_ path: String, as type: T.Type) throws -> T? {
        let read = try communicator.onCoordinator { () -> [UInt8] in
            guard FileManager.default.fileExists(atPath: path) else { return [] }
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        let bytes = try communicator.broadcast(bytes: read ?? [], root: 0)
        guard !bytes.isEmpty else { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw SelectionError(message: "\(path) is not a result this version wrote; remove it or use a new folder")
        }
    }

    /// Writes `value` as JSON from the coordinator, atomically; every rank learns whether it worked.
    public func writeOnCoordinator<T: Encodable>(_ value: T, to path: String) throws {
        try communicator.onCoordinator { try writeJSONAtomically(value, to: path) }
    }

    /// Creates a folder (and its parents) on the coordinator; every rank learns whether it worked.
    public func createFolderOnCoordinator(_ path: String) throws {
        try communicator.onCoordinator {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw SelectionError(message: "cannot create \(path): \(error.localizedDescription)")
            }
        }
    }
}
