"""XOR: the classic 2-2-1 network that a single layer cannot learn.

Run: python examples/xor.py
"""

import numpy as np

import fastbp

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y = np.array([0, 1, 1, 0], dtype=np.float32)

model = fastbp.Sequential([fastbp.Dense(2, activation="tanh"),
                           fastbp.Dense(1, activation="sigmoid")], seed=1)
model.compile(optimizer=fastbp.optimizers.SGD(learning_rate=0.5, momentum=0.9),
              loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=500, batch_size=4)

p = model.predict(X)[:, 0]
for row, target, prob in zip(X, y, p):
    print(f"{row.astype(int)} -> {prob:.3f} (target {int(target)})")
print(f"loss {history.history['loss'][-1]:.4f}, accuracy {history.history['accuracy'][-1]:.2f}")
