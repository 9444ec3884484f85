"""Saves SmolLM2-135M-Instruct's tokenizer as an HF tokenizer directory, and (with --references)
the ids, offsets, decodes and chat renders transformers produces with it, for the rl-model
tokenizer tests (crates/rl-model/tests/tokenizer.rs).

    scripts/with-torch.sh python scripts/parity/make_tokenizer_reference.py [--references]

Always (idempotent; `make test` runs this step): takes the model's GGUF ($RL_SMOLLM2_GGUF, else
scripts/fetch-model.sh downloads it once), has transformers read the tokenizer out of it and
save it with `save_pretrained` to
${RL_CACHE:-~/.cache/rl}/models/smollm2-135m-instruct-tokenizer/ (tokenizer.json,
tokenizer_config.json, chat_template.jinja, generation_config.json). Prints that folder's path.

With --references, also writes crates/rl-model/tests/fixtures/tokenizer/smollm2.json (run on
purpose when the corpus changes; CI checks the Rust side against what is stored).
"""

import argparse
import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

TOKENIZER_DIR = "smollm2-135m-instruct-tokenizer"
# Bump when what the tokenizer step writes changes, so cached folders are rebuilt.
FORMAT = 1

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = REPO / "crates/rl-model/tests/fixtures/tokenizer/smollm2.json"


def log(msg: str) -> None:
    print(f"make_tokenizer_reference: {msg}", file=sys.stderr)


