import DurableFiles
import Foundation

/// The folder `distrain tokenize` writes: created if absent; reused only when it is empty or holds this
/// same tokenization (its marker says so: an interrupted run is simply run again). Anything else in it
/// — another tokenization, files distrain did not write — is refused, never deleted.
enum TokenOutputFolder {
    static let markerName = ".distrain-tokens"

    /// Makes `directory` ready for a tokenization described by `settings`, removing only its own files.
    static func prepare(_ directory: String, settings: String) throws {
        var status = stat()
        if stat(directory, &status) != 0 {
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw TextError.refusedOutput(path: directory, reason: String(cString: strerror(errno)))
            }
        } else if status.st_mode & S_IFMT != S_IFDIR {
            throw TextError.refusedOutput(path: directory, reason: "it exists and is not a folder; give a new folder")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let markerPath = directory + "/" + markerName
        if !names.isEmpty {
            guard names.contains(markerName) else {
                throw TextError.refusedOutput(path: directory, reason: "it holds files distrain did not write ("
                    + names.sorted().prefix(3).joined(separator: ", ") + "); give an empty or new folder")
            }
            let recorded = (try? String(contentsOfFile: markerPath, encoding: .utf8)) ?? ""
            guard recorded == settings else {
                throw TextError.refusedOutput(path: directory, reason: "it holds another tokenization (another "
                    + "tokenizer, corpus or settings); give a new folder, or delete this one yourself")
            }
            for name in names where name != markerName {
                guard isOurs(name) else {
                    throw TextError.refusedOutput(path: directory, reason: "it holds \(name), which distrain did not "
                        + "write; move it away")
                }
            }
            for name in names where name != markerName { unlink(directory + "/" + name) }
        }
        try writeFileAtomically(settings, to: markerPath)
    }

    /// Names `distrain tokenize` writes: shards, the manifest, the tokenizer, and their partial files.
    static func isOurs(_ name: String) -> Bool {
        var base = name
        if let written = baseOfTemporaryName(base) { base = written }
        // Leftovers of earlier versions, which wrote `.NAME.partial`.
        if base.hasPrefix(".") && base.hasSuffix(".partial") { base = String(base.dropFirst().dropLast(8)) }
        if base == TokenManifest.fileName || base == TokenManifest.tokenizerFileName { return true }
        for split in ["train_", "val_"] where base.hasPrefix(split) && base.hasSuffix(".bin") {
            return base.dropFirst(split.count).dropLast(4).allSatisfy(\.isNumber)
        }
        return false
    }
}
