"""A tiny random chat model and tokenizer, built offline in a fraction of a second (plus the torch import).

Tests across rollforge need a real ``transformers`` model whose chat template renders tools, reasoning and tool
calls, and marks the assistant's tokens with ``{% generation %}`` so TRL's ``assistant_only_loss`` works. Nothing
here downloads anything: the byte-level BPE tokenizer is trained on a small in-code corpus (plus any text the
caller passes) and the weights are random but seeded, so two builds with the same arguments are identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from rollforge.errors import missing_extra

# ChatML-style control tokens. Special tokens are never split by the BPE; the tag tokens are added as whole
# (non-special) tokens so that they decode visibly and a reasoning or tool-call span is easy to find in a mask.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TAG_TOKENS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

# Qwen3-like tool-aware template, written to be prefix-preserving: every assistant turn renders the same way
# whatever follows it (reasoning is kept for all turns), which is what training on multi-turn rollouts needs.
# The assistant's output, including its end-of-turn token, sits inside {% generation %} so it alone is trained.
CHAT_TEMPLATE = """\
{%- if messages and messages[0].role == 'system' %}
    {%- set system_message = messages[0].content %}
    {%- set messages = messages[1:] %}
{%- endif %}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if system_message is defined %}{{- system_message + '\\n\\n' }}{%- endif %}
    {{- '# Tools\\n\\nYou may call one or more functions. Their signatures are within <tools></tools>:\\n<tools>' }}
    {%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}
    {{- '\\n</tools>\\n\\nFor each call, return {"name": <function-name>, "arguments": <args-json-object>} '
        'within <tool_call></tool_call> tags.<|im_end|>\\n' }}
{%- elif system_message is defined %}
    {{- '<|im_start|>system\\n' + system_message + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == 'assistant' %}
        {{- '<|im_start|>assistant\\n' }}
        {%- generation %}
        {%- if message.reasoning_content %}
            {{- '<think>\\n' + message.reasoning_content.strip('\\n') + '\\n</think>\\n\\n' }}
        {%- endif %}
        {{- content }}
        {%- for tool_call in message.tool_calls or [] %}
            {%- set call = tool_call.function if tool_call.function else tool_call %}
            {%- if content or not loop.first %}{{- '\\n' }}{%- endif %}
            {{- '<tool_call>\\n{"name": "' + call.name + '", "arguments": ' }}
            {%- if call.arguments is string %}{{- call.arguments }}{%- else %}{{- call.arguments | tojson }}{%- endif %}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\\n' }}
    {%- elif message.role == 'tool' %}
        {{- '<|im_start|>tool\\n<tool_response' }}
        {%- if message.name %}{{- ' name="' + message.name + '"' }}{%- endif %}
        {%- if message.tool_call_id %}{{- ' id="' + message.tool_call_id + '"' }}{%- endif %}
        {{- '>\\n' + content + '\\n</tool_response><|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# Enough text for the BPE to learn common chat, JSON and tool-calling fragments; anything else still encodes
# byte by byte.
CORPUS = [
    "You are a helpful assistant. Answer the question and call tools when you need them.",
    "What is the weather in Paris today? Let me check the weather service first.",
    "The user wants the current temperature, so I should call get_weather with the city name.",
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}',
    '{"type": "function", "function": {"name": "search", "description": "Search the web", '
    '"parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}',
    "The answer is 42. I computed 6 * 7 = 42 with the calculator tool.",
    "Sunny, 21 degrees. It is sunny in Paris with a temperature of 21 degrees.",
    "You drew a card. Your hand is 10 and 7, total 17. Do you hit or stand? I stand.",
    "Thank you! Is there anything else I can help you with? No, that is all.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
    "0123456789 + - * / = ( ) [ ] { } < > , . : ; ! ? ' \" _ #",
]


def _train_bpe(corpus: Iterable[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE with exactly the normalizer and pre-tokenizer ``Qwen2Tokenizer`` rebuilds on load.

    ``AutoTokenizer`` picks the tokenizer class from the model type and reconstructs it from vocab and merges, so a
    different pre-tokenizer here would make the loaded tokenizer encode differently from the one we saved.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is a token: any text encodes
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    return model["vocab"], [tuple(pair) for pair in model["merges"]]


def build_tiny_model(
    out_dir: str | Path,
    *,
    vocab_corpus: Iterable[str] | None = None,
    seed: int = 0,
    generation_markers: bool = True,
    hidden_size: int = 64,
    num_layers: int = 2,
    char_level: bool = False,
) -> Path:
    """Write a tiny random Qwen2 causal LM, its tokenizer and tool-aware chat template to ``out_dir``.

    ``vocab_corpus`` adds text the tokenizer should encode compactly (e.g. the test data). With
    ``generation_markers=False`` the template lacks ``{% generation %}``, for testing assistant-only-loss errors.
    ``hidden_size`` and ``num_layers`` size the network (a model meant to learn a toy task from scratch needs
    about 128 and 2: at 64 it gets stuck on some seeds). ``char_level`` learns no merges, so every character is
    its own token: a digit-level tokenizer, which a task over digits (rollforge.toy) needs to be learnable.
    Load the result with ``AutoModelForCausalLM.from_pretrained(out_dir)`` / ``AutoTokenizer.from_pretrained``.
    """
    try:
        import torch
        from tokenizers import AddedToken
        from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer
    except ImportError as exc:
        raise missing_extra(exc.name or "transformers", "train") from exc

    out = Path(out_dir)
    # The byte alphabet plus the special tokens is the smallest vocabulary: a BPE of that size learns no merge.
    vocab_size = 256 + len(SPECIAL_TOKENS) if char_level else 1024
    vocab, merges = _train_bpe([*CORPUS, *(vocab_corpus or [])], vocab_size=vocab_size)
    template = CHAT_TEMPLATE
    if not generation_markers:
        template = template.replace("{%- generation %}", "").replace("{%- endgeneration %}", "")
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # pairs, as tokenizer.json stores them; the hint is too narrow
        eos_token="<|im_end|>",  # a chat model stops at the end of its turn
        pad_token="<|endoftext|>",
        chat_template=template,
    )
    # Qwen2Tokenizer registers only its eos/pad/unk tokens as unsplittable; the other control tokens need it too.
    tokenizer.add_tokens([AddedToken(token, special=True) for token in SPECIAL_TOKENS], special_tokens=True)
    tokenizer.add_tokens(TAG_TOKENS)

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    # do_sample as chat checkpoints ship it: `transformers serve` samples only when the model's generation config
    # says so (a request's temperature alone does not turn sampling on), so greedy would make every repeat alike.
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=64,
        do_sample=True,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
