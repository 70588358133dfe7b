#!/usr/bin/env python3
"""Markdown tables for RESULTS.md from results/attacks/*.json (scripts/attack-results.sh)."""
import json, os, sys

D = os.path.join(os.path.dirname(__file__), "..", "results", "attacks")

def load(name):
    p = os.path.join(D, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None

def cell(b):
    if b is None:
        return "-"
    l2 = "-" if b["l2_mean"] is None else f'{b["l2_mean"]:.2f}'
    return f'{100 * b["success"]:.1f}% / {l2}'

ATTACKS = ["fgsm", "bim", "pgd-linf", "pgd-l2", "mi-fgsm", "deepfool", "cw-l2"]

def table(model):
    print(f"\n**{model}**: success rate / mean L2 of the successful examples (pixel scale [0, 1]) over "
          "the first N test images classified correctly at each width (C&W: N at 8 and 2 bits, in brackets at 4 and 1)\n")
    print("| attack | ADV-ReLU | N | 8 bits | 4 bits | 2 bits | 1 bit |")
    print("|---|---|---|---|---|---|---|")
    for a in ATTACKS:
        for adv in ["", "-adv"]:
            cells = []
            ns = []
            for w in ["8", "4", "2", "1"]:
                if a == "cw-l2":
                    r = load(f"{model}-cw-l2-8-2{adv}" if w in "82" else f"{model}-cw-l2-4-1{adv}")
                else:
                    r = load(f"{model}-{a}-table{adv}")
                b = r and r["bits"].get(w)
                cells.append(cell(b))
                if b and b["n"] not in ns:
                    ns.append(b["n"])
            n = " (".join(str(x) for x in ns) + (")" if len(ns) > 1 else "")
            print(f'| {a} | {"yes" if adv else "no"} | {n or "-"} | ' + " | ".join(cells) + " |")

def target(model):
    print(f"\n**{model}**: ADV-ReLU against the plain attack (mean L2 of successful examples; ratio = ADV-ReLU / plain, target <= 0.90 at equal or higher success)\n")
    print("| attack | N | width | plain: success, L2 mean, L2 median | ADV-ReLU: success, L2 mean, L2 median | L2 ratio | ms/image plain, ADV-ReLU |")
    print("|---|---|---|---|---|---|---|")
    for a, name in [("deepfool", "deepfool-8-2"), ("pgd-l2 (minimal eps)", "pgd-l2-min-8-2"), ("cw-l2", "cw-l2-8-2")]:
        p, q = load(f"{model}-{name}"), load(f"{model}-{name}-adv")
        if not p or not q:
            continue
        for w in ["8", "2"]:
            x, y = p["bits"][w], q["bits"][w]
            ratio = y["l2_mean"] / x["l2_mean"] if x["l2_mean"] and y["l2_mean"] else float("nan")
            print(f'| {a} | {x["n"]} | {w} | {100*x["success"]:.1f}%, {x["l2_mean"]:.3f}, {x["l2_median"]:.3f} | '
                  f'{100*y["success"]:.1f}%, {y["l2_mean"]:.3f}, {y["l2_median"]:.3f} | {ratio:.3f} | '
                  f'{x["ms_per_image"]:.0f}, {y["ms_per_image"]:.0f} |')

def transfer(model, attack):
    r = load(f"{model}-{attack}-transfer")
    if not r:
        return
    t = r["transfer"]
    ws = sorted(t.keys(), key=int)
    print(f"\n**{model}, {attack}**: crafted at the row's width, success rate when run at the column's width "
          f"({r['bits'][ws[0]]['n']} images classified correctly at every width)\n")
    print("| crafted \\ run at | " + " | ".join(ws) + " |")
    print("|---|" + "---|" * len(ws))
    for c in ws:
        print(f"| {c} | " + " | ".join(f'{100 * t[c][e]:.0f}%' for e in ws) + " |")

what = sys.argv[1] if len(sys.argv) > 1 else "all"
for m in ["mnist", "fashion"]:
    if what in ("all", "target"):
        target(m)
    if what in ("all", "table"):
        table(m)
    if what in ("all", "transfer"):
        for a in ["pgd-linf", "deepfool"]:
            transfer(m, a)
