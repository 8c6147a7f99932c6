"""Handwritten digits (8x8 images bundled with scikit-learn): a 64-64 ReLU network.

Run: python examples/digits.py
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fastbp

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                    stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

model = fastbp.Sequential([
    fastbp.Dense(64, activation="relu", kernel_initializer="he_uniform"),
    fastbp.Dense(64, activation="relu", kernel_initializer="he_uniform"),
    fastbp.Dense(10, activation="softmax"),
], seed=0)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(X_train, y_train, epochs=20, batch_size=32, validation_data=(X_test, y_test),
          verbose=1)
loss, accuracy = model.evaluate(X_test, y_test, verbose=0)
print(f"test loss {loss:.4f}, test accuracy {accuracy:.4f}")
