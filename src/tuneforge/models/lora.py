"""LoRA adapters over a pretrained model (peft), as training and the planner's calibration build them."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def wrap_lora(model, lora, task_type: str):
    from peft import LoraConfig, TaskType, get_peft_model

    peft_config = LoraConfig(
        task_type=getattr(TaskType, task_type),
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
    )
    model = get_peft_model(model, peft_config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA: training %d of %d parameters (%.2f%%)", trainable, total, 100 * trainable / total)
    return model
