import Foundation
import Generation
import XCTest

/// Sampling against hand-computed probabilities.
final class SamplerTests: XCTestCase {
    /// Logits 0, ln 2, ln 4: probabilities 1/7, 2/7, 4/7.
    let logits: [Float] = [0, Float(log(2.0)), Float(log(4.0))]

    private func frequencies(_ settings: SamplingSettings, draws: Int = 20_000) -> [Double] {
        var sampler = Sampler(settings: settings, vocabularySize: 3)
        var counts = [0, 0, 0]
        logits.withUnsafeBufferPointer { pointer in
            for _ in 0..<draws { counts[Int(sampler.draw(pointer.baseAddress!))] += 1 }
        }
        return counts.map { Double($0) / Double(draws) }
    }

    func testTemperatureOneDrawsTheSoftmax() {
        let seen = frequencies(SamplingSettings(temperature: 1, seed: 3))
        for (observed, expected) in zip(seen, [1.0 / 7, 2.0 / 7, 4.0 / 7]) { XCTAssertEqual(observed, expected, accuracy: 0.015) }
    }

    /// Temperature 2 takes square roots: 1, √2, 2 over their sum.
    func testTemperatureFlattens() {
        let weights = [1, 2.0.squareRoot(), 2], total = weights.reduce(0, +)
        let seen = frequencies(SamplingSettings(temperature: 2, seed: 4))
        for (observed, weight) in zip(seen, weights) { XCTAssertEqual(observed, weight / total, accuracy: 0.015) }
    }

    func testTopKAndTopPCutTheTail() {
        let topTwo = frequencies(SamplingSettings(temperature: 1, topK: 2, seed: 5))
        XCTAssertEqual(topTwo[0], 0)
        XCTAssertEqual(topTwo[2], 4.0 / 6, accuracy: 0.015)
        // 4/7 ≥ 0.5: the nucleus is the most likely token alone; 0.6 needs the second too.
        XCTAssertEqual(frequencies(SamplingSettings(temperature: 1, topP: 0.5, seed: 6)), [0, 0, 1])
        let nucleus = frequencies(SamplingSettings(temperature: 1, topP: 0.6, seed: 6))
        XCTAssertEqual(nucleus[0], 0)
        XCTAssertEqual(nucleus[1], 2.0 / 6, accuracy: 0.015)
    }

    /// Over a larger vocabulary, top-k (by insertion for small k, by sorting for large k) draws exactly the k largest.
    func testTopKDrawsOnlyAndAllOfTheKLargest() {
        var random = SystemRandomNumberGenerator()
        let logits = (0..<600).map { _ in Float.random(in: -1...1, using: &random) }
        let ranked = logits.indices.sorted { logits[$0] > logits[$1] }
        for k in [10, 300] {
            var sampler = Sampler(settings: SamplingSettings(temperature: 5, topK: k, seed: 2), vocabularySize: 600)
            var seen = Set<Int>()
            logits.withUnsafeBufferPointer { pointer in
                for _ in 0..<(k * 20) { seen.insert(Int(sampler.draw(pointer.baseAddress!))) }
            }
            XCTAssertEqual(seen, Set(ranked.prefix(k)), "top-\(k)")
        }
    }

    func testGreedyTakesTheFirstLargest() {
        XCTAssertEqual(frequencies(SamplingSettings(temperature: 0), draws: 10), [0, 0, 1])
        XCTAssertEqual(frequencies(SamplingSettings(temperature: 1, topK: 1, seed: 1), draws: 10), [0, 0, 1])
        let tied: [Float] = [1, 5, 5]
        XCTAssertEqual(tied.withUnsafeBufferPointer { Sampler.argmax($0.baseAddress!, count: 3) }, 1)
    }

    func testSettingsOutOfRangeNameTheFlag() {
        XCTAssertTrue(SamplingSettings(temperature: -1).problem?.contains("--temperature") ?? false)
        XCTAssertTrue(SamplingSettings(topK: 0).problem?.contains("--top-k") ?? false)
        XCTAssertTrue(SamplingSettings(topP: 0).problem?.contains("--top-p") ?? false)
        XCTAssertTrue(SamplingSettings(topP: 1.5).problem?.contains("--top-p") ?? false)
        XCTAssertNil(SamplingSettings(temperature: 0.7, topK: 40, topP: 0.9).problem)
    }
}
