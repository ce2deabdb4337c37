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
/// `#` starts a comment. A residual block spans lines — its body, then optionally `shortcut:` and the
/// projection's modules, then `)`; inner modules take no names (PyTorch's are "<block>.body.<i>"):
///
///     Residual(
///         Conv2d(32, 64, 3, stride=2, padding=1, bias=False)
///         BatchNorm2d(64)
///         ReLU()
///         Conv2d(64, 64, 3, padding=1, bias=False)
///         BatchNorm2d(64)
///     shortcut:
///         Conv2d(32, 64, 1, stride=2, bias=False)
///         BatchNorm2d(64)
///     )
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
        /// Keyword arguments given as quoted words, e.g. approximate='tanh' (without the quotes).
        public var words: [String: String] = [:]
        /// The line as written (without the name and comment); a block's whole canonical text.
        public var text: String
        /// A `Residual(` block's modules (empty for other kinds); an empty shortcut is the identity.
        public var body: [Module] = []
        public var shortcut: [Module] = []

        /// The same module under another name (a block's inner modules take "<block>.body.<i>").
        func renamed(_ newName: String) -> Module {
            var copy = Module(line: line, name: newName, kind: kind, positional: positional, keywords: keywords, text: text)
            copy.body = body
            copy.shortcut = shortcut
            copy.words = words
            return copy
        }
    }

    /// Where the spec came from ("model.spec", or "preset cnn"), for messages.
    public let source: String
    public let modules: [Module]

    /// Parses spec text; errors name the line and what is wrong.
    public init(parsing text: String, source: String) throws {
        self.source = source
        var modules: [Module] = []
        var block: Module?, inShortcut = false
        // Lines end in LF, CRLF or CR (Windows and old Mac editors); a byte-order mark is not part of the first line.
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        for (index, rawLine) in body.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = String(rawLine.split(separator: "#", maxSplits: 1,
                omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            func fail(_ message: String) -> ModelSpecError { ModelSpecError(source: source, line: index + 1, message: message) }
            if let opened = Self.parseBlockOpening(line, line: index + 1, position: modules.count, source: source) {
                guard block == nil else { throw fail("a Residual inside a Residual is not supported; close the first with ')'") }
                block = try opened.get()
                inShortcut = false
            } else if line == "shortcut:" {
                guard block != nil, !inShortcut else { throw fail("'shortcut:' belongs inside a Residual( … ) block, once") }
                inShortcut = true
            } else if line == ")" {
                guard var finished = block else { throw fail("')' closes no Residual( block") }
                guard !finished.body.isEmpty else { throw fail("the Residual opened on line \(finished.line) has no "
                    + "body; give it at least one module") }
                if inShortcut && finished.shortcut.isEmpty { throw fail("'shortcut:' is followed by no module; remove "
                    + "it for the identity shortcut") }
                finished.text = Self.blockText(finished)
                modules.append(finished)
                block = nil
            } else if var open = block {
                let path = inShortcut ? "shortcut" : "body"
                let inner = try Self.parseModule(line, line: index + 1,
                    position: inShortcut ? open.shortcut.count : open.body.count, source: source)
                guard inner.name == String(inShortcut ? open.shortcut.count : open.body.count) else {
                    throw fail("modules inside a Residual take no name (PyTorch names them \(open.name).\(path).<index>)")
                }
                guard inner.kind != "Flatten" else { throw fail("Flatten() cannot sit inside a Residual: both paths "
                    + "must give the block's output shape") }
                let named = inner.renamed("\(open.name).\(path).\(inner.name)")
                if inShortcut { open.shortcut.append(named) } else { open.body.append(named) }
                block = open
            } else {
                modules.append(try Self.parseModule(line, line: index + 1, position: modules.count, source: source))
            }
        }
        if let block { throw ModelSpecError(source: source, line: block.line, message: "Residual( is never closed; "
            + "end the block with a line ')'") }
        guard !modules.isEmpty else { throw ModelSpecError(source: source, line: nil, message: "holds no module; "
            + "write one per line, e.g. Linear(784, 10)") }
        var seen = Set<String>()
        for module in modules where !seen.insert(module.name).inserted {
            throw ModelSpecError(source: source, line: module.line, message: "the name '\(module.name)' is used "
                + "twice; names must be unique")
        }
        self.modules = modules
    }

    /// The module a line `[name =] Residual(` opens, or nil when the line is something else.
    private static func parseBlockOpening(_ line: String, line number: Int, position: Int,
        source: String) -> Result<Module, ModelSpecError>? {
        var body = Substring(line), name = String(position)
        if let equals = line.firstIndex(of: "=") {
            name = line[..<equals].trimmingCharacters(in: .whitespaces)
            body = line[line.index(after: equals)...]
        }
        var text = body.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "")
        if text.hasPrefix("nn.") { text.removeFirst(3) }
        guard text == "Residual(" else { return nil }
        if let problem = moduleNameProblem(name) {
            return .failure(ModelSpecError(source: source, line: number, message: problem))
        }
        return .success(Module(line: number, name: name, kind: "Residual", positional: [], keywords: [:], text: "Residual("))
    }

    /// Names PyTorch's nn.Module already uses (a submodule called `training` or `forward` trains here but the
    /// export fails), and Python's keywords: refused when the spec is read, not when it is exported.
    static let reservedNames: Set<String> = [
        "training", "forward", "parameters", "named_parameters", "buffers", "named_buffers", "children",
        "named_children", "modules", "named_modules", "state_dict", "load_state_dict", "train", "eval", "to", "cpu",
        "cuda", "type", "float", "double", "half", "bfloat16", "apply", "zero_grad", "register_buffer",
        "register_parameter", "register_module", "add_module", "get_submodule", "get_parameter", "get_buffer",
        "extra_repr", "requires_grad_", "share_memory", "dump_patches", "call_super_init", "compile", "ipu", "xpu",
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
        "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    ]

    /// Why `name` cannot name a module (nil when it can): a Python identifier that nn.Module does not use
    /// and that does not start with "_", or an index as nn.Sequential names its modules.
    static func moduleNameProblem(_ name: String) -> String? {
        if !name.isEmpty && name.allSatisfy({ $0.isASCII && $0.isNumber }) { return nil }
        let identifier = !name.isEmpty && name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
            && !(name.first?.isNumber ?? true)
        let shown = name.count > 40 ? String(name.prefix(40)) + "…" : name
        guard identifier else { return "'\(shown)' is not a module name (an identifier, or a number as nn.Sequential uses)" }
        if name.hasPrefix("_") { return "'\(shown)' starts with '_', which nn.Module keeps for itself; choose another name" }
        if reservedNames.contains(name) {
            return "'\(name)' is a name PyTorch's nn.Module or Python already uses, so the export could not hold it; "
                + "choose another name"
        }
        return nil
    }

    /// A block as canonical spec text (its inner modules' lines, indented).
    static func blockText(_ block: Module) -> String {
        "Residual(\n" + block.body.map { "    \($0.text)\n" }.joined()
            + (block.shortcut.isEmpty ? "" : "shortcut:\n" + block.shortcut.map { "    \($0.text)\n" }.joined()) + ")"
    }

    private static func parseModule(_ line: String, line number: Int, position: Int, source: String) throws -> Module {
        func fail(_ message: String) -> ModelSpecError { ModelSpecError(source: source, line: number, message: message) }
        var body = Substring(line), name = String(position)
        if let equals = line.firstIndex(of: "="), let paren = line.firstIndex(of: "("), equals < paren {
            name = line[..<equals].trimmingCharacters(in: .whitespaces)
            body = line[line.index(after: equals)...]
            if let problem = moduleNameProblem(name) { throw fail(problem) }
        }
        var text = body.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("nn.") { text.removeFirst(3) }
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else {
            throw fail("'\(text)' is not a module; write Kind(arguments), e.g. Conv2d(1, 32, 3, padding=1)")
        }
        let kind = String(text[..<open]).trimmingCharacters(in: .whitespaces)
        let inside = text[text.index(after: open)..<text.index(before: text.endIndex)]
        var positional: [Double] = [], keywords: [String: Double] = [:], words: [String: String] = [:]
        for argument in splitArguments(String(inside)) where !argument.isEmpty {
            if let equals = argument.firstIndex(of: "=") {
                let key = argument[..<equals].trimmingCharacters(in: .whitespaces)
                guard keywords[key] == nil && words[key] == nil else { throw fail("\(kind): \(key) is given twice") }
                let text = argument[argument.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                if let word = quotedWord(text) { words[key] = word; continue }
                keywords[key] = try value(text, kind: kind, key: key, fail: fail)
            } else {
                guard keywords.isEmpty else { throw fail("\(kind): a positional argument follows a keyword argument") }
                positional.append(try value(argument, kind: kind, key: "argument \(positional.count + 1)", fail: fail))
            }
        }
        var module = Module(line: number, name: name, kind: kind, positional: positional, keywords: keywords, text: text)
        module.words = words
        return module
    }

    /// The word inside 'single' or "double" quotes, nil when the text is not quoted.
    private static func quotedWord(_ text: String) -> String? {
        guard text.count >= 2, let quote = text.first, quote == "'" || quote == "\"", text.last == quote else { return nil }
        return String(text.dropFirst().dropLast())
    }

    /// Arguments split at top-level commas (a tuple like (3, 3) stays one argument).
    private static func splitArguments(_ text: String) -> [String] {
        var parts: [String] = [], current = "", depth = 0
        for character in text {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
            if character == "," && depth == 0 {
                parts.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(character)
            }
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
