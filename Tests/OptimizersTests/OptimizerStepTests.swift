import XCTest
import Tensors
@testable import Optimizers
import _TestSupport

/// One or two optimizer steps on a tiny store, against numbers worked by hand from PyTorch's formulas.
final class OptimizerStepTests: XCTestCase {
    /// A store holding `values` with gradients `gradients` (one tensor "w").
    private func store(_ values: [Float], gradients: [Float]) -> ParameterStore {
        let store = ParameterStore(specs: [ParameterSpec(name: "w", shape: [values.count], fanIn: 1)])
        for i in values.indices {
            store.values[i] = values[i]
            store.gradients[i] = gradients[i]
        }
        return store
    }

    func testPlainSGD() {
        let s = store([1, -2], gradients: [0.5, -1])
        SGD(parameterCount: 2).update(s, learningRate: 0.1)
        // p − lr·g
        assertClose(Array(s.values), [0.95, -1.9])
    }

    func testSGDMomentumWeightDecayTwoSteps() {
        let s = store([1, -2], gradients: [0.5, -1])
        let sgd = SGD(parameterCount: 2, momentum: 0.9, weightDecay: 0.1)
        sgd.update(s, learningRate: 0.1)
        // step 1: g' = g + 0.1p = [0.6, -1.2]; buf = g'; p = p − 0.1·buf = [0.94, -1.88]
        assertClose(Array(s.values), [0.94, -1.88])
        sgd.update(s, learningRate: 0.1)
        // step 2 (same raw gradient): g' = [0.5+0.094, -1-0.188] = [0.594, -1.188]
        // buf = 0.9·[0.6,-1.2] + g' = [1.134, -2.268]; p = [0.94−0.1134, −1.88+0.2268]
        assertClose(Array(s.values), [0.8266, -1.6532])
        assertClose(Array(sgd.stateBuffers[0].values), [1.134, -2.268])
    }

    func testSGDNesterovTwoSteps() {
        let s = store([1], gradients: [0.5])
        let sgd = SGD(parameterCount: 1, momentum: 0.9, nesterov: true)
        sgd.update(s, learningRate: 0.1)
        // buf = 0.5; step = g + 0.9·buf = 0.95; p = 1 − 0.095
        assertClose(Array(s.values), [0.905])
        sgd.update(s, learningRate: 0.1)
        // buf = 0.9·0.5 + 0.5 = 0.95; step = 0.5 + 0.9·0.95 = 1.355; p = 0.905 − 0.1355
        assertClose(Array(s.values), [0.7695])
    }

    func testAdamFirstStepMovesByLearningRate() {
        // Long enough to exercise both the 8-wide SIMD loop and the scalar tail.
        let values: [Float] = [-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5]
        let grads: [Float] = [0.1, -0.3, 0.3, -0.9, 0.5, -1.5, 0.7, -2.1, 0.9, -2.7, 1.1]
        let s = store(values, gradients: grads)
        Adam(parameterCount: 11).update(s, learningRate: 0.01)
        // t=1: m̂ = g, v̂ = g², so the step is lr·g/(|g|+ε) ≈ lr·sign(g).
        var expected: [Double] = []
        for (p, g) in zip(values, grads) {
            let step: Double = 0.01 * Double(g) / (abs(Double(g)) + 1e-8)
            expected.append(Double(p) - step)
        }
        assertClose(Array(s.values), expected, relative: 1e-6, absolute: 1e-7)
    }

    func testAdamSecondStepByHand() {
        let s = store([1], gradients: [0.5])
        let adam = Adam(parameterCount: 1)
        adam.update(s, learningRate: 0.1)
        s.gradients[0] = -0.25
        adam.update(s, learningRate: 0.1)
        // m1 = 0.05, v1 = 0.00025; p1 = 0.9
        // m2 = 0.9·0.05 + 0.1·(−0.25) = 0.02; v2 = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
        // m̂ = 0.02/0.19 ; v̂ = 0.00031225/0.001999 ; p2 = 0.9 − 0.1·m̂/(sqrt(v̂)+1e-8)
        let mHat = 0.02 / 0.19, vHat = 0.00031225 / (1 - 0.999 * 0.999)
        let expected = 0.9 - 0.1 * mHat / (vHat.squareRoot() + 1e-8)
        assertClose(Double(s.values[0]), expected, relative: 1e-5)
        XCTAssertEqual(adam.stepCount, 2)
    }

