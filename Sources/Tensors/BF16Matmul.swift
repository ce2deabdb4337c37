import CDNNL
import CKernels
import Foundation

/// The arithmetic of large GEMMs: fp32 throughout, or bf16 operands with fp32 accumulation (`--precision bf16`).
public enum MatmulPrecision: String, Sendable, CaseIterable {
    case fp32, bf16
}

extension BLAS {
    /// Precision of the GEMMs large enough for oneDNN (a process-wide setting, as the thread count).
    nonisolated(unsafe) public static var precision = MatmulPrecision.fp32

    /// Whether this CPU has bf16 dot products (AVX512-BF16 or AMX) — where `--precision bf16` is fast.
    public static var supportsBF16: Bool {
        let isa = dnnl_get_effective_cpu_isa().rawValue, bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return isa & bf16 == bf16
    }
}

/// Row-major C = alpha·op(A)·op(B) + beta·C with A and B rounded to bf16 and the products summed in fp32: oneDNN's
/// matmul on bf16 operands (its fpmath mode does not make an fp32 matmul use the bf16 instructions; BENCHMARKS.md).
/// Each calling thread keeps its converted operands and one primitive per shape, made on first use.
func bf16Gemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
              c: UnsafeMutablePointer<Float>, ldc: Int) {
    let context = BF16Context.current
    // The operands as stored (rows × columns), each made contiguous in bf16.
    let (aRows, aColumns) = transA == .none ? (m, k) : (k, m)
    let (bRows, bColumns) = transB == .none ? (k, n) : (n, k)
    let (aBF16, bBF16) = context.operands(aRows * aColumns, bRows * bColumns)
    distrain_f32_to_bf16(a, aRows, aColumns, lda, aBF16)
    distrain_f32_to_bf16(b, bRows, bColumns, ldb, bBF16)
    let key = BF16Context.Key(m: m, n: n, k: k, transA: transA == .transposed, transB: transB == .transposed, ldc: ldc,
                              alpha: alpha.bitPattern, beta: beta.bitPattern)
    let entry = context.entry(key)
    dnnl_memory_set_data_handle(entry.a, aBF16)
    dnnl_memory_set_data_handle(entry.b, bBF16)
    dnnl_memory_set_data_handle(entry.c, c)
    // On the stack: an array literal would allocate on every call.
    let status = withUnsafeTemporaryAllocation(of: dnnl_exec_arg_t.self, capacity: 4) { arguments in
        arguments[0] = dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: entry.a)
        arguments[1] = dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: entry.b)
        arguments[2] = dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: entry.c)
        arguments[3] = dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: entry.scratchpad)
        return dnnl_primitive_execute(entry.primitive, context.stream, 4, arguments.baseAddress)
    }
    precondition(status == dnnl_success && dnnl_stream_wait(context.stream) == dnnl_success,
                 "oneDNN bf16 matmul failed m=\(m) n=\(n) k=\(k) (status \(status))")
}

/// One thread's bf16 GEMM state: its stream, its operand buffers (grown to the largest shape, then reused) and a
/// primitive per shape. Made once per thread; steady-state calls allocate nothing.
final class BF16Context {
    struct Key: Hashable {
        var m, n, k: Int
        var transA, transB: Bool
        var ldc: Int
        var alpha, beta: UInt32
    }

