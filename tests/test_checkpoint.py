import json

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.checkpoint import find_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint


def _parts(seed):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    adam = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.9))
    rms = torch.optim.RMSprop(net.parameters(), lr=5e-5)
    for _ in range(3):
        loss = net(torch.randn(8, 3)).pow(2).mean()
        adam.zero_grad()
        rms.zero_grad()
        loss.backward()
        adam.step()
        rms.step()
    return net, adam, rms


def test_round_trip_restores_weights_optimizers_and_rng(tmp_path):
    net, adam, rms = _parts(0)
    torch.manual_seed(123)
    path = save_checkpoint(tmp_path, 7, {"D": net}, {"d": adam, "r": rms}, extra={"sampler": {"epoch": 2}}, keep=3)
    expected_next = torch.randn(5)

    net2, adam2, rms2 = _parts(1)
    meta = load_checkpoint(path, {"D": net2}, {"d": adam2, "r": rms2}, torch.device("cpu"))
    assert meta["step"] == 7 and meta["sampler"] == {"epoch": 2}
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)
    for opt, opt2 in ((adam, adam2), (rms, rms2)):
        sd, sd2 = opt.state_dict(), opt2.state_dict()
        assert sd["param_groups"][0]["lr"] == sd2["param_groups"][0]["lr"]
        for i in sd["state"]:
            for k, v in sd["state"][i].items():
                assert torch.equal(v, sd2["state"][i][k]) if torch.is_tensor(v) else v == sd2["state"][i][k]
    assert torch.equal(torch.randn(5), expected_next)  # the RNG continues where it was saved


def test_only_the_last_k_are_kept_and_no_temporaries_remain(tmp_path):
    net, adam, _ = _parts(0)
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"D": net}, {"d": adam}, extra={}, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [30, 40]
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    assert find_checkpoint(tmp_path).name == "step-000040"
    assert find_checkpoint(tmp_path, "30").name == "step-000030"
    with pytest.raises(GanforgeError, match="available steps: 30, 40"):
        find_checkpoint(tmp_path, "10")


def test_checkpoint_holds_no_pickle(tmp_path):
    net, adam, _ = _parts(0)
    path = save_checkpoint(tmp_path, 1, {"D": net}, {"d": adam}, extra={}, keep=1)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.safetensors", "state.json",
                                                     "state.safetensors"]
    json.loads((path / "state.json").read_text())
    json.loads((path / "manifest.json").read_text())


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(GanforgeError, match="has no checkpoint"):
        find_checkpoint(tmp_path)


def test_a_save_that_fails_midway_leaves_the_earlier_checkpoint_of_that_name_whole(tmp_path, monkeypatch):
    import ganforge.checkpoint as checkpoint

    net = torch.nn.Linear(2, 2)
    first = save_checkpoint(tmp_path, 5, {"G": net}, {}, {}, keep=3, name="best")
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def full_disk(tensors, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with pytest.raises(GanforgeError, match="No space left on device"):
        save_checkpoint(tmp_path, 6, {"G": net}, {}, {}, keep=3, name="best")
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["best"]  # the staging folder is gone
