"""The fast path of payload checks (validation.plain_json, Task._is_plain) only ever says yes
where the full checks say yes, and gives the value the full path gives."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobhandler import App
from jobhandler.model.errors import InvalidPayload
from jobhandler.model.validation import JsonLimits, compact_json, json_errors, plain_json

LIMITS = JsonLimits(max_depth=8, max_bytes=300)

# Scalars that break a rule sit among good ones: NaN, infinities, NUL, lone surrogates.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.sampled_from(
        ["\x00", "a\ud800b", "\udfff", "\x01\x1f", '"\\'],
    ),
)
keys = st.one_of(st.text(max_size=5), st.integers(), st.sampled_from(["\x00", "\ud800"]))
# Text within the rules: no NUL, no lone surrogate.
good_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=4)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(keys, inner, max_size=5),
        st.tuples(inner),
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_plain_json_says_yes_only_where_the_full_checks_do(value: Any) -> None:
    if plain_json(value, LIMITS):
        assert json_errors(value, ["payload"], LIMITS) == []


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), good_text),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(good_text, inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_plain_json_takes_small_plain_values(value: Any) -> None:
    assert plain_json(value, JsonLimits()) is True


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        "nul \x00",
        "\ud800",
        {1: "non-text key"},
        {"k\x00": 1},
        (1, 2),
        b"bytes",
        pytest.param(10**5000, id="an-int-too-long-to-print"),
        [[[[[[[[[1]]]]]]]]],  # deeper than LIMITS allows
    ],
)
def test_plain_json_leaves_every_refusal_to_the_full_checks(value: Any) -> None:
    assert plain_json(value, LIMITS) is False


@pytest.mark.parametrize("text", ["x" * 148, "é" * 149, "\x01" * 50, '"' * 149])
def test_the_size_limit_is_exact_near_it(text: str) -> None:
    size = len(compact_json(text).encode("utf-8"))
    assert plain_json(text, LIMITS) is (size <= LIMITS.max_bytes)
    assert (json_errors(text, ["payload"], LIMITS) == []) is (size <= LIMITS.max_bytes)


app = App()


@app.task
async def counts(n: int) -> None: ...


@app.task
async def anything(payload: Any) -> None: ...


@app.task
async def mapping(payload: dict[str, Any]) -> None: ...


@app.task
async def ratio(x: float) -> None: ...


@pytest.mark.parametrize(
    ("task", "value", "stored"),
    [
        (counts, 5, 5),
        (counts, 3.0, 3),  # an integral float, read by the full path
        (ratio, 2, 2.0),  # an int for a float: the full path makes it one
        (anything, {"b": [1, "x"], "a": None}, {"b": [1, "x"], "a": None}),
        (anything, (1, 2), [1, 2]),  # a tuple becomes the list JSON has
        (mapping, {"k": 1.5}, {"k": 1.5}),
    ],
)
def test_fast_and_full_paths_store_the_same_value(task: Any, value: Any, stored: Any) -> None:
    dumped = task.dump_payload(value)
    assert dumped == stored and type(dumped) is type(stored)
    assert compact_json(dumped) == compact_json(stored)


@pytest.mark.parametrize(
    ("task", "value", "kind"),
    [
        (counts, True, "int_type"),  # JSON's true is no number
        (counts, "5", "int_type"),
        (anything, {"a": math.nan}, "finite_number"),
        (anything, {"a": "\x00"}, "nul_character"),
        (mapping, [1], "dict_type"),
    ],
)
def test_refusals_still_come_from_the_full_checks(task: Any, value: Any, kind: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        task.dump_payload(value)
    assert caught.value.errors[0]["type"] == kind
