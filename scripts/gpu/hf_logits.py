#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers for a generated checkpoint (the GPU script's
HF comparison). Greedy decode of --steps tokens after --ids, recomputing the whole sequence each
step (tiny models: simple and exact). Prints one JSON object on stdout; never raises.

  python3 hf_logits.py --model DIR --ids 1,2,3 --steps 8
"""
import argparse
import json
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    out = {"ok": False}
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM

        out["torch"] = torch.__version__
        out["transformers"] = transformers.__version__
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        model = AutoModelForCausalLM.from_pretrained(
            args.model, torch_dtype=torch.float32, attn_implementation="eager"
        ).to(dev)
        model.eval()
        ids = [int(t) for t in args.ids.split(",") if t]
        tokens, logits = [], []
        with torch.no_grad():
            for _ in range(args.steps):
                x = torch.tensor([ids], device=dev)
                last = model(input_ids=x, use_cache=False).logits[0, -1].float().cpu()
                logits.append(last.tolist())
                t = int(torch.argmax(last).item())
                tokens.append(t)
                ids.append(t)
        out.update(ok=True, tokens=tokens, logits=logits, device=dev)
    except Exception as e:  # report, do not crash: the caller records it
        out["error"] = f"{type(e).__name__}: {e}"
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
