"""Compile every kernel the Model API calls, by training a two-row model once."""

import numpy as np


def run():
    """Train, evaluate and predict with a tiny model on the compiled backend."""
    from .layers import Dense
    from .model import Sequential

    X = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    model = Sequential([Dense(2, activation="relu"), Dense(2, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, np.array([0, 1]), epochs=1, batch_size=2, validation_data=(X, np.array([0, 1])))
    model.predict(X)
