"""Applying selections: kept/rejected split, tags as column or prefix, cleaned text."""

import pyarrow as pa
import pytest

import curate
import filters as F
from curate.core.errors import CurateError

C4_DOC = ("This line is a proper sentence with enough words in it.\n"
          "Click here\n"
          "Another complete sentence follows the first one here.\n"
          "We use cookies to improve your experience on this site.\n"
          "The third sentence keeps the document above the minimum. A fourth one. And a fifth.\n")


@pytest.fixture
def data():
    return pa.table({"id": ["a", "b", "c"], "text": [C4_DOC, "short", "Also fine text."]})


def test_rejected_carry_reasons_and_everything_mode(data):
    selection = curate.select(curate.score(data, "exact_dup"), F.Where("id <> 'b'", "not b"))
    assert curate.apply(data, selection).column("id").to_pylist() == ["a", "c"]
    rejected = curate.apply(data, selection, rejected=True)
    assert rejected.to_pylist() == [{"id": "b", "text": "short", "reason": "not b"}]
    everything = curate.apply(data, selection, everything=True)
    assert everything.column("keep").to_pylist() == [True, False, True]


def test_tags_as_column_and_as_control_token(data):
    selection = curate.select(curate.score(data, "exact_dup"),
                              F.Tag([{"when": "id = 'a'", "tag": "hq"}]))
    assert curate.apply(data, selection, tag_as="column").column("tag").to_pylist() == [
        "hq", None, None]
    texts = curate.apply(data, selection, tag_as="prefix").column("text").to_pylist()
    assert texts[0] == "<|hq|> " + C4_DOC and texts[1] == "short"
    custom = curate.apply(data, selection, tag_as="prefix", tag_format="[{tag}]\n")
    assert custom.column("text")[0].as_py().startswith("[hq]\n")


def test_c4_cleaning_rewrites_only_kept_text(data):
    selection = curate.select(curate.score(data, "exact_dup"), F.Where("id <> 'b'"))
    cleaned = curate.apply(data, selection, transform=["c4_quality"])
    first = cleaned.column("text")[0].as_py()
    assert "Click here" not in first and "cookies" not in first
    assert first.startswith("This line is a proper sentence")
    assert curate.apply(data, selection, rejected=True, transform=["c4_quality"]).column(
        "text").to_pylist() == ["short"]


def test_bad_tag_mode(data):
    selection = curate.select(curate.score(data, "exact_dup"), F.Where("true"))
    with pytest.raises(CurateError, match="tag_as must be one of"):
        curate.apply(data, selection, tag_as="suffix")
