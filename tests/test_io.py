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
    model.fit(X, y, epochs=3, batch_size=16, verbose=0)
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
    model.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    loaded.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
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
    model.fit(X, y, epochs=1, verbose=0)
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
    with pytest.raises(fastbp.ModelFileError, match=r"expected params of shape \(67,\) and "
                                                    r"dtype float32 .* found shape \(66,\)"):
        fastbp.load(write("short.npz", params=entries["params"][:-1]))
    with pytest.raises(fastbp.ModelFileError, match="optimizer state"):
        fastbp.load(write("state.npz", optimizer_state=np.ones((2, 3), np.float32)))
    broken = json.loads(json.dumps(meta))
    broken["config"]["layers"][0]["activation"] = "swish"
    with pytest.raises(fastbp.ModelFileError, match="Unknown activation 'swish'"):
        fastbp.load(write("layer.npz", meta=np.array(json.dumps(broken))))
    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "missing.npz")


# --- crafted and damaged files: nothing but ModelFileError, and bounded memory -------------

def saved_entries(model, tmp_path):
    path = tmp_path / "good.npz"
    model.save(path)
    with np.load(path) as archive:
        entries = dict(archive)
    return entries, json.loads(str(entries["meta"]))


def write_entries(path, entries, meta=None, deflate=()):
    """A model file from entries (``meta`` replaced when given); entries named in
    ``deflate`` are compressed."""
    import zipfile
    if meta is not None:
        entries = {**entries, "meta": np.array(json.dumps(meta))}
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in entries.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            archive.writestr(name + ".npy", buffer.getvalue(),
                             zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED)
    return path


def load_peak(path):
    """Load ``path`` and return (the exception raised or None, peak traced bytes)."""
    import tracemalloc
    tracemalloc.start()
    try:
        fastbp.load(path)
        error = None
    except Exception as err:  # noqa: BLE001  (the test looks at its type)
        error = err
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, peak


def edited(meta, change):
    meta = json.loads(json.dumps(meta))
    change(meta)
    return meta


@pytest.mark.parametrize("units", [2 * 10 ** 7, 3 * 10 ** 8, 10 ** 12, 10 ** 30])
def test_a_huge_declared_layer_is_rejected_before_anything_is_allocated(trained, tmp_path,
                                                                        units):
    model, _, _ = trained
    entries, meta = saved_entries(model, tmp_path)
    meta = edited(meta, lambda m: m["config"]["layers"][0].update(units=units))
    error, peak = load_peak(write_entries(tmp_path / "huge.npz", entries, meta))
    assert isinstance(error, fastbp.ModelFileError), error
    assert peak < 8 * 2 ** 20  # bytes: nothing near the declared size


@pytest.mark.parametrize("change, message", [
    (lambda m: m["config"].update(layers="abc"), "list of layers"),
    (lambda m: m.update(n_features=10 ** 30), "n_features"),
    (lambda m: m.update(n_features=-3), "n_features"),
    (lambda m: m.update(lr_factor=-1.0), "lr_factor"),
    (lambda m: m.update(lr_factor=float("nan")), "lr_factor"),
    (lambda m: m.update(optimizer_iterations=-1), "optimizer_iterations"),
    (lambda m: m.update(optimizer_epochs=2 ** 70), "optimizer_epochs"),
    (lambda m: m.update(dropout_seed="x"), "dropout_seed"),
    (lambda m: m.update(classes={"a": 1}), "classes"),
    (lambda m: m.update(rng_state=[1, 2]), "rng_state"),
    (lambda m: m.update(rng_state={"bit_generator": "MT19937"}), "rng_state|state"),
    (lambda m: m.pop("compile"), "compile"),
    (lambda m: m["config"]["layers"][0].update(units=2.5), "units"),
    (lambda m: m["config"]["layers"][0].update(class_name="Conv2D"), "Conv2D"),
])
def test_every_metadata_field_is_checked(trained, tmp_path, change, message):
    model, _, _ = trained
    entries, meta = saved_entries(model, tmp_path)
    path = write_entries(tmp_path / "bad.npz", entries, edited(meta, change))
    with pytest.raises(fastbp.ModelFileError, match=message):
        fastbp.load(path)


