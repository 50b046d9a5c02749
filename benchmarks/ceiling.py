"""The most any run on rollforge's decoder and conversion rules could gain over the tutorial's pipeline.

For `sft`, `dpo` and `build` it times, in this process on one core, only the work no correct run can
skip:
- decoding every line against the schema (a bad line must be found and reported, so every line is
  decoded);
- for `dpo` and `build`, naming each rollout's prompt and trajectory, the least grouping by prompt and
  never pairing identical trajectories need: the decoded prompt and output encoded canonically (sorted
  keys) and hashed, without converting them;
- converting and rendering the rollouts that end up in the output (the ones rollforge writes on the same
  corpus, in the formats it writes by default: `build` also renders its SFT rows as nemo-rl);
- for `build`, what its release holds besides: the sha256 of every input (the manifest records them), its
  dataset files written with their sha256 (their bytes as rollforge's build wrote them), and its report's
  figures (matplotlib imported, and each figure drawn from the release's numbers).
Everything else rollforge does counts as free: filters, index, pairing, reading the release back for the
report's numbers, the other files, the review sample. Two workers count as exactly twice one, even for the
import and the writing. The ceiling is then

    tutorial wall time / (start-up of an interpreter that imports msgspec + that work / 2)

and a speed target above the ceiling cannot be met by tuning rollforge's Python, only by a conversion
written in a compiled language (compiling rollforge's own conversion modules with mypyc took 13% off the
decode-and-convert time of a rollout, measured: not enough). The table goes to stdout and to CEILING.md.

    python benchmarks/ceiling.py                          # 20k and 100k rollouts (make bench-ceiling)
    python benchmarks/ceiling.py --sizes 20000 100000 200000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import msgspec
import xxhash

from rollforge.decode import LineDecoder
from rollforge.engine.job import to_record
from rollforge.export.dpo import pieces
from rollforge.export.formats import NEMO_RL, TRL
from rollforge.filters import FilterOptions
from rollforge.identity import rollout_id
from rollforge.pipeline import make_dpo, make_sft
from rollforge.rollout import Rollout

HERE = Path(__file__).resolve().parent
TARGETS = {"sft": 8.0, "dpo": 8.0, "build": 10.0}
# The tutorial's filters (see run.TUTORIAL_FILTERS), as the Python API takes them.
FILTERS = FilterOptions(min_reward=0.7, success_only=True, min_items=3, max_items=15)
_encode = msgspec.json.Encoder().encode
_sorted = msgspec.json.Encoder(order="sorted").encode


Wanted = dict[str, tuple[set[str], set[str]]]  # command -> (ids written as SFT rows, ids in DPO pairs)


def _sft_ids(files: list[Path]) -> set[str]:
    return {
        msgspec.json.decode(line)["rollout_id"] for path in files for line in path.read_bytes().splitlines()
    }


def _pair_ids(files: list[Path]) -> set[str]:
    """Rollout ids on either side of a pair."""
    pairs = [msgspec.json.decode(line) for path in files for line in path.read_bytes().splitlines()]
    return {p["chosen_id"] for p in pairs} | {p["rejected_id"] for p in pairs}


def written(folder: Path, scratch: Path) -> tuple[Wanted, list[Path]]:
    """The rollouts each command writes, by id, as rollforge runs them in the benchmark (sft with the
    tutorial's filters, dpo with its defaults, build with both), and the files of the build's datasets."""
    import run  # beside this file: the benchmark's command lines

    make_sft([str(folder)], str(scratch / "sft.jsonl"), FILTERS, workers=1)
    make_dpo([str(folder)], str(scratch / "dpo.jsonl"), workers=1)
    cmd = [*run.ROLLFORGE, "build", str(folder), "-o", str(scratch / "releases"), *run.TUTORIAL_FILTERS]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    release = scratch / "releases" / "v1"
    datasets = sorted(p for kind in ("sft", "dpo", "nemo-rl") for p in (release / kind).glob("*.jsonl"))
    wanted = {
        "sft": (_sft_ids([scratch / "sft.jsonl"]), set()),
        "dpo": (set(), _pair_ids([scratch / "dpo.jsonl"])),
        "build": (
            _sft_ids(sorted((release / "sft").glob("*.jsonl"))),
            _pair_ids(sorted((release / "dpo").glob("*.jsonl"))),
        ),
    }
    return wanted, datasets


def floor_seconds(files: list[str], wanted: Wanted) -> dict[str, float]:
    """One core's seconds of the unavoidable work of each command (the best of three passes)."""
    decoder = LineDecoder(lazy_text=True)
    lines = [line for path in files for line in Path(path).read_bytes().splitlines() if line.strip()]
    ids = [rollout_id(line) for line in lines]
    chosen = {}
    for cmd, (sft, dpo) in wanted.items():
        out = sft | dpo
        chosen[cmd] = [line for line, rid in zip(lines, ids, strict=True) if rid in out]

    def decode_all() -> None:
        for line in lines:  # nothing kept: holding every struct would time the garbage collector instead
            decoder._decoder.decode(line)

    def decode_and_name_all() -> None:
        for line in lines:
            obj = decoder._decoder.decode(line)
            xxhash.xxh3_64_intdigest(_sorted(obj.responses_create_params))
            xxhash.xxh3_64_intdigest(_sorted(obj.response.output))

    decode = min(_timed(decode_all) for _ in range(3))
    decode_and_name = min(_timed(decode_and_name_all) for _ in range(3))

    def convert_and_render(cmd: str) -> None:
        sft, dpo = wanted[cmd]
        for line in chosen[cmd]:
            rollout = decoder.parse(line, "f", 1)
            assert isinstance(rollout, Rollout)
            record = to_record(rollout)
            if rollout.rollout_id in sft:
                for fmt in (TRL, NEMO_RL) if cmd == "build" else (TRL,):
                    _encode(fmt.sft_row(record, fmt.styling("field"), Counter()))
            if rollout.rollout_id in dpo:
                _encode(pieces(record, TRL.styling("field")))

    first = {"sft": decode, "dpo": decode_and_name, "build": decode_and_name}
    return {
        cmd: first[cmd] + min(_timed(lambda c=cmd: convert_and_render(c)) for _ in range(3)) for cmd in wanted
    }


def release_io(inputs: list[str], datasets: list[Path], scratch: Path) -> float:
    """Seconds to hash the inputs, and to write the build's dataset files once their bytes exist, with the
    sha256 the manifest records of each (the best of three)."""
    contents = [path.read_bytes() for path in datasets]

    def hash_inputs() -> None:
        for path in inputs:
            with open(path, "rb") as fh:
                hashlib.file_digest(fh, "sha256").hexdigest()

    def write_all() -> None:
        for n, data in enumerate(contents):
            with open(scratch / f"copy-{n}.jsonl", "wb") as fh:
                fh.write(data)
            hashlib.sha256(data).hexdigest()

    return min(_timed(hash_inputs) for _ in range(3)) + min(_timed(write_all) for _ in range(3))


def drawing(release: Path) -> float:
    """Seconds to draw the report's figures from the release's numbers (the best of three; reading the
    release back for those numbers is free)."""
    from rollforge.report import report_paths
    from rollforge.report.plots import FIGURES, draw

    data = report_paths([str(release)])
    return min(_timed(lambda: draw(FIGURES, data)) for _ in range(3))


def _timed(work: object) -> float:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - start


def wall(cmd: list[str], repeat: int) -> float:
    """Median wall seconds of a fresh process."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int, repeat: int, corpora: Path) -> list[dict[str, float | int | str]]:
    import run  # beside this file: corpus generation and the tutorial's command line

    data = run.corpus(size, corpora)
    run.warm(data.folder)
    start_up = wall([sys.executable, "-c", "import msgspec"], 5)
    plots = wall([sys.executable, "-c", "import msgspec, matplotlib.pyplot"], 5) - start_up
    with tempfile.TemporaryDirectory(dir=corpora) as tmp:
        wanted, datasets = written(data.folder, Path(tmp))
        floors = floor_seconds(data.files, wanted)
        release = Path(tmp) / "releases" / "v1"
        floors["build"] += plots + release_io(data.files, datasets, Path(tmp)) + drawing(release)
        rows: list[dict[str, float | int | str]] = []
        for command, floor in floors.items():
            tutorial = wall([*run.TUTORIAL, command, tmp, *data.files], repeat)
            ceiling = tutorial / (start_up + floor / 2)
            rows.append({"rollouts": data.rollouts, "command": command, "tutorial_s": tutorial,
                         "floor_core_s": floor, "start_up_s": start_up, "ceiling": ceiling,
                         "target": TARGETS[command]})  # fmt: skip
            print(f"{data.rollouts:>8,} {command:<6} ceiling {ceiling:5.2f}x", file=sys.stderr)
    return rows


def table(rows: list[dict[str, float | int | str]]) -> str:
    head = "| rollouts | command | tutorial s | unavoidable work, 1 core s | start-up s | ceiling on 2 cores | target |"
    lines = [head, "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        verdict = "within reach" if float(r["ceiling"]) >= float(r["target"]) else "**out of reach**"
        lines.append(f"| {int(r['rollouts']):,} | {r['command']} | {float(r['tutorial_s']):.3f} | "
                     f"{float(r['floor_core_s']):.3f} | {float(r['start_up_s']):.3f} | "
                     f"{float(r['ceiling']):.2f}x | {float(r['target']):g}x, {verdict} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000], help="rollouts per corpus")
    parser.add_argument("--repeat", type=int, default=3, help="tutorial runs per measurement (median kept)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave CEILING.md alone")
    parser.add_argument("--corpora", type=Path, default=HERE / ".corpora", help="corpus cache")
    args = parser.parse_args(argv)
    args.corpora.mkdir(parents=True, exist_ok=True)
    import results  # beside this file: the machine's description

    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    rows = [row for size in sorted(set(args.sizes)) for row in measure(size, args.repeat, args.corpora)]
    text = table(rows)
    print(text)
    if not args.no_write:
        doc = (HERE / "ceiling.py").read_text().split('"""')[1].strip()
        where = (f"Measured {started} on: {results.machine()}. 1-minute load average {load:.1f} before and "
                 f"{os.getloadavg()[0]:.1f} after. Tutorial runs per size: {args.repeat} (median).")  # fmt: skip
        (HERE / "CEILING.md").write_text(f"# Ceiling\n\n{doc}\n\n{where}\n\n{text}\n\nRaw figures:\n\n"
                                         f"```json\n{json.dumps(rows, indent=1)}\n```\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
