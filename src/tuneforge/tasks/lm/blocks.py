"""From documents to language-model training examples: tokenise, pack into blocks, collate, mask.

Packing concatenates the tokenised documents (each closed by the tokenizer's
separator / end-of-text token) and cuts the stream into `block_size` pieces, so
no step is spent on padding; short documents share a block. Without packing each
document is one example, truncated to the block.

Masked-LM training batches are masked afresh every time (15 % of tokens by
default, whole words optionally) by Hugging Face's `DataCollatorForLanguageModeling`;
held-out blocks are masked once with a fixed seed, so losses before and after
training, and across checkpoints, score the same positions. Every block is masked
with its own seeded generator, so masks never depend on batching (resume is exact).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EVAL_MASK_SEED = 1234  # held-out masks are drawn once, the same for every model compared on them
IGNORE = -100  # label of a position that is not scored


@dataclass(frozen=True)
class BlockSettings:
    """What turns text into examples; saved with the model so evaluation rebuilds the same blocks."""

    objective: str  # mlm | clm
    block_size: int
    pack: bool = True
    mask_probability: float = 0.15
    whole_word_mask: bool = False
    max_eval_blocks: int | None = None

    @classmethod
    def from_config(cls, pretrain) -> BlockSettings:
        return cls(
            objective=pretrain.objective,
            block_size=pretrain.block_size,
            pack=pretrain.pack,
            mask_probability=pretrain.mask_probability,
            whole_word_mask=pretrain.whole_word_mask,
            max_eval_blocks=pretrain.max_eval_blocks,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _separator(tokenizer, objective: str) -> int | None:
    """The token that closes a document in a packed stream (causal: end of text; masked: the model's own [SEP])."""
    if objective == "clm":
        return tokenizer.eos_token_id
    return None  # masked LMs add [CLS] ... [SEP] around every document themselves


def tokenize_documents(tokenizer, texts: list[str], settings: BlockSettings) -> list[dict[str, list]]:
    """One entry per document: token ids (and, for whole-word masking, offsets and special-token flags)."""
    mlm = settings.objective == "mlm"
    keep_words = mlm and settings.whole_word_mask
    encoded = tokenizer(
        list(texts),
        add_special_tokens=mlm,
        truncation=not settings.pack,
        max_length=None if settings.pack else settings.block_size - (0 if mlm else 1),
        return_offsets_mapping=keep_words,
        return_special_tokens_mask=keep_words,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,  # long documents are cut into blocks, not fed whole: no "sequence too long" warnings
    )
    end = _separator(tokenizer, settings.objective)
    documents = []
    for i, ids in enumerate(encoded["input_ids"]):
        doc: dict[str, list] = {"input_ids": list(ids)}
        if keep_words:
            doc["offset_mapping"] = [tuple(o) for o in encoded["offset_mapping"][i]]
            doc["special_tokens_mask"] = list(encoded["special_tokens_mask"][i])
        if end is not None:
            doc["input_ids"].append(end)
        documents.append(doc)
    return documents


def make_blocks(tokenizer, texts: list[str], settings: BlockSettings, *, limit: int | None = None) -> list[dict[str, list]]:
    """Training examples of `texts`: packed `block_size` blocks (the last one may be shorter), or one per document."""
    documents = tokenize_documents(tokenizer, texts, settings)
    if not settings.pack:
        blocks = [d for d in documents if d["input_ids"]]
    else:
        stream: dict[str, list] = {}
        for doc in documents:
            for key, values in doc.items():
                stream.setdefault(key, []).extend(values)
        total = len(stream.get("input_ids", []))
        size = settings.block_size
        blocks = [{key: values[start : start + size] for key, values in stream.items()} for start in range(0, total, size)]
    blocks = [b for b in blocks if _learnable(b["input_ids"], tokenizer, settings.objective)]
    if limit is not None:
        blocks = blocks[:limit]
    for block in blocks:
        block["attention_mask"] = [1] * len(block["input_ids"])
        if settings.objective == "clm":
            block["labels"] = list(block["input_ids"])
    return blocks


def _learnable(ids: list[int], tokenizer, objective: str) -> bool:
    """Whether a block has a position to predict: a next token (causal), a token that is not [CLS]/[SEP] (masked).
    A remainder block without one would make a batch of its own a loss of 0 / 0."""
    if objective == "clm":
        return len(ids) >= 2
    special = set(tokenizer.all_special_ids)
    return any(i not in special for i in ids)


def as_columns(blocks: list[dict[str, Any]]) -> dict[str, list]:
    keys = blocks[0].keys() if blocks else ("input_ids", "attention_mask")
    return {key: [b[key] for b in blocks] for key in keys}


def mask_seed(base: int, epoch: int, index: int) -> int:
    """One example's masking seed: the same example masks the same way in the same epoch, whatever the batching."""
    return (base * 1_000_003 + epoch * 7_919 + index) % (2**63)


class LanguageModelCollator:
    """Batches for the Trainer: examples that already carry labels (causal blocks, pre-masked held-out blocks)
    are padded (labels with -100); masked-LM training blocks are masked here, afresh every epoch.

    Each training block is masked with its own generator, seeded by (seed, epoch, block index): the masks do not
    depend on batching or on the data loader reading ahead, so a resumed run masks exactly as the uninterrupted one.
    The engine sets `epoch` at the start of every epoch."""

    def __init__(self, tokenizer, settings: BlockSettings, *, seed: int = 0):
        from transformers import DataCollatorForLanguageModeling, DataCollatorForSeq2Seq

        self.tokenizer = tokenizer
        self.settings = settings
        self.seed = seed
        self.epoch = 0
        self.pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
        self.masker = None
        if settings.objective == "mlm":
            # whole words are always replaced by [MASK] (the library has no random replacement for them)
            replace = {"mask_replace_prob": 1.0, "random_replace_prob": 0.0} if settings.whole_word_mask else {}
            self.masker = DataCollatorForLanguageModeling(
                tokenizer, mlm=True, mlm_probability=settings.mask_probability, whole_word_mask=settings.whole_word_mask, **replace
            )

    def mask(self, block: dict, seed: int) -> dict[str, list]:
        """`block` with masked input ids and labels (-100 where nothing is predicted), drawn from `seed`."""
        import torch

        keys = (
            ("input_ids", "attention_mask", "offset_mapping", "special_tokens_mask")
            if self.settings.whole_word_mask
            else ("input_ids", "attention_mask")
        )
        generator = torch.Generator().manual_seed(seed)
        self.masker.generator = generator
        batch = self.masker([{k: block[k] for k in keys}])
        out = {k: batch[k][0].tolist() for k in ("input_ids", "attention_mask", "labels")}
        if all(label == IGNORE for label in out["labels"]):  # a short block drew no mask: predict one word of it anyway
            words = self._words(block)
            for j in words[int(torch.randint(len(words), (1,), generator=generator))]:
                out["labels"][j], out["input_ids"][j] = block["input_ids"][j], self.tokenizer.mask_token_id
        return out

    def _words(self, block: dict) -> list[list[int]]:
        """Positions to mask together: each word's pieces with whole-word masking, else each token that is not special."""
        special = set(self.tokenizer.all_special_ids)
        ids = block["input_ids"]
        offsets = block.get("offset_mapping") if self.settings.whole_word_mask else None
        words: list[list[int]] = []
        for j, token in enumerate(ids):
            if token in special:
                continue
            continues = offsets is not None and words and words[-1][-1] == j - 1 and offsets[j][0] == offsets[j - 1][1]
            if continues:
                words[-1].append(j)
            else:
                words.append([j])
        return words

    def __call__(self, features: list[dict]) -> dict:
        if "labels" not in features[0] and self.masker is not None:
            features = [self.mask(f, mask_seed(self.seed, self.epoch, int(f["index"]))) for f in features]
        return self.pad([{k: f[k] for k in ("input_ids", "attention_mask", "labels")} for f in features])


def held_out_examples(tokenizer, texts: list[str], settings: BlockSettings) -> list[dict[str, list]]:
    """Blocks to score a model on, with their labels fixed: causal blocks predict every next token; masked
    blocks are masked once with `EVAL_MASK_SEED` (block by block, so the masks do not depend on batching)."""
    blocks = make_blocks(tokenizer, texts, settings, limit=settings.max_eval_blocks)
    if settings.objective == "clm":
        return blocks
    masker = LanguageModelCollator(tokenizer, settings)
    return [masker.mask(block, mask_seed(EVAL_MASK_SEED, 0, i)) for i, block in enumerate(blocks)]
