"""The hand-written training loop of the Keras articles, with fastbp's names.

Each step: the model's outputs and the loss of a batch, the gradient of that loss for every
trainable variable (one compiled forward and backward pass), and one optimizer step with it
(the compiled update). Step through it to see backpropagation at work; it runs at compiled
speed. Run: python examples/custom_loop.py
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

import fastbp

digits = load_digits()
X = StandardScaler().fit_transform(digits.data).astype(np.float32)
y = digits.target
X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]

model = fastbp.Sequential([fastbp.Input(shape=(64,)),
                           fastbp.Dense(64, activation="relu"),
                           fastbp.Dense(10)], seed=0)          # logits: no softmax
loss_fn = fastbp.losses.SparseCategoricalCrossentropy(from_logits=True)
optimizer = fastbp.optimizers.Adam(learning_rate=1e-3)

rng = np.random.default_rng(0)
for epoch in range(10):
    order = rng.permutation(len(X_train))
    dataset = [(X_train[order[i:i + 32]], y_train[order[i:i + 32]])
               for i in range(0, len(order), 32)]
    losses = []
    for x, labels in dataset:
        predictions = model(x)                         # forward pass (inference mode)
        losses.append(loss_fn(labels, predictions))    # the batch's loss, as a float
        grads = model.gradients(x, labels, loss=loss_fn)  # dLoss/dW, dLoss/db per layer
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    accuracy = np.mean(model(X_test).argmax(axis=1) == y_test)
    print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}, test accuracy {accuracy:.3f}")

kernel = model.trainable_variables[0]
print(f"{kernel.path}: shape {kernel.shape}, {optimizer.iterations} steps taken")
