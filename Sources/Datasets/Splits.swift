import Tensors

/// Stratified splits of a training set — validation hold-out and k folds — as pure functions of the
/// labels and the seed: every rank and every machine computes the same split, so nothing is exchanged.
public enum StratifiedSplit {
    /// Each class's sample indices in a seeded random order.
    static func shuffledByClass(labels: [UInt8], classCount: Int, seed: UInt64) -> [[Int]] {
        var byClass = [[Int]](repeating: [], count: classCount)
        for (index, label) in labels.enumerated() where Int(label) < classCount { byClass[Int(label)].append(index) }
        for c in 0..<classCount {
            var generator = SeededGenerator(seed: seed, keys: 0x5350_4C54, UInt64(c))
            var members = byClass[c]
            // Fisher-Yates with the seeded generator (the standard library's shuffle may change between releases).
            if members.count > 1 {
                for i in stride(from: members.count - 1, to: 0, by: -1) {
                    let j = Int(generator.next() % UInt64(i + 1))
                    members.swapAt(i, j)
                }
            }
            byClass[c] = members
        }
        return byClass
    }

    /// Training and validation indices (each ascending): round(fraction × n) of every class's n samples
    /// go to validation. Throws when a class would be left without samples on either side.
    public static func holdOut(labels: [UInt8], classNames: [String], fraction: Double,
        seed: UInt64) throws -> (train: [Int], validation: [Int]) {
        precondition(fraction > 0 && fraction < 1, "validation fraction \(fraction) must be in (0, 1)")
        var train: [Int] = [], validation: [Int] = []
        for (c, members) in shuffledByClass(labels: labels, classCount: classNames.count, seed: seed).enumerated() where !members.isEmpty {
            let held = Int((fraction * Double(members.count)).rounded())
            guard held > 0 && held < members.count else {
                throw SplitError(message: "--val-split \(fraction) leaves class '\(classNames[c])' (\(members.count) "
                    + "samples) with \(held == 0 ? "no validation" : "no training") samples; use a "
                    + "\(held == 0 ? "larger" : "smaller") --val-split or more data")
            }
            validation += members.prefix(held)
            train += members.dropFirst(held)
        }
        return (train.sorted(), validation.sorted())
    }

    /// `k` disjoint folds covering every sample (each ascending), stratified: class c's shuffled samples are
    /// dealt round-robin, so every fold holds ⌊n/k⌋ or ⌈n/k⌉ of each class. Throws when a class has fewer
    /// than k samples (a fold would miss it).
    public static func folds(labels: [UInt8], classNames: [String], k: Int, seed: UInt64) throws -> [[Int]] {
        precondition(k >= 2, "k-fold needs k >= 2, got \(k)")
        var folds = [[Int]](repeating: [], count: k)
        for (c, members) in shuffledByClass(labels: labels, classCount: classNames.count, seed: seed).enumerated() where !members.isEmpty {
            guard members.count >= k else {
                throw SplitError(message: "--kfold \(k) needs at least \(k) samples of every class; class "
                    + "'\(classNames[c])' has \(members.count)")
            }
            for (position, index) in members.enumerated() { folds[position % k].append(index) }
        }
        return folds.map { $0.sorted() }
    }
}

/// A split that cannot be made from these labels (a usage problem: the flags ask too much of the data).
public struct SplitError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension ImageDataset {
    /// The samples at `indices`, in that order, as an in-memory dataset (file-backed data is read once).
    public func subset(_ indices: [Int]) throws -> ImageDataset {
        let subset = try unnormalizedSubset(indices)
        return normalization.map(subset.normalized(by:)) ?? subset
    }

    private func unnormalizedSubset(_ indices: [Int]) throws -> ImageDataset {
        if case let .floats(values) = storage {
            let size = sampleSize
            return ImageDataset(shape: shape, features: indices.flatMap { values[($0 * size)..<(($0 + 1) * size)] },
                                labels: indices.map { labels[$0] }, classNames: classNames,
                                targets: targets.map { t in indices.map { t[$0] } })
        }
        var pixels = [UInt8](repeating: 0, count: indices.count * sampleSize)
        let size = sampleSize
        switch storage {
        case let .memory(all):
            all.withUnsafeBufferPointer { source in
                pixels.withUnsafeMutableBufferPointer { target in
                    for (row, index) in indices.enumerated() {
                        (target.baseAddress! + row * size).update(from: source.baseAddress! + index * size, count: size)
                    }
                }
            }
        case .floats:
            break  // handled above
        case let .files(files):
            try pixels.withUnsafeMutableBufferPointer { target in
                for (row, index) in indices.enumerated() { try files.read(sample: index, into: target.baseAddress! + row * size) }
            }
        }
        return ImageDataset(shape: shape, pixels: pixels, labels: indices.map { labels[$0] }, classNames: classNames)
    }
}
