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
