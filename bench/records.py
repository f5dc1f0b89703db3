"""The start records the adapters write (one line per job start: marker and time), and the
percentile the reports take of them. Standard library only, like bench/run.py."""

from __future__ import annotations

from pathlib import Path


class Records:
    """Reads a start-record file as it grows: the first start time seen for each marker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.first: dict[int, float] = {}
        self.duplicates = 0

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return len(self.first)
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            try:
                marker_text, when_text = line.split()
                marker, when = int(marker_text), float(when_text)
            except ValueError:
                continue
            if marker in self.first:
                self.duplicates += 1
            else:
                self.first[marker] = when
        return len(self.first)

    def count(self, markers: range | list[int]) -> int:
        return sum(1 for m in markers if m in self.first)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]
