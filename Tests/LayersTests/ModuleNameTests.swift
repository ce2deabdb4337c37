import Layers
import XCTest

/// Module names the PyTorch export could not hold are refused when the spec is read (issue 34, class 6):
/// `training = Linear(…)` used to train, then fail in PyTorch ("attribute 'training' already exists").
final class ModuleNameTests: XCTestCase {
    private func error(_ spec: String) -> String {
        do { _ = try ModelSpec(parsing: spec, source: "m.spec"); return "parsed" } catch { return "\(error)" }
    }

    func testNamesNNModuleOrPythonUseAreRefusedAtParseTime() {
        for name in ["training", "forward", "state_dict", "eval", "to"] {
            XCTAssertEqual(error("Flatten()\n\(name) = Linear(784, 10)"), "m.spec line 2: '\(name)' is a name PyTorch's nn.Module "
                + "or Python already uses, so the export could not hold it; choose another name")
        }
        XCTAssertTrue(error("class = Linear(784, 10)").contains("'class' is a name PyTorch's nn.Module or Python already uses"))
        XCTAssertTrue(error("_hidden = Linear(784, 10)").contains("starts with '_', which nn.Module keeps for itself"))
        XCTAssertTrue(error("my-layer = Linear(784, 10)").contains("'my-layer' is not a module name"))
        XCTAssertTrue(error("forward = Residual(\n    ReLU()\n)").contains("'forward' is a name PyTorch's nn.Module"))
        XCTAssertEqual(error("Flatten()\nhead = Linear(784, 10)\n7 = ReLU()"), "parsed")
    }
}
