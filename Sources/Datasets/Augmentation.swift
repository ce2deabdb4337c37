import Tensors

/// Training-time augmentation for small natural images (the standard CIFAR-10 recipe): a random crop
/// of the original size from the image zero-padded by `padding` pixels, and a random horizontal flip.
///
/// The choices for a sample depend only on (seed, epoch, global sample index), so every world size
/// sees the same augmented batch.
public struct Augmentation: Sendable, Equatable {
    /// Zero pixels added on each side before cropping.
    public var padding: Int
    /// Whether to flip horizontally with probability 1/2.
    public var horizontalFlip: Bool

    public init(padding: Int = 4, horizontalFlip: Bool = true) {
        precondition(padding >= 0, "padding must be 0 or more, got \(padding)")
        self.padding = padding
        self.horizontalFlip = horizontalFlip
    }

    /// The crop offset (each in 0...2·padding) and flip for one sample.
    @inline(__always)
    public func choice(seed: UInt64, epoch: Int, sampleIndex: Int) -> (dy: Int, dx: Int, flip: Bool) {
        // Key 0xA46: a stream of its own, apart from shuffling and dropout.
        var generator = SeededGenerator(seed: seed, 0xA46, UInt64(epoch), UInt64(sampleIndex))
        let random = generator.next()
        let span = UInt64(2 * padding + 1)
        let dy = Int(random % span), dx = Int((random / span) % span)
        let flip = horizontalFlip && (random >> 63) == 1
        return (dy, dx, flip)
    }

    /// Writes the augmented (C, H, W) image of `source` into `destination`, mapping bytes through
    /// `lookup` (channels × 256 normalized values); padded pixels are byte 0, as torchvision pads.
    @inline(__always)
    func apply(source: UnsafePointer<UInt8>, destination: UnsafeMutablePointer<Float>, channels: Int, height: Int,
               width: Int, lookup: UnsafePointer<Float>, choice: (dy: Int, dx: Int, flip: Bool)) {
        let shiftY = choice.dy - padding, shiftX = choice.dx - padding
        for c in 0..<channels {
            let table = lookup + c * 256
            let plane = source + c * height * width, out = destination + c * height * width
            let zero = table[0]
            for y in 0..<height {
                let sy = y + shiftY
                let row = out + y * width
                guard sy >= 0 && sy < height else {
                    for x in 0..<width { row[x] = zero }
                    continue
                }
                let sourceRow = plane + sy * width
                for x in 0..<width {
                    let cropX = choice.flip ? width - 1 - x : x
                    let sx = cropX + shiftX
                    row[x] = sx >= 0 && sx < width ? table[Int(sourceRow[sx])] : zero
                }
            }
        }
    }
}

/// `--tta`: what evaluation does to each image besides scoring it as it is.
public enum TestTimeAugmentation: String, Codable, Sendable, CaseIterable {
    /// Score the image as it is.
    case none
    /// Score the image and its mirror image (left–right) and average the two outputs (logits), the
    /// test-time counterpart of training with random horizontal flips.
    case flip
}

/// Mirrors each (C, H, W) image of a (batch, C, H, W) buffer left–right, in place.
public func flipHorizontally(_ images: UnsafeMutablePointer<Float>, batch: Int, shape: [Int]) {
    let width = shape.last ?? 1, rows = batch * shape.dropLast().reduce(1, *)
    for r in 0..<rows {
        let row = images + r * width
        var (left, right) = (0, width - 1)
        while left < right {
            let kept = row[left]
            row[left] = row[right]
            row[right] = kept
            left += 1
            right -= 1
        }
    }
}
