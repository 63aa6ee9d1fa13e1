"""Knowledge distillation: a smaller student learns the teacher's softened probabilities and the true labels.

The loss is `alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy`
(Hinton et al., 2015). Training runs on the engine's Trainer (subclassed for the
loss), with the engine's argument builder, so schedules, clipping, progress and
multi-GPU come from there. The same loop lets a pruned model recover what
pruning cost it.
"""

from __future__ import annotations

import logging
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from tuneforge.engine.args import training_arguments
from tuneforge.engine.transformer import engine_trainer_class, make_trainer
from tuneforge.tasks.base import EncodedDataset

logger = logging.getLogger(__name__)


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *, temperature: float, alpha: float
) -> torch.Tensor:
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1), F.softmax(teacher_logits / temperature, dim=-1), reduction="batchmean"
    )
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft * temperature**2 + (1 - alpha) * hard


def distill(
    student,
    tokenizer,
    texts: list[str],
    labels: np.ndarray,
    targets: np.ndarray,
    *,
    epochs: float,
    learning_rate: float,
    batch_size: int,
    temperature: float,
    alpha: float,
    max_length: int,
    seed: int,
) -> dict:
    """Train `student` in place on (`texts`, `labels`) against the teacher's `targets` logits."""

    class DistillationTrainer(engine_trainer_class()):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            teacher, gold = inputs.pop("teacher_logits"), inputs.pop("labels")
            outputs = model(**inputs)
            loss = distillation_loss(outputs.logits, teacher, gold, temperature=temperature, alpha=alpha)
            return (loss, outputs) if return_outputs else loss

    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    dataset = EncodedDataset({**encoded, "labels": [int(x) for x in labels], "teacher_logits": targets.tolist()})
    with tempfile.TemporaryDirectory(prefix="tuneforge-distill-") as scratch:
        args = training_arguments(
            scratch,
            n_train=len(texts),
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            seed=seed,
            checkpoints=False,
            remove_unused_columns=False,  # keep teacher_logits, which the model's forward does not take
        )
        trainer = make_trainer(
            model=student,
            tokenizer=tokenizer,
            args=args,
            train_dataset=dataset,
            collator=_collator(tokenizer),
            trainer_class=DistillationTrainer,
        )
        result = trainer.train()
    student.eval()
    return {"train_loss": round(float(result.training_loss), 4), "steps": trainer.state.global_step, "epochs": epochs}


def _collator(tokenizer):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)
