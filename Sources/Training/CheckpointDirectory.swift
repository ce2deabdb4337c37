import Datasets
import Foundation

/// A `--checkpoint-dir` taken for one job: checked in the job's first second, locked for the job's
/// lifetime, and cleaned of what killed writers left behind.
///
/// The lock is `flock` on `DIR/.lock`: the kernel drops it when the process ends however it ends, so a
/// crashed job never leaves the folder stuck, and a second job on the same folder is refused instead of
/// silently replacing the first one's checkpoints. Only the coordinator (the one writer) holds it.
public final class CheckpointDirectoryLock {
    public let path: String
    private let descriptor: Int32

    /// Creates the folder if needed, checks it is a writable directory, takes the lock, then removes
    /// temporaries and partial checkpoints that an interrupted writer left. Errors name the cause.
    public init(path: String) throws {
        self.path = path
        try Self.prepareDirectory(path)
        let lockPath = "\(path)/.lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else { throw CheckpointError.unusableDirectory(path: path,
            problem: describeErrno(errno, creating: lockPath)) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw CheckpointError.unusableDirectory(
                path: path, problem: "another job holds it\(holder.isEmpty ? "" : " (\(holder))"); wait for that job "
                    + "to end, or give this one another --checkpoint-dir")
        }
        self.descriptor = descriptor
        let holder = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName)\n"
        _ = ftruncate(descriptor, 0)
        _ = holder.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        do { try Self.checkPointers(in: path) } catch {
            close(descriptor)
            throw error
        }
        Self.removeLeftovers(in: path)
    }

    deinit { close(descriptor) }  // releases the lock

    /// Exists (or is created), is a real directory, and can be written; otherwise an error naming why.
    static func prepareDirectory(_ path: String) throws {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw CheckpointError.unusableDirectory(path: path, problem: describeErrno(errno, creating: nil)) }
            let code = makeDirectories(path)
            if code != 0 { throw CheckpointError.unusableDirectory(path: path,
                problem: "cannot be created: " + describeErrno(code, creating: nil)) }
        } else if (info.st_mode & S_IFMT) != S_IFDIR {
            throw CheckpointError.unusableDirectory(path: path, problem: "is a file, not a directory; pass a directory")
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw CheckpointError.unusableDirectory(path: path, problem: describeErrno(errno, creating: nil))
        }
    }

    /// Removes what an interrupted writer of distrain's left — `.tmp-step-NNNNNNNN-PID` and
    /// `.pruning-step-NNNNNNNN` folders, `step-NNNNNNNN` folders without all three files, `latest.tmp-PID`
    /// and `best.tmp-PID` — and only when a folder holds nothing but checkpoint files. Anything else
    /// (`step-by-step-guide/`, `.tmp-build/`, `paper.tex.tmp-1`) is the user's and stays. Safe: the lock is held.
    public static func removeLeftovers(in root: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for name in names {
            let path = "\(root)/\(name)"
            if isLeftoverFolderName(name) || (CheckpointWriter.isCheckpointName(name) && !CheckpointWriter.isComplete(path)) {
                if holdsOnlyCheckpointFiles(path) { try? FileManager.default.removeItem(atPath: path) }
            } else if isLeftoverPointerName(name) {
                unlink(path)
            }
        }
    }

    /// `.tmp-step-NNNNNNNN-PID` (a checkpoint being written) or `.pruning-step-NNNNNNNN` (one being pruned).
    static func isLeftoverFolderName(_ name: String) -> Bool {
        if name.hasPrefix(".pruning-") { return CheckpointWriter.isCheckpointName(String(name.dropFirst(9))) }
        guard name.hasPrefix(".tmp-") else { return false }
        let rest = name.dropFirst(5)
        guard let dash = rest.lastIndex(of: "-") else { return false }
        let step = rest[..<dash], pid = rest[rest.index(after: dash)...]
        return CheckpointWriter.isCheckpointName(String(step)) && !pid.isEmpty && pid.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// `latest.tmp-PID` or `best.tmp-PID`: a pointer being replaced.
    static func isLeftoverPointerName(_ name: String) -> Bool {
        for pointer in ["latest", "best"] where name.hasPrefix(pointer + ".tmp-") {
            let pid = name.dropFirst(pointer.count + 5)
            return !pid.isEmpty && pid.allSatisfy { $0.isASCII && $0.isNumber }
        }
        return false
    }

    /// Whether `folder` is a directory whose entries are all files a checkpoint holds (or it is empty).
    static func holdsOnlyCheckpointFiles(_ folder: String) -> Bool {
        guard isDirectory(folder), let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return false }
        let ours: Set<String> = [CheckpointFile.model, CheckpointFile.optimizer, CheckpointFile.state, CheckpointFile.quantization]
        return entries.allSatisfy { ours.contains($0) }
    }

    /// Refuses a folder whose `latest` or `best` is not a pointer distrain wrote (it would be replaced).
    static func checkPointers(in root: String) throws {
        for pointer in ["latest", "best"] {
            let path = "\(root)/\(pointer)"
            guard pathExists(path) else { continue }
            let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let text, CheckpointWriter.isCheckpointName(text) else {
                throw CheckpointError.unusableDirectory(path: root, problem: "holds a file named '\(pointer)' that distrain did "
                    + "not write (it would be replaced); move it, or choose another --checkpoint-dir")
            }
        }
    }
}

/// `mkdir -p`: creates every missing folder of `path`; returns 0, or the errno of the first that failed.
func makeDirectories(_ path: String) -> Int32 {
    var prefix = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        prefix += "/" + component
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST { return errno }
    }
    return isDirectory(path) ? 0 : ENOTDIR
}

/// "read-only file system (EROFS)"-style text for an errno, with a hint for the common ones.
func describeErrno(_ code: Int32, creating: String?) -> String {
    let names: [Int32: String] = [EROFS: "EROFS", ELOOP: "ELOOP", EACCES: "EACCES", EPERM: "EPERM", ENOTDIR: "ENOTDIR",
                                  ENOSPC: "ENOSPC", ENOENT: "ENOENT", EEXIST: "EEXIST", ENAMETOOLONG: "ENAMETOOLONG"]
    let text = String(cString: strerror(code)).lowercased() + (names[code].map { " (\($0))" } ?? "")
    switch code {
    case ELOOP: return "\(text): a loop of symbolic links; point --checkpoint-dir at a real directory"
    case EROFS: return "\(text): the file system is read-only; choose a writable --checkpoint-dir"
    case ENOTDIR: return "\(text): a part of the path is a file; choose another --checkpoint-dir"
    case EACCES, EPERM: return "\(text): not writable by this user; choose a writable --checkpoint-dir"
    default: return "\(text)\(creating.map { " creating \($0)" } ?? "")"
    }
}