def models_dir() -> pathlib.Path:
    cache = os.environ.get("RL_CACHE") or os.path.expanduser("~/.cache/rl")
    path = pathlib.Path(cache) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_gguf() -> pathlib.Path:
    """The model's GGUF: $RL_SMOLLM2_GGUF, else scripts/fetch-model.sh's (downloaded once)."""
    given = os.environ.get("RL_SMOLLM2_GGUF")
    if given:
        return pathlib.Path(given)
    out = subprocess.run(
        [str(REPO / "scripts/fetch-model.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return pathlib.Path(out.stdout.strip())


def gguf_special_ids(gguf: pathlib.Path) -> dict:
    import gguf as gg

    reader = gg.GGUFReader(str(gguf))
    out = {}
    for key in ("bos", "eos", "padding", "unknown"):
        field = reader.fields.get(f"tokenizer.ggml.{key}_token_id")
        if field is not None:
            out[key] = int(field.contents())
    return out


def save_tokenizer(gguf: pathlib.Path, out: pathlib.Path) -> None:
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers' GGUF converter for BPE ("gpt2") tokenizers names the BOS token as EOS too
    # (transformers/integrations/ggml.py: `eos_token = proto.tokens[proto.bos_token_id]`), so
    # SmolLM2 would stop at <|im_start|>. Take EOS and PAD from the GGUF's own metadata instead;
    # they agree with the model's HF repo (eos = pad = <|im_end|>).
    ids = gguf_special_ids(gguf)
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    tok.eos_token = vocab[ids["eos"]]
    tok.pad_token = vocab[ids.get("padding", ids["eos"])]
    # The converter also turns on clean_up_tokenization_spaces (lossy: "a ." decodes as "a.");
    # the GGUF has no such field, and the model's HF repo has it off.
    tok.clean_up_tokenization_spaces = False
    tok.save_pretrained(str(out))
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    GenerationConfig.from_model_config(config).save_pretrained(str(out))


def ensure_tokenizer_dir() -> pathlib.Path:
    models = models_dir()
    out = models / TOKENIZER_DIR
    stamp = out / ".rl-format"
    # Not fetch-model.sh's lock (models/.lock): it is taken inside, by fetch_gguf.
    with open(models / f".{TOKENIZER_DIR}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one writer at a time; the others find it done
        if stamp.is_file() and stamp.read_text().strip() == str(FORMAT):
            return out
        gguf = fetch_gguf()
        log(f"saving the tokenizer of {gguf.name} to {out}...")
        tmp = pathlib.Path(tempfile.mkdtemp(dir=models, prefix=f".{TOKENIZER_DIR}."))
        tmp.chmod(0o755)
        save_tokenizer(gguf, tmp)
        (tmp / ".rl-format").write_text(f"{FORMAT}\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    return out


# Texts the tests encode: every script and shape of input we expect in prompts and completions.
CORPUS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "trailing spaces   ",
    "many     spaces    between   words",
    "   ",
    "tab\tseparated\tvalues\t\tand\ttabs",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\nendings",
    "\n\n\n\n",
    " \t \n \t\n",
    "café naïve façade résumé Ærøskøbing straße",
    "e\u0301 (combining acute) vs \u00e9 (precomposed)",
    "Ελληνικά, русский язык, עברית, العربية, हिन्दी",
    "你好，世界！这是一个测试。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 문장입니다.",
    "emoji 👍 👍🏽 😀😃😄 🇫🇷 👨‍👩‍👧‍👦 ❤️",
    "math: ∑_{i=1}^{n} x_i ≤ ∞ → ∀ε>0",
    "0 1 12 123 1234 12345 123456",
    "3.14159265358979323846",
    "1234567890123456789012345678901234567890",
    "Call 555-0123 at 10:30am on 2024-02-29; pay $1,234.56 (≈€1.1k).",
    "x1y2z3 v2.0.1 0x1F 1e-9 -42 +7",
    "What is 17 * 24? The answer is 408.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n",
    "fn main() {\n\tlet v: Vec<u32> = (0..10).map(|x| x * x).collect();\n\tprintln!(\"{v:?}\");\n}\n",
    '{"key": [1, 2.5, null, true], "nested": {"a": "b"}}',
    "<html><body class=\"x\">&amp; &lt;tag&gt;</body></html>",
    "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;",
    "https://example.com/path?q=rust+tokenizers&lang=en#frag",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    "<|endoftext|>",
    "text<|im_end|>more text<|endoftext|>",
    "<|im_start|><|im_start|><|im_end|>",
    "not special: <|im_start <|im_end| |im_end|> <im_start>",
    "<repo_name>rl<file_sep>src/lib.rs<filename>",
    "Ġ▁ literal byte-level markers ĊĠĠ",
    "a" * 200,
    "ab " * 50,
    "The cat sat on the mat. " * 8,
    "Mixed\u00a0no-break\u2009thin\u200bzero-width\ufeffBOM spaces",
]

SYSTEM = {"role": "system", "content": "You are a terse assistant. Answer in one line."}
CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [SYSTEM, {"role": "user", "content": "What is 2+2?"}],
    [
        SYSTEM,
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ],
    [
        {"role": "user", "content": "  Translate: 你好  "},
        {"role": "assistant", "content": "Hello 👋\n"},
    ],
]

# Templates exercising the Jinja HF templates use: Python string methods (minijinja-contrib's
# pycompat), loop controls, namespace(), tojson, the special-token variables, raise_exception.
TEMPLATES = {
    "pycompat": (
        "{%- for m in messages %}"
        "{%- if m['content'].strip().startswith('What') %}Q{% else %}S{% endif %}"
        ":{{ m['content'].strip() | upper }}|{{ m['role'].upper() }}|{{ m.content.split(' ') | length }}\n"
        "{%- endfor %}"
    ),
    "loops": (
        "{% set ns = namespace(n=0) %}\n"
        "{% for m in messages %}\n"
        "  {% if m.role == 'system' %}{% continue %}{% endif %}\n"
        "  {% set ns.n = ns.n + 1 %}\n"
        "  {{ loop.index }}/{{ loop.length }} {{ m.role }}{% if loop.last %} (last){% endif %}\n"
        "{% endfor %}\n"
        "turns={{ ns.n }} bos={{ bos_token }} eos={{ eos_token }}"
        "{% if add_generation_prompt %} gen{% endif %}\n"
    ),
    "tojson": "{{ messages | tojson }}|{{ messages[0] | tojson(indent=2) }}",
    "alternate": (
        "{% for m in messages %}"
        "{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}"
        "{% endif %}{{ m.content }}\n{% endfor %}"
    ),
}


def byte_offsets(text: str, char_offsets):
    starts = [0]
    for ch in text:
        starts.append(starts[-1] + len(ch.encode("utf-8")))
    return [[starts[a], starts[b]] for a, b in char_offsets]


def references(tok_dir: pathlib.Path) -> dict:
    import tokenizers
    import transformers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    encodings = []
    for text in CORPUS:
        item = {"text": text}
        for special, key in ((False, "plain"), (True, "special")):
            enc = tok(text, add_special_tokens=special, return_offsets_mapping=True)
            chars = [list(o) for o in enc["offset_mapping"]]
            item[key] = {
                "ids": enc["input_ids"],
                "char_offsets": chars,
                "byte_offsets": byte_offsets(text, chars),
            }
        ids = item["plain"]["ids"]
        item["tokens"] = tok.convert_ids_to_tokens(ids)
        item["decoded"] = tok.decode(ids, skip_special_tokens=False)
        item["decoded_skip_special"] = tok.decode(ids, skip_special_tokens=True)
        encodings.append(item)

    chats = []
    for messages in CONVERSATIONS:
        for agp in (False, True):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=agp)
            ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=agp)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            chats.append(
                {"messages": messages, "add_generation_prompt": agp, "text": text, "ids": list(ids)}
            )

    templates = []
    for name, source in TEMPLATES.items():
        for messages in CONVERSATIONS:
            for agp in (False, True):
                try:
                    out = {"text": tok.apply_chat_template(
                        messages, chat_template=source, tokenize=False, add_generation_prompt=agp
                    )}
                except Exception as e:  # raise_exception: the message is what the tests check
                    out = {"error": str(e)}
                templates.append(
                    {"name": name, "template": source, "messages": messages,
                     "add_generation_prompt": agp, **out}
                )

    return {
        "generated_by": "scripts/parity/make_tokenizer_reference.py",
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "specials": {
            "bos_token": tok.bos_token,
            "bos_token_id": tok.bos_token_id,
            "eos_token": tok.eos_token,
            "eos_token_id": tok.eos_token_id,
            "pad_token": tok.pad_token,
            "pad_token_id": tok.pad_token_id,
            "unk_token": tok.unk_token,
            "vocab_size": len(tok),
        },
        "encodings": encodings,
        "chats": chats,
        "templates": templates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", action="store_true",
                        help=f"also write {FIXTURE.relative_to(REPO)}")
    args = parser.parse_args()
    tok_dir = ensure_tokenizer_dir()
    if args.references:
        data = references(tok_dir)
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
        log(f"wrote {FIXTURE.relative_to(REPO)} ({len(data['encodings'])} texts, "
            f"{len(data['chats'])} chat renders, {len(data['templates'])} template renders)")
    print(tok_dir)


if __name__ == "__main__":
    main()
