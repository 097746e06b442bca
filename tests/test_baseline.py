import numpy as np
import pytest

from fastcnn.baseline import KNN, knn_baseline


def test_knn_tiny_synthetic():
    # two clusters in 2-D: class 0 near (0,0), class 1 near (10,10); one outlier of class 1 at (1,0)
    xt = np.array([[0, 0], [0, 1], [1, 1], [10, 10], [9, 10], [10, 9], [1, 0]], np.float32)
    yt = np.array([0, 0, 0, 1, 1, 1, 1])
    q = np.array([[0.9, 0.1], [9.5, 9.5], [0.2, 0.8]], np.float32)
    assert KNN(1).fit(xt, yt).predict(q).tolist() == [1, 1, 0]  # nearest of the first query: the outlier
    assert KNN(3, batch_size=2).fit(xt, yt).predict(q).tolist() == [0, 1, 0]  # outvoted by three neighbours


def test_knn_ties_go_to_the_nearer_class():
    xt = np.array([[0.0], [3.0]], np.float32)
    yt = np.array([4, 7])
    assert KNN(2).fit(xt, yt).predict(np.array([[1.0], [2.5]], np.float32)).tolist() == [4, 7]


def test_knn_on_mnist_subset_and_errors():
    from fastcnn.data import load_mnist
    ds = load_mnist()
    r = knn_baseline(ds.x_train[:2000], ds.y_train[:2000], ds.x_test[:300], ds.y_test[:300], k=3)
    assert r["accuracy"] > 0.8 and r["seconds"] > 0 and r["predictions"].shape == (300,)
    with pytest.raises(ValueError, match="k must be"):
        KNN(0)
    with pytest.raises(ValueError, match="needs at least 5"):
        KNN(5).fit(np.zeros((3, 2)), np.zeros(3))
