"""What Folio's extractor shows a chat model and what the model writes back,
mirrored in Python for training data (tools/train_pack_lora.py).

Each function names the C++ it mirrors; change both together.

  load_pack            app/packs.cpp load: pack.json's extract_schema,
                       extract_prompt (trailing newlines removed) and key_pages.
  schema_fields        JsonSchema::fields() (app/json_schema.cpp collect_fields,
                       type_names, and the types a schema without "type"
                       takes from its keywords): the leaves in schema order.
  field_guide          Extractor::Extractor's "- /pointer (type, format): description" lines.
  field_words          Extractor::Extractor's query text for page ranking.
  system_text          Extractor::extract: instructions + "\\nThe record's fields:\\n"
                       + guide + "Reply with the JSON record only."
  document_text        extract.cpp LaidOutPages::text: "[page N]\\n" + the page's
                       chunks, each followed by "\\n\\n" (a page here is one chunk).
  user_text            Extractor::extract: "Document:\\n" + text + "\\nThe JSON record:".
  render_chatml        engine/chat_template.cpp render_chat (ChatML, the format
                       detect_chat_template picks for SmolLM2) with the
                       generation prompt; ChatModel::prompt_tokens encodes it
                       without BOS, special tokens parsed.
  find_key_pages       extract.cpp find_key_pages (KeyPage, extract.h): per key
                       page the page with the most of its terms (at least 3),
                       2 more for a title line ending with a heading, the most
                       figures on a tie; and its neighbours with 3 terms.
  choose_pages         extract.cpp choose_pages: all pages when they fit the
                       budget, else page 1, the key pages (find_key_pages),
                       then the pages that best match the field words, in
                       page order. Folio ranks the chunks of
                       its BM25 index; this ranks whole pages by BM25 (the
                       same query, page-sized "chunks").
  page_budget          Extractor::extract: context - max_tokens - tokens(system) - 64.
  source_text          SourceText::of (app/json_schema.cpp): the words (outer
                       punctuation trimmed) and whole numbers of the pages shown.
  copyable_record      what JsonSchema::grammar(const SourceText&) lets the model
                       write (free-text strings: source words joined by single
                       spaces, at most maxLength/6 words, 24 without maxLength;
                       integers: whole numbers of the source) followed by
                       extract.cpp trim_to_max_length; properties in schema
                       order (json_schema_grammar.cpp object()).
  record_text          the grammar's compact JSON (no whitespace, UTF-8 as is):
                       json.dumps(separators=(",", ":"), ensure_ascii=False).
"""

import json
import math
import re
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKS_DIR = REPO / "domain_packs"

TYPE_NAMES = ["null", "boolean", "integer", "number", "string", "array", "object"]
MAX_SOURCE_WORDS = 24          # json_schema_grammar.cpp kMaxSourceWords
MAX_SOURCE_WORD_BYTES = 40     # SourceText::kMaxWordBytes
FREE_TEXT_EXCLUDES = ("format", "pattern", "enum", "const", "minLength")
KEYWORD_TYPES = {"string": {"minLength", "maxLength", "pattern", "format"},
                 "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
                 "array": {"items", "minItems", "maxItems"},
                 "object": {"properties", "required", "additionalProperties"}}


def load_pack(name, packs_dir=PACKS_DIR):
    """(instructions, schema as an ordered dict, key pages) of domain_packs/<name>."""
    folder = Path(packs_dir) / name
    manifest = json.loads((folder / "pack.json").read_text(encoding="utf-8"))
    instructions = (folder / manifest["extract_prompt"]).read_text(encoding="utf-8").rstrip("\n")
    schema = json.loads((folder / manifest["extract_schema"]).read_text(encoding="utf-8"))
    return instructions, schema, manifest.get("key_pages", [])


def resolve(node, root):
    """A "$ref": "#/$defs/x" node as the node it names (its own description kept)."""
    while isinstance(node, dict) and "$ref" in node:
        target = root
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = {**target, **({"description": node["description"]} if "description" in node else {})}
    return node


