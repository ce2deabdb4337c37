import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Streams `url` into the file at `path`, computing its MD5 on the way; returns the hex digest.
///
/// `progress(received, expected)` is called as data arrives (expected is nil when the server does
/// not say). The file is written as it arrives, never held in memory.
public func downloadFile(from url: URL, to path: String, progress: @escaping (Int64, Int64?) -> Void) throws -> (md5: String, bytes: Int64) {
    guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
        throw DownloadError.badURL(url.absoluteString)
    }
    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
        throw DownloadError.fileSystem(path: path, reason: String(cString: strerror(errno)))
    }
    defer { try? handle.close() }
    let sink = DownloadSink(url: url, handle: handle, progress: progress)
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = 60  // seconds without data before giving up
    let session = URLSession(configuration: configuration, delegate: sink, delegateQueue: nil)
    defer { session.finishTasksAndInvalidate() }
    session.dataTask(with: url).resume()
    sink.finished.wait()
    if let failure = sink.failure { throw failure }
    try handle.synchronize()
    return (sink.hasher.finalize().map { String(format: "%02x", $0) }.joined(), sink.received)
}

/// Receives the response on URLSession's queue: checks the status, writes and hashes every chunk.
private final class DownloadSink: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let url: URL
    let handle: FileHandle
    let progress: (Int64, Int64?) -> Void
    let finished = DispatchSemaphore(value: 0)
    var hasher = Insecure.MD5()
    var received: Int64 = 0
    var expected: Int64?
    var failure: DownloadError?

    init(url: URL, handle: FileHandle, progress: @escaping (Int64, Int64?) -> Void) {
        self.url = url
        self.handle = handle
        self.progress = progress
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            failure = .httpStatus(url: url.absoluteString, status: http.statusCode)
            completionHandler(.cancel)
            return
        }
        expected = response.expectedContentLength > 0 ? response.expectedContentLength : nil
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil else { return }
        do {
            try handle.write(contentsOf: data)
        } catch {
            failure = .fileSystem(path: "download file", reason: "\(error)")
            dataTask.cancel()
            return
        }
        hasher.update(data: data)
        received += Int64(data.count)
        progress(received, expected)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if failure == nil, let error {
            failure = .network(url: url.absoluteString, reason: error.localizedDescription)
        }
        finished.signal()
    }
}
