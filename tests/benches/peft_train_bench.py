"""Peer benchmark for `trainer bench-train`: one LoRA training step in PyTorch + PEFT on the same
model (SmolLM2-135M-Instruct from the same GGUF, dequantized to f32), same rank on all linear
layers, same batch and sequence length, loss on the tokens after the prompt, AdamW, clipping 1.0.

Differences from ours: no ECG encoder and no prefix slots (ours trains a small conv encoder
jointly and adds one key/value slot per layer), so this is slightly less work per step.

Usage (PyPI packages: torch, transformers, gguf, accelerate, peft):
  python3 tests/benches/peft_train_bench.py --gguf ~/.cache/meit/models/SmolLM2-135M-Instruct.Q4_1.gguf
Prints one JSON object: median seconds per step and samples/s.
"""
import argparse, json, os, statistics, time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--gguf", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--seq", type=int, default=128)
p.add_argument("--prompt", type=int, default=48)
p.add_argument("--rank", type=int, default=8)
p.add_argument("--alpha", type=float, default=16)
p.add_argument("--steps", type=int, default=3)
p.add_argument("--bf16", action="store_true", help="bf16 autocast for the forward (oneDNN, AMX where present)")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
d, f = os.path.split(os.path.abspath(a.gguf))
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
cfg = LoraConfig(
    r=a.rank, lora_alpha=a.alpha, lora_dropout=0.1, bias="none", task_type="CAUSAL_LM",
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
)
model = get_peft_model(model, cfg)
model.train()
opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=2e-4, weight_decay=0.0)
ids = torch.randint(0, model.config.vocab_size, (a.batch, a.seq))
labels = ids.clone()
labels[:, : a.prompt] = -100
mask = torch.ones_like(ids)


def step():
    t0 = time.time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.time() - t0


step()  # warm-up
times = [step() for _ in range(a.steps)]
med = statistics.median(times)
print(json.dumps({
    "figure": "peft_train_step", "batch": a.batch, "seq": a.seq, "rank": a.rank,
    "threads": a.threads, "bf16_autocast": a.bf16, "median_s_per_step": round(med, 3),
    "samples_per_s": round(a.batch / med, 3), "steps_s": [round(t, 3) for t in times],
}))
