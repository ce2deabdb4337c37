import Datasets
import Foundation
import Layers
import SafeTensors
import Tensors

/// Weights of a Hugging Face `GPT2LMHeadModel` (or `GPT2Model`) safetensors file loaded into a model in GPT-2's
/// layout (`GPTLayout`): the starting point of fine-tuning a pretrained model (`--init-from`).
///
/// Names may carry `transformer.` or not (both kinds of file exist); Conv1D weights, stored (in, out), are
/// transposed; the causal-mask buffers older files hold (`attn.bias`, `attn.masked_bias`) are skipped; a
/// `lm_head.weight` must equal the token table (GPT-2 ties them, and so does distrain). Anything else — a
/// tensor missing, one left over, a shape that differs — is an error naming the tensor.
public enum PretrainedGPT2 {
    /// Loads `path` into `model`'s parameters.
    ///
    /// - Parameter range: the values to write (a `--shard parameters` rank's slice; every tensor is still checked).
    ///   The file is mapped, each tensor's pages dropped once copied: a rank never holds the file whole.
    public static func load(_ path: String, into model: Sequential, in range: Range<Int>? = nil) throws {
        let layout: GPTLayout
        do { layout = try GPTLayout(model.layers) } catch {
            throw CheckpointError.invalid(path: path, problem: "cannot go into this model: \(error)")
        }
        close(try openRegularFile(path).descriptor)  // a regular file (not a FIFO or device), named when not
        let file = try SafeTensors.map(path: path)
        let fail = { (problem: String) in CheckpointError.invalid(path: path, problem: problem) }
        let prefixed = file.entries.keys.contains { $0.hasPrefix("transformer.") }
        func stored(_ name: String) -> String { prefixed || name == "lm_head.weight" ? name : String(name.dropFirst(12)) }
        let expected = Set(layout.tensors.map { stored($0.interchangeName) })
        let leftOver = file.entries.keys.filter {
            !expected.contains($0) && !$0.hasSuffix(".attn.bias") && !$0.hasSuffix(".attn.masked_bias")
        }.sorted()
        guard leftOver.isEmpty else {
            throw fail("holds \(leftOver.count) tensor(s) this model has no place for (\(leftOver.prefix(4).joined(separator: ", "))); "
                + "is it a GPT-2 of another depth, or another architecture?")
        }
        for tensor in layout.tensors {
            let name = stored(tensor.interchangeName), fileShape = tensor.isConv1D ? tensor.shape.reversed() : tensor.shape
            guard let entry = file.entries[name] else {
                if name == "lm_head.weight" { continue }  // tied: the token table is the head
                throw fail("lacks tensor \(name) (the model's \(tensor.name), shape \(fileShape))")
            }
            guard entry.shape == fileShape else {
                throw fail("tensor \(name) has shape \(entry.shape), the model's \(tensor.name) needs \(fileShape)"
                    + (tensor.isConv1D ? " (Conv1D, in × out)" : "") + "; choose the preset or spec of the file's size")
            }
            try copy(name, of: file, into: model.parameters, range: range ?? 0..<model.parameters.count, tensor: tensor,
                     tokenTable: stored(layout.tensors[0].interchangeName), fail: fail)
        }
    }

    /// Copies the part of one tensor inside `range` (transposing a Conv1D weight); `lm_head.weight` is compared with
    /// the file's token table instead.
    private static func copy(_ name: String, of file: SafeTensorsFile, into store: ParameterStore, range: Range<Int>,
                             tensor: GPTLayout.Tensor, tokenTable: String, fail: (String) -> CheckpointError) throws {
        let count = tensor.shape.reduce(1, *)
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)  // [count], the file's layout
        defer { scratch.deallocate() }
        try file.read(name, shape: tensor.isConv1D ? tensor.shape.reversed() : tensor.shape, into: scratch)
        guard scratch.allSatisfy(\.isFinite) else { throw fail("tensor \(name) holds NaN or infinite values") }
        if tensor.interchangeName == "lm_head.weight" {
            let table = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { table.deallocate() }
            try file.read(tokenTable, shape: tensor.shape, into: table)
            guard scratch.elementsEqual(table) else {
                throw fail("its lm_head.weight differs from the token table wte; distrain's GPT ties the two")
            }
            return
        }
        guard let slice = store.slice(named: tensor.name) else { preconditionFailure("no parameter \(tensor.name)") }
        let kept = (slice.offset..<(slice.offset + count)).clamped(to: range)
        if kept.isEmpty { return }
        let destination = store.valuePointer(slice), first = kept.lowerBound - slice.offset, end = kept.upperBound - slice.offset
        if tensor.isConv1D {
            let rows = tensor.shape[0], columns = tensor.shape[1]  // ours (out, in) from the file's (in, out)
            for i in first..<end { destination[i] = scratch[(i % columns) * rows + i / columns] }
        } else {
            (destination + first).update(from: scratch.baseAddress! + first, count: end - first)
        }
    }
}
