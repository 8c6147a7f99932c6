"""Regression on scikit-learn's bundled diabetes data (442 patients, 10 features), next to
a linear model as the yardstick.

Run: python examples/regression.py
"""

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fastbp


def r2(y_true, y_pred):
    return 1 - np.sum((y_true - y_pred) ** 2) / np.sum((y_true - y_true.mean()) ** 2)


X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
y_mean, y_std = y_train.mean(), y_train.std()  # standardised targets train faster

# a small network with an L2 penalty: 331 training rows overfit a big one quickly
model = fastbp.Sequential([fastbp.Dense(8, activation="relu", l2=1e-2), fastbp.Dense(1)], seed=0)
model.compile(optimizer=fastbp.optimizers.Adam(learning_rate=1e-3), loss="mse", metrics=["mae"])
history = model.fit(X_train, (y_train - y_mean) / y_std, epochs=200, batch_size=32)

prediction = model.predict(X_test)[:, 0] * y_std + y_mean
linear = LinearRegression().fit(X_train, y_train).predict(X_test)
print(f"training loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}")
print(f"test MAE {np.abs(y_test - prediction).mean():.1f}, test R^2 {r2(y_test, prediction):.3f} "
      f"(linear regression: R^2 {r2(y_test, linear):.3f})")
