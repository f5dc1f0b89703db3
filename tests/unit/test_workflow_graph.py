"""The workflow page's drawing (http/dashboard/graph.py): columns by depth, a cap on a wide
column and on the number of columns, each line once."""

from __future__ import annotations

from jobhandler.http.dashboard import graph
from jobhandler.model.jobs import JobStatus
from jobhandler.model.workflows import WorkflowJob


def job(key: str, *after: str, status: JobStatus = JobStatus.WAITING) -> WorkflowJob:
    return WorkflowJob(key, f"id-{key}", "t", status, tuple(after))


def keys(columns: list[list[WorkflowJob]]) -> list[list[str]]:
    return [[j.key for j in column] for column in columns]


def test_a_diamond_in_three_columns() -> None:
    diamond = [job("d", "b", "c"), job("a", status=JobStatus.QUEUED), job("b", "a"), job("c", "a")]
    assert keys(graph.layers(diamond)) == [["a"], ["b", "c"], ["d"]]
    drawing = graph.draw(diamond)
    boxes = {b.key: b for b in drawing.boxes}
    assert boxes["a"].x < boxes["b"].x == boxes["c"].x < boxes["d"].x
    assert boxes["b"].y < boxes["a"].y == boxes["d"].y < boxes["c"].y  # a and d centred
    assert boxes["a"].status == "queued" and boxes["a"].job_id == "id-a"
    assert len(drawing.lines) == 4 and drawing.layers == 3 and drawing.undrawn == 0
    assert all(b.x >= 0 and b.x + graph.BOX_WIDTH <= drawing.width for b in drawing.boxes)
    assert all(b.y >= 0 and b.y + graph.BOX_HEIGHT <= drawing.height for b in drawing.boxes)


def test_a_job_goes_after_its_deepest_parent() -> None:
    jobs = [job("a"), job("b", "a"), job("c", "b"), job("late", "a", "c")]
    assert keys(graph.layers(jobs)) == [["a"], ["b"], ["c"], ["late"]]


def test_a_wide_fan_out_draws_the_first_of_a_column_and_one_box_for_the_rest() -> None:
    parts = [job(f"p{i}", "split", status=JobStatus.COMPLETED) for i in range(10_000)]
    jobs = [job("split"), *parts, job("merge", *(p.key for p in parts))]
    drawing = graph.draw(jobs, per_layer=50)
    more = [b for b in drawing.boxes if b.job_id is None]
    assert len(drawing.boxes) == 1 + 50 + 1 + 1
    assert [(b.hidden, b.label, b.summary) for b in more] == [
        (9_950, "+ 9,950 more", "9,950 completed")
    ]
    assert drawing.undrawn == 9_950
    # split -> each drawn part and the "more" box; each of those -> merge: once each.
    assert len(drawing.lines) == 51 * 2


def test_a_long_chain_draws_a_bounded_number_of_columns() -> None:
    chain = [job("0")] + [job(str(i), str(i - 1)) for i in range(1, 20_000)]
    drawing = graph.draw(chain, max_layers=40)
    assert drawing.layers == 20_000 and len(drawing.boxes) == 40
    assert drawing.undrawn == 20_000 - 40 and len(drawing.lines) == 39


def test_a_long_key_is_shortened_on_its_box() -> None:
    (box,) = graph.draw([job("x" * 200)]).boxes
    assert len(box.label) == graph.LABEL_CHARS and box.label.endswith("…")
    assert box.key == "x" * 200


def test_a_column_is_in_the_natural_order_of_its_keys() -> None:
    jobs = [job("root"), *(job(f"part-{i}", "root") for i in (10, 2, 1, 33))]
    assert keys(graph.layers(jobs)) == [["root"], ["part-1", "part-2", "part-10", "part-33"]]
