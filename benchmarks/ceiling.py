"""The most any run on rollforge's decoder and conversion rules could gain over the tutorial's pipeline.

For `sft`, `dpo` and `build` it times, in this process on one core, only the work no correct run can
skip: decoding every line against the schema (a bad line must be found and reported, so every line is
decoded), and converting and rendering the rollouts that end up in the output (the ones rollforge writes
on the same corpus, in the formats it writes by default: `build` also renders its SFT rows as nemo-rl).
`build` adds the import of matplotlib, without which its report has no plots, and nothing for drawing them.
Everything else rollforge does counts as free: filters, index, grouping, pairing, writing files, hashes,
manifest, review sample, report. Two workers count as exactly twice one, even for the matplotlib import.
The ceiling is then

    tutorial wall time / (start-up of an interpreter that imports msgspec + that work / 2)

and a speed target above the ceiling cannot be met by tuning rollforge's Python: only by converting in
compiled code. The table goes to stdout and to benchmarks/CEILING.md.

    python benchmarks/ceiling.py                          # 20k and 100k rollouts (make bench-ceiling)
    python benchmarks/ceiling.py --sizes 20000 100000 200000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import msgspec

from rollforge.decode import LineDecoder
from rollforge.engine.job import to_record
from rollforge.export import dpo as dpo_export
from rollforge.export import sft as sft_export
from rollforge.filters import FilterOptions
from rollforge.identity import rollout_id
from rollforge.pipeline import make_dpo, make_sft
from rollforge.rollout import Rollout

HERE = Path(__file__).resolve().parent
TARGETS = {"sft": 8.0, "dpo": 8.0, "build": 10.0}
# The tutorial's filters (see run.TUTORIAL_FILTERS), as the Python API takes them.
FILTERS = FilterOptions(min_reward=0.7, success_only=True, min_items=3, max_items=15)
_encode = msgspec.json.Encoder().encode


def written_ids(folder: Path, scratch: Path) -> tuple[set[str], set[str]]:
    """Rollout ids rollforge writes as SFT rows (the tutorial's filters) and as sides of DPO pairs."""
    make_sft([str(folder)], str(scratch / "sft.jsonl"), FILTERS, workers=1)
    make_dpo([str(folder)], str(scratch / "dpo.jsonl"), workers=1)
    decode = msgspec.json.decode
    with open(scratch / "sft.jsonl", "rb") as fh:
        sft = {decode(line)["rollout_id"] for line in fh}
    with open(scratch / "dpo.jsonl", "rb") as fh:
        dpo = {side for line in fh for side in (lambda p: (p["chosen_id"], p["rejected_id"]))(decode(line))}
    return sft, dpo


def floor_seconds(files: list[str], sft: set[str], dpo: set[str]) -> dict[str, float]:
    """One core's seconds of the unavoidable work of each command (the best of three passes)."""
    decoder = LineDecoder(lazy_text=True)
    lines = [line for path in files for line in Path(path).read_bytes().splitlines() if line.strip()]
    wanted = {"sft": sft, "dpo": dpo, "build": sft | dpo}
    chosen = {cmd: [line for line in lines if rollout_id(line) in ids] for cmd, ids in wanted.items()}

    def decode_all() -> None:
        for line in lines:  # nothing kept: holding every struct would time the garbage collector instead
            decoder._decoder.decode(line)

    decode = min(_timed(decode_all) for _ in range(3))

    def convert_and_render(cmd: str) -> None:
        for line in chosen[cmd]:
            rollout = decoder.parse(line, "f", 1)
            assert isinstance(rollout, Rollout)
            record = to_record(rollout)
            if cmd != "dpo" and rollout.rollout_id in sft:
                for fmt in ("trl", "nemo-rl") if cmd == "build" else ("trl",):
                    _encode(sft_export.sft_row(record, fmt, "field", Counter()))
            if cmd != "sft" and rollout.rollout_id in dpo:
                _encode(dpo_export.pieces(record, "trl", "field"))

    return {
        cmd: decode + min(_timed(lambda c=cmd: convert_and_render(c)) for _ in range(3)) for cmd in wanted
    }


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
        sft, dpo = written_ids(data.folder, Path(tmp))
        floors = floor_seconds(data.files, sft, dpo)
        floors["build"] += plots
        rows = []
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
    rows = [row for size in sorted(set(args.sizes)) for row in measure(size, args.repeat, args.corpora)]
    text = table(rows)
    print(text)
    if not args.no_write:
        doc = (HERE / "ceiling.py").read_text().split('"""')[1].strip()
        (HERE / "CEILING.md").write_text(f"# Ceiling\n\n{doc}\n\n{text}\n\nRaw figures:\n\n```json\n"
                                         f"{json.dumps(rows, indent=1)}\n```\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
