import CImageCodecs
import Dispatch
import Foundation

/// How image files become samples; the same in training, evaluation and prediction, and recorded in
/// checkpoints.
public struct ImagePreprocessing: Codable, Sendable, Equatable {
    /// 1 (grey) or 3 (RGB): grey is replicated to RGB, colour becomes Rec. 601 luma (0.299 R + 0.587 G + 0.114 B).
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// "3x64x64, bilinear resize (half-pixel centres)".
    public var description: String {
        "\(channels)x\(height)x\(width), Rec. 601 luma for grey, bilinear resize (half-pixel centres), transparency on black"
    }
}

/// Choices for reading image folders and CSV tables (`--channels`, `--image-size`, `--skip-bad-files`,
/// `--test-split`, `--label`).
public struct SourceOptions: Sendable, Equatable {
    /// CSV: the column holding the class label (or, with `regression`, the numeric target).
    public var label: String?
    /// CSV: predict the label column's number (mean squared error) instead of its class.
    public var regression = false
    /// `--format`: how to read a path, when its name does not say (nil: detected).
    public var format: SourceFormat?
    public var channels: Int?
    public var size: (height: Int, width: Int)?
    /// Skip files that do not decode, counting them, instead of stopping at the first.
    public var skipBadFiles = false
    /// Without a test/ folder: this fraction of each class (fixed seed, not --seed) is the test set.
    public var testFraction = 0.2

    public init() {}

    public static func == (a: SourceOptions, b: SourceOptions) -> Bool {
        a.label == b.label && a.regression == b.regression && a.format == b.format && a.channels == b.channels
            && a.size?.height == b.size?.height && a.size?.width == b.size?.width
            && a.skipBadFiles == b.skipBadFiles && a.testFraction == b.testFraction
    }
}

/// The kinds of data source a path can be (`--format`).
public enum SourceFormat: String, Sendable, CaseIterable {
    case images, npz, npy, csv
}

/// Whether `path` looks like an image-folder dataset: a folder of class folders holding images, or with
/// train/ (and test/) folders that do.
public func isImageFolder(_ path: String) -> Bool {
    guard isDirectory(path) else { return false }
    let root = isDirectory("\(path)/train") ? "\(path)/train" : path
    return sortedEntries(root).contains { isDirectory("\(root)/\($0)") && !imageFiles(in: "\(root)/\($0)").isEmpty }
}

/// Entries of a folder sorted by their bytes (so the order is the same on every machine), hidden ones left out.
public func sortedEntries(_ folder: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }
        .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
}

/// Throws when `folder` holds an entry whose name is not UTF-8: Foundation lists it with U+FFFD in place of the bad
/// bytes, a name that opens nothing, so the class (or the image) would be dropped in silence.
public func requireReadableNames(in folder: String) throws {
    for name in sortedEntries(folder) where name.unicodeScalars.contains("\u{FFFD}") {
        var status = stat()
        if lstat("\(folder)/\(name)", &status) != 0 {
            throw DatasetError.malformed(path: folder, problem: "holds an entry whose name is not UTF-8 (shown as "
                + "'\(name.prefix(64))'); rename it (class names and file names must be UTF-8 text)")
        }
    }
}

/// The PNG and JPEG files of a class folder (by extension, any case), in byte order.
func imageFiles(in folder: String) -> [String] {
    sortedEntries(folder).filter { ["png", "jpg", "jpeg"].contains(($0 as NSString).pathExtension.lowercased()) }
}

