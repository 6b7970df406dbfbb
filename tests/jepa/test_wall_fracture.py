"""The fracture test across TwoRoom's wall on a tiny export (held-out rows, rooms split at
x = 0.5, the export's random-init twin as baseline)."""

import numpy as np

TINY = dict(channels=[8, 8], patch=4, hidden=16, batch=8, history=2, n_directions=16,
            warmup=2, val_episodes=16)


def test_wall_fracture_reads_y_across_the_rooms_of_held_out_frames(tmp_path):
    from geoprobe.jepa.pipeline import wall_fracture, with_rooms, world_model_latents

    emb = world_model_latents(n_episodes=32, steps=16, size=16, dim=8, model=TINY,
                              train_steps=2, workdir=tmp_path, show_progress=False)
    rooms = with_rooms(emb).items["room"]
    assert set(rooms) == {"left", "right"}
    assert np.array_equal(rooms == "left", emb.items["x"] < 0.5)
    res = wall_fracture(emb, seed=0)
    # only the 16 held-out episodes are used, grouped by episode
    within = res.metric("within_score", layer="z")
    assert within.n == 16
    for name in ("transfer_ratio", "context_cosine"):
        assert res.find(name, layer="z") is not None
        assert res.find(name, layer="z", baseline="random-init") is not None
