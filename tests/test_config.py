"""The configuration tree: profiles, `--set` parsing, unknown keys, submission-time overrides."""
import pytest

from inatvision.config import ConfigError, all_keys, as_dict, build_config, resolve_config


def test_production_is_the_inaturalist_recipe():
    config = build_config("production")
    assert (config.trainer.image_size, config.trainer.global_batch_size, config.trainer.epochs) == (299, 256, 80)
    assert config.trainer.precision == "mixed_float16"
    assert config.trainer.effective_learning_rate() == pytest.approx(0.05)
    assert (config.trainer.rmsprop_rho, config.trainer.rmsprop_momentum, config.trainer.rmsprop_epsilon) == (0.9, 0.9, 1.0)
    assert config.trainer.label_smoothing == 0.1
    assert (config.export.min_observations, config.export.min_research_grade) == (100, 50)
    assert config.export.max_leaf_rank == "genus" and config.trainer.warm_start is False
    assert (config.export.max_train_photos_per_leaf, config.export.max_eval_photos_per_leaf) == (1000, 100)


def test_demo_shrinks_the_same_tree():
    demo, production = build_config("demo"), build_config("production")
    assert all_keys(demo) == all_keys(production)
    assert demo.trainer.image_size == 71 and demo.trainer.precision == "float32"


@pytest.mark.parametrize("assignment, key, expected", [
    ("trainer.epochs=3", ("trainer", "epochs"), 3),
    ("trainer.learning_rate=0.1", ("trainer", "learning_rate"), 0.1),
    ("trainer.learning_rate=none", ("trainer", "learning_rate"), None),
    ("trainer.warm_start=true", ("trainer", "warm_start"), True),
    ("export.licenses=CC0, CC-BY", ("export", "licenses"), ["CC0", "CC-BY"]),
    ("export.max_leaf_rank=species", ("export", "max_leaf_rank"), "species"),
    ("gate.min_top1=0.2", ("gate", "min_top1"), 0.2),
    ("push.destination=gs://bucket/releases", ("push", "destination"), "gs://bucket/releases"),
])
def test_set_parses_to_the_field_type(assignment, key, expected):
    config = build_config("demo", [assignment])
    assert getattr(getattr(config, key[0]), key[1]) == expected
    assert as_dict(config)[key[0]][key[1]] == expected


def test_unknown_key_lists_keys_near_it():
    with pytest.raises(ConfigError) as error:
        build_config("demo", ["trainer.epoch=3"])
    assert "trainer.epoch'" in str(error.value) and "trainer.epochs" in str(error.value)


@pytest.mark.parametrize("assignment, message", [
    ("trainer.epochs=many", "bad value for trainer.epochs"),
    ("trainer.epochs=-1", "bad value for trainer.epochs"),
    ("export.max_leaf_rank=kingdom", "bad value for export.max_leaf_rank"),
    ("trainer.epochs", "dotted.key=value"),
])
def test_bad_values_are_errors(assignment, message):
    with pytest.raises(ConfigError, match=message):
        build_config("demo", [assignment])


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile"):
        build_config("huge")


def test_submission_overrides_apply_to_the_compiled_config():
    compiled = build_config("production").to_json()
    config = resolve_config(compiled, "trainer.epochs=3; gate.min_top1=0.5\nexport.seed=7")
    assert (config.trainer.epochs, config.gate.min_top1, config.export.seed) == (3, 0.5, 7)
    assert resolve_config(compiled, "").trainer.epochs == 80
