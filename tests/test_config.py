import dataclasses

import pytest
import yaml

from ganforge import config as C
from ganforge.errors import ConfigError
from ganforge.losses import resolve


def test_yaml_round_trip_is_exact():
    cfg = resolve(C.from_dict({"objective": "wgan-gp", "model": {"kernel": 5}, "optim": {"lr_d": 3e-4}}))
    again = C.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
    assert again.optim.lr_d == 3e-4 and again.optim.beta2 == 0.9 and again.model.kernel == 5


def test_unknown_key_names_key_and_choices():
    with pytest.raises(ConfigError) as err:
        C.from_dict({"model": {"widht": 3}})
    msg = str(err.value)
    assert "model.widht" in msg and "model.width" in msg and "z_dim" in msg and "\n" not in msg


def test_bad_choice_lists_valid_values():
    with pytest.raises(ConfigError, match=r"resolution = 48 .*32, 64, 96, 128, 256"):
        C.from_dict({"resolution": 48})
    with pytest.raises(ConfigError, match=r"model.norm .*batch, none, selu"):
        C.from_dict({"model": {"norm": "group"}})


def test_bad_types_and_ranges():
    with pytest.raises(ConfigError, match="steps must be a int"):
        C.from_dict({"steps": "many"})
    with pytest.raises(ConfigError, match="batch_size .* at least 1"):
        C.from_dict({"batch_size": 0})
    with pytest.raises(ConfigError, match="train.quiet must be a bool"):
        C.from_dict({"train": {"quiet": "yes please"}})
    with pytest.raises(ConfigError, match="must be a mapping"):
        C.from_dict({"model": 3})


def test_override_parsing():
    assert C.parse_override("optim.lr_g=2e-4") == {"optim": {"lr_g": 2e-4}}
    assert C.parse_override("train.quiet=true") == {"train": {"quiet": True}}
    assert C.parse_override("data=mnist:/x/y") == {"data": "mnist:/x/y"}
    assert C.parse_override("optim.n_critic=null") == {"optim": {"n_critic": None}}
    with pytest.raises(ConfigError, match="key=value"):
        C.parse_override("steps")


def test_precedence_preset_then_file_then_overrides(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("steps: 7\noptim:\n  lr_d: 1.0e-3\n")
    cfg = C.build_config("dcgan-ttur", str(file), [{"optim": {"lr_d": 9e-4}}])
    assert cfg.steps == 7 and cfg.optim.lr_d == 9e-4 and cfg.optim.lr_g == 2e-4


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        C.load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        C.load_yaml(bad)


@pytest.mark.parametrize("name", C.preset_names())
def test_every_preset_resolves_and_describes_itself(name):
    cfg = resolve(C.build_config(name))
    assert cfg.optim.name in ("adam", "rmsprop") and cfg.optim.lr_d > 0 and cfg.optim.n_critic >= 1
    assert C.preset_summary(name)


def test_presets_carry_the_reported_settings():
    k5 = resolve(C.build_config("dcgan-k5-linear-64"))
    assert (k5.model.kernel, k5.model.first_layer, k5.resolution, k5.optim.lr_g, k5.optim.beta1) == (5, "linear", 64, 1e-4, 0.5)
    gp = resolve(C.build_config("wgan-gp-adam-2e-4"))
    assert (gp.optim.lr_d, gp.optim.beta1, gp.optim.beta2, gp.loss.gp_weight) == (2e-4, 0.5, 0.999, 10.0)
    wgan = resolve(C.build_config("wgan"))
    assert (wgan.optim.name, wgan.optim.lr_d, wgan.loss.clip, wgan.optim.critic_burst) == ("rmsprop", 5e-5, 0.01, 100)
    folder = resolve(C.build_config("folder64"))
    assert (folder.objective, folder.resolution, folder.model.spectral_norm, folder.model.ema_decay,
            folder.loss.augment, folder.optim.lr_d, folder.optim.lr_g) == ("hinge", 64, True, 0.999,
                                                                            "translation,color", 4e-4, 1e-4)
    tags = C.build_config("emoji-tags")
    assert tags.condition == "tags" and "dark skin tone" in tags.dataset.tags_keep and "red hair" in tags.dataset.tags_keep


def test_unknown_preset_and_objective():
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose one of: .*wgan-gp"):
        C.build_config("nope")
    with pytest.raises(ConfigError, match="unknown objective 'wgan_gp'; choose one of: dcgan, hinge, lsgan, rpgan, wgan, wgan-gp"):
        resolve(C.Config(objective="wgan_gp"))


def test_markdown_table_lists_every_leaf_key():
    table = C.markdown_table()

    def leaves(cls, prefix=""):
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.type if not isinstance(f.type, str) else getattr(C, f.type, None)):
                yield from leaves(getattr(C, f.type) if isinstance(f.type, str) else f.type, prefix + f.name + ".")
            else:
                yield prefix + f.name

    keys = list(leaves(C.Config))
    assert len(keys) > 30
    for key in keys:
        assert f"| `{key}` |" in table