    struct Entry {
        let primitive: dnnl_primitive_t
        let a, b, c: dnnl_memory_t
        /// The primitive's scratchpad, owned here (oneDNN's own mode allocated one on every execution).
        let scratchpad: dnnl_memory_t
    }

    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        var engine: dnnl_engine_t?
        precondition(dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, "oneDNN has no CPU engine")
        return engine!
    }()
    nonisolated(unsafe) private static var key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in if let pointer { Unmanaged<BF16Context>.fromOpaque(pointer).release() } }
        return key
    }()

    /// The calling thread's context.
    static var current: BF16Context {
        if let pointer = pthread_getspecific(key) { return Unmanaged<BF16Context>.fromOpaque(pointer).takeUnretainedValue() }
        let context = BF16Context()
        pthread_setspecific(key, Unmanaged.passRetained(context).toOpaque())
        return context
    }

    let stream: dnnl_stream_t
    private var cache: [Key: Entry] = [:]
    private var a = UnsafeMutablePointer<UInt16>.allocate(capacity: 0), aCapacity = 0
    private var b = UnsafeMutablePointer<UInt16>.allocate(capacity: 0), bCapacity = 0

    private init() {
        var stream: dnnl_stream_t?
        precondition(dnnl_stream_create(&stream, Self.engine, dnnl_stream_default_flags.rawValue) == dnnl_success,
                     "oneDNN cannot make a stream")
        self.stream = stream!
    }

    /// Buffers for the two converted operands, at least this many values each.
    func operands(_ aCount: Int, _ bCount: Int) -> (UnsafeMutablePointer<UInt16>, UnsafeMutablePointer<UInt16>) {
        if aCount > aCapacity { a.deallocate(); a = .allocate(capacity: aCount); aCapacity = aCount }
        if bCount > bCapacity { b.deallocate(); b = .allocate(capacity: bCount); bCapacity = bCount }
        return (a, b)
    }

    func entry(_ key: Key) -> Entry {
        if let entry = cache[key] { return entry }
        let entry = Self.makeEntry(key)
        cache[key] = entry
        return entry
    }

    /// The matmul of `key`'s shape: bf16 A and B as stored (strides for a transposed operand), fp32 C, alpha as
    /// the output scale and beta as a sum post-op.
    private static func makeEntry(_ key: Key) -> Entry {
        func descriptor(_ rows: Int, _ columns: Int, transposed: Bool, leading: Int, type: dnnl_data_type_t) -> dnnl_memory_desc_t {
            var md = dnnl_memory_desc_t()
            var dims: [dnnl_dim_t] = [dnnl_dim_t(rows), dnnl_dim_t(columns)]
            var strides: [dnnl_dim_t] = transposed ? [1, dnnl_dim_t(leading)] : [dnnl_dim_t(leading), 1]
            precondition(dnnl_memory_desc_init_by_strides(&md, 2, &dims, type, &strides) == dnnl_success, "bf16 matmul layout")
            return md
        }
        var aMD = descriptor(key.m, key.k, transposed: key.transA, leading: key.transA ? key.m : key.k, type: dnnl_bf16)
        var bMD = descriptor(key.k, key.n, transposed: key.transB, leading: key.transB ? key.k : key.n, type: dnnl_bf16)
        var cMD = descriptor(key.m, key.n, transposed: false, leading: key.ldc, type: dnnl_f32)
        var desc = dnnl_matmul_desc_t()
        precondition(dnnl_matmul_desc_init(&desc, &aMD, &bMD, nil, &cMD) == dnnl_success, "bf16 matmul descriptor")
        var attributes: dnnl_primitive_attr_t?
        dnnl_primitive_attr_create(&attributes)
        defer { dnnl_primitive_attr_destroy(attributes) }
        dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user)
        var alpha = Float(bitPattern: key.alpha)
        if alpha != 1 { dnnl_primitive_attr_set_output_scales(attributes, 1, 0, &alpha) }
        let beta = Float(bitPattern: key.beta)
        if beta != 0 {
            var postOps: dnnl_post_ops_t?
            dnnl_post_ops_create(&postOps)
            dnnl_post_ops_append_sum(postOps, beta)
            dnnl_primitive_attr_set_post_ops(attributes, postOps)
            dnnl_post_ops_destroy(postOps)
        }
        var primitiveDescriptor: dnnl_primitive_desc_t?
        precondition(dnnl_primitive_desc_create(&primitiveDescriptor, &desc, attributes, engine, nil) == dnnl_success,
                     "oneDNN has no bf16 matmul for m=\(key.m) n=\(key.n) k=\(key.k)")
        defer { dnnl_primitive_desc_destroy(primitiveDescriptor) }
        var primitive: dnnl_primitive_t?
        precondition(dnnl_primitive_create(&primitive, primitiveDescriptor) == dnnl_success, "bf16 matmul primitive")
        func memory(_ md: inout dnnl_memory_desc_t) -> dnnl_memory_t {
            var memory: dnnl_memory_t?
            precondition(dnnl_memory_create(&memory, &md, engine, nil) == dnnl_success, "bf16 matmul memory")
            return memory!
        }
        var scratchMD = dnnl_primitive_desc_query_md(primitiveDescriptor, dnnl_query_scratchpad_md, 0)!.pointee
        let scratchBytes = max(dnnl_memory_desc_get_size(&scratchMD), 1)
        var scratchpad: dnnl_memory_t?
        precondition(dnnl_memory_create(&scratchpad, &scratchMD, engine,
                                        UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)) == dnnl_success,
                     "bf16 matmul scratchpad")
        return Entry(primitive: primitive!, a: memory(&aMD), b: memory(&bMD), c: memory(&cMD), scratchpad: scratchpad!)
    }
}
