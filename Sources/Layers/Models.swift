/// The named architectures `--model` selects.
public enum ModelName: String, CaseIterable, Sendable, Codable {
    /// The seed's Keras model: Flatten → Dense 128 ReLU → Dense 10.
    case mlp
    /// The seed's PyTorch CIFAR-10 LeNet, adapted to the input channels and size.
    case lenet
    /// A stronger small CNN (three 3x3 conv blocks, dropout) for ≥ 92.5% on Fashion-MNIST.
    case cnn
    /// `cnn` with BatchNorm after each (bias-free) convolution: the `--recipe fast` model.
    case cnnBN = "cnn-bn"
    /// 784-1024-1024-10, the benchmark's GEMM-bound model.
    case mlpLarge = "mlp-large"

    /// The equivalent torch.nn module, whose state_dict names and layouts the parameters follow.
    public var pytorchEquivalent: String {
        switch self {
        case .mlp:
            return "nn.Sequential(nn.Flatten(), nn.Linear(C*H*W, 128), nn.ReLU(), nn.Linear(128, 10))"
        case .mlpLarge:
            return "nn.Sequential(nn.Flatten(), nn.Linear(C*H*W, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))"
        case .lenet:
            return "LeNet with conv1 = nn.Conv2d(C, 6, 5, padding=2 if H == 28 else 0), pool, conv2 = nn.Conv2d(6, "
                + "16, 5), pool, fc1 = nn.Linear(400, 120), fc2 = nn.Linear(120, 84), fc3 = nn.Linear(84, 10)"
        case .cnn:
            return "nn.Sequential(nn.Conv2d(C, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, "
                + "padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), "
                + "nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128*(H/8)*(W/8), 256), nn.ReLU(), nn.Dropout(0.3), "
                + "nn.Linear(256, 10))"
        case .cnnBN:
            return "nn.Sequential(nn.Conv2d(C, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), "
                + "nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), "
                + "nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(), "
                + "nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128*(H/8)*(W/8), 256), nn.ReLU(), nn.Dropout(0.3), "
                + "nn.Linear(256, 10))"
        }
    }
}

/// A preset architecture does not fit the input shape (e.g. `cnn`'s three 2x2 poolings on 7x7 images).
public struct ModelShapeError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }

    public init(message: String) { self.message = message }
}

extension ModelName {
    /// The spatial layers of the preset in order: (PyTorch-style name, kernel, stride, padding).
    private var spatialLayers: (Int) -> [(String, Int, Int, Int)] {
        switch self {
        case .mlp, .mlpLarge: return { _ in [] }
        case .lenet:
            return { height in
                let padding = height < 32 ? (32 - height + 1) / 2 : 0
                return [("conv1 = Conv2d(C, 6, 5, padding=\(padding))", 5, 1, padding), ("MaxPool2d(2)", 2, 2, 0),
                        ("conv2 = Conv2d(6, 16, 5)", 5, 1, 0), ("MaxPool2d(2)", 2, 2, 0)]
            }
        case .cnn:
            return { _ in
                [("0: Conv2d(C, 32, 3, padding=1)", 3, 1, 1), ("2: MaxPool2d(2)", 2, 2, 0),
                 ("3: Conv2d(32, 64, 3, padding=1)", 3, 1, 1), ("5: MaxPool2d(2)", 2, 2, 0),
                 ("6: Conv2d(64, 128, 3, padding=1)", 3, 1, 1), ("8: MaxPool2d(2)", 2, 2, 0)]
            }
        case .cnnBN:
            return { _ in
                [("0: Conv2d(C, 32, 3, padding=1, bias=False)", 3, 1, 1), ("3: MaxPool2d(2)", 2, 2, 0),
                 ("4: Conv2d(32, 64, 3, padding=1, bias=False)", 3, 1, 1), ("7: MaxPool2d(2)", 2, 2, 0),
                 ("8: Conv2d(64, 128, 3, padding=1, bias=False)", 3, 1, 1), ("11: MaxPool2d(2)", 2, 2, 0)]
            }
        }
    }

