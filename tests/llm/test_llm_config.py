"""LLMConfig validation and the ``llm`` Hydra group files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from pydantic import ValidationError

from evolve.llm.config import LLMConfig, ModelSpec

GROUP = Path(__file__).resolve().parents[2] / "configs" / "llm"


def compose_llm(tmp_path: Path, overrides: list[str]) -> LLMConfig:
    """Compose a primary config whose defaults pick ``llm: offline``, as the run config does."""
    shutil.copytree(GROUP, tmp_path / "llm")
    (tmp_path / "config.yaml").write_text("defaults:\n  - llm: offline\n  - _self_\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    raw: Any = OmegaConf.to_container(cfg, resolve=True)
    return LLMConfig.model_validate(raw["llm"])


def test_default_is_offline_with_no_other_settings() -> None:
    config = LLMConfig()
    assert config.provider == "offline"
    assert config.resolved_models() == ()
    assert config.mode_weights == {"diff": 1.0}
    assert config.max_edits == 3


@pytest.mark.parametrize("name", ["offline", "openai", "anthropic", "local", "ensemble"])
def test_every_group_file_validates(name: str) -> None:
    raw = yaml.safe_load((GROUP / f"{name}.yaml").read_text())
    config = LLMConfig.model_validate(raw)
    assert config.provider == name


def test_group_files_hold_no_secret() -> None:
    for path in GROUP.glob("*.yaml"):
        assert "sk-" not in path.read_text()


def test_local_base_url_override_composes(tmp_path: Path) -> None:
    config = compose_llm(tmp_path, ["llm=local", "llm.base_url=http://127.0.0.1:9999/v1"])
    (spec,) = config.resolved_models()
    assert spec.provider == "local"
    assert spec.resolved_base_url() == "http://127.0.0.1:9999/v1"
    assert spec.resolved_key_env() is None


def test_ensemble_bandit_override_composes(tmp_path: Path) -> None:
    config = compose_llm(tmp_path, ["llm=ensemble", "llm.bandit=ucb1"])
    assert config.bandit == "ucb1"
    assert [m.provider for m in config.resolved_models()] == ["openai", "anthropic"]


def test_default_group_is_offline(tmp_path: Path) -> None:
    assert compose_llm(tmp_path, ["llm.max_edits=5"]) == LLMConfig(max_edits=5)


def test_single_model_comes_from_the_shortcut_fields() -> None:
    config = LLMConfig(provider="openai", model="gpt-x", price_in_per_mtok=1.5, timeout_s=9)
    (spec,) = config.resolved_models()
    assert (spec.model, spec.price_in_per_mtok, spec.timeout_s) == ("gpt-x", 1.5, 9)
    assert spec.resolved_key_env() == "OPENAI_API_KEY"
    assert spec.resolved_base_url() == "https://api.openai.com/v1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"provider": "openai"}, "needs a model name"),
        ({"provider": "local", "model": "m"}, "base_url"),
        ({"provider": "anthropic", "model": "c", "temperature": 0.5}, "temperature"),
        ({"provider": "ensemble"}, "at least one model"),
        ({"provider": "openai", "model": "m", "bandit": "ucb1"}, "bandit"),
        ({"mode_weights": {"diff": 1.0, "mutate": 1.0}}, "mutate"),
        ({"mode_weights": {"diff": 0.0}}, "positive sum"),
        ({"provider": "offline", "api_key": "sk-secret"}, "api_key"),
    ],
)
def test_bad_configs_name_the_problem(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LLMConfig(**fields)


def test_ensemble_rejects_shortcut_fields_and_duplicate_names() -> None:
    member = {"provider": "openai", "model": "m"}
    with pytest.raises(ValidationError, match="per model"):
        LLMConfig(provider="ensemble", models=[member], model="x")
    with pytest.raises(ValidationError, match="unique"):
        LLMConfig(provider="ensemble", models=[member, member])
    with pytest.raises(ValidationError, match="positive weight"):
        LLMConfig(provider="ensemble", models=[{**member, "weight": 0}])


def test_model_spec_is_immutable() -> None:
    spec = ModelSpec(provider="openai", model="m")
    with pytest.raises(ValidationError):
        spec.model = "other"  # type: ignore[misc]


def test_max_reply_chars_is_set_from_the_group_file_and_bounded(tmp_path: Path) -> None:
    overrides = ["llm=local", "llm.base_url=http://127.0.0.1:1/v1", "llm.model=m", "llm.max_reply_chars=5000"]
    assert compose_llm(tmp_path, overrides).max_reply_chars == 5000
    with pytest.raises(ValidationError, match="max_reply_chars"):
        LLMConfig(max_reply_chars=2_000_000)
