"""`kit models promote`: an alias moves only when the candidate is better, or when forced."""

from __future__ import annotations

from kit.demo_models import demo_model_files, register_demo_models
from kit.registry import ModelRegistry
from kit.synthetic import make_dataset
from tests.kit.registry.test_register_model_file import kit


def test_promote_measures_both_and_moves_the_alias_only_when_better_or_forced(
    backend_settings, tmp_path
):
    registry = ModelRegistry.from_settings(backend_settings, cache_dir=tmp_path / "cache")
    production = register_demo_models(backend_settings, names=["shelf"])["shelf"]
    same = registry.register("shelf", demo_model_files("shelf"), classes=["bottle"], input_size=320)
    heldout = make_dataset(
        "shelf", tmp_path / "heldout", n_images=12, seed=31, splits=(0.5, 0.5, 0)
    )
    env = backend_settings.as_env()
    candidate = f"shelf:{same.version}"

    measured = kit("models", "promote", candidate, "--data", str(heldout), env=env)
    assert measured.returncode == 0, measured.stderr
    assert "not better, not promoted" in measured.stdout
    assert "role candidate  model shelf:2" in measured.stdout
    assert "role production (before)  model shelf:1" in measured.stdout
    assert registry.aliases("shelf")["production"] == production.version

    dry = kit(
        "models", "promote", candidate, "--data", str(heldout), "--force", "--dry-run", env=env
    )
    assert dry.returncode == 0, dry.stderr
    assert registry.aliases("shelf")["production"] == production.version

    forced = kit("models", "promote", candidate, "--data", str(heldout), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert registry.aliases("shelf")["production"] == same.version

    missing = kit("models", "promote", candidate, env=env)
    assert missing.returncode == 2 and "needs a candidate" in missing.stderr
