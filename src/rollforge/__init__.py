"""rollforge: NeMo Gym rollouts in, trainer-ready SFT/DPO datasets out.

The Python API mirrors the command line (see ``rollforge.api``)::

    import rollforge

    rollforge.inspect("rollouts/")                                    # rollforge inspect rollouts/ --json
    rollforge.sft("rollouts/", "sft.jsonl", success_only=True)        # rollforge sft ... --success-only
    rollforge.dpo("rollouts/", "dpo.jsonl", min_margin=0.3)           # rollforge dpo ... --min-margin 0.3
    rollforge.kto("rollouts/", "kto.jsonl")                           # rollforge kto ... (KTO rows)
    rollforge.sample("rollouts/", "review.jsonl")                     # rollforge sample ...
    rollforge.build(inputs=["rollouts/"], output="releases")          # rollforge build rollouts/ -o releases
    rollforge.report("releases/v1", "report.html")                    # rollforge report releases/v1
    rollforge.compare("before.jsonl", "after.jsonl")                  # rollforge compare before after
    rollforge.iterate("loop.yaml", control=True)                      # rollforge iterate loop.yaml --control
"""

from rollforge.api import build, compare, dpo, inspect, iterate, kto, report, sample, sft
from rollforge.version import __version__

__all__ = ["__version__", "build", "compare", "dpo", "inspect", "iterate", "kto", "report", "sample", "sft"]
