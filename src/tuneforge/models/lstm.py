"""The `lstm` model: a word vocabulary learnt from the training split, embeddings + BiLSTM + pooling + linear.

The classic baseline of text classification before pretrained Transformers
(Kim-style word models with a recurrent encoder): nothing pretrained, every
weight learnt from the run's own data. A model folder holds `model.safetensors`
(the weights) and `lstm.json` (architecture, tokenizer rule and the vocabulary
in index order): no pickle, and loading runs no code from the folder.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

PAD, UNK = "<pad>", "<unk>"
TOKEN_PATTERN = r"\w+(?:'\w+)?|[^\w\s]"  # words (with an inner apostrophe: don't, it's) and single punctuation marks
CONFIG_FILE = "lstm.json"
WEIGHTS_FILE = "model.safetensors"


class WordTokenizer:
    """Lower-cased regex words -> vocabulary ids, with character offsets.

    It answers the two calls long-text handling makes of a tokenizer (`__call__` with
    `add_special_tokens` / `return_offsets_mapping`, `num_special_tokens_to_add`), so
    `long_texts: chunk` and the truncation report work for lstm models as for transformers."""

    def __init__(self, vocabulary: Sequence[str], *, pattern: str = TOKEN_PATTERN):
        if list(vocabulary[:2]) != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}; got {list(vocabulary[:2])}")
        self.vocabulary = list(vocabulary)
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self._index = {word: i for i, word in enumerate(self.vocabulary)}

    @classmethod
    def learn(cls, texts: Iterable[str], *, vocab_size: int, min_freq: int) -> WordTokenizer:
        """The `vocab_size - 2` most frequent words seen at least `min_freq` times (ties: alphabetical), after <pad> and <unk>."""
        counts: Counter = Counter()
        regex = re.compile(TOKEN_PATTERN)
        for text in texts:
            counts.update(m.lower() for m in regex.findall(text))
        kept = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *kept[: max(vocab_size - 2, 0)]])

    def __len__(self) -> int:
        return len(self.vocabulary)

    def words(self, text: str) -> list[re.Match]:
        return list(self._regex.finditer(text))

    def ids(self, text: str, max_length: int | None = None) -> list[int]:
        """Vocabulary ids of the first `max_length` words; an empty text is one <unk> (a sequence is never empty)."""
        found = [self._index.get(m.group(0).lower(), 1) for m in self._regex.finditer(text)]
        return (found[:max_length] if max_length else found) or [1]

    def __call__(self, texts: Sequence[str], *, add_special_tokens: bool = False, return_offsets_mapping: bool = False, **_) -> dict:
        matches = [self.words(t) for t in texts]
        out = {"input_ids": [[self._index.get(m.group(0).lower(), 1) for m in ms] for ms in matches]}
        if return_offsets_mapping:
            out["offset_mapping"] = [[m.span() for m in ms] for ms in matches]
        return out

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 0


@dataclass(frozen=True)
class LstmSpec:
    """The architecture, saved in lstm.json and rebuilt from it."""

    vocab_size: int
    n_labels: int
    embedding_dim: int
    hidden_size: int
    layers: int
    dropout: float
    pooling: str


class BiLstmClassifier(nn.Module):
    """ids [B, T] + lengths [B] -> logits [B, labels]. Padding (id 0) never reaches the pooled vector."""

    def __init__(self, spec: LstmSpec):
        super().__init__()
        self.spec = spec
        self.embedding = nn.Embedding(spec.vocab_size, spec.embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(
            spec.embedding_dim,
            spec.hidden_size,
            num_layers=spec.layers,
            batch_first=True,
            bidirectional=True,
            dropout=spec.dropout if spec.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(spec.dropout)
        width = 2 * spec.hidden_size * (2 if spec.pooling == "max-mean" else 1)
        self.out = nn.Linear(width, spec.n_labels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        x = self.dropout(self.embedding(ids))
        # packed: the backward direction starts at each text's last word, not at its padding
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hidden, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=ids.shape[1])
        mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
        pooled = []
        if self.spec.pooling in ("max", "max-mean"):
            pooled.append(hidden.masked_fill(~mask, float("-inf")).max(dim=1).values)
        if self.spec.pooling in ("mean", "max-mean"):
            pooled.append((hidden * mask).sum(1) / lengths[:, None].to(hidden.dtype))
        return self.out(self.dropout(torch.cat(pooled, dim=-1)))


def pad_batch(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [B, longest], lengths [B]) padded with 0."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    ids = torch.zeros((len(sequences), int(lengths.max())), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return ids, lengths


@torch.inference_mode()
def lstm_logits(model: BiLstmClassifier, sequences: Sequence[Sequence[int]], *, batch_size: int, progress: str | None = None) -> np.ndarray:
    """Logits for id sequences, in length-sorted batches (little padding); rows come back in input order."""
    from tqdm.auto import tqdm

    model.eval()
    out = np.zeros((len(sequences), model.spec.n_labels), dtype=np.float32)
    order = np.argsort([len(s) for s in sequences], kind="stable")[::-1]
    for start in tqdm(range(0, len(order), batch_size), desc=progress, unit="batch", disable=progress is None, leave=False):
        chunk = order[start : start + batch_size]
        out[chunk] = model(*pad_batch([sequences[i] for i in chunk])).float().numpy()
    return out


def save_lstm(model: BiLstmClassifier, tokenizer: WordTokenizer, folder: Path, *, max_length: int) -> None:
    """Weights as safetensors and the rest as JSON; callers build the folder inside atomic.atomic_dir."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    spec = {"architecture": asdict(model.spec), "max_length": max_length, "tokenizer": {"pattern": tokenizer.pattern, "lowercase": True}}
    (folder / CONFIG_FILE).write_text(json.dumps({**spec, "vocabulary": tokenizer.vocabulary}, ensure_ascii=False), encoding="utf-8")


def load_lstm(folder: Path) -> tuple[BiLstmClassifier, WordTokenizer]:
    """The model (eval mode) and its tokenizer; safetensors tensors only, checked against the architecture."""
    from safetensors.torch import load_file

    from tuneforge.errors import RunError

    path = folder / CONFIG_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        spec = LstmSpec(**saved["architecture"])
        tokenizer = WordTokenizer(saved["vocabulary"], pattern=saved["tokenizer"]["pattern"])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise RunError(f"{path}: not a readable lstm model description ({type(exc).__name__}: {exc})") from None
    model = BiLstmClassifier(spec)
    try:
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    except (OSError, RuntimeError) as exc:
        raise RunError(f"{folder / WEIGHTS_FILE}: weights do not match {CONFIG_FILE} ({str(exc)[:300]})") from None
    return model.eval(), tokenizer
