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
        guard descriptor >= 0 else { throw CheckpointError.unusableDirectory(path: path, problem: describeErrno(errno, creating: lockPath)) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw CheckpointError.unusableDirectory(
                path: path, problem: "another job holds it\(holder.isEmpty ? "" : " (\(holder))"); wait for that job to end, or give this one another --checkpoint-dir")
        }
        self.descriptor = descriptor
        let holder = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName)\n"
        _ = ftruncate(descriptor, 0)
        _ = holder.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        Self.removeLeftovers(in: path)
    }

    deinit { close(descriptor) }  // releases the lock

    /// Exists (or is created), is a real directory, and can be written; otherwise an error naming why.
    static func prepareDirectory(_ path: String) throws {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw CheckpointError.unusableDirectory(path: path, problem: describeErrno(errno, creating: nil)) }
            let code = makeDirectories(path)
            if code != 0 { throw CheckpointError.unusableDirectory(path: path, problem: "cannot be created: " + describeErrno(code, creating: nil)) }
        } else if (info.st_mode & S_IFMT) != S_IFDIR {
            throw CheckpointError.unusableDirectory(path: path, problem: "is a file, not a directory; pass a directory")
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw CheckpointError.unusableDirectory(path: path, problem: describeErrno(errno, creating: nil))
        }
    }

    /// Removes `.tmp-*` folders and `*.tmp-*` files (a writer killed mid-write), `.pruning-*` folders
    /// (killed mid-prune), and `step-*` folders without all three files. Safe: the lock is held.
    public static func removeLeftovers(in root: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for name in names {
            let path = "\(root)/\(name)"
            let leftover = name.hasPrefix(".tmp-") || name.hasPrefix(".pruning-") || name.contains(".tmp-")
                || (name.hasPrefix("step-") && !CheckpointWriter.isComplete(path))
            if leftover { try? FileManager.default.removeItem(atPath: path) }
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
