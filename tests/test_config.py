from pathlib import Path

import pytest
import yaml

from tuneforge.config import apply_override, load_config
from tuneforge.errors import ConfigError


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_defaults_fill_in_and_overrides_are_typed(tmp_path):
    path = _write(tmp_path, {"data": {"train": "train.csv"}})
    config = load_config(path, ["train.epochs=2", "train.method=lora", "train.lora.target_modules=[query, value]"])
    assert config.train.epochs == 2
    assert config.train.method == "lora"
    assert config.train.lora.target_modules == ["query", "value"]
    assert config.model.name == "minilm-l6"
    # data paths in a file are anchored at the file's folder
    assert config.data.train == str((tmp_path / "train.csv").resolve())


def test_bundled_data_is_not_turned_into_a_path(tmp_path):
    config = load_config(_write(tmp_path, {"data": {"train": "bundled:bbc-news"}}))
    assert config.data.train == "bundled:bbc-news"


def test_unknown_key_names_the_setting_and_allowed_keys(tmp_path):
    path = _write(tmp_path, {"data": {"train": "x.csv"}, "train": {"epochz": 3}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "train.epochz" in message
    assert "unknown setting" in message and "epochs" in message and "learning_rate" in message


def test_bad_choice_lists_allowed_values(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, {"data": {"train": "x.csv"}}), ["train.method=magic"])
    message = str(info.value)
    assert "train.method" in message and "'full'" in message and "'tfidf'" in message and "magic" in message


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ("train.learning_rate=-1", "train.learning_rate"),
        ("train.epochs=abc", "train.epochs"),
        ("data.validation_fraction=0.9", "data.validation_fraction"),
        ("output.name=a/b", "output.name"),
    ],
)
def test_bad_values_name_the_setting(tmp_path, override, setting):
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
        load_config(_write(tmp_path, {"data": {"train": "x.csv"}}), [override])


def test_missing_required_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"data: required setting is missing"):
        load_config(_write(tmp_path, {"train": {"epochs": 1}}))


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match=r"trian: unknown setting; allowed here: .*train"):
        load_config(_write(tmp_path, {"data": {"train": "x.csv"}, "trian": {}}))


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "data: [unclosed"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_override({}, "train.epochs")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_override({"train": {"epochs": 2}}, "train.epochs.x=1")


BOMB = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")),
    ]
)


@pytest.mark.parametrize("where", ["train: {epochs: *i}", "tune: {space: {train.seed: {choices: *i}}}", "data: {train: x.csv, dedupe: *i}"])
def test_yaml_alias_bomb_is_refused_quickly(tmp_path, where):
    import time

    text = f"{BOMB}\ndata: {{train: x.csv}}\n{where}\n" if not where.startswith("data") else f"{BOMB}\n{where}\n"
    assert len(text.encode()) < 700  # a few hundred bytes that expand to 9**9 values
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to over 100,000 values"):
        load_config(_write(tmp_path, text))
    assert time.perf_counter() - started < 2


def test_self_referencing_yaml_and_huge_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="expands to over"):
        load_config(_write(tmp_path, "data: &d {train: x.csv, again: *d}\n"))
    with pytest.raises(ConfigError, match="a config file is at most 1,000,000 bytes"):
        load_config(_write(tmp_path, "data: {train: x.csv}\n# " + "x" * 1_000_001 + "\n"))
    with pytest.raises(ConfigError, match="expands to over"):
        apply_override(
            {},
            "train.epochs=[&a [1,1,1,1,1,1,1,1,1,1], [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], "
            + ", ".join(["[*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]"] * 1200)
            + "]",
        )


def test_error_messages_echo_only_a_short_prefix_of_a_bad_value(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, {"data": {"train": "x.csv"}}), ["train.method=" + "x" * 10_000, "train.epochs=" + "y" * 5000])
    message = str(info.value)
    assert "train.method" in message and "train.epochs" in message
    assert "x" * 79 in message and "x" * 81 not in message and "(10,002 characters)" in message
    assert "y" * 81 not in message and len(message) < 1000
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, {"data": {"train": "x.csv"}, "train": {"z" * 500: 1}}))
    assert "z" * 81 not in str(info.value)


@pytest.mark.parametrize("override", ["train.seed=1099511627776", "train.seed=-1", "tune.seed=4294967296"])
def test_seed_out_of_numpy_range_is_a_config_error(tmp_path, override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        load_config(_write(tmp_path, {"data": {"train": "x.csv"}}), [override])
    assert load_config(_write(tmp_path, {"data": {"train": "x.csv"}}), ["train.seed=4294967295"]).train.seed == 2**32 - 1
