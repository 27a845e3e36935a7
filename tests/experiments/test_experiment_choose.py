"""Which bundle a unit gets while a deploy and the experiment's re-binding are not yet in step.

A variant naming the deployed release shares the runtime's bundle. The reloader swaps that bundle
a moment before the experiments are re-bound; in that moment the variant must still serve the
release it named (CI once saw the new one served to the control group)."""

from __future__ import annotations

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.experiments.assignment import assign
from recsmith.experiments.choose import choose
from recsmith.experiments.live import LiveExperiment, LiveExperiments
from recsmith.experiments.spec import Experiment, Variant
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.testing.recommender import checkerboard_events

DATA = Interactions.from_events(checkerboard_events(60), EventSettings().weights)
OLD = ModelBundle.train(DATA, create("popular"))
NEW = ModelBundle.train(DATA, create("itemknn"))
TREATED = ModelBundle.train(DATA, create("itemknn", neighbors=5))
EXP = Experiment(
    name="pinned",
    variants=(Variant("control", OLD.version, 0.5), Variant("treatment", "elsewhere", 0.5)),
    salt="s",
)
#: bound while OLD was deployed: control shares it (None), treatment has its own bundle
LIVE = LiveExperiments((LiveExperiment(EXP, {"control": None, "treatment": TREATED}, OLD),))
USERS = [f"u{i}" for i in range(40)]
CONTROL = next(u for u in USERS if assign(u, EXP) == "control")
TREATMENT = next(u for u in USERS if assign(u, EXP) == "treatment")


def test_the_control_group_shares_the_deployed_bundle_while_it_is_the_one_named() -> None:
    up_to_date = OLD  # the catalogue sync may hand a newer object of the same version
    assert choose(LIVE, up_to_date, CONTROL, None).bundle is up_to_date
    assert choose(LIVE, up_to_date, TREATMENT, None).bundle is TREATED


def test_after_a_deploy_not_yet_rebound_the_control_group_keeps_the_release_it_named() -> None:
    assert NEW.version != OLD.version
    chosen = choose(LIVE, NEW, CONTROL, None)
    assert chosen.bundle is OLD
    assert (chosen.experiment, chosen.variant) == ("pinned", "control")
    assert choose(LIVE, NEW, TREATMENT, None).bundle is TREATED


def test_outside_any_experiment_the_deployed_release_serves() -> None:
    assert choose(None, NEW, CONTROL, None).bundle is NEW
    assert choose(LIVE, NEW, None, None).bundle is NEW
