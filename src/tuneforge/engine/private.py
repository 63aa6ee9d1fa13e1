"""Differentially private training through Opacus (DP-SGD), with the ε actually spent recorded.

For the `head` method the encoder is frozen and public, so the private part is the
head trained on the users' texts and labels. Opacus clips every example's gradient
to `max_grad_norm`, adds Gaussian noise calibrated so that `epochs` passes with
Poisson sampling spend at most the requested ε (RDP accounting), and reports the ε
spent. The regularisation grid the non-private head searches on validation is not
used: choosing among models by validation score would itself spend privacy.

`make_private` and `spent_details` are shared with the private `full` / `lora` loop
(engine/private_tune.py).
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from tuneforge.errors import ConfigError
from tuneforge.tasks.base import LinearFit

logger = logging.getLogger(__name__)


def _opacus():
    try:
        import opacus
    except ImportError:
        raise ConfigError("train.privacy needs Opacus: pip install 'tuneforge[privacy]'") from None
    return opacus


def default_delta(n: int) -> float:
    """δ well below 1/n (here 1/(10 n)), the usual rule for (ε, δ)-differential privacy."""
    return 1.0 / (10 * n) if n else 1e-5


def make_private(module, optimizer, loader, *, privacy, delta: float, n: int, where: str):
    """Opacus DP-SGD over `module` (in training mode): Poisson sampling, noise calibrated by the RDP accountant so
    that `privacy.epochs` passes spend at most `privacy.epsilon`. Only parameters that require gradients get
    per-example gradients (frozen LoRA base weights do not). A budget Opacus cannot reach is a ConfigError."""
    opacus = _opacus()
    module.train()  # Opacus wants a module in training mode
    engine = opacus.PrivacyEngine(accountant="rdp", secure_mode=False)
    try:
        with warnings.catch_warnings():  # Opacus warns that secure_mode is off (it is a CSPRNG option for production)
            warnings.simplefilter("ignore")
            module, optimizer, private_loader = engine.make_private_with_epsilon(
                module=module,
                optimizer=optimizer,
                data_loader=loader,
                target_epsilon=privacy.epsilon,
                target_delta=delta,
                epochs=privacy.epochs,
                max_grad_norm=privacy.max_grad_norm,
                poisson_sampling=True,
            )
    except ValueError as exc:
        raise ConfigError(
            f"train.privacy ({where}): ε={privacy.epsilon} cannot be reached with {n} rows and {privacy.epochs} epochs ({exc})"
        ) from None
    return engine, module, optimizer, private_loader


def spent_details(engine, optimizer, *, privacy, delta: float, sample_rate: float, where: str) -> dict:
    """What the run spent, for run.json, the model card and the report; a warning when it is over the request."""
    spent = float(engine.get_epsilon(delta))
    details = {
        "epsilon_requested": privacy.epsilon,
        "epsilon_spent": round(spent, 4),
        "delta": delta,
        "noise_multiplier": round(float(optimizer.noise_multiplier), 4),
        "max_grad_norm": privacy.max_grad_norm,
        "epochs": privacy.epochs,
        "steps": int(sum(steps for _, _, steps in engine.accountant.history)),
        "sample_rate": round(sample_rate, 6),
        "accountant": "rdp",
    }
    if not math.isfinite(spent) or spent > privacy.epsilon * 1.01:
        details["warning"] = f"spent ε={spent:.3f} exceeds the requested {privacy.epsilon}"
        logger.warning("train.privacy: %s", details["warning"])
    logger.info(
        "DP %s: ε spent %.3f of %.3f in %d steps (δ=%.2g, noise multiplier %.3f, sampling rate %.4f)",
        where,
        spent,
        privacy.epsilon,
        details["steps"],
        delta,
        details["noise_multiplier"],
        details["sample_rate"],
    )
    return details


def fit_private_linear(
    x_train, y_train: np.ndarray, x_val, y_val: np.ndarray, *, n_labels: int, privacy, seed: int, scores
) -> tuple[LinearFit, dict]:
    """A softmax head on fixed features, trained with DP-SGD to (ε, δ); returns the fit and what was spent."""
    import torch

    torch.manual_seed(seed)
    x = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y_train, dtype=np.int64))
    n = len(y)
    delta = privacy.delta if privacy.delta is not None else default_delta(n)
    batch = min(privacy.batch_size, n)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True)
    model = torch.nn.Linear(x.shape[1], n_labels)
    optimizer = torch.optim.SGD(model.parameters(), lr=privacy.learning_rate, momentum=0.9)
    engine, model, optimizer, private_loader = make_private(model, optimizer, loader, privacy=privacy, delta=delta, n=n, where="head")
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(privacy.epochs):
        for xb, yb in private_loader:
            if len(yb) == 0:  # Poisson sampling can draw an empty batch
                continue
            optimizer.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimizer.step()
    details = spent_details(engine, optimizer, privacy=privacy, delta=delta, sample_rate=batch / n, where="head")
    weight = model._module.weight.detach().numpy().astype(np.float32)
    bias = model._module.bias.detach().numpy().astype(np.float32)
    val_pred = (np.asarray(x_val, dtype=np.float32) @ weight.T + bias).argmax(axis=1)
    return LinearFit(weight=weight, bias=bias, scores=scores(y_val, val_pred)), details
