import Foundation

/// The rows of a CSV file (RFC 4180: a header, commas, double-quoted fields with "" inside, CRLF or LF).
/// Errors name the row.
public func parseCSV(_ text: String, path: String) throws -> (header: [String], rows: [[String]]) {
    var rows: [[String]] = [], row: [String] = [], field = "", quoted = false, atFieldStart = true
    // A byte-order mark (spreadsheets write one) is not part of the first column's name.
    var iterator = (text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text).makeIterator()
    while let character = iterator.next() {
        if quoted {
            if character == "\"" {
                // A doubled quote is a quote; a single one ends the quoted part.
                if let next = iterator.next() {
                    if next == "\"" { field.append("\""); continue }
                    quoted = false
                    if next == "," { row.append(field); field = ""; atFieldStart = true; continue }
                    if next == "\n" || next == "\r\n" || next == "\r" {
                        row.append(field); rows.append(row); row = []; field = ""; atFieldStart = true; continue
                    }
                    field.append(next)
                } else { quoted = false }
            } else {
                field.append(character)
            }
            continue
        }
        switch character {
        case "\"" where atFieldStart: quoted = true; atFieldStart = false
        case ",": row.append(field); field = ""; atFieldStart = true
        case "\n", "\r\n", "\r": row.append(field); rows.append(row); row = []; field = ""; atFieldStart = true
        default: field.append(character); atFieldStart = false
        }
    }
    if quoted { throw DatasetError.malformed(path: path, problem: "ends inside a quoted field (row \(rows.count + 1)); close the quote") }
    if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
    rows.removeAll { $0.count == 1 && $0[0].trimmingCharacters(in: .whitespaces).isEmpty }  // blank lines
    guard let first = rows.first else {
        throw DatasetError.malformed(path: path, problem: "is empty; a CSV needs a header row and data rows")
    }
    let header = first.map { $0.trimmingCharacters(in: .whitespaces) }
    // Columns are found by name (training records them, predict looks them up): a name twice would be read as one.
    var seen: [String: Int] = [:]
    for (index, name) in header.enumerated() {
        if let earlier = seen[name] {
            throw DatasetError.malformed(path: path, problem: "names two columns '\(shown(name))' (columns \(earlier + 1) and "
                + "\(index + 1)); give every column its own name")
        }
        seen[name] = index
    }
    return (header, Array(rows.dropFirst()))
}

/// A classification table: `--label COLUMN` is the class, every other column a numeric feature. Features
/// become (D, 1, 1) float samples, standardized with the training set's statistics (the normalization
/// checkpoints record); classes are the label's distinct values, in numeric order when all are numbers.
/// Without a separate test file, a stratified `testFraction` of each class (fixed seed) is the test set.
public func loadCSVDataset(_ path: String, options: SourceOptions) throws -> DatasetSplits {
    let bytes = try readFileBytes(path)
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw DatasetError.malformed(path: path, problem: "is not UTF-8 text")
    }
    let (header, rows) = try parseCSV(text, path: path)
    guard let label = options.label else {
        throw DatasetError.malformed(path: path, problem: "needs --label COLUMN naming the class column (columns: \(shownColumns(header)))")
    }
    guard let labelColumn = header.firstIndex(of: label) else {
        throw DatasetError.malformed(path: path, problem: "has no column '\(label)' (columns: \(shownColumns(header)))")
    }
    let featureColumns = header.indices.filter { $0 != labelColumn }
    guard !featureColumns.isEmpty else { throw DatasetError.malformed(path: path, problem: "has no feature column besides '\(label)'") }
    guard !rows.isEmpty else { throw DatasetError.malformed(path: path, problem: "has a header but no data rows") }
    if options.regression {
        return try regressionTable(path, header: header, rows: rows, target: labelColumn, features: featureColumns, options: options)
    }
    var features: [Float] = [], labelTexts: [String] = []
    features.reserveCapacity(rows.count * featureColumns.count)
    for (index, row) in rows.enumerated() {
        let line = index + 2
        guard row.count == header.count else {
            throw DatasetError.malformed(path: path, problem: "row \(line) has \(row.count) cells, the header has \(header.count)")
        }
        for column in featureColumns {
            let cell = row[column].trimmingCharacters(in: .whitespaces)
            guard let value = Float(cell), value.isFinite else {
                throw DatasetError.malformed(path: path, problem: "row \(line), column '\(shown(header[column]))': "
                    + "\(notANumber(cell)); features must be numeric")
            }
            features.append(value)
        }
        labelTexts.append(row[labelColumn].trimmingCharacters(in: .whitespaces))
    }
    labelTexts = mergingNumericSpellings(labelTexts)
    let distinct = Array(Set(labelTexts))
    let classes = distinct.allSatisfy({ Double($0) != nil })
        ? distinct.sorted { Double($0)! < Double($1)! } : distinct.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    guard classes.count >= 2 else {
        throw DatasetError.malformed(path: path, problem: "column '\(label)' holds one class (\(shown(classes.first ?? ""))); "
            + "classification needs two or more")
    }
    guard classes.count <= 256 else {
        throw DatasetError.malformed(path: path, problem: "column '\(label)' holds \(classes.count) distinct values; at most 256 classes")
    }
    let classIndex = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, UInt8($0)) })
    let all = ImageDataset(shape: [featureColumns.count, 1, 1], features: features, labels: labelTexts.map { classIndex[$0]! },
                           classNames: classes)
    let split = try StratifiedSplit.holdOut(labels: all.labels, classNames: classes, fraction: options.testFraction, seed: 0)
    var splits = DatasetSplits(name: (path as NSString).lastPathComponent, train: try all.subset(split.train),
                               test: try all.subset(split.validation))
    splits.featureNames = featureColumns.map { header[$0] }
    splits.labelColumn = label
    return splits
}

