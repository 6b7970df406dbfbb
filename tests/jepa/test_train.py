import numpy as np
import pytest
import torch

from geoprobe import EmbeddingSet
from geoprobe.errors import GeoprobeError
from geoprobe.jepa.cli import main
from geoprobe.jepa.export import export
from geoprobe.jepa.model import JEPAConfig
from geoprobe.jepa.train import load_model, load_world_model, read_checkpoint, train
from geoprobe.jepa.worlds import open_dataset, write_dataset
from geoprobe.source import resolve_source

TINY = dict(dim=8, channels=(8, 8), patch=4, hidden=16, batch=8, history=2, n_directions=16,
            warmup=2, val_episodes=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("worlds") / "tworoom"
    write_dataset(path, "tworoom", n_episodes=6, steps=6, size=16, seed=0)
    return path


def tiny(data, **kw):
    return JEPAConfig(data=str(data), **{**TINY, "steps": 6, **kw})


def test_resume_gives_identical_weights(data, tmp_path):
    train(tiny(data), tmp_path / "full", show_progress=False)
    train(tiny(data), tmp_path / "cut", stop_after=3, show_progress=False)
    assert read_checkpoint(tmp_path / "cut")[1] == 3
    train(tiny(data), tmp_path / "cut", show_progress=False)  # resumes at step 3
    a, b = load_model(tmp_path / "full")[0].state_dict(), load_model(tmp_path / "cut")[0].state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    # and training changed the weights at all
    torch.manual_seed(0)
    from geoprobe.jepa.model import JEPA
    init = JEPA(load_model(tmp_path / "full")[0].cfg).state_dict()
    assert not torch.equal(init["encoder.fc.weight"], a["encoder.fc.weight"])
    # the log has one line per logged step, no repeats from the interrupted run
    steps = [int(line.split('"step": ')[1].split(",")[0])
             for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))


def test_resume_refuses_a_different_config(data, tmp_path):
    train(tiny(data), tmp_path / "r", stop_after=2, show_progress=False)
    with pytest.raises(GeoprobeError, match="lam"):
        train(tiny(data, lam=0.5), tmp_path / "r", show_progress=False)


def test_lambda_zero_skips_sigreg(data):
    from geoprobe.jepa.model import JEPA
    cfg = tiny(data, lam=0.0)
    cfg.image_size = 16
    frames = torch.from_numpy(np.array(open_dataset(data)["frames"][:2, :3]))
    losses = JEPA(cfg).losses(frames, torch.zeros(2, 3, 2))
    assert float(losses["sigreg"]) == 0.0
    assert float(losses["loss"].detach()) == float(losses["pred"].detach())


def test_export_round_trips(data, tmp_path):
    ckpt = train(tiny(data), tmp_path / "run", show_progress=False)
    emb = export(ckpt, tmp_path / "emb", show_progress=False)
    ds = open_dataset(data)
    assert emb.n_items == 36 and emb.dim == 8
    again = EmbeddingSet.open(tmp_path / "emb")
    ep, t = again.items["episode"], again.items["t"]
    np.testing.assert_allclose(again.items["x"], ds["states"][ep, t, 0])
    np.testing.assert_allclose(again.items["action_y"], ds["actions"][ep, t, 1])
    assert set(again.items["split"][ep >= 4]) == {"val"} and set(again.items["split"][ep < 4]) == {"train"}
    z = load_world_model(ckpt).encode(np.asarray(ds["frames"]).reshape(-1, 16, 16, 3))
    np.testing.assert_allclose(again.layer("z"), z, rtol=1e-5, atol=1e-5)
    twin = resolve_source(again, twin="auto").twin
    assert twin is not None and twin.n_items == 36
    assert not np.allclose(twin.layer("z"), again.layer("z"))
    assert again.provenance["checkpoint"] == str(ckpt.resolve())


def test_cli_generate_train_export(tmp_path, capsys):
    assert main(["jepa", "generate", str(tmp_path / "d"), "--episodes", "4", "--steps", "5",
                 "--size", "16"]) == 0
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("\n".join(f"{k} = {list(v) if isinstance(v, tuple) else v}"
                             for k, v in {**TINY, "val_episodes": 1}.items()) + "\n")
    assert main(["jepa", "train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
                 "--config", str(cfg), "--steps", "3", "--lam", "0.2"]) == 0
    assert read_checkpoint(tmp_path / "r")[0].lam == 0.2
    assert main(["jepa", "export", str(tmp_path / "r"), str(tmp_path / "e"), "--no-twin"]) == 0
    assert EmbeddingSet.open(tmp_path / "e").n_items == 20
    # bad input: one line, exit code 2
    assert main(["jepa", "train", "--out", str(tmp_path / "x")]) == 2
    assert main(["jepa", "export", str(tmp_path / "nothing"), str(tmp_path / "e2")]) == 2
    assert "no such checkpoint" in capsys.readouterr().out


