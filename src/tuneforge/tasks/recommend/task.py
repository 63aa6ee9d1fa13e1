"""`task: recommend` — from user-item interactions to ranked items, beside the most-popular baseline.

Not a text task, so it implements only the hooks the engine, tuning and the
service call (`method_of`, `prepare`, `trainer`, `load_runtime`, `evaluate`,
`headline`, the card) and none of the text ones (encoding, collators, linear
heads). Run folder, config, cost accounting, tuning and serving are shared.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from tuneforge.atomic import atomic_write_json
from tuneforge.data.prepare import PreparedData
from tuneforge.plots import save_bars_png
from tuneforge.tasks.lineage_hooks import LineageHooks
from tuneforge.tasks.recommend.models import METHODS, USES_ENCODER

logger = logging.getLogger(__name__)
SLICE_MIN_USERS = 20  # smaller slices are listed with their size but no comparison is drawn from them


class RecommendTask(LineageHooks):
    name: ClassVar[str] = "recommend"
    methods: ClassVar[tuple[str, ...]] = ("auto", *METHODS)
    route: ClassVar[str] = "/v1/recommend"
    serves_texts: ClassVar[bool] = False
    method_setting: ClassVar[str] = "recommend.method"
    compressible: ClassVar[bool] = False
    explainable: ClassVar[bool] = False
    slice_columns: ClassVar[tuple[str, ...]] = ()  # the report shows no slice table (recommend keeps its own in eval/slices.json)
    keeps_raw_text: ClassVar[bool] = True

    # -- engine hooks -------------------------------------------------------------------------

    def method_of(self, config) -> str:
        return config.recommend.method

    def needs_pretrained(self, config) -> bool:
        return config.recommend.items is not None and config.recommend.method in ("auto", *USES_ENCODER)

    # -- data lineage (identity of an interaction: tasks/recommend/lineage.py) ------------------

    user_column: ClassVar[str | None] = "user"

    def row_keys(self, frame: pd.DataFrame) -> list[str]:
        from tuneforge.tasks.recommend.lineage import interaction_keys

        return interaction_keys(frame)

    def row_identity(self, frame: pd.DataFrame) -> list[str]:
        from tuneforge.tasks.recommend.lineage import identity_of

        return identity_of(frame)

    def lineage_sources(self, config) -> list[str]:
        return [config.data.train, config.recommend.items, config.recommend.users]

    def side_users(self, config) -> list[str]:
        from tuneforge.tasks.recommend.lineage import user_table_ids

        return user_table_ids(config)

    def query_rows(self, source: str, config, *, identity: list[str] | None, text_column: str) -> pd.DataFrame:
        from tuneforge.tasks.recommend.lineage import query_interactions

        return query_interactions(source, config, identity)

    def saved_split_columns(self) -> dict:
        return {}  # retrained from its saved splits as they are (retrain_without), not re-read through data settings

    def retrain_without(self, config, kept: dict[str, pd.DataFrame], *, users: set[str], staging: Path, report: dict):
        from tuneforge.tasks.recommend.lineage import retrain_data

        return retrain_data(config, kept, users=users, staging=staging, report=report)

    def evaluation_options(self, config) -> dict:
        return {}  # slices come from the user table the model was trained with

    def validation_key(self, config) -> str:
        from tuneforge.tasks.recommend.fit import main_k

        return f"best_validation_ndcg@{main_k(config.recommend.k)}"

    def prepare(self, config, *, seed: int) -> PreparedData:
        from tuneforge.tasks.recommend.data import implicit_feedback, read_interactions
        from tuneforge.tasks.recommend.fit import side_tables
        from tuneforge.tasks.recommend.split import split_interactions

        rc = config.recommend
        frame = read_interactions(config.data.train, rc, config.data)
        report: dict = {
            "seed": seed,
            "task": self.name,
            "transforms": [],
            "labels": [],
            "source": config.data.train,
            "rows_read": len(frame),
        }
        frame = implicit_feedback(frame, rc.positive_threshold, report)
        items, users = side_tables(config)
        if items is not None:
            undescribed = sorted(set(frame["item"]) - set(items.frame.index))
            report["items_not_in_item_table"] = len(undescribed)
            if undescribed:
                logger.warning(
                    "%d item(s) of the interactions are not in %s (no content for them): e.g. %s",
                    len(undescribed),
                    rc.items,
                    undescribed[:3],
                )
        if users is not None:
            report["users_not_in_user_table"] = len(set(frame["user"]) - set(users.frame.index))
        report.update(users=int(frame["user"].nunique()), items=int(frame["item"].nunique()), interactions=len(frame))
        splits = split_interactions(frame, rc, seed=seed, report=report)
        removed = {key: report[key] for key in ("below_threshold", "repeated_pairs") if report.get(key)}
        report["files"] = {"train": {"source": config.data.train, "removed": removed}}
        report["splits"] = {name: {"rows": len(part), "origin": report["split"]} for name, part in splits.items()}
        if report.get("users_too_few_interactions"):
            logger.warning(
                "%d user(s) have fewer than %d interactions (recommend.min_user_interactions): kept for training, not evaluated",
                report["users_too_few_interactions"],
                rc.min_user_interactions,
            )
        return PreparedData(train=splits["train"], validation=splits["validation"], test=splits["test"], labels=[], report=report)

    def trainer(self, method: str):
        from tuneforge.tasks.recommend.fit import train_recommender

        return train_recommender

    def unservable(self, meta) -> str | None:
        return None

    def load_runtime(self, path, *, batch_size: int = 32, variant: str | None = None):  # no compressed variants
        from tuneforge.tasks.recommend.runtime import Recommender

        return Recommender.load(path)

    # -- file scoring (`tuneforge recommend RUN --input users.csv --output recs.csv`) ------------

    def scoring_columns(self, raw: list[dict], meta) -> dict[str, list]:
        return {
            "recommended": ["|".join(r["items"]) for r in raw],
            "scores": ["|".join(f"{s:.6g}" for s in r["scores"]) for r in raw],
            "known_user": [r["known_user"] for r in raw],
        }

    def empty_raw(self, meta) -> list:
        return []

    def load_eval_frame(self, path, config, runtime) -> pd.DataFrame:
        """Interactions of a new file to evaluate on: every row is a held-out (user, item) pair."""
        from tuneforge.tasks.recommend.data import implicit_feedback, read_interactions

        frame = read_interactions(str(path), config.recommend, config.data.model_copy(update={"format": "auto"}))
        return implicit_feedback(frame, config.recommend.positive_threshold, {})

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, recommender, frame: pd.DataFrame, out_dir: Path, *, split: str) -> dict:
        from tuneforge.tasks.recommend.fit import main_k, seen_matrix, targets_of
        from tuneforge.tasks.recommend.metrics import evaluate_rankings

        settings = recommender.meta.extra["settings"]
        ks, k = settings["k"], main_k(settings["k"])
        catalog = recommender.catalog
        frame = frame[frame["item"].isin(catalog.item_index) & frame["user"].isin(catalog.user_index)]
        n_users = len(catalog.users)
        history = [recommender.history(u) for u in range(n_users)]
        seen = seen_matrix(history, recommender.n_items)
        popularity = recommender.model.arrays["popularity"]
        cold_flags = frame["cold"].astype(bool) if "cold" in frame else pd.Series(False, index=frame.index)
        warm = targets_of(frame[~cold_flags], catalog)
        metrics: dict = {"split": split, "task": self.name, "method": recommender.meta.method, "n": int((~cold_flags).sum())}
        metrics.update(evaluate_rankings(recommender.score_users, seen, warm, ks, seed=0, popularity=popularity))
        metrics["protocol"] = "full ranking over every item the user has not interacted with; ties ranked in a fixed random order"
        cold_rows = frame[cold_flags]
        if len(cold_rows):
            cold_items = np.flatnonzero(popularity == 0)
            targets = targets_of(cold_rows, catalog)
            metrics["cold_items"] = {
                "interactions": len(cold_rows),
                "items": int(cold_rows["item"].nunique()),
                "among_all_items": evaluate_rankings(recommender.score_users, seen, targets, ks, seed=0),
                "among_new_items": evaluate_rankings(recommender.score_users, seen, targets, ks, seed=0, candidates=cold_items),
            }
        metrics["slices"] = self._slices(recommender, seen, warm, ks, k)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "metrics.json", metrics)
        self._plots(metrics, ks, k, out_dir, split)
        return metrics

    def _slices(self, recommender, seen, warm: dict[int, np.ndarray], ks: list[int], k: int) -> dict:
        """HR/NDCG@k for light vs heavy users and for every value of each user segment column (the fairness view)."""
        from tuneforge.tasks.recommend.metrics import evaluate_rankings

        lengths = np.diff(recommender.history_indptr)
        users = np.array(sorted(warm))
        groups: dict[str, dict[str, list[int]]] = {"activity": {}}
        if len(users):
            median = float(np.median(lengths[users]))
            for u in users:
                groups["activity"].setdefault(
                    f"light (<= {median:.0f} interactions)" if lengths[u] <= median else f"heavy (> {median:.0f})", []
                ).append(u)
        catalog = recommender.catalog
        for position, column in enumerate(catalog.segment_columns):
            values: dict[str, list[int]] = {}
            for u in users:
                segment = int(recommender.user_segment[u])
                value = catalog.segments[segment].split(", ")[position].split("=", 1)[1] if segment >= 0 else "unknown"
                values.setdefault(value, []).append(u)
            groups[column] = values
        out: dict = {}
        for column, values in groups.items():
            out[column] = {}
            for value, members in sorted(values.items()):
                m = evaluate_rankings(recommender.score_users, seen, {u: warm[u] for u in members}, [k], seed=0)
                out[column][value] = {
                    "users": len(members),
                    f"hr@{k}": m[f"hr@{k}"],
                    f"ndcg@{k}": m[f"ndcg@{k}"],
                    "small": len(members) < SLICE_MIN_USERS,
                }
        return out

    @staticmethod
    def _plots(metrics: dict, ks: list[int], k: int, out_dir: Path, split: str) -> None:
        save_bars_png(
            {f"{name}@{c}": metrics[f"{name}@{c}"] for c in ks for name in ("hr", "ndcg", "recall", "map")},
            out_dir / "ranking_metrics.png",
            title=f"Ranking metrics ({split}, {metrics['users']} users, full ranking)",
            xlabel="score",
        )
        slices = {f"{column}: {value}": v[f"ndcg@{k}"] for column, values in metrics["slices"].items() for value, v in values.items()}
        if slices:
            save_bars_png(slices, out_dir / "slices_ndcg.png", title=f"NDCG@{k} by user group ({split})", xlabel=f"NDCG@{k}")

    def headline(self, metrics: dict) -> dict[str, float]:
        keys = [key for key in metrics if key.split("@")[0] in ("hr", "ndcg", "recall", "map", "coverage") and key.endswith("@10")]
        return {key: metrics[key] for key in keys}

    # -- model card ---------------------------------------------------------------------------

    def card_model(self, config: dict, data_report: dict, train_info: dict) -> str:
        rc = config["recommend"]
        chosen = train_info.get("method", rc["method"])
        encoder = f" (item text read by `{config['model']['name']}`)" if chosen in USES_ENCODER else ""
        return (
            f"- Task: `recommend` — {data_report.get('users')} users, {data_report.get('items')} items, {data_report.get('interactions')} interactions\n"
            f"- Method: `{chosen}`{encoder}; asked for `{rc['method']}`\n"
            f"- Split: {data_report.get('split')}; positives: {'rating >= ' + str(rc['positive_threshold']) if rc['positive_threshold'] is not None else 'every interaction'}"
            + self._validation_table(train_info)
        )

    @staticmethod
    def _validation_table(train_info: dict) -> str:
        """Every method tried, on validation, the most-popular baseline among them."""
        table = train_info.get("validation_table") or []
        if not table:
            return ""
        metric = next(key for key in table[0] if key.startswith("ndcg@"))
        k = metric.split("@")[1]
        rows = "\n".join(f"| {r['method']} | {r[f'hr@{k}']:.4f} | {r[metric]:.4f} | {r['seconds']} |" for r in table)
        return f"\n\nMethods on validation (the chosen one refit on train + validation):\n\n| method | HR@{k} | NDCG@{k} | seconds |\n|---|---|---|---|\n{rows}"

    def card_results(self, metrics: dict) -> str:
        ks = sorted({int(key.split("@")[1]) for key in metrics if key.startswith("hr@")})
        rows = "\n".join(
            f"| {c} | {metrics[f'hr@{c}']:.4f} | {metrics[f'ndcg@{c}']:.4f} | {metrics[f'recall@{c}']:.4f} | {metrics[f'map@{c}']:.4f} |"
            for c in ks
        )
        lines = [
            f"## Results on {metrics.get('split')} ({metrics.get('users')} users; {metrics.get('protocol')})",
            "| k | HR | NDCG | Recall | MAP |",
            "|---|---|---|---|---|",
            rows,
        ]
        quality = {key: v for key, v in metrics.items() if key.split("@")[0] in ("coverage", "novelty", "popularity_percentile")}
        lines.append("\n- " + "; ".join(f"{key}: {v}" for key, v in quality.items()))
        cold = metrics.get("cold_items")
        if cold:
            lines.append(
                f"- New items ({cold['items']} never seen in training, {cold['interactions']} held-out interactions): "
                f"HR@10 {cold['among_all_items'].get('hr@10', float('nan')):.4f} among all items, {cold['among_new_items'].get('hr@10', float('nan')):.4f} among the new ones"
            )
        for column, values in metrics.get("slices", {}).items():
            parts = ", ".join(f"{value} {v.get('ndcg@10', float('nan')):.3f} (n={v['users']})" for value, v in values.items())
            lines.append(f"- NDCG@10 by {column}: {parts}")
        lines.append(
            "\n## Limitations\n- Scores are for the held-out interactions of this data; taste drifts, so re-measure on fresh data."
        )
        return "\n".join(lines) + "\n"