    /// Throws unless the preset fits inputs of shape (C, H, W), naming the first layer whose window does
    /// not fit and the smallest input it would take.
    public func checkFits(inputShape: [Int]) throws {
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ModelShapeError(message: "--model \(rawValue) takes (channels, height, width) inputs, got \(inputShape)")
        }
        var height = inputShape[1], width = inputShape[2]
        for (name, kernel, stride, padding) in spatialLayers(inputShape[1]) {
            guard height + 2 * padding >= kernel, width + 2 * padding >= kernel else {
                throw ModelShapeError(message: "--model \(rawValue) does not fit "
                    + "\(inputShape[0])x\(inputShape[1])x\(inputShape[2]) inputs: its layer \(name) receives "
                    + "\(height)x\(width), smaller than its \(kernel)x\(kernel) window; use larger images or --model mlp")
            }
            height = (height + 2 * padding - kernel) / stride + 1
            width = (width + 2 * padding - kernel) / stride + 1
        }
    }
}

/// Builds a named model for inputs of shape (channels, height, width) and `classes` outputs.
///
/// Parameter names follow the PyTorch module in `ModelName.pytorchEquivalent`, so a
/// state_dict loads with no renaming.
public func makeModel(_ name: ModelName, inputShape: [Int], classes: Int) -> Sequential {
    Sequential(inputShape: inputShape, layers: presetLayers(name, inputShape: inputShape, classes: classes))
}

/// The layers of a named model, not yet laid out in a parameter store: nothing large is allocated, so a
/// caller can compare their `parameterSpecs` with a file before building the model.
public func presetLayers(_ name: ModelName, inputShape: [Int], classes: Int) -> [Layer] {
    precondition(inputShape.count == 3, "models take (C, H, W) inputs, got \(inputShape)")
    do {
        try name.checkFits(inputShape: inputShape)
        return try name.spec(inputShape: inputShape, classes: classes).build(inputShape: inputShape, classes: classes).layers
    } catch {
        preconditionFailure("\(error)")
    }
}

extension ModelName {
    /// The preset as a model spec for (C, H, W) inputs and `classes` outputs: presets are specs shipped
    /// with the program, built by the same code as a user's file.
    public func spec(inputShape: [Int], classes: Int) throws -> ModelSpec {
        try ModelSpec(parsing: specText(inputShape: inputShape, classes: classes), source: "preset \(rawValue)")
    }

    /// The spec's text; layer sizes follow the input (PyTorch's pooling floors).
    public func specText(inputShape: [Int], classes: Int) -> String {
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        switch self {
        case .mlp:
            return "Flatten()\nLinear(\(c * h * w), 128)\nReLU()\nLinear(128, \(classes))\n"
        case .mlpLarge:
            return "Flatten()\nLinear(\(c * h * w), 1024)\nReLU()\nLinear(1024, 1024)\nReLU()\nLinear(1024, \(classes))\n"
        case .lenet:
            // LeNet-5 pads 28x28 digits to 32x32; the CIFAR net takes 32x32 as it is.
            let padding = h < 32 ? (32 - h + 1) / 2 : 0
            let (h2, w2) = (((h + 2 * padding - 4) / 2 - 4) / 2, ((w + 2 * padding - 4) / 2 - 4) / 2)
            return """
            conv1 = Conv2d(\(c), 6, 5\(padding > 0 ? ", padding=\(padding)" : ""))
            ReLU()
            MaxPool2d(2)
            conv2 = Conv2d(6, 16, 5)
            ReLU()
            MaxPool2d(2)
            Flatten()
            fc1 = Linear(\(16 * h2 * w2), 120)
            ReLU()
            fc2 = Linear(120, 84)
            ReLU()
            fc3 = Linear(84, \(classes))

            """
        case .cnn, .cnnBN:
            return cnnSpecText(channels: c, flattened: 128 * (h / 8) * (w / 8), classes: classes, batchNorm: self == .cnnBN)
        }
    }
}

/// The `cnn` preset's text: three conv 3x3 → ReLU → pool blocks (32, 64, 128 channels), then Dense 256,
/// Dropout 0.3 and the classifier. With `batchNorm` (`cnn-bn`) each conv is bias-free and followed by a
/// BatchNorm2d before its ReLU.
private func cnnSpecText(channels: Int, flattened: Int, classes: Int, batchNorm: Bool) -> String {
    var lines: [String] = []
    for (input, output) in [(channels, 32), (32, 64), (64, 128)] {
        lines.append("Conv2d(\(input), \(output), 3, padding=1\(batchNorm ? ", bias=False" : ""))")
        if batchNorm { lines.append("BatchNorm2d(\(output))") }
        lines += ["ReLU()", "MaxPool2d(2)"]
    }
    lines += ["Flatten()", "Linear(\(flattened), 256)", "ReLU()", "Dropout(0.3)", "Linear(256, \(classes))"]
    return lines.joined(separator: "\n") + "\n"
}
