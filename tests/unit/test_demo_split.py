"""The demo's split of the synthetic catalogue into functions trained on and functions kept out."""

from __future__ import annotations

import json

from fcdist.data.synth import generate_rows
from fcdist.demo import is_kept_out, split_by_function


def names(row: dict, column: str) -> set[str]:
    return {item["name"] for item in json.loads(row[column])}


def test_training_rows_never_name_a_kept_out_function_and_unseen_rows_call_only_those():
    rows = generate_rows(1500, seed=3)
    train, unseen = split_by_function(rows, 0.1)
    assert train and unseen
    assert not any(is_kept_out(name, 0.1) for row in train for name in names(row, "tools"))
    assert all(is_kept_out(name, 0.1) for row in unseen for name in names(row, "answers"))
    seen_in_training = {name for row in train for name in names(row, "tools")}
    assert not seen_in_training & {name for row in unseen for name in names(row, "answers")}
    assert len(train) + len(unseen) <= len(rows)


def test_the_kept_out_functions_are_fixed_by_name_and_fraction():
    rows = generate_rows(800, seed=4)
    assert split_by_function(rows, 0.1) == split_by_function(rows, 0.1)
    catalogue = {name for row in generate_rows(3000, seed=5) for name in names(row, "tools")}
    kept_out = [name for name in catalogue if is_kept_out(name, 0.1)]
    assert 0.04 <= len(kept_out) / len(catalogue) <= 0.18
    assert set(kept_out) <= {name for name in catalogue if is_kept_out(name, 0.2)}, "a larger fraction keeps out more"
    assert split_by_function(rows, 0.0) == (rows, [])
