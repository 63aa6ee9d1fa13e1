"""Knowledge distillation: a smaller student learns the teacher's softened probabilities and the true labels.

The loss is `alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy`
(Hinton et al., 2015). Training runs on Hugging Face `Trainer`, so schedules,
clipping, progress and multi-GPU come from there. The same loop lets a pruned
model recover what pruning cost it.
"""

from __future__ import annotations

import logging
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from tuneforge.train.transformer import EncodedTexts

logger = logging.getLogger(__name__)


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *, temperature: float, alpha: float
) -> torch.Tensor:
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1), F.softmax(teacher_logits / temperature, dim=-1), reduction="batchmean"
    )
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft * temperature**2 + (1 - alpha) * hard


class TextsWithTeacher(EncodedTexts):
    def __init__(self, encodings: dict, labels: np.ndarray, teacher_logits: np.ndarray):
        super().__init__(encodings, labels)
        self.teacher_logits = teacher_logits

    def __getitem__(self, i: int) -> dict:
        return {**super().__getitem__(i), "teacher_logits": self.teacher_logits[i].tolist()}


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
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    class DistillationTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            teacher, gold = inputs.pop("teacher_logits"), inputs.pop("labels")
            outputs = model(**inputs)
            loss = distillation_loss(outputs.logits, teacher, gold, temperature=temperature, alpha=alpha)
            return (loss, outputs) if return_outputs else loss

    dataset = TextsWithTeacher(tokenizer(texts, truncation=True, max_length=max_length), labels, targets)
    steps_per_epoch = max(1, len(texts) // batch_size)
    with tempfile.TemporaryDirectory(prefix="tuneforge-distill-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            num_train_epochs=epochs,
            learning_rate=learning_rate,
            per_device_train_batch_size=batch_size,
            weight_decay=0.01,
            warmup_steps=0.1,  # a share of all steps
            lr_scheduler_type="linear",
            eval_strategy="no",
            save_strategy="no",
            logging_steps=max(1, min(50, steps_per_epoch // 4)),
            seed=seed,
            data_seed=seed,
            report_to="none",
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
            remove_unused_columns=False,  # keep teacher_logits, which the model's forward does not take
        )
        trainer = DistillationTrainer(
            model=student, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer
        )
        result = trainer.train()
    student.eval()
    return {"train_loss": round(float(result.training_loss), 4), "steps": trainer.state.global_step, "epochs": epochs}
