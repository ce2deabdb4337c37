import Foundation

/// A blocking HTTP/1.1 client over a plain socket, for tests of `distrain serve`: it can also send a partial
/// request, hold a connection idle, or hang up mid-response — what a well-behaved library would not do.
public final class TestConnection {
    public let descriptor: Int32

    /// Connects to 127.0.0.1:`port`; nil when the connection is refused.
    public init?(port: Int, receiveTimeout: Double = 30) {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(descriptor); return nil }
        var timeout = timeval(tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout - receiveTimeout.rounded(.down)) * 1e6))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    /// Sends bytes; false when the peer has closed.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Up to `limit` bytes as they arrive; empty at end of stream or timeout.
    public func receive(limit: Int = 65_536) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: limit)
        let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, limit, 0) }
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    /// Everything until the server closes the connection (or the receive timeout).
    public func receiveAll() -> [UInt8] {
        var all: [UInt8] = []
        while true {
            let chunk = receive()
            if chunk.isEmpty { return all }
            all += chunk
        }
    }

    /// Whether the server has closed the connection (a read returns end of stream) within `seconds`.
    public func closedByPeer(within seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            var pollDescriptor = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&pollDescriptor, 1, 100) > 0 {
                var byte: UInt8 = 0
                if recv(descriptor, &byte, 1, 0) <= 0 { return true }
            }
        }
        return false
    }
}

/// An HTTP response as a test sees it.
public struct TestResponse {
    public var status: Int
    public var headers: [String: String]  // lowercased names
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object (nil when it is not one).
    public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
}

/// One request on a fresh connection (`Connection: close`), the whole response read (chunked bodies joined).
public func httpRequest(port: Int, _ method: String, _ path: String, body: [UInt8] = [], headers: [String: String] = [:],
                        timeout: Double = 60) -> TestResponse? {
    guard let connection = TestConnection(port: port, receiveTimeout: timeout) else { return nil }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    guard connection.send(Array((head + "\r\n").utf8) + body) else { return nil }
    return parseResponse(connection.receiveAll())
}

public func httpRequest(port: Int, _ method: String, _ path: String, json: String, headers: [String: String] = [:]) -> TestResponse? {
    httpRequest(port: port, method, path, body: Array(json.utf8), headers: headers.merging(["Content-Type": "application/json"]) { $1 })
}

/// Status, headers and body of raw response bytes (nil when there is no complete head).
public func parseResponse(_ bytes: [UInt8]) -> TestResponse? {
    guard let split = (0..<max(0, bytes.count - 3)).first(where: { bytes[$0..<($0 + 4)].elementsEqual([13, 10, 13, 10]) }) else {
        return nil
    }
    let lines = String(decoding: bytes[..<split], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = Array(bytes[(split + 4)...])
    if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunked(body) }
    return TestResponse(status: status, headers: headers, body: body)
}

private func dechunked(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [], at = 0
    while at < bytes.count {
        guard let end = (at..<max(at, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
              let size = Int(String(decoding: bytes[at..<end], as: UTF8.self).split(separator: ";")[0], radix: 16),
              size > 0, end + 2 + size <= bytes.count else { break }
        out += bytes[(end + 2)..<(end + 2 + size)]
        at = end + 2 + size + 2
    }
    return out
}

/// A child process left running (a server), its standard output collected as it comes.
public final class BackgroundProcess {
    public let process = Process()
    private let output = CollectedLines()

    public init(_ executable: String, _ arguments: [String], extraEnvironment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !key.hasPrefix("OMPI_") && !key.hasPrefix("PMIX_") && !key.hasPrefix("OPAL_")
        }.merging(extraEnvironment) { $1 }
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        for (pipe, isError) in [(outPipe, false), (errPipe, true)] {
            let output = self.output
            Thread.detachNewThread {
                while true {
                    let data = pipe.fileHandleForReading.availableData
                    if data.isEmpty { break }
                    output.append(String(decoding: data, as: UTF8.self), error: isError)
                }
            }
        }
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    public var standardOutput: String { output.text(error: false) }
    public var standardError: String { output.text(error: true) }

    /// Waits until standard output holds `text` (true) or `seconds` pass or the process ends (false).
    public func waitForOutput(_ text: String, seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if standardOutput.contains(text) { return true }
            if !process.isRunning { return standardOutput.contains(text) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    /// Waits for the exit (true) or `seconds` (false).
    public func waitForExit(seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        return !process.isRunning
    }

    /// Resident memory in KiB (Linux /proc).
    public var residentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }
}

private final class CollectedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var texts = ["", ""]
    func append(_ text: String, error: Bool) { lock.lock(); texts[error ? 1 : 0] += text; lock.unlock() }
    func text(error: Bool) -> String { lock.lock(); defer { lock.unlock() }; return texts[error ? 1 : 0] }
}
