/// A small, fast, seedable generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice in distrain comes from one of these, built from a seed and
/// the coordinates of the choice (epoch, sample index, layer), so results never
/// depend on how work is split across ranks.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    /// The four state words; exposed so checkpoints can store and restore them.
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// Creates a generator from a seed and any number of extra keys (epoch, index, ...).
    public init(seed: UInt64, keys: UInt64...) {
        self.init(seed: seed, keyList: keys)
    }

    /// Creates a generator from a seed and a list of extra keys.
    public init(seed: UInt64, keyList: [UInt64]) {
        var mixer = seed
        for key in keyList { SeededGenerator.mix(&mixer, key) }
        self.init(mixed: mixer)
    }

    /// The generator `init(seed:keys:)` gives for three keys, built without an array: per-sample
    /// streams inside a training step must not allocate, in debug builds either.
    public init(seed: UInt64, _ key0: UInt64, _ key1: UInt64, _ key2: UInt64) {
        var mixer = seed
        SeededGenerator.mix(&mixer, key0)
        SeededGenerator.mix(&mixer, key1)
        SeededGenerator.mix(&mixer, key2)
        self.init(mixed: mixer)
    }

    /// The generator `init(seed:keys:)` gives for four keys, built without an array.
    public init(seed: UInt64, _ key0: UInt64, _ key1: UInt64, _ key2: UInt64, _ key3: UInt64) {
        var mixer = seed
        SeededGenerator.mix(&mixer, key0)
        SeededGenerator.mix(&mixer, key1)
        SeededGenerator.mix(&mixer, key2)
        SeededGenerator.mix(&mixer, key3)
        self.init(mixed: mixer)
    }

    private init(mixed: UInt64) {
        var s = mixed
        state = (SeededGenerator.splitMix(&s), SeededGenerator.splitMix(&s),
                 SeededGenerator.splitMix(&s), SeededGenerator.splitMix(&s))
    }

    /// Folds one key into the seed mixer.
    @inline(__always)
    private static func mix(_ mixer: inout UInt64, _ key: UInt64) {
        mixer = SeededGenerator.splitMix(&mixer) ^ (key &* 0x9E37_79B9_7F4A_7C15)
    }

    @inline(__always)
    static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform Float in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform Float in [low, high).
    @inline(__always)
    public mutating func nextFloat(in low: Float, _ high: Float) -> Float {
        low + (high - low) * nextUnitFloat()
    }

    /// Uniform integer in 0..<bound without modulo bias (Lemire's method).
    @inline(__always)
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive, got \(bound)")
        let b = UInt64(bound)
        var product = next().multipliedFullWidth(by: b)
        if product.low < b {
            let threshold = (0 &- b) % b
            while product.low < threshold { product = next().multipliedFullWidth(by: b) }
        }
        return Int(product.high)
    }
}

/// A permutation of 0..<count, the same on every rank for the same seed and epoch.
public func seededPermutation(count: Int, seed: UInt64, epoch: Int) -> [Int32] {
    var generator = SeededGenerator(seed: seed, keys: 0x5348_5546_464C_45, UInt64(epoch))
    var order = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
        for i in 0..<count { buffer[i] = Int32(i) }
        initialized = count
    }
    // Fisher-Yates, from the back.
    order.withUnsafeMutableBufferPointer { buffer in
        var i = count - 1
        while i > 0 {
            let j = generator.nextInt(below: i + 1)
            buffer.swapAt(i, j)
            i -= 1
        }
    }
    return order
}
