# Regenerates the Hugging Face side of TextTests' fixtures (a tool, not part of the suite):
#   python3 -m venv /tmp/ref-tok && /tmp/ref-tok/bin/pip install tokenizers==0.23.3
#   swift build && /tmp/ref-tok/bin/python Tests/TextTests/Fixtures/make_fixtures.py .build/debug/distrain
# Writes hf-trained-400.json (Hugging Face's BpeTrainer on corpus.txt), distrain's own tokenizers trained on
# corpus.txt (distrain-*.json), and expected-ids.json: the ids Hugging Face's Tokenizer.from_file(...).encode
# gives for probe.txt and for probe-bytes.bin read with errors="replace", for each tokenizer.
import json, os, subprocess, sys
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders

here = os.path.dirname(os.path.abspath(__file__))
distrain = sys.argv[1]
corpus = os.path.join(here, "corpus.txt")

hf = Tokenizer(models.BPE())
hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
hf.decoder = decoders.ByteLevel()
hf.train([corpus], trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                       special_tokens=["<|endoftext|>"], show_progress=False))
hf.save(os.path.join(here, "hf-trained-400.json"))

ours = {"distrain-gpt2-400.json": ["--vocab-size", "400"],
        "distrain-gpt4-400.json": ["--vocab-size", "400", "--pattern", "gpt4"],
        "distrain-char.json": ["--char"]}
for name, flags in ours.items():
    path = os.path.join(here, name)
    if os.path.exists(path): os.remove(path)
    subprocess.run([distrain, "tokenizer", "train", corpus, "--out", path, "--threads", "1"] + flags, check=True)

probe = open(os.path.join(here, "probe.txt"), encoding="utf-8", newline="").read()  # keep \r\n as it is
raw = open(os.path.join(here, "probe-bytes.bin"), "rb").read().decode("utf-8", errors="replace")
expected = {}
for name in ["hf-trained-400.json"] + list(ours):
    tok = Tokenizer.from_file(os.path.join(here, name))
    texts = {"corpus": open(corpus, encoding="utf-8", newline="").read()}
    if name != "distrain-char.json": texts.update(probe=probe, bytes=raw)  # characters it never saw: no ids
    expected[name] = {key: tok.encode(text).ids for key, text in texts.items()}
    for key, text in texts.items(): assert tok.decode(expected[name][key], skip_special_tokens=False) == text
with open(os.path.join(here, "expected-ids.json"), "w") as f:
    json.dump(expected, f, separators=(",", ":"))
print("fixtures written:", ", ".join(sorted(expected)))