    func testAdamL2AddsDecayToGradient() {
        let s = store([2], gradients: [0.1])
        Adam(parameterCount: 1, weightDecay: 0.5).update(s, learningRate: 0.01)
        // g' = 0.1 + 0.5·2 = 1.1 > 0, so p = 2 − 0.01 (first step is lr·sign)
        assertClose(Double(s.values[0]), 1.99, relative: 1e-6)
    }

    func testAdamWDecaysDecoupled() {
        let s = store([2], gradients: [-0.1])
        Adam(parameterCount: 1, weightDecay: 0.5, decoupled: true).update(s, learningRate: 0.01)
        // p = 2·(1 − 0.01·0.5) = 1.99, then + lr·1 (gradient negative) = 2.0
        assertClose(Double(s.values[0]), 1.99 + 0.01, relative: 1e-6)
    }

    func testMakeOptimizerSelectsKind() {
        XCTAssertEqual(makeOptimizer(OptimizerSettings(kind: .sgd), parameterCount: 3).name, "sgd")
        XCTAssertEqual(makeOptimizer(OptimizerSettings(kind: .adam), parameterCount: 3).name, "adam")
        XCTAssertEqual(makeOptimizer(OptimizerSettings(kind: .adamw), parameterCount: 3).name, "adamw")
    }
}

final class ScheduleTests: XCTestCase {
    func testConstantWithWarmup() {
        let schedule = LearningRateSchedule(kind: .constant, baseRate: 1, totalEpochs: 4, warmupEpochs: 1)
        // 3 steps per epoch: warmup steps 0,1,2 → 1/4, 2/4, 3/4; then 1.
        XCTAssertEqual(schedule.rate(epoch: 0, stepInEpoch: 0, stepsPerEpoch: 3), 0.25)
        XCTAssertEqual(schedule.rate(epoch: 0, stepInEpoch: 2, stepsPerEpoch: 3), 0.75)
        XCTAssertEqual(schedule.rate(epoch: 1, stepInEpoch: 0, stepsPerEpoch: 3), 1)
        XCTAssertEqual(schedule.rate(epoch: 3, stepInEpoch: 2, stepsPerEpoch: 3), 1)
    }

    func testStepDecay() {
        let schedule = LearningRateSchedule(kind: .step, baseRate: 1, totalEpochs: 9, stepEpochs: 3, gamma: 0.5)
        XCTAssertEqual(schedule.rate(epoch: 2, stepInEpoch: 5, stepsPerEpoch: 10), 1)
        XCTAssertEqual(schedule.rate(epoch: 3, stepInEpoch: 0, stepsPerEpoch: 10), 0.5)
        XCTAssertEqual(schedule.rate(epoch: 8, stepInEpoch: 0, stepsPerEpoch: 10), 0.25)
    }

    func testCosineHalfwayAndEnd() {
        let schedule = LearningRateSchedule(kind: .cosine, baseRate: 2, totalEpochs: 2)
        XCTAssertEqual(schedule.rate(epoch: 0, stepInEpoch: 0, stepsPerEpoch: 10), 2)
        assertClose(schedule.rate(epoch: 1, stepInEpoch: 0, stepsPerEpoch: 10), 1, absolute: 1e-6)
        // last step: progress 19/20 → 2·0.5·(1+cos(0.95π))
        assertClose(Double(schedule.rate(epoch: 1, stepInEpoch: 9, stepsPerEpoch: 10)),
                    2 * 0.5 * (1 + cos(Double.pi * 0.95)), relative: 1e-5)
    }
}