def test_deeply_nested_metadata_is_rejected(trained, tmp_path):
    model, _, _ = trained
    entries, _ = saved_entries(model, tmp_path)
    deep = np.array('{"format": "fastbp-model", "version": 1, "config": ' + "[" * 100_000 +
                    "]" * 100_000 + "}")
    with pytest.raises(fastbp.ModelFileError, match="not valid JSON"):
        fastbp.load(write_entries(tmp_path / "deep.npz", {**entries, "meta": deep}))


def test_compressed_entries_are_refused_without_inflating_them(trained, tmp_path):
    """A 1 MB deflated entry that would inflate to 1 GiB is refused from the zip's directory."""
    model, _, _ = trained
    entries, meta = saved_entries(model, tmp_path)
    bomb = np.zeros(2 ** 28, np.float32)
    path = write_entries(tmp_path / "bomb.npz", {**entries, "params": bomb}, deflate=("params",))
    assert path.stat().st_size < 4 * 2 ** 20
    del bomb
    error, peak = load_peak(path)
    assert isinstance(error, fastbp.ModelFileError) and "compressed" in str(error)
    assert peak < 8 * 2 ** 20


@pytest.mark.parametrize("what", ["nan_params", "inf_params", "negative_variance",
                                  "nan_state", "negative_second_moment"])
def test_damaged_numbers_are_rejected(tmp_path, what, rng):
    X = rng.standard_normal((64, 4)).astype(np.float32)
    model = fastbp.Sequential([fastbp.Dense(6, activation="relu"), fastbp.BatchNormalization(),
                               fastbp.Dense(2, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(X, (X[:, 0] > 0).astype(int), epochs=1, batch_size=16, verbose=0)
    entries, meta = saved_entries(model, tmp_path)
    params, aux = entries["params"].copy(), entries["aux"].copy()
    state = entries["optimizer_state"].copy()
    if what == "nan_params":
        params[3] = np.nan
    elif what == "inf_params":
        params[-1] = np.inf
    elif what == "negative_variance":
        aux[-1] = -0.5  # the moving variance of the batch norm's last unit
    elif what == "nan_state":
        state[0, 5] = np.nan
    else:
        state[1, 5] = -1e-3  # Adam's v
    path = write_entries(tmp_path / "bad.npz", {**entries, "params": params, "aux": aux,
                                                "optimizer_state": state})
    with pytest.raises(fastbp.ModelFileError):
        fastbp.load(path)
    # the untouched file loads
    fastbp.load(write_entries(tmp_path / "good2.npz", entries))


def test_fuzzed_files_fail_only_with_model_file_error(trained, tmp_path):
    """Property: any byte flipped, any metadata field replaced by any JSON value: ``load``
    returns a model that predicts, or raises ``ModelFileError``; never another exception,
    never more memory than a few times the file."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st
    model, X, _ = trained
    entries, meta = saved_entries(model, tmp_path)
    good = write_entries(tmp_path / "base.npz", entries).read_bytes()
    paths = []

    def walk(node, prefix=()):
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, value in items:
            paths.append(prefix + (key,))
            walk(value, prefix + (key,))
    walk(meta)
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-2 ** 80, 2 ** 80) |
        st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4),
                                                                    inner, max_size=4),
        max_leaves=8)

    def check(path):
        error, peak = load_peak(path)
        assert error is None or isinstance(error, fastbp.ModelFileError), repr(error)
        assert peak < 16 * 2 ** 20
        if error is None:
            out = fastbp.load(path)
            if out.built and out.n_features == X.shape[1]:
                assert out.predict(X).shape == (len(X), out.layout.n_outputs)

    @hypothesis.settings(max_examples=60, deadline=None, database=None)
    @hypothesis.given(st.integers(0, len(good) - 1), st.integers(1, 255))
    def flip(position, xor):
        data = bytearray(good)
        data[position] ^= xor
        path = tmp_path / "flipped.npz"
        path.write_bytes(bytes(data))
        check(path)

    @hypothesis.settings(max_examples=120, deadline=None, database=None)
    @hypothesis.given(st.sampled_from(paths), json_values)
    def replace(where, value):
        changed = json.loads(json.dumps(meta))
        node = changed
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value
        try:
            text = json.dumps(changed)
        except ValueError:
            return
        check(write_entries(tmp_path / "replaced.npz", {**entries, "meta": np.array(text)}))

    flip()
    replace()