def test_pipeline_end_to_end(tmp_path):
    from geoprobe.jepa.pipeline import load_summary, run_pipeline

    model = {k: (list(v) if isinstance(v, tuple) else v) for k, v in TINY.items()}
    small = {"decodability": {"n_boot": 50}, "spectrum": {"n_boot": 20},
             "straightness": {"n_boot": 50}, "voe": {"n_episodes": 8, "steps": 6, "event_t": 3,
                                                     "n_boot": 50},
             "planning": {"n_pairs": 4, "goal_steps": 3, "budget": 3, "n_samples": 8,
                          "n_elites": 2, "n_iters": 1, "n_boot": 50}}
    report = run_pipeline(tmp_path, lam=0.1, train_steps=4, mlp=False, show_progress=False,
                          n_episodes=8, steps=16, size=16, dim=8, model=model,
                          probe_params=small, formats=("png",))
    text = report.read_text()
    assert "What does this latent encode?" in text and "pearson_r" in text
    row = load_summary(report.parent)
    assert {"rankme", "collapsed", "planning_success", "random_success",
            "voe_ratio[teleport]"} <= set(row)
    assert (report.parent / "voe.png").exists()


def test_save_every_snapshots_export_and_sweep_over_them(data, tmp_path):
    from geoprobe.sweep import run_sweep

    train(tiny(data), tmp_path / "run", save_every=3, show_progress=False)
    snaps = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert snaps == ["step_000000.safetensors", "step_000003.safetensors",
                     "step_000006.safetensors"]
    final, _ = load_model(tmp_path / "run")
    last, step = load_model(tmp_path / "run" / "checkpoints" / snaps[-1])
    assert step == 6 and all(torch.equal(a, b) for a, b in
                             zip(final.state_dict().values(), last.state_dict().values()))
    first, _ = load_model(tmp_path / "run" / "checkpoints" / snaps[0])
    assert not all(torch.equal(a, b) for a, b in
                   zip(final.state_dict().values(), first.state_dict().values()))
    assert main(["jepa", "export", str(tmp_path / "run"), str(tmp_path / "lat"), "--all"]) == 0
    (tmp_path / "s.toml").write_text("""
[sources.latents]
path = "none"
[[probes]]
id = "spectrum"
probe = "covariance-spectrum"
params = { group = "episode", n_boot = 10 }
[[trends]]
probe = "spectrum"
metric = "rankme"
layer = "z"
op = ">"
value = 0
""")
    doc = run_sweep(str(tmp_path / "s.toml"), tmp_path / "sweep", serial=True,
                    embeddings=[str(tmp_path / "lat" / "step_*.gpemb")], show_progress=False)
    assert [v["step"] for v in doc["variants"]] == [0, 3, 6]
    assert doc["checks"][0]["passed"] and "3 checkpoint(s)" in doc["checks"][0]["message"]
    assert "dynamics-spectrum-rankme.png" in doc["files"]["figures"]
    with pytest.raises(GeoprobeError, match="save_every"):
        train(tiny(data), tmp_path / "bad", save_every=0, show_progress=False)


def test_colour_mode_flows_from_the_command_line_to_checkpoint_and_export(tmp_path):
    assert main(["jepa", "generate", str(tmp_path / "d"), "--episodes", "6", "--steps", "6",
                 "--size", "16", "--colours", "random-episode"]) == 0
    assert open_dataset(tmp_path / "d")["meta"]["colours"] == "random-episode"
    train(tiny(tmp_path / "d", steps=1), tmp_path / "r", show_progress=False)
    assert read_checkpoint(tmp_path / "r")[0].colours == "random-episode"
    emb = export(tmp_path / "r", tmp_path / "e", twin=False, show_progress=False)
    assert emb.provenance["config"]["colours"] == "random-episode"



def test_dataset_from_before_the_colour_option_trains_as_fixed(tmp_path):
    import json

    write_dataset(tmp_path / "old", "tworoom", n_episodes=4, steps=6, size=16, seed=0,
                  colours="random-episode")
    meta = tmp_path / "old" / "meta.json"
    old = {k: v for k, v in json.loads(meta.read_text()).items() if k != "colours"}
    meta.write_text(json.dumps(old))
    train(tiny(tmp_path / "old", steps=1, colours="random-episode"), tmp_path / "r",
          show_progress=False)
    # the dataset, not the caller, decides: without a record, the object was red
    assert read_checkpoint(tmp_path / "r")[0].colours == "fixed"


def test_pipeline_keeps_colour_modes_in_separate_folders(tmp_path):
    from geoprobe.jepa.pipeline import colour_tag, world_model_latents

    model = {k: (list(v) if isinstance(v, tuple) else v) for k, v in TINY.items()}
    kw = dict(n_episodes=4, steps=6, size=16, dim=8, train_steps=1, model=model,
              workdir=tmp_path, show_progress=False)
    fixed = world_model_latents(**kw)
    varied = world_model_latents(colours="random-episode", **kw)
    assert fixed.provenance["config"]["colours"] == "fixed"
    assert varied.provenance["config"]["colours"] == "random-episode"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("data-")) == [
        "data-tworoom-4x6-16px-s0", "data-tworoom-4x6-16px-s0-random-episode"]
    assert colour_tag("fixed") == "" and colour_tag("random-frame") == "-random-frame"
    with pytest.raises(GeoprobeError, match="unknown colour mode"):
        world_model_latents(colours="../x", **kw)