/// `--task regression`: the label column is a numeric target; the test split is a fixed random 20%.
private func regressionTable(_ path: String, header: [String], rows: [[String]], target: Int, features: [Int],
                             options: SourceOptions) throws -> DatasetSplits {
    var values: [Float] = [], targets: [Float] = []
    for (index, row) in rows.enumerated() {
        guard row.count == header.count else {
            throw DatasetError.malformed(path: path, problem: "row \(index + 2) has \(row.count) cells, the header has \(header.count)")
        }
        for column in features + [target] {
            let cell = row[column].trimmingCharacters(in: .whitespaces)
            guard let value = Float(cell), value.isFinite else {
                throw DatasetError.malformed(path: path, problem: "row \(index + 2), column '\(shown(header[column]))': "
                    + "\(notANumber(cell)); \(column == target ? "a regression target" : "features") must be numeric")
            }
            if column == target { targets.append(value) } else { values.append(value) }
        }
    }
    guard rows.count >= 5 else {
        throw DatasetError.malformed(path: path, problem: "has \(rows.count) rows; a regression needs at least 5 (some are held "
            + "out for testing)")
    }
    let all = ImageDataset(shape: [features.count, 1, 1], features: values, labels: [UInt8](repeating: 0, count: rows.count),
                           classNames: [header[target]], targets: targets)
    let split = try StratifiedSplit.holdOut(labels: all.labels, classNames: [header[target]], fraction: options.testFraction, seed: 0)
    var splits = DatasetSplits(name: (path as NSString).lastPathComponent, train: try all.subset(split.train),
                               test: try all.subset(split.validation))
    splits.featureNames = features.map { header[$0] }
    splits.labelColumn = header[target]
    return splits
}

/// Numeric labels written two ways ("1" and "1.0") are one class, named as it is first written; other labels
/// are left as they are.
func mergingNumericSpellings(_ labels: [String]) -> [String] {
    guard labels.allSatisfy({ Double($0) != nil }) else { return labels }
    var spelling: [Double: String] = [:]
    return labels.map { text in
        let value = Double(text)!
        if let first = spelling[value] { return first }
        spelling[value] = text
        return text
    }
}

/// A cell or a name as an error message shows it: on one line (control characters escaped) and at most 64 characters,
/// so that a 10 MB field or a quoted line break never floods or splits the message.
func shown(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        if out.count >= 64 { return out + "…" }
        if scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}" {
            out += String(format: "\\u{%X}", scalar.value)
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// A header's names for a message: each shown, at most 20 of them.
func shownColumns(_ header: [String]) -> String {
    header.prefix(20).map(shown).joined(separator: ", ") + (header.count > 20 ? ", … (\(header.count) columns)" : "")
}

/// What is wrong with a cell that should hold a number.
private func notANumber(_ cell: String) -> String { cell.isEmpty ? "the cell is empty" : "'\(shown(cell))' is not a number" }
