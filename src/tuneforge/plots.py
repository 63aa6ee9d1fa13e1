"""Plots people would rather look at than numbers: confusion matrix, reliability diagram."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from tuneforge.atomic import atomic_write_bytes


def pyplot():
    """The pyplot module on a headless backend (no display on servers)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers
    import matplotlib.pyplot as plt

    return plt


def save_confusion_png(matrix: list[list[int]], labels: list[str], path: Path, *, title: str) -> Path:
    plt = pyplot()
    cm = np.asarray(matrix, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = max(4.0, 0.7 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true row")
    return save_figure(fig, plt, path)


def save_reliability_png(y_true: np.ndarray, probs: np.ndarray, path: Path, *, bins: int = 10) -> Path:
    plt = pyplot()
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    centers, accs, counts = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi)
        if mask.any():
            centers.append(confidence[mask].mean())
            accs.append(correct[mask].mean())
            counts.append(int(mask.sum()))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(centers, accs, "o-", label="model")
    for x, y, n in zip(centers, accs, counts):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability (labels: examples per bin)")
    ax.legend(loc="upper left")
    return save_figure(fig, plt, path)


def save_figure(fig, plt, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def save_bars_png(values: dict[str, float], path: Path, *, title: str, xlabel: str) -> Path:
    """Horizontal bars, one per label (per-label F1 of multilabel and entity types), worst at the top."""
    plt = pyplot()
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(items) + 1)))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    for i, (_, v) in enumerate(items):
        ax.text(min(v + 0.01, 0.95), i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return save_figure(fig, plt, path)


def save_precision_recall_png(is_positive: np.ndarray, scores: np.ndarray, threshold: float, path: Path) -> Path:
    """Precision against recall of the positive label, with the operating point the tuned threshold picks."""
    from sklearn.metrics import precision_recall_curve

    plt = pyplot()
    precision, recall, thresholds = precision_recall_curve(is_positive, scores)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision, label="test")
    chosen = min(range(len(thresholds)), key=lambda i: abs(thresholds[i] - threshold)) if len(thresholds) else None
    if chosen is not None:
        ax.plot(recall[chosen], precision[chosen], "o", color="tab:red", label=f"threshold {threshold:.3f} (tuned on validation)")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"Precision-recall (positives: {int(np.sum(is_positive))})")
    ax.legend(loc="lower left")
    return save_figure(fig, plt, path)