def type_set(node, root):
    """The JSON types a schema node allows, as TYPE_NAMES entries."""
    node = resolve(node, root)
    if "enum" in node or "const" in node:
        values = node.get("enum", [node.get("const")])
        return {("null" if v is None else "boolean" if isinstance(v, bool) else "integer" if isinstance(v, int)
                 else "number" if isinstance(v, float) else "string" if isinstance(v, str)
                 else "array" if isinstance(v, list) else "object") for v in values}
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            return set().union(*(type_set(alternative, root) for alternative in node[keyword]))
    types = node.get("type")
    if types is None:  # the types its keywords shape, else any
        inferred = {name for name, keywords in KEYWORD_TYPES.items() if keywords & node.keys()}
        return inferred or set(TYPE_NAMES)
    return set(types if isinstance(types, list) else [types])


def type_names(types):
    if set(TYPE_NAMES) <= types:
        return "any"
    if "number" in types:
        types = types - {"integer"}
    return "|".join(name for name in TYPE_NAMES if name in types)


def schema_fields(schema):
    """[(pointer, type, format, description)] as JsonSchema::fields()."""
    out = []

    def walk(node, pointer, inherited):
        node = resolve(node, schema)
        description = node.get("description") or inherited
        plain = not any(k in node for k in ("enum", "const", "anyOf", "oneOf"))
        types = type_set(node, schema) - {"null"}
        if plain and types == {"object"} and node.get("properties"):
            for name, child in node["properties"].items():
                walk(child, pointer + "/" + name.replace("~", "~0").replace("/", "~1"), "")
            return
        if plain and types == {"array"} and "items" in node:
            walk(node["items"], pointer + "/*", description)
            return
        out.append((pointer or "/", type_names(type_set(node, schema)), node.get("format", ""), description))

    walk(schema, "", "")
    return out


def field_guide(schema):
    lines = ""
    for pointer, types, fmt, description in schema_fields(schema):
        lines += f"- {pointer} ({types}{', ' + fmt if fmt else ''})"
        lines += f": {description}\n" if description else "\n"
    return lines


def field_words(schema):
    words = ""
    for pointer, _, _, description in schema_fields(schema):
        words += "".join(c if c.isascii() and c.isalnum() else " " for c in f"{pointer} {description}") + " "
    return words


def system_text(instructions, schema):
    return instructions + "\nThe record's fields:\n" + field_guide(schema) + "Reply with the JSON record only."


def document_text(pages, chosen):
    """pages[i] is page i + 1, laid out as one chunk; chosen: 1-based page
    numbers in order."""
    return "".join(f"[page {n}]\n{pages[n - 1]}\n\n" for n in chosen)


def _folded(text):
    return " ".join(text.replace("\u2019", "'").lower().split())


def _has_title(page, headings):
    for line in page.split("\n"):
        line = _folded(line)
        while True:
            trimmed = line.rstrip(" :|")
            if trimmed.endswith(")") and "(" in trimmed:
                trimmed = trimmed[:trimmed.rindex("(")]
            if trimmed == line:
                break
            line = trimmed
        if any(line.endswith(h) and (len(line) == len(h) or line[-len(h) - 1] == " ") for h in headings):
            return True
    return False


def _figures(text):
    return len(re.findall(r"\d[\d,.]*", text))


def find_key_pages(pages, key_pages):
    found = []
    for key in key_pages:
        headings = [_folded(h) for h in key["headings"]]
        terms = [_folded(t) for t in key["terms"]]
        folded = ["\n".join(_folded(line) for line in page.split("\n")) for page in pages]
        on = [sum(term in page for term in terms) for page in folded]
        titled = [_has_title(page, headings) for page in folded]
        best, best_key = 0, None
        for i, page in enumerate(folded):
            if on[i] < 3:
                continue
            continued = titled[i] and i + 1 < len(folded) and titled[i + 1] and on[i + 1] >= 3
            held = sum(term in page or (continued and term in folded[i + 1]) for term in terms)
            rank = (held + (2 if titled[i] else 0), _figures(page))
            if best_key is None or rank > best_key:
                best, best_key = i + 1, rank
        if best:
            found.append(best)
            found += [n for n in (best - 1, best + 1) if 1 <= n <= len(pages) and on[n - 1] >= 3]
    return found


def user_text(document):
    return "Document:\n" + document + "\nThe JSON record:"


def render_chatml(system, user):
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


def page_budget(context_tokens, max_tokens, system_tokens):
    return context_tokens - max_tokens - system_tokens - 64


