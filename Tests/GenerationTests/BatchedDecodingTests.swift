import Generation
import Layers
import Tensors
import XCTest
import _TestSupport

/// `IncrementalDecoder.step`: one token for each of several sequences at different positions, against each
/// sequence decoded alone (the continuous batching `distrain serve` does).
final class BatchedDecodingTests: XCTestCase {
    func testAStepOverSequencesAtDifferentPositionsEqualsEachDecodedAlone() throws {
        let vocabulary = TextGeneratorTests.vocabulary
        let batched = try IncrementalDecoder(model: try TextGeneratorTests.makeModel())
        let alone = try IncrementalDecoder(model: try TextGeneratorTests.makeModel())
        let prompts: [[Int32]] = [[1, 30, 7], [36], [5, 9, 2, 33, 18, 4], [12, 12]]
        let states = prompts.map { _ in DecodingState(capacity: batched.context) }
        for (prompt, state) in zip(prompts, states) { _ = prompt.withUnsafeBufferPointer { batched.append($0, to: state) } }
        var sequences = prompts
        for step in 0..<4 {
            let next: [Int32] = sequences.indices.map { Int32(($0 * 11 + step * 5 + 3) % vocabulary) }
            let logits = next.withUnsafeBufferPointer { batched.step($0, states: states) }
            for (row, token) in next.enumerated() {
                sequences[row].append(token)
                let expected = sequences[row].withUnsafeBufferPointer { ids -> [Float] in
                    alone.state.reset()
                    return Array(UnsafeBufferPointer(start: alone.append(ids), count: vocabulary))
                }
                let got = Array(UnsafeBufferPointer(start: logits + row * vocabulary, count: vocabulary))
                XCTAssertLessThan(maximumRelativeDifference(got, expected), 1e-5, "sequence \(row), step \(step)")
                XCTAssertEqual(states[row].position, sequences[row].count)
            }
        }
    }

    func testAStepOfOneSequenceIsBitwiseTheSingleSequenceDecoder() throws {
        let one = try IncrementalDecoder(model: try TextGeneratorTests.makeModel())
        let other = try IncrementalDecoder(model: try TextGeneratorTests.makeModel())
        let state = DecodingState(capacity: one.context)
        let prompt: [Int32] = [3, 14, 15]
        _ = prompt.withUnsafeBufferPointer { one.append($0, to: state) }
        _ = prompt.withUnsafeBufferPointer { other.append($0) }
        let token: [Int32] = [9]
        let stepped = Array(UnsafeBufferPointer(start: token.withUnsafeBufferPointer { one.step($0, states: [state]) },
                                                count: one.vocabularySize))
        let appended = Array(UnsafeBufferPointer(start: token.withUnsafeBufferPointer { other.append($0) },
                                                 count: other.vocabularySize))
        XCTAssertEqual(stepped, appended)
    }
}
