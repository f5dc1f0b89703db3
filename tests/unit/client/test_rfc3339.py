"""The API's times (``wire.rfc3339``) read as ``datetime`` writes them: the same instant, to the
microsecond as ``datetime.fromtimestamp`` rounds it, whatever the second."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from jobhandler.client.wire import rfc3339

# 1970 to 2100 (run_at allows 1970-2099), and fractions that round up into the next second.
moments = st.one_of(
    st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),
    st.integers(min_value=0, max_value=4_102_444_800).map(lambda s: s + 0.9999996),
)


@given(moments)
@example(0.0)
@example(1_799_999_999.9999995)
@example(1_700_000_000.0000005)
def test_times_are_written_as_datetime_writes_them(ts: float) -> None:
    written = datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")
    assert rfc3339(ts) == written.removesuffix("+00:00") + "Z"
