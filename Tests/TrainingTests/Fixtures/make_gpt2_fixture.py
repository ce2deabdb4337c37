# Makes gpt2-tiny/: a small random Hugging Face GPT2LMHeadModel saved as model.safetensors (save_pretrained), and
# expected.json with what Hugging Face computes on it: the mean next-token loss of a window, the last position's
# logits, and a greedy continuation of a prompt (generate with its KV cache). Run with torch and transformers:
#   python make_gpt2_fixture.py   (from this folder; the suite only reads the files it writes)
import json, os, torch
from transformers import GPT2Config, GPT2LMHeadModel

torch.manual_seed(1234)
config = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=16, vocab_size=40, resid_pdrop=0.0, embd_pdrop=0.0,
                    attn_pdrop=0.0)
model = GPT2LMHeadModel(config).eval()
with torch.no_grad():  # weights far from the 0.02 default, so that logits differ clearly and greedy picks are not near-ties
    for name, p in model.named_parameters():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
            p.copy_(1 + 0.1 * torch.randn_like(p))
        else:
            p.copy_((0.4 if p.dim() == 2 else 0.1) * torch.randn_like(p))
os.makedirs("gpt2-tiny", exist_ok=True)
model.save_pretrained("gpt2-tiny", safe_serialization=True)
os.remove("gpt2-tiny/config.json")
if os.path.exists("gpt2-tiny/generation_config.json"):
    os.remove("gpt2-tiny/generation_config.json")
tokens = torch.randint(0, 40, (1, 17))
prompt = tokens[:, :5]
with torch.no_grad():
    out = model(tokens[:, :16], labels=tokens[:, :16])
    logits = model(tokens[:, :16]).logits[0, -1]
    greedy = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=11, do_sample=False, pad_token_id=0)
json.dump({"window": tokens[0, :16].tolist(), "loss": out.loss.item(), "last_logits": logits.tolist(),
           "prompt": prompt[0].tolist(), "greedy": greedy[0, 5:].tolist()}, open("gpt2-tiny/expected.json", "w"), indent=1)
print("loss", out.loss.item(), "greedy", greedy[0, 5:].tolist())
