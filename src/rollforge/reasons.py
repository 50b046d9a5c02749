"""Stable reason codes. A line of input ends up kept, filtered (a filter's reason) or rejected (a reject's
reason). Codes are snake_case and never renamed: scripts and manifests depend on them. The reader's reject
reasons are listed here; the filter reasons come from the filters' and formats' declarations."""

from rollforge.export.formats import FORMATS
from rollforge.filters import FILTERS

REJECT_REASONS: dict[str, str] = {
    "invalid_json": "the line is not valid JSON",
    "not_an_object": "the line is JSON but not an object",
    "no_response": "no `response` object: an input row or a failed rollout, not a finished rollout",
    "no_output": "`response.output` is missing or not a list",
    "no_prompt": "`responses_create_params` or its `input` is missing or unusable, or no message precedes "
    "the model's first turn",
    "no_reward": "`reward` is missing or null",
    "bad_reward": "`reward` is not a finite number",
    "malformed_item": "an item or content part is not an object, or a function_call lacks call_id/name",
    "unsupported_item": "an item type with no chat form (mcp_call, web_search_call, computer_call, ...)",
    "unsupported_content": "a content part with no chat form (input_file, input_audio, an image from the model)",
    "unknown_role": "a message role other than system, developer, user or assistant",
    "orphan_tool_output": "a function_call_output whose call_id answers no earlier function_call",
    "nested_output_not_cumulative": "`response.output` is a list of lists whose steps do not extend each other",
    "unsupported_tool": "a tool that is not a function tool (web_search, file_search, ...)",
    "invalid_tool_arguments": "a tool call's arguments are not a JSON object, so they cannot be rendered as "
    "an object (use --arguments string to keep them as strings)",
    "unreadable_file": "the file could not be read (corrupt gzip/zstd stream); the rest of that file is lost",
    "line_too_long": "the line is longer than --max-line-bytes (default 256 MiB); skipped without being held "
    "in memory",
    "too_deep": "arrays or objects nested more than 512 levels deep, anywhere in the line",
    "number_out_of_range": "a number past float range (1e400) where rollforge reads numbers, or an integer "
    "past 64 bits in the tools or a tool call's arguments (which the output carries)",
}

# A usable rollout a quality filter dropped (counted under the first it fails), or one the primary output
# format cannot hold: from the declarations of the filters and the formats.
FILTER_REASONS: dict[str, str] = {f.reason: f.meaning for f in FILTERS} | {
    reason: meaning for fmt in FORMATS if fmt.sft for reason, meaning in fmt.sft.cannot_hold.items()
}

# A run's index keeps each rollout's filter verdict in one signed byte: 0 for kept, else its reason's code.
REASON_CODES = {name: i + 1 for i, name in enumerate(FILTER_REASONS)}
REASON_NAMES = {code: name for name, code in REASON_CODES.items()}
