import Foundation

/// A model written as the body of a PyTorch `nn.Sequential`, one module per line:
///
///     # a small CNN for 1x28x28 images
///     Conv2d(1, 32, 3, padding=1, bias=False)
///     BatchNorm2d(32)
///     ReLU()
///     MaxPool2d(2)
///     Flatten()
///     fc = Linear(6272, 10)
///
/// Constructor names and arguments are torch.nn's, so a PyTorch user writes one from memory and the
/// export pastes into Python. Parameters are named as nn.Sequential names them: by the module's line
/// index among the modules ("0.weight", "1.running_mean"), or by an explicit `name = ` ("fc.weight").
/// `#` starts a comment.
public struct ModelSpec: Sendable, Equatable {
    /// One module line.
    public struct Module: Sendable, Equatable {
        /// 1-based line in the file, for messages.
        public let line: Int
        /// The module's name in PyTorch's state_dict: explicit, or its index.
        public let name: String
        public let kind: String
        public let positional: [Double]
        public let keywords: [String: Double]
        /// The line as written (without the name and comment).
        public let text: String
    }

    /// Where the spec came from ("model.spec", or "preset cnn"), for messages.
    public let source: String
    public let modules: [Module]

    /// Parses spec text; errors name the line and what is wrong.
    public init(parsing text: String, source: String) throws {
        self.source = source
        var modules: [Module] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            modules.append(try Self.parseModule(line, line: index + 1, position: modules.count, source: source))
        }
        guard !modules.isEmpty else { throw ModelSpecError(source: source, line: nil, message: "holds no module; write one per line, e.g. Linear(784, 10)") }
        var seen = Set<String>()
        for module in modules where !seen.insert(module.name).inserted {
            throw ModelSpecError(source: source, line: module.line, message: "the name '\(module.name)' is used twice; names must be unique")
        }
        self.modules = modules
    }

    private static func parseModule(_ line: String, line number: Int, position: Int, source: String) throws -> Module {
        func fail(_ message: String) -> ModelSpecError { ModelSpecError(source: source, line: number, message: message) }
        var body = Substring(line), name = String(position)
        if let equals = line.firstIndex(of: "="), let paren = line.firstIndex(of: "("), equals < paren {
            name = line[..<equals].trimmingCharacters(in: .whitespaces)
            body = line[line.index(after: equals)...]
            // A Python identifier, or an index as nn.Sequential names its modules.
            let identifier = name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) && !(name.first?.isNumber ?? true)
            guard identifier || (!name.isEmpty && name.allSatisfy(\.isNumber)) else {
                throw fail("'\(name)' is not a module name (an identifier, or a number as nn.Sequential uses)")
            }
        }
        var text = body.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("nn.") { text.removeFirst(3) }
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else {
            throw fail("'\(text)' is not a module; write Kind(arguments), e.g. Conv2d(1, 32, 3, padding=1)")
        }
        let kind = String(text[..<open]).trimmingCharacters(in: .whitespaces)
        let inside = text[text.index(after: open)..<text.index(before: text.endIndex)]
        var positional: [Double] = [], keywords: [String: Double] = [:]
        for argument in splitArguments(String(inside)) where !argument.isEmpty {
            if let equals = argument.firstIndex(of: "=") {
                let key = argument[..<equals].trimmingCharacters(in: .whitespaces)
                guard keywords[key] == nil else { throw fail("\(kind): \(key) is given twice") }
                keywords[key] = try value(argument[argument.index(after: equals)...].trimmingCharacters(in: .whitespaces), kind: kind, key: key, fail: fail)
            } else {
                guard keywords.isEmpty else { throw fail("\(kind): a positional argument follows a keyword argument") }
                positional.append(try value(argument, kind: kind, key: "argument \(positional.count + 1)", fail: fail))
            }
        }
        return Module(line: number, name: name, kind: kind, positional: positional, keywords: keywords, text: text)
    }

    /// Arguments split at top-level commas (a tuple like (3, 3) stays one argument).
    private static func splitArguments(_ text: String) -> [String] {
        var parts: [String] = [], current = "", depth = 0
        for character in text {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
            if character == "," && depth == 0 { parts.append(current.trimmingCharacters(in: .whitespaces)); current = "" } else { current.append(character) }
        }
        parts.append(current.trimmingCharacters(in: .whitespaces))
        return parts
    }

    /// A number, True/False (1/0), None (NaN: "not given"), or a square tuple (3, 3) (its size).
    private static func value(_ text: String, kind: String, key: String, fail: (String) -> ModelSpecError) throws -> Double {
        switch text {
        case "True": return 1
        case "False": return 0
        case "None": return .nan
        default: break
        }
        if text.hasPrefix("(") && text.hasSuffix(")") {
            let items = text.dropFirst().dropLast().split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard let first = items.first ?? nil, items.allSatisfy({ $0 == first }) else {
                throw fail("\(kind): \(key) = \(text): only square windows (equal sizes) are supported")
            }
            return first
        }
        guard let number = Double(text), number.isFinite else { throw fail("\(kind): \(key) = '\(text)' is not a number") }
        return number
    }
}

/// A spec that cannot be parsed or built, naming the line.
public struct ModelSpecError: Error, CustomStringConvertible {
    public let source: String
    public let line: Int?
    public let message: String
    public var description: String { "\(source)\(line.map { " line \($0)" } ?? ""): \(message)" }
}
