"""Shared by the digits model scripts: the seeded data split and the numpy training pieces.

Both scripts must keep writing the same bytes, so these consume the generator and round in
exactly the order the scripts did when they were written.
"""
import numpy as np


def stratified_split(labels, rng, test_share=0.2):
    """(train, test) indices: `test_share` of each class, drawn with `rng`, in ascending order."""
    test_idx = []
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        members = members[rng.permutation(len(members))]
        test_idx.extend(members[: int(round(test_share * len(members)))].tolist())
    test_idx = np.array(sorted(test_idx), dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Adam:
    """Adam (beta1 0.9, beta2 0.999, eps 1e-8) over a list of numpy parameters, updated in place."""

    def __init__(self, params, learning_rate):
        self.params, self.learning_rate = params, learning_rate
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.beta1, self.beta2, self.eps, self.step_count = 0.9, 0.999, 1e-8, 0

    def step(self, grads):
        self.step_count += 1
        for i, g in enumerate(grads):
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            m_hat = self.m[i] / (1 - self.beta1**self.step_count)
            v_hat = self.v[i] / (1 - self.beta2**self.step_count)
            self.params[i] = self.params[i] - self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)
