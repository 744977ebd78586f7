"""The structure of a network (issue 15): comparisons, multi-arm trials, loops and components
of hand-built networks whose answers are read off their diagrams."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesreview.errors import DataError
from bayesreview.network import arms_of_shared_studies, network_structure


def _table(arms: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    study, treatment, n, events = zip(*arms, strict=True)
    return pd.DataFrame(
        {"study": study, "modality": treatment, "treatment": treatment, "n": n, "events": events}
    )


#: A-B-C in one three-arm trial, A-C, B-D, C-D: the loop A-B-D-C-A; D also single-arm.
LOOP = [
    ("s1", "A", 20, 5), ("s1", "B", 20, 8), ("s1", "C", 20, 9),
    ("s2", "A", 30, 6), ("s2", "C", 30, 12),
    ("s3", "B", 15, 5), ("s3", "D", 15, 7),
    ("s4", "C", 25, 10), ("s4", "D", 25, 12),
    ("s5", "D", 12, 6),
]  # fmt: skip


def test_comparisons_multi_arm_trials_and_the_loop():
    network = network_structure(_table(LOOP), reference="A")
    assert network.treatments == ("A", "B", "C", "D")
    pairs = network.comparisons.set_index(["treatment_a", "treatment_b"])
    assert pairs["studies"].to_dict() == {
        ("A", "B"): 1, ("A", "C"): 2, ("B", "C"): 1, ("B", "D"): 1, ("C", "D"): 1,
    }  # fmt: skip
    assert pairs.loc[("A", "C"), "patients"] == 40 + 60  # s1's two arms and s2's
    assert network.multi_arm == ("s1",) and network.single_arm == ("s5",)
    assert network.connected and network.has_loop
    assert "close a loop" in network.describe()


def test_a_three_arm_trial_alone_closes_no_loop():
    """A-B-C in one trial plus C-D: the triangle inside s1 is consistent by design."""
    tree = [arm for arm in LOOP if arm[0] != "s3"]
    network = network_structure(_table(tree), reference="A")
    assert len(network.comparisons) == 4  # A-B, A-C, B-C (all from s1 and s2), C-D
    assert not network.has_loop
    assert "no inconsistency check" in network.describe()


def test_default_reference_is_the_treatment_with_most_arms():
    # arms: A 2, B 2, C 3, D 3; C appears before D
    assert network_structure(_table(LOOP)).reference == "C"


def test_parts_joined_only_by_exchangeable_baselines_are_named():
    arms = [*LOOP, ("s6", "E", 10, 4), ("s7", "F", 10, 3), ("s7", "G", 10, 6)]
    network = network_structure(_table(arms), reference="A")
    assert network.components == (("A", "B", "C", "D"), ("E",), ("F", "G"))
    assert not network.connected
    assert network.reached_by_single_arm_studies_only == ("E", "F", "G")
    assert "do not connect 'E', 'F', 'G' to the reference" in network.describe()
    assert "exchangeable" in network.describe()


def test_bad_networks_name_the_rows():
    table = _table(LOOP)
    with pytest.raises(DataError, match=r"reference='Z': not a treatment .* 'A', 'B', 'C', 'D'"):
        network_structure(table, reference="Z")
    twice = table.assign(treatment=table["treatment"].where(table.index != 1, "A"))
    with pytest.raises(DataError, match=r"rows 1, 2: study 's1' has 2 arms of treatment 'A'"):
        network_structure(twice, by="treatment")
    empty = table.assign(treatment=table["treatment"].where(table.index != 3, None))
    with pytest.raises(DataError, match=r"row 4 \(study 's2'\): column 'treatment' is empty"):
        network_structure(empty, by="treatment")


def test_rows_sharing_a_study_across_modalities_are_found():
    shared = arms_of_shared_studies(_table(LOOP))
    assert shared["study"].tolist() == ["s1", "s2", "s3", "s4"]
    assert shared.set_index("study").loc["s1", "treatments"] == ("A", "B", "C")
    single = _table([("a", "X", 3, 1), ("b", "Y", 4, 2)])
    assert arms_of_shared_studies(single).empty
