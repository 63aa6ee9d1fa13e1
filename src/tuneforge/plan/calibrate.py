"""How fast this machine runs a model: seconds per training step and per forward pass at a few lengths.

Each method is measured in a fresh subprocess (`python -m tuneforge.plan.calibrate`),
so its peak memory is that method's alone, as in a real run. The result is cached
in the user cache, keyed by everything that changes the speed: the model's weights
and shape, the CPU model and count, the thread count, the batch sizes and the
library versions. A new machine, model or library release measures again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from tuneforge.atomic import atomic_write_json
from tuneforge.cache import cache_dir
from tuneforge.errors import RunError

LENGTHS = (16, 32, 64, 128, 256, 512)
REPEATS = 2  # timed repeats per length, after one warm-up


def lengths_up_to(max_length: int) -> list[int]:
    """The calibration lengths a run with `max_length` can hit (the last one is `max_length` itself)."""
    chosen = [n for n in LENGTHS if n < max_length]
    return [*chosen, max_length]


def machine_fingerprint() -> dict:
    import peft
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def machine_busy() -> bool:
    """Other work holds more than half the cores: what is measured now would overestimate an idle run."""
    try:
        return os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    except OSError:
        return False


def _model_digest(model_path: str) -> str:
    config = Path(model_path) / "config.json"
    text = config.read_text(encoding="utf-8") if config.is_file() else model_path
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def calibration(model_path: str, spec: dict, *, refresh: bool = False, progress=None) -> dict:
    """The cached measurement for `spec` (method, batch sizes, max_length, labels, lora), measuring when missing."""
    key_fields = {"model": _model_digest(model_path), "machine": machine_fingerprint(), **spec}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_dir() / "plan" / f"{spec['method']}-{key}.json"
    busy = machine_busy()
    if path.is_file() and not refresh:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if not cached.get("busy") or busy:  # a measurement taken on a busy machine is redone once it is idle
            return cached
    if progress:
        progress(f"calibrating {spec['method']} on this machine (once; cached in {path.parent})")
        if busy:
            progress(
                f"the machine is busy (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): times will read high until it is idle"
            )
    result = _measure_in_subprocess(model_path, spec)
    result["key"] = key_fields
    result["busy"] = busy
    atomic_write_json(path, result)
    return result


def startup_seconds(*, refresh: bool = False) -> float:
    """How long a fresh `tuneforge` process takes to import what a run imports (measured once per machine and versions)."""
    key = hashlib.sha256(json.dumps(machine_fingerprint(), sort_keys=True).encode()).hexdigest()[:20]
    path = cache_dir() / "plan" / f"startup-{key}.json"
    if path.is_file() and not refresh:
        return float(json.loads(path.read_text(encoding="utf-8"))["seconds"])
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tuneforge.cli, tuneforge.engine.run, transformers, sklearn"], check=True)
    seconds = round(time.perf_counter() - started, 3)
    atomic_write_json(path, {"seconds": seconds, "busy": machine_busy()})
    return seconds


def _measure_in_subprocess(model_path: str, spec: dict) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge.plan.calibrate", model_path, json.dumps(spec)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RunError(f"calibrating {spec['method']} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(model_path: str, spec: dict) -> dict:
    """Time train steps (full, lora) or forward passes (head and every evaluation) in this process."""
    import resource

    import torch
    from transformers import AutoModelForSequenceClassification

    started, cpu0 = time.perf_counter(), os.times()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=spec["labels"], use_safetensors=True)
    load_seconds = time.perf_counter() - started
    vocab = int(model.config.vocab_size)
    out: dict = {"load_seconds": round(load_seconds, 3), "forward": {}, "train_step": {}}
    lengths = lengths_up_to(spec["max_length"])
    model.eval()
    with torch.inference_mode():
        for length in lengths:
            ids = torch.randint(5, vocab, (spec["eval_batch_size"], length))
            out["forward"][str(length)] = _timed(lambda ids=ids: model(input_ids=ids, attention_mask=torch.ones_like(ids)))
    if spec["method"] in ("full", "lora"):
        if spec["method"] == "lora":
            from tuneforge.models.lora import wrap_lora
            from tuneforge.sections import LoraConfig

            model = wrap_lora(model, LoraConfig(**spec.get("lora", {})), "SEQ_CLS")
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        labels = torch.zeros(spec["batch_size"], dtype=torch.long)
        for length in lengths:
            ids = torch.randint(5, vocab, (spec["batch_size"], length))

            def step(ids=ids):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec.get("precision") == "bf16"):
                    loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            out["train_step"][str(length)] = _timed(step)
    cpu = os.times()
    cpu_seconds = cpu.user + cpu.system - cpu0.user - cpu0.system
    out["cpu_per_wall"] = round(cpu_seconds / max(time.perf_counter() - started, 1e-9), 3)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _timed(call) -> float:
    call()  # warm-up: first-call allocation and kernel selection are not what a run pays per step
    started = time.perf_counter()
    for _ in range(REPEATS):
        call()
    return round((time.perf_counter() - started) / REPEATS, 5)


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], json.loads(sys.argv[2]))))
