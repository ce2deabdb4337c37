# nanogpt-state-dict.json: the state_dict names and shapes of nanoGPT's own GPT (karpathy/nanoGPT, model.py) for two
# small configs, with and without biases. Run beside nanoGPT's model.py with torch installed:
#   PYTHONPATH=/path/to/nanoGPT python make_nanogpt_names.py
import json
from model import GPT, GPTConfig

out = {}
for bias in (True, False):
    config = GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=bias)
    out["bias" if bias else "no_bias"] = [[k, list(v.shape)] for k, v in GPT(config).state_dict().items()]
json.dump(out, open("nanogpt-state-dict.json", "w"), indent=0)
