import Layers
import Training

/// `distrain export --pytorch` of a language model in GPT-2's layout: Python whose `state_dict` carries nanoGPT's
/// names, so that nanoGPT's own `GPT` (karpathy/nanoGPT, model.py) and the module defined here both load the
/// checkpoint strictly.
func nanoGPTExportSource(_ saved: LanguageModelCheckpoint, layout: GPTLayout, folder: String) -> String {
    let weights = pythonString(folder + "/" + CheckpointFile.model)
    let names = layout.tensors.map { "    \(pythonString($0.name)): \(pythonString($0.interchangeName))," }
    let gelu = layout.usesTanhGELU ? "tanh" : "none"
    let nanoGPTNote = layout.usesTanhGELU
        ? "# This model uses GPT-2's tanh GELU; nanoGPT's MLP has the exact one: after building nanoGPT's GPT, set\n"
            + "#   for block in model.transformer.h: block.mlp.gelu.approximate = 'tanh'\n" : ""
    return """
    # distrain export of \(pythonComment(folder)): \(pythonComment(saved.label)), a GPT in nanoGPT's layout
    # (\(layout.layers) layers, \(layout.heads) heads, \(layout.width) wide, \(layout.positions) positions, \
    \(layout.vocabularySize) tokens; trained at context \(saved.context)).
    # With nanoGPT:  from model import GPT, GPTConfig
    #                model = GPT(GPTConfig(**config)); model.load_state_dict(nanogpt_state_dict(), strict=True)
    # Without it:    model (below) has the same state_dict names; model.load_state_dict(nanogpt_state_dict(), strict=True)
    # model(idx) takes token ids (B, T) and returns logits (B, T, vocab_size).
    \(nanoGPTNote)import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from safetensors.torch import load_file

    WEIGHTS = \(weights)
    config = dict(block_size=\(layout.positions), vocab_size=\(layout.vocabularySize), n_layer=\(layout.layers), \
    n_head=\(layout.heads), n_embd=\(layout.width), dropout=0.0, bias=\(layout.hasBias ? "True" : "False"))
    GELU_APPROXIMATE = \(pythonString(gelu))
    LAYER_NORM_EPS = \(layout.epsilon)

    # distrain's tensor name -> nanoGPT's (and Hugging Face GPT2LMHeadModel's, whose four projections are Conv1D: transposed).
    NAMES = {
    \(names.joined(separator: "\n"))
    }


    \(nanoGPTModules)


    model = GPT(**config)
    """
}

/// The module classes of the export, in nanoGPT's names (they read the constants the header defines).
private let nanoGPTModules = """
    def nanogpt_state_dict(path=WEIGHTS):
        tensors = load_file(path)
        state = {theirs: tensors[ours] for ours, theirs in NAMES.items() if theirs != "lm_head.weight"}
        state["lm_head.weight"] = state["transformer.wte.weight"]  # tied
        return state


    class LayerNorm(nn.Module):
        def __init__(self, features, bias):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(features))
            self.bias = nn.Parameter(torch.zeros(features)) if bias else None

        def forward(self, x):
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, LAYER_NORM_EPS)


    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd, n_head, bias):
            super().__init__()
            self.n_head = n_head
            self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
            self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in self.c_attn(x).split(c, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


    class MLP(nn.Module):
        def __init__(self, n_embd, bias):
            super().__init__()
            self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
            self.gelu = nn.GELU(approximate=GELU_APPROXIMATE)
            self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))


    class Block(nn.Module):
        def __init__(self, n_embd, n_head, bias):
            super().__init__()
            self.ln_1, self.attn = LayerNorm(n_embd, bias), CausalSelfAttention(n_embd, n_head, bias)
            self.ln_2, self.mlp = LayerNorm(n_embd, bias), MLP(n_embd, bias)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))


    class GPT(nn.Module):
        def __init__(self, block_size, vocab_size, n_layer, n_head, n_embd, dropout, bias):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(vocab_size, n_embd), wpe=nn.Embedding(block_size, n_embd),
                h=nn.ModuleList(Block(n_embd, n_head, bias) for _ in range(n_layer)), ln_f=LayerNorm(n_embd, bias)))
            self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx):
            positions = torch.arange(idx.shape[1], device=idx.device)
            x = self.transformer.wte(idx) + self.transformer.wpe(positions)
            for block in self.transformer.h:
                x = block(x)
            return self.lm_head(self.transformer.ln_f(x))
    """