/// Global-norm clipping against the norm computed by hand, as torch.nn.utils.clip_grad_norm_.
final class GradientClippingTests: XCTestCase {
    func testGradientsAboveTheCeilingAreScaledToItAndOthersAreUntouched() {
        let store = ParameterStore(specs: [ParameterSpec(name: "a", shape: [3], constant: 0),
                                           ParameterSpec(name: "b", shape: [5000], constant: 0)])
        for i in 0..<store.count { store.gradients[i] = Float((i % 7) - 3) * 0.01 }
        let expected = (0..<store.count).reduce(0.0) { $0 + Double(store.gradients[$1]) * Double(store.gradients[$1]) }.squareRoot()
        let before = Array(store.gradients)
        XCTAssertEqual(GradientClipping.clip(store, maximumNorm: 1000), expected, accuracy: 1e-6 * expected, "float sums in blocks: ~1e-7 relative")
        XCTAssertEqual(Array(store.gradients), before, "under the ceiling nothing changes")
        XCTAssertEqual(GradientClipping.clip(store, maximumNorm: 0.5), expected, accuracy: 1e-6 * expected, "float sums in blocks: ~1e-7 relative")
        let after = (0..<store.count).reduce(0.0) { $0 + Double(store.gradients[$1]) * Double(store.gradients[$1]) }.squareRoot()
        XCTAssertEqual(after, 0.5, accuracy: 1e-5, "scaled to max / (norm + 1e-6)")
        for i in [1, 17, 4000] {
            XCTAssertEqual(Double(store.gradients[i]), Double(before[i]) * 0.5 / (expected + 1e-6), accuracy: 1e-8)
        }
    }
}

/// AdamW with nanoGPT's groups: decay on the listed ranges only; the rest steps as with no decay at all.
final class DecayGroupTests: XCTestCase {
    func testOnlyTheDecayedRangesShrink() {
        let runs = Adam.runs(count: 10, decayed: [2..<4, 4..<6, 8..<9])
        XCTAssertEqual(runs.map(\.range), [0..<2, 2..<6, 6..<8, 8..<9, 9..<10])
        XCTAssertEqual(runs.map(\.decays), [false, true, false, true, false])
        func step(decay: Float, ranges: [Range<Int>]?) -> [Float] {
            let store = ParameterStore(specs: [ParameterSpec(name: "w", shape: [4, 5], constant: 0.5),
                                               ParameterSpec(name: "b", shape: [5], constant: 0.5)])
            let adam = Adam(parameterCount: store.count, weightDecay: decay, decoupled: true, decayedRanges: ranges)
            for _ in 0..<3 {
                for i in 0..<store.count { store.gradients[i] = Float(i % 3) - 1 }
                adam.update(store, learningRate: 0.1)
            }
            return Array(store.values)
        }
        let grouped = step(decay: 0.5, ranges: [0..<20]), none = step(decay: 0, ranges: nil), all = step(decay: 0.5, ranges: nil)
        XCTAssertEqual(Array(grouped[20...]), Array(none[20...]), "the bias is not decayed")
        XCTAssertEqual(Array(grouped[..<20]), Array(all[..<20]), "the matrix is, as with decay everywhere")
        XCTAssertNotEqual(Array(all[20...]), Array(none[20...]))
    }
}

/// Training by steps: nanoGPT's get_lr (warm-up (it+1)/(warmup+1), cosine from lr to min_lr over
/// lr_decay_iters − warmup_iters, min_lr after), with lr 1e-3, min 1e-4, 100 warm-up and 2,000 decay steps.
final class StepScheduleTests: XCTestCase {
    func testCosineToAFloorOverStepsIsNanoGPTs() {
        var schedule = LearningRateSchedule(kind: .cosine, baseRate: 1e-3, totalEpochs: 1)
        schedule.warmupSteps = 100
        schedule.totalSteps = 2000
        schedule.minimumRate = 1e-4
        func nanoGPT(_ it: Int) -> Double {
            if it < 100 { return 1e-3 * Double(it + 1) / 101 }
            if it > 2000 { return 1e-4 }
            let ratio = Double(it - 100) / 1900, coefficient = 0.5 * (1 + cos(Double.pi * ratio))
            return 1e-4 + coefficient * (1e-3 - 1e-4)
        }
        for it in [0, 50, 99, 100, 101, 1000, 1999, 2000, 2500] {
            // Steps per epoch do not matter when the schedule is by steps: 700 per epoch here.
            let rate = schedule.rate(epoch: it / 700, stepInEpoch: it % 700, stepsPerEpoch: 700)
            XCTAssertEqual(Double(rate), nanoGPT(it), accuracy: 1e-10, "step \(it)")
        }
    }
}
