import Layers
import XCTest

final class ModelSpecTests: XCTestCase {
    private let spec = """
    # a spec with every kind of module
    Conv2d(1, 8, 3, padding=1, bias=False)   # 0
    BatchNorm2d(8)
    LeakyReLU(negative_slope=0.2)
    MaxPool2d(2)
    Conv2d(8, 8, (3, 3), stride=2, padding=1)
    ReLU()
    AvgPool2d(2)
    nn.SiLU()
    AdaptiveAvgPool2d(1)
    Flatten()
    fc1 = Linear(8, 16)
    BatchNorm1d(16, momentum=0.2)
    GELU()
    Dropout(p=0.1)
    Tanh()
    Sigmoid()
    out = Linear(16, 10, bias=True)
    """

    func testEveryModuleBuildsWithPyTorchNamesAndShapes() throws {
        let built = try ModelSpec(parsing: spec, source: "all.spec").build(inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(built.rows.map(\.name), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "fc1", "11", "12",
            "13", "14", "15", "out"])
        XCTAssertEqual(built.rows.map(\.outputShape)[3], [8, 14, 14])
        XCTAssertEqual(built.rows.map(\.outputShape)[4], [8, 7, 7], "stride 2, padding 1: (14 + 2 − 3)/2 + 1")
        XCTAssertEqual(built.rows.map(\.outputShape)[6], [8, 3, 3])
        XCTAssertEqual(built.rows.map(\.outputShape)[8], [8, 1, 1])
        XCTAssertEqual(built.layers.count, 16, "the ReLU after a convolution is fused into it")
        let model = built.makeSequential(inputShape: [1, 28, 28])
        XCTAssertEqual(model.parameters.slices.map(\.name), ["0.weight", "1.weight", "1.bias", "4.weight", "4.bias",
                                                           "fc1.weight", "fc1.bias", "11.weight", "11.bias", "out.weight", "out.bias"])
        XCTAssertEqual(model.parameters.bufferSlices.map(\.name), ["1.running_mean", "1.running_var", "1.num_batches_tracked",
                                                                 "11.running_mean", "11.running_var", "11.num_batches_tracked"])
        XCTAssertEqual(built.rows[2].pytorch, "LeakyReLU(negative_slope=0.2)")
        XCTAssertEqual(built.rows[11].pytorch, "BatchNorm1d(16, momentum=0.2)")
        // The canonical text parses back into the same model.
        let again = try ModelSpec(parsing: built.canonicalText, source: "canonical").build(inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(again.rows.map(\.pytorch), built.rows.map(\.pytorch))
        XCTAssertEqual(again.rows.map(\.name), built.rows.map(\.name))
        XCTAssertTrue(built.pytorchSource.contains("(\"fc1\", nn.Linear(8, 16)),"))
        XCTAssertTrue(built.pytorchSource.hasPrefix("model = nn.Sequential(OrderedDict(["))
    }

    func testPresetsAreSpecsWithTheirPyTorchNames() throws {
        let lenet = try ModelName.lenet.spec(inputShape: [3, 32, 32], classes: 10).build(inputShape: [3, 32, 32], classes: 10)
        XCTAssertEqual(lenet.makeSequential(inputShape: [3, 32, 32]).parameters.count, 62_006)
        XCTAssertEqual(lenet.rows.filter { $0.parameters > 0 }.map(\.name), ["conv1", "conv2", "fc1", "fc2", "fc3"])
        let cnn = try ModelName.cnn.spec(inputShape: [1, 28, 28], classes: 10).build(inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(cnn.rows.filter { $0.parameters > 0 }.map(\.name), ["0", "3", "6", "10", "13"])
        // cnn-bn: PyTorch's names for the bias-free convs, the BatchNorms and their buffers; each ReLU is
        // fused into the layer before it (17 rows, 13 layers), and it fits 1x8x8 but not 1x7x7.
        let bn = try ModelName.cnnBN.spec(inputShape: [1, 28, 28], classes: 10).build(inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(bn.rows.filter { $0.parameters > 0 }.map(\.name), ["0", "1", "4", "5", "8", "9", "13", "16"])
        XCTAssertEqual(bn.rows.count, 17)
        XCTAssertEqual(bn.layers.count, 13)
        let model = bn.makeSequential(inputShape: [1, 28, 28])
        XCTAssertEqual(model.parameters.count, 390_410 - 32 - 64 - 128 + 2 * (32 + 64 + 128))
        XCTAssertEqual(model.parameters.bufferSlices.map(\.name).prefix(3), ["1.running_mean", "1.running_var", "1.num_batches_tracked"])
        XCTAssertNil(model.parameters.slice(named: "0.bias"))
        XCTAssertNoThrow(try ModelName.cnnBN.checkFits(inputShape: [1, 8, 8]))
        XCTAssertThrowsError(try ModelName.cnnBN.checkFits(inputShape: [1, 7, 7])) { error in
            XCTAssertTrue("\(error)".contains("11: MaxPool2d(2)"), "\(error)")
        }
    }

    /// Every kind of mistake is an error naming the file, the line and what would fit.
    /// Windows (CRLF) and old Mac (CR) line endings and a byte-order mark read as the plain file does.
    func testLineEndingsAndAByteOrderMark() throws {
        let plain = try ModelSpec(parsing: "Flatten()\nLinear(784, 10)\n", source: "plain")
        for text in ["Flatten()\r\nLinear(784, 10)\r\n", "Flatten()\rLinear(784, 10)\r", "\u{FEFF}Flatten()\nLinear(784, 10)\n"] {
            XCTAssertEqual(try ModelSpec(parsing: text, source: "other").modules, plain.modules, text.debugDescription)
        }
        XCTAssertThrowsError(try ModelSpec(parsing: "Flatten()\r\nnot a module\r\n", source: "crlf")) {
            XCTAssertTrue("\($0)".contains("line 2"), "\($0)")
        }
    }

    func testBadSpecsNameTheLineAndTheProblem() {
        func error(_ text: String, shape: [Int] = [1, 28, 28], classes: Int = 10) -> String {
            do { _ = try ModelSpec(parsing: text, source: "m.spec").build(inputShape: shape,
                classes: classes); return "built" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("Flatten()\nLinear(100, 10)"), "m.spec line 2: Linear(100, 10): in_features 100 does not "
            + "match the 784 features coming in; write Linear(784, 10)")
        XCTAssertEqual(error("Conv2d(3, 8, 3)"), "m.spec line 1: Conv2d(3, 8, 3): in_channels 3 does not match the 1 "
            + "channels coming in (1x28x28); write Conv2d(1, …)")
        XCTAssertTrue(error("Conv3d(1, 8, 3)").hasPrefix("m.spec line 1: unknown module 'Conv3d'; use one of "))
        XCTAssertEqual(error("Conv2d(1, 8, 3, groups=2)"), "m.spec line 1: Conv2d(1, 8, 3, groups=2): unknown "
            + "argument 'groups'; it takes in_channels, out_channels, kernel_size, stride, padding, bias")
        XCTAssertEqual(error("Conv2d(1, 0, 3)"), "m.spec line 1: Conv2d(1, 0, 3): out_channels must be a whole number "
            + "in 1...1000000, got 0")
        XCTAssertEqual(error("Conv2d(1, -8, 3)"), "m.spec line 1: Conv2d(1, -8, 3): out_channels must be a whole "
            + "number in 1...1000000, got -8")
        XCTAssertEqual(error("MaxPool2d(2)\nMaxPool2d(2)\nMaxPool2d(2)\nMaxPool2d(2)\nMaxPool2d(2)"),
                       "m.spec line 5: MaxPool2d(2): its 2x2 window does not fit the 1x1 input; use fewer pooling layers or larger images")
        XCTAssertEqual(error("Linear(784, 10)"), "m.spec line 1: Linear(784, 10): needs a flat (features) or "
            + "per-position (positions, features) input but receives 1x28x28; add Flatten() before it")
        XCTAssertEqual(error("Flatten()\nLinear(784, 5)"), "m.spec line 2: the model ends with output shape (5), the "
            + "data has 10 classes; end with Flatten() and Linear(…, 10)")
        XCTAssertEqual(error("Flatten()\n\nLinear(784 10)"), "m.spec line 3: Linear: argument 1 = '784 10' is not a number")
        XCTAssertEqual(error("Linear"), "m.spec line 1: 'Linear' is not a module; write Kind(arguments), e.g. Conv2d(1, 32, 3, padding=1)")
        XCTAssertEqual(error("a = Flatten()\na = Linear(784, 10)"), "m.spec line 2: the name 'a' is used twice; names must be unique")
        XCTAssertEqual(error("# nothing\n"), "m.spec: holds no module; write one per line, e.g. Linear(784, 10)")
        XCTAssertEqual(error("Flatten()\nLinear(784, 100000)\nLinear(100000, 10000)\nLinear(10000, 10)").prefix(22),
            "m.spec: has 1078610010")
        XCTAssertEqual(error("Flatten()\nDropout(1.5)\nLinear(784, 10)"), "m.spec line 2: Dropout(1.5): p must be in [0, 1), got 1.5")
        XCTAssertEqual(error("Conv2d(1, 8, 3, padding=100000)\nFlatten()\nLinear(10, 10)"), "m.spec line 1: Conv2d(1, 8, 3, "
            + "padding=100000): its output would be 8x200026x200026 values per sample, more than 67108864; use less "
            + "padding (100000) or a larger stride")
        XCTAssertEqual(error("Flatten()\nBatchNorm2d(784)\nLinear(784, 10)"), "m.spec line 2: BatchNorm2d(784): needs "
            + "(channels, height, width) inputs but receives (784); use BatchNorm1d")
    }

    /// `Linear(C, V, tied_to='wte')` uses the embedding's table as its weight: no parameter of its own, the
    /// canonical spec keeps the tie, the PyTorch export ties the two modules; misuse is a one-line error.
    func testAHeadTiedToTheEmbeddingHasNoWeightOfItsOwn() throws {
        let text = "wte = Embedding(11, 8)\nLayerNorm(8)\nhead = Linear(8, 11, bias=False, tied_to='wte')"
        let built = try ModelSpec(parsing: text, source: "m.spec").build(inputShape: [5], outputShape: [5, 11])
        let model = Sequential(inputShape: [5], layers: built.layers)
        XCTAssertEqual(model.parameters.slices.map(\.name), ["wte.weight", "1.weight", "1.bias"])
        XCTAssertEqual(built.rows[2].parameters, 0)
        XCTAssertEqual(built.rows.canonicalSpec, "wte = Embedding(11, 8)\n1 = LayerNorm(8)\n"
            + "head = Linear(8, 11, bias=False, tied_to='wte')\n")
        XCTAssertTrue(built.rows.pytorchSource.contains(
            "model.get_submodule(\"head\").weight = model.get_submodule(\"wte\").weight"), built.rows.pytorchSource)
        XCTAssertFalse(built.rows.pytorchSource.contains("tied_to"))
        let again = try ModelSpec(parsing: built.rows.canonicalSpec, source: "c").build(inputShape: [5], outputShape: [5, 11])
        XCTAssertEqual((again.layers.last as? Linear)?.tiedWeightName, "wte.weight")
        func error(_ spec: String) -> String {
            do { _ = try ModelSpec(parsing: spec, source: "m.spec").build(inputShape: [5], outputShape: [5, 11]); return "built" }
            catch { return "\(error)" }
        }
        XCTAssertEqual(error("wte = Embedding(11, 8)\nhead = Linear(8, 11, tied_to='tok')"), "m.spec line 2: Linear(8, "
            + "11, tied_to='tok'): tied_to='tok' names no module before it; the embeddings are 'wte'")
        XCTAssertEqual(error("wte = Embedding(11, 8)\nn = LayerNorm(8)\nhead = Linear(8, 11, tied_to='n')"), "m.spec line 3: "
            + "Linear(8, 11, tied_to='n'): tied_to='n' names a LayerNorm, not an Embedding")
        XCTAssertEqual(error("wte = Embedding(11, 8)\nLinear(8, 12, tied_to='wte')"), "m.spec line 2: Linear(8, 12, "
            + "tied_to='wte'): a head tied to Embedding(11, 8) must be Linear(8, 11)")
        XCTAssertEqual(error("wte = Embedding(11, 8)\nResidual(\n    Linear(8, 11, tied_to='wte')\n)"), "m.spec line 3: "
            + "Linear(8, 11, tied_to='wte'): tied_to works at the top level only (a head after the blocks), not inside a "
            + "Residual block")
    }

    /// GELU(approximate='tanh') builds GPT-2's GELU and exports it as written; bad words and misplaced quotes
    /// are one-line errors.
    func testGELUTakesItsApproximationAsAQuotedWord() throws {
        for (text, function) in [("GELU(approximate='tanh')", PointwiseFunction.geluTanh),
                                 ("GELU(approximate=\"none\")", .gelu), ("GELU()", .gelu)] {
            let built = try ModelSpec(parsing: "Flatten()\n\(text)\nLinear(784, 10)", source: "m.spec")
                .build(inputShape: [1, 28, 28], classes: 10)
            XCTAssertEqual((built.layers[1] as? Pointwise)?.function, function, text)
            XCTAssertEqual(built.rows[1].pytorch, function.pytorch)
            let again = try ModelSpec(parsing: built.rows.canonicalSpec, source: "canonical").build(inputShape: [1, 28, 28], classes: 10)
            XCTAssertEqual((again.layers[1] as? Pointwise)?.function, function, "the canonical spec reads back")
        }
        func error(_ line: String) -> String {
            do { _ = try ModelSpec(parsing: "Flatten()\n\(line)\nLinear(784, 10)", source: "m.spec")
                .build(inputShape: [1, 28, 28], classes: 10); return "built" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("GELU(approximate='erf')"), "m.spec line 2: GELU(approximate='erf'): approximate='erf' is "
            + "not supported; use one of 'none', 'tanh'")
        XCTAssertEqual(error("GELU(approximate=1)"), "m.spec line 2: GELU(approximate=1): approximate takes a quoted "
            + "word: one of 'none', 'tanh'")
        XCTAssertEqual(error("Dropout(p='high')"), "m.spec line 2: Dropout(p='high'): 'p' does not take a quoted word; "
            + "give it a number or True/False")
        XCTAssertEqual(error("ReLU(mode='fast')"), "m.spec line 2: ReLU(mode='fast'): 'mode' does not take a quoted "
            + "word; ReLU has no argument 'mode'")
    }
}
