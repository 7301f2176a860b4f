"""Peer benchmark: HF transformers + PyTorch, f32, on the same GGUF and threads as meit-bench.

Usage (packages from PyPI: torch, transformers, gguf, numpy):
  python3 tests/benches/hf_bench.py --gguf ~/.cache/meit/models/SmolLM2-135M-Instruct.Q4_1.gguf
Prints one JSON object per figure: prefill tok/s (64-token prompt), greedy decode tok/s at batch 1
and 8 (128 tokens), peak RSS.
"""
import argparse, json, os, resource, statistics, time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

p = argparse.ArgumentParser()
p.add_argument("--gguf", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--prompt-tokens", type=int, default=64)
p.add_argument("--gen-tokens", type=int, default=128)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--rounds", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)
d, f = os.path.split(os.path.abspath(a.gguf))
t = time.time()
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).eval()
print(json.dumps({"figure": "load_seconds", "value": round(time.time() - t, 3)}))
text = tok.apply_chat_template(
    [{"role": "user", "content": "sinus rhythm. left axis deviation. possible anterior infarct - age undetermined. abnormal ecg. " * 8}],
    tokenize=False, add_generation_prompt=True)
ids = tok(text, return_tensors="pt").input_ids[:, : a.prompt_tokens]


def decode(batch):
    x = ids.repeat(batch, 1)
    with torch.no_grad():
        t0 = time.time()
        out = model(x, use_cache=True)
        pre = time.time() - t0
        past = out.past_key_values
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        t1 = time.time()
        for _ in range(a.gen_tokens):
            out = model(nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        return pre, time.time() - t1


pre, d1, db = [], [], []
for _ in range(a.rounds):
    p1, t1 = decode(1)
    pre.append(ids.shape[1] / p1)
    d1.append(a.gen_tokens / t1)
    _, tb = decode(a.batch)
    db.append(a.batch * a.gen_tokens / tb)
print(json.dumps({"figure": "prefill_tok_s", "value": round(statistics.median(pre), 1), "prompt_tokens": ids.shape[1]}))
print(json.dumps({"figure": "decode_b1_tok_s", "value": round(statistics.median(d1), 1)}))
print(json.dumps({"figure": f"decode_b{a.batch}_tok_s", "value": round(statistics.median(db), 1)}))
print(json.dumps({"figure": "peak_rss_mib", "value": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
