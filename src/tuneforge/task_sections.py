"""The sections of a run config that belong to one task: `recommend`, `chat` and `pretrain` (task lm).

Kept apart from the shared sections (`sections.py`) so each file stays small; `config.py`
puts both into `RunConfig`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tuneforge.sections import _Section

RecommendMethod = Literal["auto", "popular", "als", "bpr", "ease", "content", "hybrid"]
CLM_DEFAULT_MODEL = "smollm2-135m"  # the packaged generator (models/causal.py DEFAULT_GENERATOR)


class RecommendConfig(_Section):
    """Task recommend: interactions in `data.train` (one row per user-item event), optional side tables."""

    method: RecommendMethod = Field(
        "auto", description="popular, als / bpr (implicit), ease (item-item), content (encoder), hybrid, or auto (best on validation)."
    )
    user_column: str = Field("user", description="Column of the interactions file holding the user id.")
    item_column: str = Field("item", description="Column of the interactions file holding the item id.")
    rating_column: str | None = Field("rating", description="Optional rating column (used with positive_threshold).")
    time_column: str | None = Field("timestamp", description="Optional time column (number or ISO date); orders each user's history.")
    positive_threshold: float | None = Field(
        None, description="Ratings below this are not positives (counted in the data report); None: every interaction counts."
    )
    items: str | None = Field(
        None, description="Item side table (csv, jsonl, parquet or bundled:...): id column plus text/categorical columns."
    )
    item_id_column: str = Field("item", description="Id column of the item table.")
    item_text_columns: list[str] | None = Field(
        None, description="Item columns the encoder reads (content, hybrid); None: every other column."
    )
    users: str | None = Field(None, description="User side table: id column plus categorical columns (segments for cold start and slices).")
    user_id_column: str = Field("user", description="Id column of the user table.")
    segment_columns: list[str] | None = Field(
        None, description="User columns that define segments (new-user popularity, fairness slices); None: every other column."
    )
    split: Literal["auto", "leave-last-out", "holdout", "time-cut"] = Field(
        "auto", description="auto: leave-last-out by time when a time column exists, else a random holdout per user."
    )
    holdout_fraction: float = Field(
        0.2, gt=0, lt=0.5, description="split holdout: share of each user's interactions held out (half validation, half test)."
    )
    time_cut: float = Field(
        0.9, gt=0.5, lt=1, description="split time-cut: interactions after this time quantile are test, the slice before it validation."
    )
    cold_items: float = Field(
        0.0, ge=0, lt=0.5, description="Share of items held out of training entirely, to measure cold start (0: none)."
    )
    min_user_interactions: int = Field(
        3, ge=1, description="Users with fewer interactions stay in training only (reported, not evaluated)."
    )
    k: list[int] = Field([5, 10, 20], min_length=1, description="Cut-offs of the ranking metrics.")
    factors: int = Field(32, ge=2, le=1024, description="als / bpr: latent factors.")
    regularization: float = Field(0.1, ge=0, description="als / bpr: L2 regularisation.")
    iterations: int = Field(15, ge=1, le=1000, description="als / bpr: passes over the data.")
    ease_lambda: float = Field(300.0, gt=0, description="ease / hybrid: L2 strength of the item-item model.")
    recency_half_life: float | None = Field(
        10.0, gt=0, description="Weight of a past interaction halves every N interactions back (ease, content, hybrid); None: all equal."
    )
    blend_weight: float | None = Field(None, ge=0, description="hybrid: weight of the content score; None: chosen on validation.")
    neighbours: int = Field(10, ge=1, description="hybrid: a new item borrows the item-item column of its N nearest items by content.")
    max_length: int = Field(64, ge=8, le=512, description="content / hybrid: tokens of item text the encoder reads.")


class ChatFineTuneConfig(_Section):
    """Optional LoRA SFT of the generator (trl) on the company's own Q/A pairs or dialogues."""

    enabled: bool = Field(False, description="Fine-tune the generator before evaluation; the adapter is saved in the run.")
    data: str | None = Field(
        None, description="Q/A pairs (question/answer columns) or dialogues (a 'messages' JSON column); None: the FAQ pairs."
    )
    max_examples: int | None = Field(None, ge=1, description="Use at most this many pairs (seeded sample), for quick runs.")
    steps: int = Field(60, ge=1, description="Optimizer steps of the SFT.")
    learning_rate: float = Field(2e-4, gt=0, description="SFT learning rate.")
    batch_size: int = Field(4, ge=1, description="Examples per SFT step.")
    max_length: int = Field(256, ge=16, le=4096, description="Tokens per SFT example (the chat-templated prompt + answer).")
    lora_r: int = Field(8, ge=1, description="LoRA rank of the adapter.")
    lora_alpha: int = Field(16, ge=1, description="LoRA scaling numerator.")


