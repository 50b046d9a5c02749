"""Tasks on several cores (rollforge.parallel) and the parts of a build and a report that use them: the
results must be those of one core, in the order of the calls."""

from __future__ import annotations

import os
import threading

import pytest
from test_report_cli import make_release

from rollforge.errors import RollforgeError
from rollforge.parallel import fork_is_safe, run_calls
from rollforge.report import report_paths
from rollforge.report.plots import FIGURES, figures


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def test_results_keep_the_order_of_the_calls_and_use_other_processes():
    """This process runs every other call itself (it would only wait otherwise); a forked one the rest."""
    done = run_calls([(_pid_and_square, (x,)) for x in range(8)], 2)
    assert [square for _, square in done] == [x * x for x in range(8)]
    pids = [pid for pid, _ in done]
    assert set(pids[0::2]) == {os.getpid()}
    if fork_is_safe():
        assert len(set(pids[1::2])) == 1 and os.getpid() not in pids[1::2]


def test_one_worker_runs_in_this_process():
    assert {pid for pid, _ in run_calls([(_pid_and_square, (3,))] * 3, 1)} == {os.getpid()}


def test_another_thread_means_threads_not_fork():
    """Forking while another thread runs can deadlock the child: then the calls run on threads."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not fork_is_safe()
        done = run_calls([(_pid_and_square, (x,)) for x in range(4)], 2)
    finally:
        stop.set()
        other.join()
    assert done == [(os.getpid(), x * x) for x in range(4)]


def test_report_of_a_release_is_the_same_on_two_cores(tmp_path):
    release = str(make_release(tmp_path))
    one, two = report_paths([release], workers=1), report_paths([release], workers=2)
    for data in (one, two):
        data.created_at = ""
    assert two.summary() == one.summary()
    assert two.splits == one.splits and two.prompts == one.prompts
    drawn_one, drawn_two = figures(one, 1), figures(two, 2)
    assert drawn_two == drawn_one
    assert list(drawn_two) == [name for name in FIGURES if name in drawn_two] and len(drawn_two) >= 4


def test_a_bad_row_read_on_another_core_is_the_same_one_line_error(tmp_path):
    release = make_release(tmp_path)
    with open(release / "dpo" / "train.jsonl", "a") as fh:
        fh.write("{not json\n")
    for workers in (1, 2):
        with pytest.raises(RollforgeError, match=r"dpo/train\.jsonl:3: not valid JSON"):
            report_paths([str(release)], workers=workers)


def test_a_large_release_file_is_read_in_byte_ranges_with_the_same_report(tmp_path):
    """Parts of about equal size, cut inside the big SFT file: same numbers, same files named, and a bad
    row deep in a later range still gets its line number in the file."""
    from rollforge.report.inputs import _parts

    release = make_release(tmp_path, sft_train=30_000, manifest_train=30_000)  # about 6 MB of SFT rows
    files = {kind: sorted(str(p) for p in (release / kind).glob("*.jsonl")) for kind in ("sft", "dpo")}
    parts = _parts(files, 2)
    ranges = [chunk for part in parts for _, chunk in part]
    big = [c for c in ranges if c.source.path.endswith("sft/train.jsonl")]
    assert len(parts) == 2 and len(big) > 2  # the big file is cut, and its ranges go to both parts
    assert all(any(c in big for _, c in part) for part in parts)
    ends = [c.end for c in big]
    assert [c.start for c in big] == [0, *ends[:-1]]  # contiguous, in order, each byte once
    assert big[-1].end is None and {os.path.basename(c.source.path) for c in ranges} >= {"validation.jsonl"}
    sizes = [sum((c.end or c.source.size) - c.start for _, c in part) for part in parts]
    assert max(sizes) < 0.7 * sum(sizes)

    one, two = report_paths([str(release)], workers=1), report_paths([str(release)], workers=2)
    for data in (one, two):
        data.created_at = ""
    assert two.summary() == one.summary() and two.summary()["sft"]["rows"] == 30_001
    assert two.splits == one.splits and two.prompts == one.prompts

    lines = (release / "sft" / "train.jsonl").read_text().splitlines(keepends=True)
    lines[25_000] = "{not json\n"
    (release / "sft" / "train.jsonl").write_text("".join(lines))
    for workers in (1, 2):
        with pytest.raises(RollforgeError, match=r"sft/train\.jsonl:25001: not valid JSON"):
            report_paths([str(release)], workers=workers)


def _read_common(common: object, n: int) -> tuple[int, int, int]:
    return os.getpid(), id(common), n


def test_a_common_input_reaches_forked_workers_without_pickling():
    """``common`` is handed to each call; forked workers get it through fork, not through pickle: a value
    that cannot be pickled (a lock) still arrives, at the address it has in this process."""
    import threading

    common = (threading.Lock(), list(range(100_000)))
    done = run_calls([(_read_common, (n,)) for n in range(3)], 2, common=common)
    assert [n for *_, n in done] == [0, 1, 2]
    assert {address for _, address, _ in done} == {id(common)}
    if fork_is_safe():
        assert os.getpid() != done[1][0]  # read in a forked worker, from memory it inherited


def _ignores_ctrl_c(common: object, n: int) -> tuple[int, bool, int]:
    import signal

    return os.getpid(), signal.getsignal(signal.SIGINT) is signal.SIG_IGN, id(common)


def test_forked_workers_die_with_the_run_and_still_inherit_common():
    """run_calls's workers are rollforge.workers' (they ignore Ctrl-C, which the parent handles by killing
    them, and die with it) and also receive ``common``: both initializers run in each worker."""
    import signal

    common = [1, 2, 3]
    # Whatever an earlier test in this process left as SIGINT's handler, start from Python's own.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done = run_calls([(_ignores_ctrl_c, (n,)) for n in range(2)], 2, common=common)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert {address for *_, address in done} == {id(common)}
    assert done[0][:2] == (os.getpid(), False)  # this process keeps its own Ctrl-C
    if fork_is_safe():
        assert done[1][0] != os.getpid() and done[1][1]
