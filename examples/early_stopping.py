"""Early stopping and dropout on a tabular problem (breast-cancer data bundled with
scikit-learn), with the training and validation curves saved as a PNG.

Run: python examples/early_stopping.py [output.png]
(The plot needs matplotlib: pip install "fastbp[plot]".)
"""

import sys

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fastbp
from fastbp.callbacks import EarlyStopping

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                    stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

model = fastbp.Sequential([
    fastbp.Dense(128, activation="relu"), fastbp.Dropout(0.4),
    fastbp.Dense(128, activation="relu"), fastbp.Dropout(0.4),
    fastbp.Dense(1, activation="sigmoid"),
], seed=0)
model.compile(optimizer=fastbp.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy",
              metrics=["accuracy"])
stop = EarlyStopping(monitor="val_loss", patience=15, restore_best_weights=True)
history = model.fit(X_train, y_train, epochs=500, batch_size=32, validation_split=0.2,
                    callbacks=[stop])

loss, accuracy = model.evaluate(X_test, y_test, verbose=0)
print(f"stopped after {len(history.epoch)} epochs; best epoch {stop.best_epoch + 1} "
      f"(val_loss {stop.best:.4f}); test accuracy {accuracy:.4f}")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install 'fastbp[plot]')")
    sys.exit(0)

path = sys.argv[1] if len(sys.argv) > 1 else "early_stopping.png"
fig, ax = plt.subplots(figsize=(7, 4))
epochs = [e + 1 for e in history.epoch]
ax.plot(epochs, history.history["loss"], label="training loss (dropout on)")
ax.plot(epochs, history.history["val_loss"], label="validation loss")
ax.axvline(stop.best_epoch + 1, color="gray", linestyle="--", label="best epoch (restored)")
ax.set_xlabel("epoch")
ax.set_ylabel("binary cross-entropy")
ax.set_title("fastbp: early stopping with dropout")
ax.legend()
fig.tight_layout()
fig.savefig(path, dpi=100)
print(f"curves saved to {path}")