class ChatConfig(_Section):
    """Task chat: a retrieval + generator bot; `data.train` is its FAQ (a table) or a documents folder/glob."""

    question_column: str = Field("question", description="FAQ column holding the question.")
    answer_column: str = Field("answer", description="FAQ column holding the answer.")
    category_column: str | None = Field("category", description="Optional FAQ column holding a category (kept with each entry).")
    documents: str | None = Field(
        None, description="Documents to answer from besides the FAQ: a folder or glob of .txt/.md/.html files, or bundled:bbc-news."
    )
    max_documents: int | None = Field(None, ge=1, description="Read at most this many documents (in sorted order), for quick runs.")
    include_documents: list[str] = Field(
        default_factory=list, description="Sources always read even beyond max_documents (e.g. the ones the evaluation asks about)."
    )
    passage_words: int = Field(120, ge=10, le=2000, description="Words per passage documents are split into.")
    passage_overlap: int = Field(30, ge=0, description="Words shared by consecutive passages (so no fact falls between two).")
    encoder_max_length: int = Field(256, ge=16, le=512, description="Tokens of an entry or query the retrieval encoder reads.")
    top_k: int = Field(3, ge=1, le=50, description="Passages handed to the generator (and cited).")
    generator: str = Field(
        "smollm2-135m", description="Causal LM that writes answers: packaged alias, folder, hub id, a pretrain run; 'none': FAQ only."
    )
    max_new_tokens: int = Field(96, ge=1, le=4096, description="Longest generated answer, in tokens.")
    decode_threads: int = Field(
        1,
        ge=0,
        le=1024,
        description="CPU threads that generate tokens after the prompt is read (which uses all); 0: all. One token of a small "
        "model is memory-bound, so extra threads only add synchronisation; raise it for generators above ~1B parameters.",
    )
    max_history_tokens: int = Field(384, ge=0, description="Conversation history kept in the query and the prompt, in tokens.")
    max_passage_tokens: int = Field(600, ge=32, description="Tokens of retrieved passages put in the prompt (the rest is cut).")
    faq_threshold: float | None = Field(
        None, ge=-1, le=1, description="Cosine similarity from which an FAQ answer is returned verbatim; None: chosen on validation."
    )
    handoff_threshold: float | None = Field(
        None, ge=-1, le=1, description="Below this best similarity the bot hands over to a person; None: chosen on validation."
    )
    eval_queries: str | None = Field(
        None,
        description="Evaluation queries (query, reference, expected_source, kind faq/document/out_of_scope, split validation/test); "
        "thresholds are chosen on the validation ones. None: default thresholds, no evaluation. bundled:chat-eval goes with the bundled data.",
    )
    eval_max_queries: int | None = Field(None, ge=1, description="Evaluate at most this many queries per split, for quick runs.")
    fine_tune: ChatFineTuneConfig = Field(default_factory=ChatFineTuneConfig)

    @model_validator(mode="after")
    def _thresholds(self) -> ChatConfig:
        if self.fine_tune.enabled and self.generator == "none":
            raise ValueError("chat.fine_tune.enabled needs a generator; chat.generator is 'none'")
        if self.passage_overlap >= self.passage_words:
            raise ValueError(f"chat.passage_overlap ({self.passage_overlap}) must be below chat.passage_words ({self.passage_words})")
        if self.faq_threshold is not None and self.handoff_threshold is not None and self.handoff_threshold > self.faq_threshold:
            raise ValueError(f"chat.handoff_threshold ({self.handoff_threshold}) must not exceed chat.faq_threshold ({self.faq_threshold})")
        return self


class PretrainConfig(_Section):
    """Task lm: domain pre-training on raw text in `data.train` (a text column of csv/jsonl/parquet, a .txt file with one
    document per line, or a folder of .txt/.md files, one document each). The method is `train.method` (full, or lora for clm)."""

    objective: Literal["mlm", "clm"] = Field(
        "mlm", description="mlm: masked-LM of an encoder (for `train` to start from); clm: causal LM of a generator (for the chat bot)."
    )
    mask_probability: float = Field(0.15, gt=0, lt=1, description="mlm: share of tokens masked and predicted.")
    whole_word_mask: bool = Field(False, description="mlm: mask every word piece of a chosen word together.")
    block_size: int = Field(128, ge=8, le=8192, description="Tokens per training example.")
    pack: bool = Field(
        True,
        description="Concatenate documents (separated by the tokenizer's end/separator tokens) and cut them into full blocks; false: one truncated document per example.",
    )
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimiser steps (overrides train.epochs); None: train.epochs decides."
    )
    max_eval_blocks: int | None = Field(
        None, ge=1, description="Score at most this many held-out blocks for loss and perplexity (the first ones; quick runs); None: all."
    )
