"""``Run.to_json`` (core/runs.py): the record as ``dataclasses.asdict`` gives it, field
for field and in order, ``state`` as its value and ``lines`` added, with nested values
copied: changing the JSON changes no record (it is made without ``asdict``, which was a
tenth of a scheduled run's own work)."""

from __future__ import annotations

from dataclasses import asdict

from flask_realtime.core.runs import Run, RunState


def test_to_json_is_the_records_fields_with_nested_values_copied() -> None:
    run = Run(id="a", job="j", title="J", user="u", params={"x": [1, {"y": 2}]},
              state=RunState.RUNNING, result={"k": [1, 2]}, has_result=True,
              waiting_input={"prompt": "p", "secret": False},
              notifications={"webex": {"status": "sent"}}, artifacts=[{"name": "a.txt"}])
    expected = {**asdict(run), "state": "running", "lines": 3}
    full = run.to_json(lines=3, with_result=True)
    assert full == expected and list(full) == list(expected)
    del expected["result"]
    plain = run.to_json(lines=3)
    assert plain == expected and list(plain) == list(expected)
    full["params"]["x"][1]["y"] = 9
    full["result"]["k"].append(3)
    full["notifications"]["webex"]["status"] = "failed"
    full["artifacts"][0]["name"] = "b.txt"
    assert run.params == {"x": [1, {"y": 2}]} and run.result == {"k": [1, 2]}
    assert run.notifications == {"webex": {"status": "sent"}}
    assert run.artifacts == [{"name": "a.txt"}]
    assert Run.from_json(run.to_json(with_result=True)) == run
