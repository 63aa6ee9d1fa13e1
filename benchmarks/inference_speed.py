"""CPU inference: the plain Hugging Face pipeline vs tuneforge's variants, same texts, one process.

    python benchmarks/inference_speed.py --run RUN_DIR [--repeat 2]

Texts: the run's held-out test split (real BBC News articles, cut to the run's
max_length). Baseline: `pipeline("text-classification")`, PyTorch fp32,
default settings (it scores a list one text at a time). Ours: the original
model through `Predictor` (length-sorted, dynamically padded batches of 32) and
every variant `tuneforge compress` built (ONNX fp32, int8, the distilled and
pruned students and their exports). Prints throughput, ratio to the baseline, accuracy change, and
achieved GFLOP/s against the machine's estimated fp32 peak
(cores x clock x 32 FLOP/cycle, i.e. AVX2 with two FMA units).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from tuneforge.compress.run import compress_run
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir


def encoder_flops(tokenizer, folder: Path, texts: list[str], max_length: int) -> float:
    """Useful multiply-adds x 2 of a BERT encoder over the unpadded tokens of `texts`.

    Follows the variant's own structure: its layer count, and per layer the
    attention width left after head pruning.
    """
    from transformers import AutoConfig

    from tuneforge.models.artifact import ModelMeta

    config = AutoConfig.from_pretrained(folder)
    h, inner = config.hidden_size, getattr(config, "intermediate_size", 4 * config.hidden_size)
    head = h // config.num_attention_heads
    pruned = ModelMeta.read(folder).extra.get("pruned_heads", {})
    widths = [(config.num_attention_heads - len(pruned.get(str(i), []))) * head for i in range(config.num_hidden_layers)]
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    # per token: Q, K, V and output projections (4*h*a), the FFN (2*h*inner), scores and weighted sum (2*n*a)
    return float(sum(2 * (4 * h * a + 2 * h * inner + 2 * n * a) * n for a in widths for n in lengths))


def peak_gflops() -> tuple[float, float]:
    mhz = 0.0
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    cores = len(os.sched_getaffinity(0))
    return cores * mhz / 1000 * 32, mhz


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/inference_speed.json"))
    args = parser.parse_args()
    run = Path(args.run)
    tradeoffs = run / "compress" / "tradeoffs.json"
    if not tradeoffs.is_file():
        compress_run(run, methods=["onnx", "int8", "distill", "prune"])
    variants = [r["variant"] for r in json.loads(tradeoffs.read_text())["variants"]]
    frame = RunDir(run).read_split("test")
    texts, labels = frame["text"].tolist(), np.array(frame["label"].tolist())

    from transformers import pipeline

    original = Predictor.load(run, variant="original")
    max_length = original.meta.max_length
    peak, mhz = peak_gflops()
    rows = []
    plain = pipeline("text-classification", model=str(run / "model"), truncation=True, max_length=max_length, device="cpu")
    plain(texts[:4])
    seconds = timed(lambda: plain(texts), args.repeat)
    predicted = np.array([r["label"] for r in plain(texts)])
    flops = encoder_flops(original.backend.tokenizer, run / "model", texts, max_length)
    reference = predicted
    rows.append(
        {
            "variant": "HF pipeline (plain)",
            "seconds": seconds,
            "accuracy": float((predicted == labels).mean()),
            "flops": flops,
            "agreement": 1.0,
        }
    )
    for variant in variants:
        predictor = Predictor.load(run, variant=variant, batch_size=32)
        predictor.predict_proba(texts[:8])
        seconds = timed(lambda p=predictor: p.predict_proba(texts), args.repeat)
        predicted = np.array([predictor.labels[i] for i in predictor.predict_proba(texts).argmax(1)])
        flops = encoder_flops(predictor.backend.tokenizer, predictor.model_dir, texts, max_length)
        rows.append(
            {
                "variant": f"tuneforge {variant}",
                "seconds": seconds,
                "accuracy": float((predicted == labels).mean()),
                "flops": flops,
                "agreement": float((predicted == reference).mean()),  # same label as the plain pipeline
            }
        )
    base = rows[0]
    print(
        f"{len(texts)} texts, {max_length} tokens max; peak estimate {peak:.0f} GFLOP/s ({len(os.sched_getaffinity(0))} cores x {mhz:.0f} MHz x 32)"
    )
    print(f"{'variant':<32} {'texts/s':>8} {'x plain':>8} {'accuracy':>9} {'delta pts':>9} {'agree':>6} {'GFLOP/s':>8} {'% peak':>7}")
    for r in rows:
        r["texts_per_s"] = len(texts) / r["seconds"]
        r["speedup"] = base["seconds"] / r["seconds"]
        r["accuracy_delta_points"] = (r["accuracy"] - base["accuracy"]) * 100
        r["gflops"] = r["flops"] / r["seconds"] / 1e9
        r["percent_of_peak"] = 100 * r["gflops"] / peak if peak else None
        print(
            f"{r['variant']:<32} {r['texts_per_s']:>8.1f} {r['speedup']:>8.2f} {r['accuracy']:>9.4f} {r['accuracy_delta_points']:>+9.2f} {r['agreement']:>6.3f} {r['gflops']:>8.1f} {r['percent_of_peak']:>6.1f}%"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"run": str(run), "texts": len(texts), "peak_gflops": peak, "cpu_mhz": mhz, "results": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
