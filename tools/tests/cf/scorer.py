"""An independent Python rendering of the SemEval-2020 Task 5 subtask-2 scorer's per-sentence rules
(as the organisers' script computes them: Python slicing and str.split, so the end character is
left out of word counts), for tools/tests/cf_cli.rs to compare with tools/src/cf/metrics.rs.

stdin: one JSON object per line, {"s": sentence, "t": [a_s, a_e, c_s, c_e], "p": [...]} (gold,
prediction). stdout: one JSON object per line {"em", "p", "r", "f1"}, then one with the means
over all lines {"mean_em", "mean_f1", "mean_p", "mean_r"} (numpy, as the scorer averages).
"""
import json
import sys

import numpy as np


def words(sentence, s, e):
    return len(sentence[s:e].split())


def overlap(sentence, t_s, t_e, s_s, s_e):
    if not (s_e < t_s or s_s > t_e):
        return words(sentence, max(t_s, s_s), min(t_e, s_e))
    return 0


def score(sentence, truth, sub):
    t_a_s, t_a_e, t_c_s, t_c_e = truth
    s_a_s, s_a_e, s_c_s, s_c_e = sub
    illegal = (
        s_a_s == -1
        or (s_c_s == -1 and s_c_e != -1)
        or (s_c_s != -1 and s_c_e == -1)
        or s_a_s >= s_a_e
        or s_c_s > s_c_e
        or min(sub) < -1
    )
    if illegal:
        return 0, 0.0, 0.0, 0.0
    em = int(list(truth) == list(sub))
    truth_len = words(sentence, t_a_s, t_a_e)
    if not (t_c_s == -1 and t_c_e == -1):
        truth_len += words(sentence, t_c_s, t_c_e)
    sub_len = words(sentence, s_a_s, s_a_e)
    if not (s_c_s == -1 and s_c_e == -1):
        sub_len += words(sentence, s_c_s, s_c_e)
    inter = overlap(sentence, t_a_s, t_a_e, s_a_s, s_a_e)
    if not (t_c_s == -1 and t_c_e == -1) and not (s_c_s == -1 and s_c_e == -1):
        inter += overlap(sentence, t_c_s, t_c_e, s_c_s, s_c_e)
    if inter == 0:
        return em, 0.0, 0.0, 0.0
    p = inter / sub_len
    r = inter / truth_len
    return em, p, r, 2 * p * r / (p + r)


def main():
    rows = []
    for line in sys.stdin:
        if line.strip():
            case = json.loads(line)
            em, p, r, f1 = score(case["s"], case["t"], case["p"])
            rows.append((em, p, r, f1))
            print(json.dumps({"em": em, "p": p, "r": r, "f1": f1}))
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    print(json.dumps({"mean_em": float(np.mean(a[:, 0])), "mean_p": float(np.mean(a[:, 1])),
                      "mean_r": float(np.mean(a[:, 2])), "mean_f1": float(np.mean(a[:, 3]))}))


main()
