"""rollforge benchmarks: throughput, peak memory, and the speed-up over the NeMo Gym tutorial's pipeline.

    python benchmarks/run.py                  # 20k and 100k rollouts, 3 runs each (make bench)
    python benchmarks/run.py --large          # + 200k, 1 run (make bench-large)
    python benchmarks/run.py --quick          # 2k and 4k rollouts, 1 run: a smoke test
    python benchmarks/run.py --sizes 50000 --commands sft dpo --workers 2 --no-tutorial

Each measurement is a fresh process; its peak memory is the PSS of the whole process tree (rollforge's
worker processes included: pages they share are counted once, split between them), polled every 20 ms,
with the RSS sum (an upper bound that counts shared pages once per process) beside it. Corpora come from `rollforge example --no-bad-lines` (the
tutorial's code stops at the first bad line) and are cached in benchmarks/.corpora until the generator
changes. The corpus is read once before every measurement so both sides read from the page cache. The
table goes to stdout, the full write-up to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERATOR = ROOT / "src" / "rollforge" / "example.py"
ROLLFORGE = [sys.executable, "-m", "rollforge.cli.main"]
TUTORIAL = [sys.executable, str(HERE / "tutorial.py")]
COMMANDS = ("inspect", "sft", "dpo", "sample", "build")
# The tutorial's filters (reward >= 0.7, success, 3..15 output items) as rollforge flags.
TUTORIAL_FILTERS = ["--min-reward", "0.7", "--success-only", "--min-items", "3", "--max-items", "15"]
# Output rows compared on both sides: rollforge writes <name>.jsonl, the tutorial <name>_<file>.jsonl.
ROWS_FILE = {"sft": "sft", "dpo": "dpo", "sample": "review"}
LARGE = 200_000
POLL_SECONDS = 0.02
# PSS costs ~1 ms a process to read (RSS ~0.05 ms): read on every poll for the first 100 ms (a short run,
# or one whose first read met the process mid-exec, still gets a figure), then on every 5th poll.
PSS_EVERY = 5
# Listing the process tree scans all of /proc (~1.5 ms): every 5th poll only (a new process is seen within
# 100 ms). Even so the polls of a 10 s build take ~1 s of CPU (reading PSS of a large process costs ~4 ms),
# which a 2-worker run on 2 cores pays and a 1-worker run does not: times come from runs nobody polls.
TREE_EVERY = 5


@dataclass(frozen=True)
class Corpus:
    size: int  # rollouts asked of the generator (it rounds to whole prompts per environment)
    folder: Path
    per_environment: dict[str, int]  # rollouts per environment, as `rollforge example --json` counted them

    @property
    def rollouts(self) -> int:
        return sum(self.per_environment.values())

    @property
    def files(self) -> list[str]:
        """The rollouts files: what the tutorial is given (not NeMo Gym's companion files)."""
        return [str(self.folder / f"{name}.jsonl") for name in self.per_environment]

    @property
    def bytes(self) -> int:
        return sum(Path(f).stat().st_size for f in self.files)


@dataclass
class Run:
    rollouts: int
    command: str
    who: str  # "rollforge" or "tutorial"
    workers: int
    seconds: float  # median over the repeats
    peak_tree_mb: float  # PSS of the process tree: max over the repeats, as are the two below
    peak_single_mb: float  # RSS of the largest single process
    peak_rss_sum_mb: float  # RSS summed over the tree: counts pages a forked worker shares once per process
    rows: int | None  # output rows (sft, dpo, sample)


def corpus(size: int, cache: Path) -> Corpus:
    """The corpus of `size` rollouts, generated once and reused while example.py is unchanged."""
    stamp = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:12]
    folder = cache / f"{size}-{stamp}"
    if not (folder / "corpus.json").exists():
        partial = folder.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        print(f"generating {size:,} rollouts in {folder}", file=sys.stderr)
        args = ["--rollouts", str(size), "--repeats", "4", "--seed", "0", "--no-bad-lines", "--json"]
        made = subprocess.run([*ROLLFORGE, "example", "-o", str(partial), *args], check=True,
                              capture_output=True, text=True)  # fmt: skip
        (partial / "corpus.json").write_text(made.stdout)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    return Corpus(size, folder, json.loads((folder / "corpus.json").read_text())["rollouts"])


def warm(folder: Path) -> None:
    """Read every file once so the measured run reads from the page cache, not the disk."""
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


