"""Assignment by salted hash: sticky across processes, true to the weights, and independent
between experiments."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from recsmith.errors import ValidationError
from recsmith.experiments.assignment import assign, assign_many
from recsmith.experiments.spec import Experiment, Variant, check_name, parse_variant

UNITS = [f"u{i}" for i in range(100_000)]


def _exp(name: str, salt: str, weights: tuple[float, ...] = (1, 1)) -> Experiment:
    names = ["control", "treatment", "third"][: len(weights)]
    return Experiment(
        name, tuple(Variant(n, n, w) for n, w in zip(names, weights, strict=True)), salt
    )


def test_the_same_unit_gets_the_same_variant_in_another_process() -> None:
    exp = _exp("checkout", "salt-1", (3, 1))
    here = [assign(u, exp) for u in UNITS[:2000]]
    code = (
        "import json,sys\n"
        "from recsmith.experiments.assignment import assign\n"
        "from recsmith.experiments.spec import Experiment\n"
        "exp = Experiment.from_json(json.loads(sys.argv[1]))\n"
        "print(json.dumps([assign(f'u{i}', exp) for i in range(2000)]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different str hash: must not matter
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(exp.to_json())],
        capture_output=True,
        check=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert json.loads(out.stdout) == here
    assert list(assign_many(UNITS[:2000], exp)) == here


@pytest.mark.parametrize("weights", [(1, 1), (90, 10), (2, 1, 1)])
def test_weights_are_honoured_within_a_binomial_interval(weights: tuple[float, ...]) -> None:
    exp = _exp("w", "salt-w", weights)
    counts = pd.Series(assign_many(UNITS, exp)).value_counts()
    n = len(UNITS)
    for v in exp.variants:
        p = v.weight / sum(weights)
        half = 3.29 * math.sqrt(n * p * (1 - p))  # 99.9 % binomial interval
        assert abs(counts.get(v.name, 0) - n * p) < half, (v.name, counts.to_dict())


def test_two_experiments_assign_independently() -> None:
    a = assign_many(UNITS, _exp("a", "salt-a"))
    b = assign_many(UNITS, _exp("b", "salt-b", (1, 3)))
    table = pd.crosstab(a, b).to_numpy()
    assert chi2_contingency(table).pvalue > 0.001
    # the test can see dependence: one experiment against itself is perfectly dependent
    same = pd.crosstab(a, assign_many(UNITS, _exp("a2", "salt-a"))).to_numpy()
    assert chi2_contingency(same).pvalue < 1e-12


def test_parse_variant_reads_weights_and_keeps_colons_in_paths() -> None:
    assert parse_variant("treatment=models/new:10") == ("treatment", "models/new", 10.0)
    assert parse_variant("control=v-2024:abc") == ("control", "v-2024:abc", None)
    with pytest.raises(ValidationError, match="--variant"):
        parse_variant("treatment")


def test_bad_experiments_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="control and a treatment"):
        Experiment("x", (Variant("control", "a", 1),), "s")
    with pytest.raises(ValidationError, match="weight"):
        Experiment("x", (Variant("control", "a", 1), Variant("t", "b", 0)), "s")
    with pytest.raises(ValidationError, match="repeat"):
        Experiment("x", (Variant("c", "a", 1), Variant("c", "b", 1)), "s")
    with pytest.raises(ValidationError, match="name"):
        Experiment("../x", (Variant("c", "a", 1), Variant("t", "b", 1)), "s")
    assert np.isclose(sum(_exp("x", "s", (90, 10)).weights.values()), 1.0)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("home", True),
        ("email.v2", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("home\n", False),  # re's "$" matches before a final newline: the whole name must match
        (".home", False),
        ("a b", False),
    ],
)
def test_an_experiment_or_placement_name_is_1_to_64_characters_starting_alphanumeric(
    name: str, valid: bool
) -> None:
    if valid:
        assert check_name(name, "--placement") == name
    else:
        with pytest.raises(ValidationError) as error:
            check_name(name, "--placement")
        assert error.value.field == "--placement"
