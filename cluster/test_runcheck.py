"""pytest: cluster/runcheck.py judges runs by their events and --json lines."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import runcheck  # noqa: E402


def write_events(tmp_path, evs):
    with open(tmp_path / "events.jsonl", "w", encoding="utf-8") as f:
        for e in evs:
            f.write(json.dumps(dict(e, time=0)) + "\n")
    return str(tmp_path)


REFORMED = [{"event": "formed", "step": 0, "workers": 3},
            {"event": "lost", "step": 7, "ranks": [2], "reason": "rank 2 lost"},
            {"event": "formed", "step": 5, "workers": 2, "from": "runs/r/checkpoints/step_00000005.rgan"},
            {"event": "ended", "step": 40, "ending": "completed"}]


def test_formations_of_a_reformed_run(tmp_path, capsys):
    run = write_events(tmp_path, REFORMED)
    assert runcheck.main(["formations", run]) == 0
    assert capsys.readouterr().out.split() == ["2", "2", "5", "runs/r/checkpoints/step_00000005.rgan"]


def test_a_run_without_events_has_no_formation(tmp_path, capsys):
    assert runcheck.main(["formations", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == ["0", "0", "0", "-"]


def test_expect_passes_and_names_what_the_run_did(tmp_path, capsys):
    run = write_events(tmp_path, REFORMED)
    assert runcheck.main(["expect", run, "--formations", "2", "--last-workers", "2", "--resumed",
                          "--ending", "completed", "--step", "40"]) == 0
    out = capsys.readouterr().out
    assert "2 formation(s), the last with 2 worker(s) from step 5" in out
    assert "lost ranks [2]" in out


@pytest.mark.parametrize("args, says", [
    (["--formations", "1"], "expected 1 formation(s)"),
    (["--last-workers", "3"], "expected the last formation to have 3 worker(s)"),
    (["--ending", "time-limit"], "expected the run to end 'time-limit'"),
    (["--step", "39"], "expected the run to end at step 39"),
])
def test_expect_fails_naming_the_difference(tmp_path, capsys, args, says):
    run = write_events(tmp_path, REFORMED)
    assert runcheck.main(["expect", run] + args) == 1
    assert says in capsys.readouterr().out


def test_a_fresh_run_is_not_resumed(tmp_path, capsys):
    run = write_events(tmp_path, [REFORMED[0], {"event": "ended", "step": 40, "ending": "completed"}])
    assert runcheck.main(["expect", run, "--resumed"]) == 1
    assert "expected the last formation to resume from a checkpoint" in capsys.readouterr().out


def test_a_bad_event_line_is_an_error_naming_the_file(tmp_path, capsys):
    (tmp_path / "events.jsonl").write_text('{"event": "formed", "step": 0}\nnot json\n')
    assert runcheck.main(["expect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "events.jsonl: line 2 is not JSON" in err


def test_lost_steps_and_step_time_from_the_json_lines(tmp_path, capsys):
    out = tmp_path / "coord.out"
    lines = [{"step": s, "images_per_sec": 24.0} for s in (1, 2, 3, 4, 5, 6, 7)]
    lines += [{"step": s, "images_per_sec": 12.0} for s in (6, 7, 8)]   # re-formed from step 5
    out.write_text("a log line\n" + "\n".join(json.dumps(x) for x in lines) + "\n")
    assert runcheck.main(["lost-steps", str(out)]) == 0
    assert capsys.readouterr().out.strip() == "2"
    assert runcheck.main(["step-time", str(out), "12"]) == 0
    assert capsys.readouterr().out.strip() == "1.000"


def test_lost_steps_counts_every_drop():
    assert runcheck.lost_steps([1, 2, 3, 2, 3, 4, 1, 2]) == 2 + 4
    assert runcheck.lost_steps([]) == 0
