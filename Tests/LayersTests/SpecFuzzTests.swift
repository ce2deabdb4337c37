import Layers
import XCTest
import _TestSupport

/// Seeded mutations of specs (a transformer with a tied head, a CNN with residual blocks) through parsing and
/// building: every outcome is a model or a one-line error — no trap, no hang, no allocation a spec can inflate.
final class SpecFuzzTests: XCTestCase {
    static let transformer = """
    wte = Embedding(40, 16, std=0.02)
    wpe = PositionEmbedding(16, 16)
    Dropout(0.1)
    h0 = Residual(
        LayerNorm(16)
        CausalSelfAttention(16, 2, std=0.02, proj_std=0.01)
    )
    h0_mlp = Residual(
        LayerNorm(16, bias=False)
        Linear(16, 64)
        GELU(approximate='tanh')
        Linear(64, 16)
    )
    ln_f = LayerNorm(16)
    lm_head = Linear(16, 40, bias=False, tied_to='wte')
    """
    static let convolutional = """
    Conv2d(1, 4, 3, padding=1, bias=False)
    BatchNorm2d(4)
    ReLU()
    Residual(
        Conv2d(4, 4, 3, padding=1)
        shortcut:
        Conv2d(4, 4, 1)
    )
    MaxPool2d(2)
    AdaptiveAvgPool2d(1)
    Flatten()
    Linear(4, 10)
    """

    func testMutatedSpecsOnlyEverThrow() {
        var built = 0, rejected = 0, badMessages: [String] = []
        withBoundedMemoryAndTime(headroomBytes: 512 << 20, timeoutSeconds: 300) {
            for (seed, spec) in [(1, Self.transformer), (2, Self.convolutional)] {
                for bytes in seededMutations(of: Array(spec.utf8), count: 400, seed: UInt64(seed), fieldOffsets: []) {
                    do {
                        let parsed = try ModelSpec(parsing: String(decoding: bytes, as: UTF8.self), source: "fuzz.spec")
                        _ = seed == 1 ? try parsed.build(inputShape: [8], outputShape: [8, 40])
                            : try parsed.build(inputShape: [1, 8, 8], classes: 10)
                        built += 1
                    } catch {
                        rejected += 1
                        let message = "\(error)"
                        if message.isEmpty || message.contains("\n") { badMessages.append(message) }
                    }
                }
            }
        }
        XCTAssertEqual(built + rejected, 800)
        XCTAssertGreaterThan(rejected, 200, "most mutations must be caught")
        XCTAssertEqual(badMessages, [], "errors must be one non-empty line")
    }
}
