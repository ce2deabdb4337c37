import Foundation
import XCTest

/// `count` seeded mutations of `original`: bit flips, truncations, appended garbage, and 4-byte
/// fields at `fieldOffsets` set to extremes (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, random), in
/// little- or big-endian. The same seed gives the same mutations.
public func seededMutations(of original: [UInt8], count: Int, seed: UInt64, fieldOffsets: [Int]) -> [[UInt8]] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    let extremes: [UInt32] = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
    var mutations: [[UInt8]] = []
    for _ in 0..<count {
        var bytes = original
        switch next() % 5 {
        case 0:  // flip 1...8 bits
            for _ in 0..<(1 + Int(next() % 8)) where !bytes.isEmpty {
                let index = Int(next() % UInt64(bytes.count))
                bytes[index] ^= UInt8(1 << (next() % 8))
            }
        case 1:  // truncate
            bytes = Array(bytes.prefix(Int(next() % UInt64(bytes.count + 1))))
        case 2, 3:  // a header field set to an extreme
            guard let offset = fieldOffsets.isEmpty ? nil : fieldOffsets[Int(next() % UInt64(fieldOffsets.count))],
                  offset + 4 <= bytes.count else { break }
            let value = next() % 6 == 5 ? UInt32(truncatingIfNeeded: next()) : extremes[Int(next() % 5)]
            let bigEndian = next() % 2 == 0
            for i in 0..<4 {
                let shift = bigEndian ? (3 - i) * 8 : i * 8
                bytes[offset + i] = UInt8((value >> UInt32(shift)) & 0xFF)
            }
        default:  // garbage appended, or a byte range overwritten
            if next() % 2 == 0 {
                bytes += (0..<(1 + Int(next() % 64))).map { _ in UInt8(truncatingIfNeeded: next()) }
            } else if !bytes.isEmpty {
                let start = Int(next() % UInt64(bytes.count))
                for i in start..<min(bytes.count, start + 1 + Int(next() % 16)) { bytes[i] = UInt8(truncatingIfNeeded: next()) }
            }
        }
        mutations.append(bytes)
    }
    return mutations
}

/// Runs `body` with the address space capped at its current size plus `headroomBytes`, so any
/// attempt to allocate more (a size taken from a hostile header) fails loudly instead of passing.
/// Also fails the test when `body` does not finish within `timeoutSeconds` (a hang).
public func withBoundedMemoryAndTime(headroomBytes: Int, timeoutSeconds: Double, file: StaticString = #filePath, line: UInt = #line,
                                     _ body: @escaping () -> Void) {
    var original = rlimit()
    getrlimit(Int32(RLIMIT_AS.rawValue), &original)
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let vmSizeKilobytes = status.split(separator: "\n").first { $0.hasPrefix("VmSize:") }
        .flatMap { Int($0.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") } ?? 0
    precondition(vmSizeKilobytes > 0, "cannot read VmSize from /proc/self/status")
    var limited = original
    limited.rlim_cur = rlim_t(vmSizeKilobytes * 1024 + headroomBytes)
    setrlimit(Int32(RLIMIT_AS.rawValue), &limited)
    defer { setrlimit(Int32(RLIMIT_AS.rawValue), &original) }
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        body()
        done.signal()
    }
    thread.stackSize = 4 << 20
    thread.start()
    if done.wait(timeout: .now() + timeoutSeconds) == .timedOut {
        XCTFail("did not finish within \(timeoutSeconds) s: a reader hangs", file: file, line: line)
    }
}