/// Loads an image-folder dataset: DIR/<class>/<image> (a held-out test split, stratified, fixed seed), or
/// DIR/train/<class>/… and DIR/test/<class>/…. Class names are the folder names in byte order, samples
/// ordered by class then file name. Images are decoded once, in parallel, into one byte store.
public func loadImageFolder(_ path: String, options: SourceOptions = SourceOptions()) throws
    -> (splits: DatasetSplits, preprocessing: ImagePreprocessing, skipped: [String]) {
    let hasSplits = isDirectory("\(path)/train")
    let trainRoot = hasSplits ? "\(path)/train" : path
    try requireReadableNames(in: trainRoot)
    let classes = sortedEntries(trainRoot).filter { isDirectory("\(trainRoot)/\($0)") }
    guard classes.count <= 256 else {
        throw DatasetError.malformed(path: trainRoot, problem: "holds \(classes.count) class folders; at most 256 classes")
    }
    guard classes.count >= 2 else {
        throw DatasetError.malformed(path: trainRoot, problem: classes.isEmpty
                                     ? "holds no class folders; put each class's images in a folder named after it"
                                     : "holds one class folder (\(classes[0])); classification needs at least two")
    }
    func listing(_ root: String, folders: [String]) throws -> [(path: String, label: Int)] {
        var files: [(String, Int)] = []
        for name in folders {
            let label = classes.firstIndex(of: name)!
            try requireReadableNames(in: "\(root)/\(name)")
            let images = imageFiles(in: "\(root)/\(name)")
            guard !images.isEmpty else {
                throw DatasetError.malformed(path: "\(root)/\(name)", problem: "holds no PNG or JPEG image; remove the folder or "
                    + "add images")
            }
            files += images.map { ("\(root)/\(name)/\($0)", label) }
        }
        return files
    }
    let train = try listing(trainRoot, folders: classes)
    var test: [(path: String, label: Int)] = []
    if hasSplits {
        // The test set may lack a class; it may not have one training never saw.
        try requireReadableNames(in: "\(path)/test")
        let testClasses = sortedEntries("\(path)/test").filter { isDirectory("\(path)/test/\($0)") }
        if let unknown = testClasses.first(where: { !classes.contains($0) }) {
            throw DatasetError.mismatch(first: "\(path)/train", second: "\(path)/test/\(unknown)",
                                        problem: "the test set has a class the training set does not")
        }
        test = try listing("\(path)/test", folders: testClasses)
    }
    let preprocessing = try choosePreprocessing(train + test, options: options)
    var skipped: [String] = []
    let trainSet = try decodeAll(train, preprocessing: preprocessing, classNames: classes, skipBadFiles: options.skipBadFiles,
                                 skipped: &skipped)
    let splits: DatasetSplits
    if hasSplits {
        splits = DatasetSplits(name: (path as NSString).lastPathComponent, train: trainSet,
                               test: try decodeAll(test, preprocessing: preprocessing, classNames: classes,
                                                   skipBadFiles: options.skipBadFiles, skipped: &skipped))
    } else {
        let split = try StratifiedSplit.holdOut(labels: trainSet.labels, classNames: classes, fraction: options.testFraction, seed: 0)
        splits = DatasetSplits(name: (path as NSString).lastPathComponent, train: try trainSet.subset(split.train),
                               test: try trainSet.subset(split.validation))
    }
    return (splits, preprocessing, skipped)
}

/// Channels and size: as asked, else grey when every image is grey, and the size all images share.
private func choosePreprocessing(_ files: [(path: String, label: Int)], options: SourceOptions) throws -> ImagePreprocessing {
    if let channels = options.channels, let size = options.size {
        return ImagePreprocessing(channels: channels, height: size.height, width: size.width)
    }
    var anyColour = false
    var size: (path: String, height: Int, width: Int)?
    for file in files {
        guard let info = try? imageInfo(file.path) else { continue }  // decoding reports it, or skips it
        anyColour = anyColour || info.channels == 3
        if options.size == nil {
            if let size, size.height != info.height || size.width != info.width {
                throw DatasetError.mismatch(first: size.path, second: file.path, problem: "images are \(size.height)x\(size.width) "
                    + "and \(info.height)x\(info.width); pass --image-size HxW to resize them all")
            }
            size = size ?? (file.path, info.height, info.width)
        }
    }
    guard let height = options.size?.height ?? size?.height, let width = options.size?.width ?? size?.width else {
        throw DatasetError.malformed(path: files.first?.path ?? "", problem: "no image could be read")
    }
    return ImagePreprocessing(channels: options.channels ?? (anyColour ? 3 : 1), height: height, width: width)
}

/// Width, height and channels from the file's header.
func imageInfo(_ path: String) throws -> (height: Int, width: Int, channels: Int) {
    try imageInfo(bytes: try readFileBytes(path), source: path)
}

/// Width, height and channels from the header of PNG or JPEG `bytes` (`source` names them in errors).
func imageInfo(bytes: [UInt8], source path: String) throws -> (height: Int, width: Int, channels: Int) {
    var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
    var error = [CChar](repeating: 0, count: 256)
    guard distrain_image_info(bytes, bytes.count, &width, &height, &channels, &error) == 0 else {
        throw DatasetError.malformed(path: path, problem: String(cString: error))
    }
    return (Int(height), Int(width), Int(channels))
}

/// One image as (C, H, W) bytes of `preprocessing`'s shape.
public func decodeImage(_ path: String, preprocessing p: ImagePreprocessing) throws -> [UInt8] {
    try decodeImage(bytes: try readFileBytes(path), source: path, preprocessing: p)
}

