"""The core layer: registries, parameter specs, validation helpers, ids, the cache."""

import importlib.metadata

import pyarrow as pa
import pytest

from curate.core import validate
from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.core.hashing import fingerprint
from curate.core.registry import SCORERS, Registry, build, make_scorer, parse_spec
from curate.core.tables import positions, unify_ids


def test_parse_spec_rejects_repeated_and_malformed_parameters():
    assert parse_spec("minhash:ngram=5,bands=16") == ("minhash", {"ngram": 5, "bands": 16})
    with pytest.raises(CurateError, match="parameter 'ngram' is given twice"):
        parse_spec("minhash:ngram=5,ngram=6")
    with pytest.raises(CurateError, match="expected key=value"):
        parse_spec("minhash:ngram")


def test_unknown_parameter_names_the_closest_one():
    with pytest.raises(CurateError, match=r"scorer 'minhash' has no parameter 'ngrm' "
                                          r"\(did you mean 'ngram'\?\)"):
        make_scorer("minhash:ngrm=5")
    with pytest.raises(CurateError, match=r"unknown scorer 'gopher_qualty' \(did you mean "
                                          r"'gopher_quality'\?\)"):
        build(SCORERS, "gopher_qualty")


def test_a_broken_entry_point_is_named_but_does_not_hide_the_others(monkeypatch):
    registry = Registry("widget", "curate.test-widgets")
    broken = importlib.metadata.EntryPoint("bad", "no_such_module_xyz", "curate.test-widgets")
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [broken] if group == "curate.test-widgets" else [])

    class Good:
        name = "good"

    registry.register(Good)
    assert registry.get("good") is Good
    with pytest.raises(CurateError, match="widget plugin 'bad' .* failed to load"):
        registry.get("missing")


def test_registering_another_object_under_a_taken_name_is_an_error():
    registry = Registry("widget", "curate.test-widgets-2")

    class A:
        name = "same"

    class B:
        name = "same"

    registry.register(A)
    registry.register(A)  # the same class again (a module imported twice) is fine
    with pytest.raises(CurateError, match="name 'same' is taken"):
        registry.register(B)


@pytest.mark.parametrize("helper, value, expected", [
    (lambda v: validate.positive_int("x", "n", v), "12", 12),
    (lambda v: validate.fraction("x", "f", v), "0.25", 0.25),
    (lambda v: validate.boolean("x", "b", v), "false", False),
    (lambda v: validate.string_list("x", "l", v), "a; b;c", ["a", "b", "c"]),
    (lambda v: validate.integer("x", "n", v, optional=True), None, None),
])
def test_validation_helpers_convert_text(helper, value, expected):
    assert helper(value) == expected


@pytest.mark.parametrize("helper, value, message", [
    (lambda v: validate.positive_int("gopher_quality", "min_doc_words", v), "abc",
     "gopher_quality: min_doc_words must be an integer >= 1, got 'abc'"),
    (lambda v: validate.non_negative_int("x", "n", v), -5, "x: n must be an integer >= 0"),
    (lambda v: validate.fraction("x", "f", v), 1.5, "x: f must be a number >= 0 <= 1"),
    (lambda v: validate.choice("x", "c", v, ("a", "b")), "z", "x: c must be one of 'a', 'b'"),
    (lambda v: validate.boolean("x", "b", v), 3, "x: b must be true or false"),
    (lambda v: validate.number("x", "v", v), float("nan"), "x: v must be a number"),
])
def test_validation_helpers_fail_with_one_line(helper, value, message):
    with pytest.raises(CurateError) as info:
        helper(value)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_ids_of_compatible_types_line_up_and_others_are_one_error():
    a = pa.array(["x", "y", "z"], pa.string())
    b = pa.array(["z", "x"], pa.large_string())
    assert positions(b, a).tolist() == [2, 0]
    assert positions(pa.array([3, 1], pa.int32()), pa.array([1, 2, 3], pa.int64())).tolist() \
        == [2, 0]
    with pytest.raises(CurateError, match="ids are int64 on one side and string"):
        unify_ids(pa.array([1]), pa.array(["1"]))
    with pytest.raises(CurateError, match="id 'w' is not in the data"):
        positions(pa.array(["w"]), a)


def test_cache_is_content_addressed_and_atomic(tmp_path):
    cache = Cache(tmp_path)
    key = fingerprint({"a": 1, "b": [1, 2]})
    assert key == fingerprint({"b": [1, 2], "a": 1}) and len(key) == 32
    assert cache.get_json(key) is None and cache.misses == 1
    cache.put_json(key, {"rows": 3})
    assert cache.get_json(key) == {"rows": 3} and cache.hits == 1
    table = pa.table({"id": [1, 2]})
    cache.put_table(key, table)
    assert cache.get_table(key).equals(table)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{key}.json", f"{key}.parquet"]
