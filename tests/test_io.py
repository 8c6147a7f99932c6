"""Saving, loading and pickling models."""

import io
import json
import pickle

import numpy as np
import pytest

import fastbp
from fastbp import optimizers


@pytest.fixture
def trained(rng):
    X = rng.standard_normal((50, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    model = fastbp.Sequential([fastbp.Dense(8, activation="leaky_relu", alpha=0.2, l2=1e-3),
                               fastbp.Dense(3, activation="softmax")], seed=5, name="net")
    model.compile(optimizer=optimizers.AdamW(learning_rate=0.01, global_clipnorm=2.0),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=3, batch_size=16)
    return model, X, y


def test_save_load_round_trip_is_bit_exact(trained, tmp_path):
    model, X, y = trained
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastbp.load(path)
    np.testing.assert_array_equal(loaded.params, model.params)
    assert loaded.params.dtype == np.float32
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_config() == model.get_config()
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.metrics == model.metrics
    np.testing.assert_array_equal(loaded.optimizer.state, model.optimizer.state)
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_training_continues_identically_after_loading(trained, tmp_path):
    """Optimizer state and step count are saved: one more epoch on both gives the same
    weights when both see the same order of rows."""
    model, X, y = trained
    model.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    model.fit(X, y, epochs=1, batch_size=16, shuffle=False)
    loaded.fit(X, y, epochs=1, batch_size=16, shuffle=False)
    np.testing.assert_array_equal(loaded.params, model.params)


def test_file_is_plain_arrays_with_versioned_json(trained, tmp_path):
    model, _, _ = trained
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
    assert meta["format"] == "fastbp-model" and meta["version"] == 1
    assert meta["n_features"] == 4


def test_save_to_file_object_and_unbuilt_model(trained):
    model, X, _ = trained
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(fastbp.load(buffer).predict(X), model.predict(X))
    fresh = fastbp.Sequential([fastbp.Dense(2)], seed=1)
    buffer = io.BytesIO()
    fresh.save(buffer)
    buffer.seek(0)
    loaded = fastbp.load(buffer)
    assert not loaded.built and loaded.loss is None


def test_pickle_round_trip(trained):
    model, X, y = trained
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    clone.fit(X, y, epochs=1)
    model.fit(X, y, epochs=1)
    np.testing.assert_array_equal(clone.params, model.params)


def test_damaged_and_foreign_files_are_rejected(trained, tmp_path):
    model, _, _ = trained
    good = tmp_path / "good.npz"
    model.save(good)

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(fastbp.ModelFileError, match="not a readable fastbp model file"):
        fastbp.load(garbage)

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(fastbp.ModelFileError, match="not a readable fastbp model file"):
        fastbp.load(truncated)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(3))
    with pytest.raises(fastbp.ModelFileError, match=r"missing entries \['aux', 'meta', "
                                                    r"'optimizer_state', 'params'\]"):
        fastbp.load(foreign)

    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(fastbp.ModelFileError, match="single array"):
        fastbp.load(single)

    with np.load(good) as archive:
        entries = dict(archive)
    meta = json.loads(str(entries["meta"]))

    def write(name, **changes):
        path = tmp_path / name
        np.savez(path, **{**entries, **changes})
        return path

    with pytest.raises(fastbp.ModelFileError, match="not valid JSON"):
        fastbp.load(write("badjson.npz", meta=np.array("{oops")))
    with pytest.raises(fastbp.ModelFileError, match="expected format 'fastbp-model'"):
        fastbp.load(write("other.npz", meta=np.array(json.dumps({**meta, "format": "keras"}))))
    with pytest.raises(fastbp.ModelFileError, match="format version 99"):
        fastbp.load(write("future.npz", meta=np.array(json.dumps({**meta, "version": 99}))))
    with pytest.raises(fastbp.ModelFileError, match=r"expected 67 float32 parameters"):
        fastbp.load(write("short.npz", params=entries["params"][:-1]))
    with pytest.raises(fastbp.ModelFileError, match="optimizer state"):
        fastbp.load(write("state.npz", optimizer_state=np.ones((2, 3), np.float32)))
    broken = json.loads(json.dumps(meta))
    broken["config"]["layers"][0]["activation"] = "swish"
    with pytest.raises(fastbp.ModelFileError, match="Unknown activation 'swish'"):
        fastbp.load(write("layer.npz", meta=np.array(json.dumps(broken))))
    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "missing.npz")