/// PNG or JPEG `bytes` (an upload; `source` names it in errors) as (C, H, W) bytes of `preprocessing`'s shape.
public func decodeImage(bytes: [UInt8], source path: String, preprocessing p: ImagePreprocessing) throws -> [UInt8] {
    let info = try imageInfo(bytes: bytes, source: path)
    // The header's size decides the allocation: bounded, so a small file cannot claim gigabytes.
    guard info.width > 0, info.height > 0, info.width <= 16_384, info.height <= 16_384, info.width * info.height <= 1 << 26 else {
        throw DatasetError.malformed(path: path, problem: "is \(info.width)x\(info.height) pixels; at most 16384 on a side and "
            + "64 megapixels")
    }
    // Colour to grey is done here, with one formula for both codecs (Rec. 601 luma, as PIL's convert("L")):
    // libpng would convert in linear light and libjpeg on encoded values.
    let decodeChannels = p.channels == 1 && info.channels == 3 ? 3 : p.channels
    var interleaved = [UInt8](repeating: 0, count: info.width * info.height * decodeChannels)
    var error = [CChar](repeating: 0, count: 256)
    guard distrain_image_decode(bytes, bytes.count, &interleaved, Int32(decodeChannels), &error) == 0 else {
        throw DatasetError.malformed(path: path, problem: String(cString: error))
    }
    if decodeChannels != p.channels {
        interleaved = (0..<(info.width * info.height)).map { i in
            let luma = 0.299 * Double(interleaved[3 * i]) + 0.587 * Double(interleaved[3 * i + 1]) + 0.114 * Double(interleaved[3 * i + 2])
            return UInt8(min(255, luma.rounded()))
        }
    }
    return resizedPlanes(interleaved, height: info.height, width: info.width, channels: p.channels, to: (p.height, p.width))
}

/// Interleaved (H, W, C) bytes to planar (C, H', W') with a bilinear filter sampling at pixel centres
/// (the identity when the size is unchanged).
func resizedPlanes(_ pixels: [UInt8], height: Int, width: Int, channels: Int, to size: (height: Int, width: Int)) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: channels * size.height * size.width)
    let sy = Double(height) / Double(size.height), sx = Double(width) / Double(size.width)
    for y in 0..<size.height {
        let fy = max(0, min(Double(height - 1), (Double(y) + 0.5) * sy - 0.5))
        let y0 = Int(fy), y1 = min(y0 + 1, height - 1), wy = fy - Double(y0)
        for x in 0..<size.width {
            let fx = max(0, min(Double(width - 1), (Double(x) + 0.5) * sx - 0.5))
            let x0 = Int(fx), x1 = min(x0 + 1, width - 1), wx = fx - Double(x0)
            for c in 0..<channels {
                func at(_ yy: Int, _ xx: Int) -> Double { Double(pixels[(yy * width + xx) * channels + c]) }
                let value = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1)) + wy * ((1 - wx) * at(y1, x0) + wx * at(y1, x1))
                out[(c * size.height + y) * size.width + x] = UInt8(max(0, min(255, value.rounded())))
            }
        }
    }
    return out
}

/// Decodes every file in parallel into one store; a file that does not decode stops the load (naming it),
/// or with `skipBadFiles` is left out and counted.
private func decodeAll(_ files: [(path: String, label: Int)], preprocessing p: ImagePreprocessing, classNames: [String],
                       skipBadFiles: Bool, skipped: inout [String]) throws -> ImageDataset {
    let size = p.channels * p.height * p.width
    var store = [UInt8](repeating: 0, count: files.count * size)
    let failures = FailureList(count: files.count)
    store.withUnsafeMutableBufferPointer { buffer in
        let base = buffer.baseAddress!
        DispatchQueue.concurrentPerform(iterations: files.count) { index in
            do {
                let sample = try decodeImage(files[index].path, preprocessing: p)
                sample.withUnsafeBufferPointer { (base + index * size).update(from: $0.baseAddress!, count: size) }
            } catch {
                failures.set(index, "\(error)")
            }
        }
    }
    var kept: [Int] = []
    for index in files.indices {
        guard let failure = failures.get(index) else { kept.append(index); continue }
        if !skipBadFiles {
            throw DatasetError.malformed(path: files[index].path, problem: failure.replacingOccurrences(of: "\(files[index].path): ",
                with: "") + "; fix or remove it, or pass --skip-bad-files")
        }
        skipped.append(failure)
    }
    let dataset = ImageDataset(shape: [p.channels, p.height, p.width], pixels: store, labels: files.map { UInt8($0.label) },
                               classNames: classNames)
    return kept.count == files.count ? dataset : try dataset.subset(kept)
}

/// Per-file failure messages written from the decoding threads.
private final class FailureList: @unchecked Sendable {
    private var messages: [String?]
    private let lock = NSLock()
    init(count: Int) { messages = [String?](repeating: nil, count: count) }
    func set(_ index: Int, _ message: String) { lock.lock(); messages[index] = message; lock.unlock() }
    func get(_ index: Int) -> String? { lock.lock(); defer { lock.unlock() }; return messages[index] }
}