def measure(cmd: list[str], log: Path, watch: bool = True) -> tuple[float, float, float, float]:
    """Wall seconds, and the peak (MB) of the process tree's PSS, of its largest process's RSS and of the
    tree's RSS sum (0 unless ``watch``: then the polls cost the run some CPU)."""
    with open(log, "wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        if not watch:
            proc.wait()
            return _finished(proc, cmd, log, time.perf_counter() - start), 0.0, 0.0, 0.0
        parent = psutil.Process(proc.pid)
        pss = single = rss = polls = 0
        procs: list[psutil.Process] = []
        while proc.poll() is None:
            if polls % TREE_EVERY == 0:
                try:
                    procs = [parent, *parent.children(recursive=True)]
                except psutil.Error:  # the parent is exiting
                    procs = []
            sizes = [_memory(p, polls < PSS_EVERY or polls % PSS_EVERY == 0) for p in procs]
            polls += 1
            pss = max(pss, sum(s[1] for s in sizes))
            rss = max(rss, sum(s[0] for s in sizes))
            single = max(single, *(s[0] for s in sizes), 0)
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - start
    return _finished(proc, cmd, log, seconds), pss / 2**20, single / 2**20, rss / 2**20


def _finished(proc: subprocess.Popen, cmd: list[str], log: Path, seconds: float) -> float:
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n{tail}")
    return seconds


def _memory(proc: psutil.Process, with_pss: bool) -> tuple[int, int]:
    """(RSS, PSS); PSS 0 when not asked for, and RSS where the system has none per process (not Linux)."""
    try:
        if not with_pss:
            return proc.memory_info().rss, 0
        info = proc.memory_full_info()
        return info.rss, getattr(info, "pss", info.rss)
    except psutil.AccessDenied:
        rss = proc.memory_info().rss
        return rss, rss
    except psutil.Error:  # exited between listing and reading
        return 0, 0


def command_line(command: str, who: str, workers: int, data: Corpus, out: Path) -> list[str]:
    if who == "tutorial":
        return [*TUTORIAL, command, str(out), *data.files]
    base = [*ROLLFORGE, command, str(data.folder), "--workers", str(workers), "--json"]
    output = {"sft": "sft.jsonl", "dpo": "dpo.jsonl", "sample": "review.jsonl", "build": "releases"}
    written = ["-o", str(out / output[command])] if command in output else []
    filters = TUTORIAL_FILTERS if command in ("sft", "build") else []
    return [*base, *written, *filters]


def count_rows(out: Path, command: str) -> int | None:
    if command not in ROWS_FILE:
        return None
    rows = 0
    for path in out.glob(f"{ROWS_FILE[command]}*.jsonl"):
        with open(path, "rb") as fh:
            rows += sum(1 for _ in fh)
    return rows


def run_one(data: Corpus, command: str, who: str, workers: int, repeat: int, scratch: Path) -> Run:
    """``repeat`` timed runs nobody polls, then one more whose memory is polled (its time is not kept)."""
    times, rows = [], None
    for watch in [False] * repeat + [True]:
        warm(data.folder)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            out = Path(tmp)
            cmd = command_line(command, who, workers, data, out)
            seconds, tree, single, rss_sum = measure(cmd, out / "stderr.log", watch)
            rows = count_rows(out, command)
        if not watch:
            times.append(seconds)
    run = Run(data.rollouts, command, who, workers, statistics.median(times), tree, single, rss_sum, rows)
    label = f"{who} {workers} worker{'s' if workers > 1 else ''}" if who == "rollforge" else who
    figures = f"{run.seconds:7.2f} s {run.peak_tree_mb:6.0f} MB"
    print(f"{data.rollouts:>8,} {command:<7} {label:<21} {figures}", file=sys.stderr)
    return run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--sizes", type=int, nargs="+", help="rollouts per corpus (default: 20000 100000)")
    add("--large", action="store_true", help=f"add a {LARGE:,}-rollout corpus")
    add("--quick", action="store_true", help="2000 and 4000 rollouts, 1 run (a smoke test)")
    add("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS), metavar="CMD",
        help=f"what to measure (default: {' '.join(COMMANDS)})")  # fmt: skip
    add("--workers", type=int, nargs="+", default=[1, 2], help="rollforge --workers values (default: 1 2)")
    add("--repeat", type=int, help=f"runs per measurement, median time kept (default: 3; 1 at {LARGE:,})")
    add("--no-tutorial", action="store_true", help="skip the tutorial baseline")
    add("--no-write", action="store_true", help="print the tables only; leave RESULTS.md alone")
    add("--corpora", type=Path, default=HERE / ".corpora", help="corpus cache (default: benchmarks/.corpora)")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [2_000, 4_000] if args.quick else [20_000, 100_000]
    if args.large:
        args.sizes.append(LARGE)
    if args.quick and args.repeat is None:
        args.repeat = 1
    args.sizes = sorted(set(args.sizes))
    return args


def main(argv: list[str] | None = None) -> int:
    import results  # beside this file

    args = parse_args(argv)
    args.corpora.mkdir(parents=True, exist_ok=True)
    load_before = psutil.getloadavg()[0]
    corpora = [corpus(size, args.corpora) for size in args.sizes]
    runs = []
    for data in corpora:
        repeat = args.repeat or (1 if data.size >= LARGE else 3)
        for command in args.commands:
            runs += [run_one(data, command, "rollforge", w, repeat, args.corpora) for w in args.workers]
            if command != "inspect" and not args.no_tutorial:
                runs.append(run_one(data, command, "tutorial", 1, repeat, args.corpora))
    load = (load_before, psutil.getloadavg()[0])
    print(results.tables(runs, corpora))
    print()
    print(results.verdicts(runs))
    if not args.no_write:
        argv = sys.argv[1:] if argv is None else argv
        text = results.document(runs, corpora, reproduce(argv), load)
        (HERE / "RESULTS.md").write_text(text)
        print(f"\nwrote {HERE / 'RESULTS.md'}", file=sys.stderr)
    return 0


def reproduce(argv: list[str]) -> str:
    return {(): "make bench", ("--large",): "make bench-large"}.get(
        tuple(argv), shlex.join(["python", "benchmarks/run.py", *argv])
    )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
