"""Seeded splits of interactions: leave-last-out by time, random holdout per user, global time cut, cold items.

Every split keeps each interaction in exactly one of train / validation / test.
`cold_items` first moves every interaction of a seeded share of items to the
test split with `cold=True`: those items never appear in training, which is how
cold start is measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tuneforge.errors import DataError
from tuneforge.tasks.recommend.data import order_by_time


def split_kind(rc, frame: pd.DataFrame) -> str:
    if rc.split != "auto":
        return rc.split
    return "leave-last-out" if frame["timestamp"].notna().any() else "holdout"


def split_interactions(frame: pd.DataFrame, rc, *, seed: int, report: dict) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    kind = split_kind(rc, frame)
    if kind in ("leave-last-out", "time-cut") and frame["timestamp"].isna().all():
        raise DataError(f"recommend.split {kind!r} needs times; the interactions have no {rc.time_column!r} column (recommend.time_column)")
    cold = pd.Series(False, index=frame.index)
    if rc.cold_items > 0:
        items = np.sort(frame["item"].unique())
        chosen = set(rng.choice(items, size=max(1, int(round(len(items) * rc.cold_items))), replace=False).tolist())
        cold = frame["item"].isin(chosen)
        report["cold_items"] = len(chosen)
    warm = frame[~cold]
    counts = warm.groupby("user")["item"].transform("size")
    few = counts < rc.min_user_interactions
    report["users_too_few_interactions"] = int(warm.loc[few, "user"].nunique())
    report["interactions_of_those_users"] = int(few.sum())
    evaluable = warm[~few]
    if kind == "leave-last-out":
        ordered = order_by_time(evaluable)
        back = ordered.groupby("user").cumcount(ascending=False)  # 0 = the user's last interaction
        test, validation = ordered[back == 0], ordered[back == 1]
        train = pd.concat([warm[few], ordered[back >= 2]])
    elif kind == "holdout":
        # each user holds out round(n * fraction / 2) interactions (at least one) for test, as many for validation
        draw = pd.Series(rng.random(len(evaluable)), index=evaluable.index)
        rank = draw.groupby(evaluable["user"]).rank(method="first")
        held = (evaluable.groupby("user")["item"].transform("size") * rc.holdout_fraction / 2).round().clip(lower=1)
        test, validation = evaluable[rank <= held], evaluable[(rank > held) & (rank <= 2 * held)]
        train = pd.concat([warm[few], evaluable[rank > 2 * held]])
    else:  # time-cut: the latest share of all interactions is test, the same share before it validation
        ordered = warm.assign(_line=np.arange(len(warm))).sort_values(["timestamp", "_line"], kind="stable").drop(columns=["_line"])
        n_test = max(1, int(np.ceil(len(ordered) * (1 - rc.time_cut))))
        train, validation, test = ordered.iloc[: -2 * n_test], ordered.iloc[-2 * n_test : -n_test], ordered.iloc[-n_test:]
        report["time_cut"] = {"validation_from": float(validation["timestamp"].min()), "test_from": float(test["timestamp"].min())}
    report["split"] = kind
    test = pd.concat([test.assign(cold=False), frame[cold].assign(cold=True)])
    out = {"train": train, "validation": validation.assign(cold=False), "test": test}
    for name, part in out.items():
        if part.empty:
            raise DataError(f"the {kind} split leaves no {name} interactions; add data or change recommend.split")
    return {name: order_by_time(part).reset_index(drop=True) for name, part in out.items()}
