"""Every registered model passes the shared RecommenderContract."""

from typing import Any, ClassVar

from recsmith.testing.recommender import RecommenderContract


class TestPopular(RecommenderContract):
    model_name = "popular"
    personalised = False


class TestTrending(RecommenderContract):
    model_name = "trending"
    personalised = False


class TestItemKNN(RecommenderContract):
    model_name = "itemknn"
    params: ClassVar[dict[str, Any]] = {"neighbors": 20}


class TestRP3Beta(RecommenderContract):
    model_name = "rp3beta"
    params: ClassVar[dict[str, Any]] = {"neighbors": 20}


class TestImplicitALS(RecommenderContract):
    model_name = "ials"
    # the checkerboard has rank 2
    params: ClassVar[dict[str, Any]] = {"factors": 2, "iterations": 15}


class TestUserKNN(RecommenderContract):
    model_name = "userknn"
    params: ClassVar[dict[str, Any]] = {"neighbors": 10}


class TestBPR(RecommenderContract):
    model_name = "bpr"
    # one thread: implicit's multi-threaded SGD is not reproducible run to run
    params: ClassVar[dict[str, Any]] = {
        "factors": 2,
        "iterations": 300,
        "learning_rate": 0.1,
        "num_threads": 1,
    }


class TestEASE(RecommenderContract):
    model_name = "ease"
    params: ClassVar[dict[str, Any]] = {"regularization": 10.0}


class TestContent(RecommenderContract):
    model_name = "content"


class TestCooccurrence(RecommenderContract):
    model_name = "cooccurrence"
    params: ClassVar[dict[str, Any]] = {"min_support": 1}


class TestSessionKNN(RecommenderContract):
    model_name = "sknn"
    params: ClassVar[dict[str, Any]] = {"neighbors": 10}


class TestHybrid(RecommenderContract):
    model_name = "hybrid"
    params: ClassVar[dict[str, Any]] = {
        "components": {"itemknn": {"neighbors": 20}, "content": {}, "popular": {}},
    }
