"""The one range parser (failmodes.ranges): grammar, decimal steps, caps, NaN/inf refused."""
import time

import pytest

from failmodes.constants import MAX_RANGE_VALUES
from failmodes.errors import FailmodesError
from failmodes.ranges import RangeError, parse_values, split_sweep


@pytest.mark.parametrize("spec, expected", [
    ("0:1:0.1", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),  # decimal: 0.3 exact
    ("0:1:0.3", [0.0, 0.3, 0.6, 0.9]),           # stop off the grid: excluded
    ("90:-90:-90", [90.0, 0.0, -90.0]),          # counting down
    ("2:2:1", [2.0]),
    (" 1, 2.5 ,5", [1.0, 2.5, 5.0]),
    ("1,3:4:1", [1.0, 3.0, 4.0]),                 # items mix numbers and ranges
    ("1e-3", [0.001]),
    (3, [3.0]),
    ([1, 2.5], [1.0, 2.5]),
    ((0,), [0.0]),
])
def test_parses(spec, expected):
    assert parse_values(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("", "empty"),
    ("   ", "empty"),
    ([], "empty"),
    ("1,,2", "empty item"),
    ("0:1", "should be START:STOP:STEP"),
    ("0:1:2:3", "should be START:STOP:STEP"),
    ("a,b", "'a' is not a number"),
    ("0:10:0", "never reaches"),
    ("1:0:1", "never reaches"),
    ("0:10:-1", "never reaches"),
    ("nan:1:1", "'nan' is not a finite number"),
    ("0:inf:1", "'inf' is not a finite number"),
    ("-Infinity", "not a finite number"),
    ("1e400", "too large for a float"),
    ([1.0, float("nan")], "nan is not finite"),
    ([1, "2"], "'2' in"),
    ([True], "True in"),
    (True, "expected numbers"),
    ({"a": 1}, "expected a string or a list"),
    ("0:1e999999:1e-999999", "out of range"),
])
def test_refuses_with_one_line_naming_the_text(spec, message):
    with pytest.raises(RangeError, match=message) as e:
        parse_values(spec)
    assert isinstance(e.value, FailmodesError) and isinstance(e.value, ValueError)
    assert "\n" not in str(e.value)


def test_cap_is_checked_before_any_value_is_built():
    # issue 14: 10^15 values would fill memory; the count is known first, so this is instant.
    t = time.perf_counter()
    with pytest.raises(RangeError, match=f"at most {MAX_RANGE_VALUES}"):
        parse_values("0:1e12:1e-3")
    assert time.perf_counter() - t < 1.0
    assert len(parse_values(f"1:{MAX_RANGE_VALUES}:1")) == MAX_RANGE_VALUES
    with pytest.raises(RangeError, match="at most"):
        parse_values(f"0:{MAX_RANGE_VALUES}:1")  # one more
    with pytest.raises(RangeError, match="more than"):  # the cap counts every item together
        parse_values(f"1:{MAX_RANGE_VALUES}:1,0")
    with pytest.raises(RangeError, match="more than"):
        parse_values([0.0] * (MAX_RANGE_VALUES + 1))


def test_where_names_the_option_and_split_sweep():
    with pytest.raises(RangeError, match=r"^--severities '0:1': "):
        parse_values("0:1", where="--severities")
    assert split_sweep("rotation = -90:90:90") == ("rotation", [-90.0, 0.0, 90.0])
    for bad in ("rotation", "=1,2", "rotation="):
        with pytest.raises(RangeError):
            split_sweep(bad)