def _bm25_terms(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def choose_pages(pages, budget, count_tokens, query, key_pages=()):
    tokens = [count_tokens(f"[page {n}]\n{page}\n\n") for n, page in enumerate(pages, 1)]
    if sum(tokens) <= budget:
        return list(range(1, len(pages) + 1))
    terms = [Counter(_bm25_terms(page)) for page in pages]
    average = sum(sum(t.values()) for t in terms) / max(len(terms), 1)
    query_terms = set(_bm25_terms(query))

    def score(i):
        total, length = 0.0, sum(terms[i].values())
        for term in query_terms:
            frequency = terms[i][term]
            if frequency:
                having = sum(1 for t in terms if t[term])
                idf = math.log(1 + (len(pages) - having + 0.5) / (having + 0.5))
                total += idf * frequency * 2.2 / (frequency + 1.2 * (0.25 + 0.75 * length / max(average, 1)))
        return total

    ranked = [1] + find_key_pages(pages, key_pages) + sorted(range(1, len(pages) + 1), key=lambda n: -score(n - 1))
    chosen, used = [], 0
    for n in ranked:
        if n in chosen or used + tokens[n - 1] > budget:
            continue
        chosen.append(n)
        used += tokens[n - 1]
    return sorted(chosen)


def source_text(text):
    """(words, integers) as SourceText::of."""
    words, integers = set(), set()
    for word in text.split():
        word = word.rstrip(".,;:!?)]}\"'").lstrip("([{\"'")
        if not word or len(word.encode()) > MAX_SOURCE_WORD_BYTES or any(ord(c) < 0x20 for c in word):
            continue
        words.add(word)
        digits = len(word) - len(word.lstrip("0123456789"))
        if 0 < digits <= 12 and (digits == len(word) or word[digits] == "-"):
            integers.add(int(word[:digits]))
    return words, integers


def _trim_to_max_length(text, limit):
    """extract.cpp trim_to_max_length: a string over `limit` characters cut at
    its last space within them (at the limit when there is none)."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit)
    return text[:space] if space != -1 else text[:limit]


def _copyable_string(value, node, words):
    """The value as the source grammar lets it be written: its words that are
    source words, at most the word limit; None when none is."""
    if any(k in node for k in FREE_TEXT_EXCLUDES):
        return value
    limit = node.get("maxLength")
    max_words = MAX_SOURCE_WORDS if limit is None else min(max(limit // 6, 1), MAX_SOURCE_WORDS)
    kept = []
    for word in value.split():
        stripped = word.rstrip(".,;:!?)]}\"'").lstrip("([{\"'")
        if stripped in words:
            kept.append(stripped)
    text = " ".join(kept[:max_words])
    if not text:
        return None
    return _trim_to_max_length(text, limit) if limit is not None else text


def _empty(node, root):
    types = type_set(node, root)
    if "null" in types:
        return None
    if "array" in types:
        return []
    raise ValueError(f"no value for a required field of type {type_names(types)}")


def copyable_record(values, schema, page_text):
    """The record a model constrained by Folio's source grammar can write for
    `values` (a dict of the pack's truth): keys in schema order, every schema
    property present (missing or uncopyable values null / [] / dropped array
    items), keys the schema lacks left out."""
    words, integers = source_text(page_text)

    def shape(value, node):
        node = resolve(node, schema)
        types = type_set(node, schema)
        if value is None:
            return _empty(node, schema)
        if "object" in types and isinstance(value, dict):
            out = {}
            for name, child in node.get("properties", {}).items():
                shaped = shape(value.get(name), child)
                if shaped is None and "null" not in type_set(child, schema):
                    raise ValueError(f"{name}: no copyable value")
                out[name] = shaped
            return out
        if "array" in types and isinstance(value, list):
            items = []
            for item in value:
                try:
                    shaped = shape(item, node.get("items", {}))
                except ValueError:
                    continue
                if shaped is not None and shaped not in items:
                    items.append(shaped)
            return items[:node.get("maxItems", len(items))]
        if "enum" in node:
            return value if value in node["enum"] else _empty(node, schema)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"unexpected value {value!r}")
        if isinstance(value, int):
            return value if value in integers else _empty(node, schema)
        shaped = _copyable_string(value, node, words)
        if shaped is None:
            if "null" in types:
                return None
            raise ValueError(f"{value!r} cannot be copied from the document")
        return shaped

    return shape(values, schema)


def record_text(record):
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)
