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


def test_a_configuration_without_every_section_is_an_error():
    from inatvision.config import SECTIONS, Config

    partial = build_config("demo").sections_json("geo")
    with pytest.raises(ConfigError, match="lacks export, validation, trainer, gate, push, beam"):
        Config.from_json(partial)
    with pytest.raises(ValueError, match="needs every section"):
        Config.model_validate({"profile": "demo", "geo": {}})
    with pytest.raises(ValueError, match="needs every section"):
        Config(profile="demo")
    with pytest.raises(ConfigError, match="no configuration section trainers"):
        build_config("demo").sections_json("trainers")
    assert set(SECTIONS) == {"export", "validation", "trainer", "gate", "geo", "push", "beam"}


def test_a_components_sections_come_back_with_the_rest_of_its_own_profile():
    """The issue's example: the demo geo section read back used to give trainer.image_size 299, trainer.epochs 80
    and export.min_observations 100 (production defaults)."""
    demo_config = build_config("demo")
    compiled = build_config("demo", ["geo.epochs=7", "trainer.epochs=2"])
    geo_only = resolve_config(compiled.sections_json("geo"))
    assert geo_only.profile == "demo" and geo_only.geo.epochs == 7
    assert (geo_only.trainer.image_size, geo_only.trainer.epochs, geo_only.export.min_observations) == (71, 4, 20)
    assert geo_only.model_dump(exclude={"geo"}) == demo_config.model_dump(exclude={"geo"})
    assert resolve_config(compiled.sections_json("geo"), "trainer.epochs=3").trainer.epochs == 3
    trainer_and_export = resolve_config(compiled.sections_json("trainer", "export"))
    assert trainer_and_export.trainer == compiled.trainer and trainer_and_export.geo == demo_config.geo
    assert resolve_config(build_config("production").sections_json("gate")).trainer.image_size == 299
    with pytest.raises(ConfigError, match="'tiny' is no profile"):
        resolve_config(build_config("demo", ["profile=tiny"]).sections_json("geo"))


def test_every_component_of_a_demo_pipeline_resolves_the_demo_configuration():
    import json

    from inatvision.config import Config
    from inatvision.pipeline.pipeline import create_pipeline

    config = build_config("demo")
    pipeline = create_pipeline(config, export_dir="/x", pipeline_root="/r", push_destination="/d")
    seen = []
    for component in pipeline.components:
        properties = component.exec_properties
        compiled = properties.get("config_json") or json.loads(properties.get("custom_config") or "{}").get("config")
        if compiled:
            seen.append(component.id)
            assert resolve_config(compiled, "") == config, component.id
    assert set(seen) >= {"ExportExamples", "ValidationGate", "Trainer", "GeoTrainer", "ComposeServing",
                         "ReleaseGate", "ReleasePusher"}
    assert Config.from_json(config.to_json()) == config


def test_the_trainers_run_fn_gets_the_whole_tree_of_the_profile(monkeypatch, tmp_path):
    """TaxonTrainerExecutor resolves its sections and hands run_fn the whole demo tree (Config.from_json reads it)."""
    import json

    from tfx.components.trainer import executor as trainer_executor
    from tfx.types import standard_artifacts

    from inatvision.artifacts import Taxonomy
    from inatvision.components.trainer.component import TaxonTrainerExecutor
    from inatvision.config import Config

    received = {}
    monkeypatch.setattr(trainer_executor.GenericExecutor, "Do",
                        lambda self, inputs, outputs, properties: received.update(properties))
    model, taxonomy = standard_artifacts.Model(), Taxonomy()
    model.uri, taxonomy.uri = str(tmp_path / "Trainer" / "model" / "1"), str(tmp_path / "taxonomy")
    compiled = build_config("demo").sections_json("geo", "export")
    TaxonTrainerExecutor().Do({"taxonomy": [taxonomy]}, {"model": [model]},
                              {"custom_config": json.dumps({"config": compiled}), "config_overrides": "geo.epochs=9"})
    config = Config.from_json(json.loads(received["custom_config"])["config"])
    assert config.geo.epochs == 9 and config.trainer.image_size == 71 and config.profile == "demo"
