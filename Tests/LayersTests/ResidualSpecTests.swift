import Layers
import XCTest

/// Residual blocks in model specs: parsing, PyTorch names, shapes, the canonical text that checkpoints
/// record (it parses back to the same model), the export, and bad blocks named by line.
final class ResidualSpecTests: XCTestCase {
    private let spec = """
    Conv2d(1, 8, 3, padding=1, bias=False)
    Residual(                       # identity shortcut
        Conv2d(8, 8, 3, padding=1, bias=False)
        BatchNorm2d(8)
        ReLU()
        Conv2d(8, 8, 3, padding=1)
    )
    down = Residual(
        Conv2d(8, 16, 3, stride=2, padding=1)
    shortcut:
        Conv2d(8, 16, 1, stride=2, bias=False)
        BatchNorm2d(16)
    )
    AdaptiveAvgPool2d(1)
    Flatten()
    Linear(16, 10)
    """

    func testBlocksBuildWithPyTorchNamesAndRoundTrip() throws {
        let built = try ModelSpec(parsing: spec, source: "res.spec").build(inputShape: [1, 12, 12], classes: 10)
        XCTAssertEqual(built.rows.map(\.name), ["0", "1", "down", "3", "4", "5"])
        XCTAssertEqual(built.rows[1].body.map(\.name), ["1.body.0", "1.body.1", "1.body.2", "1.body.3"])
        XCTAssertEqual(built.rows[2].shortcut.map(\.name), ["down.shortcut.0", "down.shortcut.1"])
        XCTAssertEqual(built.rows[2].outputShape, [16, 6, 6])
        let names = built.layers.flatMap(\.parameterSpecs).map(\.name)
        XCTAssertEqual(names, ["0.weight", "1.body.0.weight", "1.body.1.weight", "1.body.1.bias", "1.body.3.weight", "1.body.3.bias",
                               "down.body.0.weight", "down.body.0.bias", "down.shortcut.0.weight", "down.shortcut.1.weight",
                               "down.shortcut.1.bias", "5.weight", "5.bias"])
        XCTAssertEqual(built.rows[1].parameters, 8 * 8 * 9 + 16 + 8 * 8 * 9 + 8)
        // What checkpoints record parses back to the same model, row for row.
        let again = try ModelSpec(parsing: built.canonicalText, source: "canonical").build(inputShape: [1, 12, 12], classes: 10)
        XCTAssertEqual(again.canonicalText, built.canonicalText)
        XCTAssertEqual(again.layers.flatMap(\.parameterSpecs).map(\.name), names)
        XCTAssertTrue(built.canonicalText.contains("down = Residual(\n    Conv2d(8, 16, 3, stride=2, padding=1)\nshortcut:\n"), built.canonicalText)
        let python = built.pytorchSource
        XCTAssertTrue(python.hasPrefix("class Residual(nn.Module):"), python)
        XCTAssertTrue(python.contains("(\"1\", Residual(nn.Sequential(OrderedDict([(\"0\", nn.Conv2d(8, 8, 3, padding=1, bias=False)), (\"1\", nn.BatchNorm2d(8)), (\"2\", nn.ReLU()), (\"3\", nn.Conv2d(8, 8, 3, padding=1))])), None)),"), python)
        XCTAssertTrue(python.contains("(\"down\", Residual(nn.Sequential(OrderedDict([(\"0\", nn.Conv2d(8, 16, 3, stride=2, padding=1))])), nn.Sequential(OrderedDict([(\"0\", nn.Conv2d(8, 16, 1, stride=2, bias=False)), (\"1\", nn.BatchNorm2d(16))])))),"), python)
    }

    func testBadBlocksNameTheLineAndTheProblem() {
        let cases: [(String, String)] = [
            ("Residual(\nConv2d(1, 1, 3, padding=1)\n", "line 1: Residual( is never closed"),
            ("Residual(\n)\nFlatten()\nLinear(784, 10)", "line 2: the Residual opened on line 1 has no body"),
            (")\n", "line 1: ')' closes no Residual( block"),
            ("Residual(\nResidual(\n", "line 2: a Residual inside a Residual is not supported"),
            ("Residual(\nc = Conv2d(1, 1, 3, padding=1)\n)", "line 2: modules inside a Residual take no name"),
            ("Residual(\nFlatten()\n)", "line 2: Flatten() cannot sit inside a Residual"),
            ("Residual(\nConv2d(1, 1, 3, padding=1)\nshortcut:\n)", "line 4: 'shortcut:' is followed by no module"),
            ("shortcut:\n", "line 1: 'shortcut:' belongs inside a Residual"),
            ("Residual(\nConv2d(1, 4, 3, padding=1)\n)\nFlatten()\nLinear(3136, 10)", "line 1: Residual: the body gives 4x28x28 but the identity shortcut passes the input's 1x28x28"),
            ("Residual(\nConv2d(1, 4, 3, stride=2, padding=1)\nshortcut:\nConv2d(1, 4, 1)\n)\nFlatten()\nLinear(784, 10)", "the body gives 4x14x14 but the shortcut gives 4x28x28"),
            ("Residual(\nConv2d(2, 1, 3, padding=1)\n)\nFlatten()\nLinear(784, 10)", "line 2: Conv2d(2, 1, 3, padding=1): in_channels 2 does not match the 1 channels"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try ModelSpec(parsing: text, source: "bad.spec").build(inputShape: [1, 28, 28], classes: 10), text) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error) lacks '\(message)'")
            }
        }
    }
}
