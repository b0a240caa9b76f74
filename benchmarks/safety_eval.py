"""Safety evaluation on the labelled public data (../shared/data/safety) and the latency benchmark.

    python benchmarks/safety_eval.py                    # regex, regex + learned (grouped CV), latency
    python benchmarks/safety_eval.py --json             # the same as JSON
    python benchmarks/safety_eval.py --cv source,family,random --no-latency
    python benchmarks/safety_eval.py --latency-only      # the moderate policy's overhead on a 4 KB prompt
    python benchmarks/safety_eval.py --classifier /models/prompt-guard:injection:MALICIOUS  # with a model of yours
    python benchmarks/safety_eval.py --moderation https://api.openai.com/v1   # with a moderation service

Recall: a row of ``jailbreak.jsonl`` counts as caught when the level produces a non-allow decision
with an ``injection`` finding (``toxic`` -> toxicity, ``pii`` -> pii, ``secret`` -> secret); at
``moderate``/``strict`` we also report how many would be *acted on* (blocked or redacted). The
false-positive rate is the share of ``benign.jsonl`` rows with any finding kept by the level
(``fp_acted``: blocked or redacted).

The regex detectors are hand-written, but their authors have read this data, so their figures are
optimistic. The learned scorer is fitted on this data, so its figures are cross-validated only:
the training script's nested CV (``scripts/train_safety_scorer.py --cv-only``) gives each row an
out-of-fold score, folds grouped by ``source`` (``family``: by repository, leave-one-out;
``random``: ungrouped, shown only to say what grouping costs); a row counts for "regex + learned"
when either catches it. The held-out split lives elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from llmrelay.safety.classifier import Classifier, ClassifierConfig
from llmrelay.safety.engine import SafetyEngine
from llmrelay.safety.findings import ACTION_RANK
from llmrelay.safety.policy import policy_for_level

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LLMRELAY_SHARED", ROOT.parent / "shared")) / "data" / "safety"
FILES = {"jailbreak": "injection", "toxic": "toxicity", "pii": "pii", "secret": "secret"}
LEVELS = ("low", "moderate", "strict")
Scores = dict[str, list[dict[str, float]]]  # file -> per row: category -> strongest finding's score


def rows(name: str) -> list[dict[str, object]]:
    with open(DATA / f"{name}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def regex_scores(engine: SafetyEngine) -> Scores:
    """The detectors' strongest score per category for every row (what any level then decides on)."""
    policy = policy_for_level("strict")
    out: Scores = {}
    for name in (*FILES, "benign"):
        per_row = []
        for r in rows(name):
            best: dict[str, float] = {}
            for f in engine.scan(str(r["text"]), policy):
                best[f.category] = max(best.get(f.category, 0.0), f.score)
            per_row.append(best)
        out[name] = per_row
    return out


def with_learned(scores: Scores, cv: dict[str, Any], level: str) -> Scores:
    """The detectors' scores merged with the learned scorer's out-of-fold scores the way the engine
    merges them (:func:`llmrelay.safety.engine.merge_learned`)."""
    policy = policy_for_level(level)
    out: Scores = {name: [dict(r) for r in v] for name, v in scores.items()}
    seen: dict[str, int] = {}
    for i, r in enumerate(cv["rows"]):
        name = r["file"]
        k = seen[name] = seen.get(name, -1) + 1
        row = out[name][k]
        for cat, learned in cv["scores"].items():
            s = learned[i]
            if s is None or s < 0.4:
                continue
            if cat in row:
                row[cat] = 1 - (1 - row[cat]) * (1 - s)
            elif policy.learned_alone:
                row[cat] = s
    return out


def summary(scores: Scores, level: str) -> dict[str, float]:
    policy = policy_for_level(level)

    def act(cat: str, score: float) -> str | None:
        return policy.rule(cat).action_for(score)

    def strongest(row: dict[str, float], cat: str) -> str | None:
        """The level's action on the file's category, or on an external moderation hit (a moderation
        service names its own categories; any hit counts for the row's file)."""
        acts = [a for c in (cat, "moderation") if c in row and (a := act(c, row[c])) is not None]
        return max(acts, key=ACTION_RANK.__getitem__) if acts else None

    res: dict[str, float] = {}
    for name, cat in FILES.items():
        acts = [strongest(r, cat) for r in scores[name]]
        res[f"recall_{name}"] = sum(a is not None for a in acts) / len(acts)
        res[f"acted_{name}"] = sum(a in ("block", "redact") for a in acts) / len(acts)
    benign = [[act(c, s) for c, s in r.items()] for r in scores["benign"]]
    res["fp_benign"] = sum(any(a is not None for a in r) for r in benign) / len(benign)
    res["fp_benign_acted"] = sum(any(a in ("block", "redact") for a in r) for r in benign) / len(benign)
    return res


def _script(name: str) -> ModuleType:
    """A training script under scripts/ as a module (its cross-validation is reused here)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def trainer() -> ModuleType:
    return _script("train_safety_scorer")


def lexicon_trainer() -> ModuleType:
    return _script("train_safety_lexicon")


def evaluate(engine: SafetyEngine, groupings: list[str], lexicon_cv: list[str] | None = None,
             classifiers: Sequence[Classifier] = (), moderation: Scores | None = None) -> dict[str, Any]:
    """Per level: the regexes alone (no learned lexicon), the regexes with a learned lexicon
    cross-validated (``lexicon_cv`` groupings) and with the shipped one (in-sample: it was trained
    on these rows), then the MiniLM scorer's figures, then any ``--classifier`` given and the
    ``--moderation`` service's scores: alone and with the shipped detectors (models trained elsewhere:
    these rows are out of their sample)."""
    lex = lexicon_trainer()
    regex = regex_scores(lex.engine_with({}))
    shipped = regex_scores(engine)
    with_models = regex_scores(SafetyEngine(engine.detectors, classifiers=classifiers)) if classifiers else None
    models_alone = regex_scores(SafetyEngine([], classifiers=classifiers)) if classifiers else None
    lex_cvs = {by: lex.cross_validate(by)["scores"] for by in (lexicon_cv if lexicon_cv is not None else ["source", "random"])}
    cvs = {by: trainer().cross_validate(by) for by in groupings}
    quality: dict[str, Any] = {}
    for level in LEVELS:
        quality[level] = {"regex": summary(regex, level)}
        for by, lex_scores in lex_cvs.items():
            quality[level][f"regex+lexicon ({by} CV)"] = summary(lex_scores, level)
        quality[level]["regex+lexicon (IN-SAMPLE, shipped)"] = summary(shipped, level)
        for by, cv in cvs.items():
            quality[level][f"regex+learned ({by} CV)"] = summary(with_learned(regex, cv, level), level)
            quality[level][f"learned alone ({by} CV)"] = cv["summary"][level]
        if with_models is not None and models_alone is not None:
            quality[level]["regex+lexicon+classifiers (shipped)"] = summary(with_models, level)
            quality[level]["classifiers alone"] = summary(models_alone, level)
        if moderation is not None:
            quality[level]["regex+lexicon+moderation (shipped)"] = summary(with_moderation(shipped, moderation), level)
            quality[level]["moderation alone"] = summary(moderation, level)
    return quality


def moderation_scores(base_url: str, api_key: str | None, model: str | None, concurrency: int = 8) -> tuple[Scores, int]:
    """Every row through an OpenAI-compatible moderation endpoint (``safety.moderation`` kind openai):
    each row's strongest ``moderation`` score, and how many calls failed (counted as no finding)."""
    from llmrelay.safety.moderation import ModerationConfig, Moderator
    from llmrelay.transport import AiohttpTransport

    async def run() -> tuple[Scores, int]:
        transport = AiohttpTransport()
        moderator = Moderator(ModerationConfig(kind="openai", base_url=base_url, api_key=api_key, model=model,
                                               timeout_s=60, on_error="fail_open"), transport=transport)
        gate = asyncio.Semaphore(concurrency)
        failed = 0

        async def one(text: str) -> dict[str, float]:
            nonlocal failed
            async with gate:
                findings, error = await moderator.check(text)
            failed += error is not None
            return {"moderation": max(f.score for f in findings)} if findings else {}

        try:
            out = {name: list(await asyncio.gather(*(one(str(r["text"])) for r in rows(name)))) for name in (*FILES, "benign")}
        finally:
            await transport.aclose()
        return out, failed

    return asyncio.run(run())


def with_moderation(scores: Scores, moderation: Scores) -> Scores:
    return {name: [{**a, **b} for a, b in zip(v, moderation[name], strict=True)] for name, v in scores.items()}


def classifiers_from_args(specs: Sequence[str]) -> tuple[Classifier, ...]:
    """``DIR[:CATEGORY[:LABEL,...]]`` -> configured classifiers (the thresholds are the defaults)."""
    out = []
    for spec in specs:
        path, _, rest = spec.partition(":")
        category, _, labels = rest.partition(":")
        cfg: dict[str, Any] = {"path": path, "category": category or "injection"}
        if labels:
            cfg["labels"] = labels.split(",")
        out.append(Classifier(ClassifierConfig.model_validate(cfg)))
    return tuple(out)


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"p50_ms": statistics.median(samples), "p95_ms": samples[int(len(samples) * 0.95)], "min_ms": samples[0]}


def latency(engine: SafetyEngine, level: str = "moderate", size: int = 4096, runs: int = 300) -> dict[str, Any]:
    """Time to inspect a realistic 4 KB prompt (benign prose with an email and a key in it), regex only."""
    filler = " ".join(str(r["text"]) for r in rows("benign")[:60])
    text = (filler[: size - 120] + " contact ops@example.com, key AKIAIOSFODNN7EXAMPLE, call +1 415 555 0100.")[:size]
    policy = policy_for_level(level)
    for _ in range(20):
        engine.inspect(text, policy)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.inspect(text, policy)
        samples.append((time.perf_counter() - t0) * 1000)
    return {"bytes": len(text.encode()), **_percentiles(samples), "detectors_p50_ms": _per_detector(engine, text, runs)}


def _per_detector(engine: SafetyEngine, text: str, runs: int) -> dict[str, float]:
    """Each detector alone on the same text, with a view of its own (so each pays for the words
    and tokens it reads; in the engine one view is shared, so the sum exceeds the whole)."""
    from llmrelay.safety.detectors._view import TextView

    out: dict[str, float] = {}
    for det in engine.detectors:
        scan = getattr(det, "scan_view", None)
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            scan(TextView(text)) if scan is not None else det.scan(text)
            samples.append((time.perf_counter() - t0) * 1000)
        out[det.name] = statistics.median(samples)
    return out


def learned_latency(n: int = 120) -> dict[str, Any] | None:
    """The learned scorer per prompt, on a fixed sample of real rows (short questions to 8 KB jailbreaks)."""
    from llmrelay.safety.learned import LearnedScorer

    try:
        scorer = LearnedScorer.load()
    except RuntimeError:
        return None
    sample = [str(r["text"]) for name in ("benign", "jailbreak", "toxic") for r in rows(name)[: n // 3]]
    scorer.scan("warm up")
    samples = []
    for text in sample:
        t0 = time.perf_counter()
        scorer.scan(text)
        samples.append((time.perf_counter() - t0) * 1000)
    long = " ".join(sample)[:4096]
    four_kb = []
    for _ in range(10):
        t0 = time.perf_counter()
        scorer.scan(long)
        four_kb.append((time.perf_counter() - t0) * 1000)
    return {"prompts": len(sample), **_percentiles(samples), "4kb": _percentiles(four_kb)}


def _print(result: dict[str, Any]) -> None:
    cols = [f"recall_{n}" for n in FILES] + [f"acted_{n}" for n in FILES] + ["fp_benign", "fp_benign_acted"]
    if result["quality"]:
        print("| level | detectors | " + " | ".join(c.replace("recall_", "caught ").replace("acted_", "acted ") for c in cols) + " |")
        print("|---|---|" + "---:|" * len(cols))
    for level, variants in result["quality"].items():
        for name, res in variants.items():
            print(f"| {level} | {name} | " + " | ".join(f"{res[c]:.3f}" if c in res else "" for c in cols) + " |")
    for key in ("latency_moderate_4kb", "learned_latency"):
        if result.get(key) is not None:
            print(f"{key}: {json.dumps(result[key], default=lambda v: round(v, 3))}")
    lat = result.get("latency_moderate_4kb")
    if lat is not None:
        print(_overhead_line(lat))


def _overhead_line(lat: dict[str, Any]) -> str:
    """Issue #7's figure in one line: the moderate policy's overhead on a 4 KB prompt (goal < 1 ms)."""
    return (f"moderate policy overhead on a {lat['bytes']:,}-byte prompt: p50 {lat['p50_ms']:.3f} ms, "
            f"p95 {lat['p95_ms']:.3f} ms, min {lat['min_ms']:.3f} ms (goal: under 1 ms)")


_LEET = str.maketrans("aeiost", "4310$7")


def fingerprint(engine: SafetyEngine, out: Any = sys.stdout) -> None:
    """Every finding of every detector (category, span, score to the last bit, type, rule) and the
    moderate decision, on every row of every file and on three variants of it (upper-cased,
    look-alike letters, doubled spaces, which exercise the lower-casing, de-obfuscation and
    window paths): a speed change that keeps this output byte-identical changed no decision.

        python benchmarks/safety_eval.py --fingerprint > before.txt   # then diff after a change
    """
    from llmrelay.safety.detectors._view import TextView

    policy = policy_for_level("moderate")
    n = 0
    for name in (*FILES, "benign"):
        for r in rows(name):
            t = str(r["text"])
            for v in (t, t.upper(), t.translate(_LEET), t.replace(" ", "  ")[:3000]):
                view = TextView(v)
                for det in engine.detectors:
                    scan = getattr(det, "scan_view", None)
                    fs = scan(view) if scan is not None else det.scan(v)
                    out.write(f"{n} {det.name} " + ";".join(f"{f.category},{f.start},{f.end},{f.score!r},{f.type},{f.rule}" for f in fs) + "\n")
                d = engine.inspect(v, policy)
                out.write(f"{n} decision {d.action} {len(d.text)}\n")
                n += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--latency-only", action="store_true", help="only the latency: the moderate 4 KB overhead and the learned scorer's")
    ap.add_argument("--fingerprint", action="store_true", help="print every finding on every row (and variants) instead; diff two runs")
    ap.add_argument("--cv", default="source,family", help="CV groupings for the learned scorer (source,family,random; '' for none)")
    ap.add_argument("--lexicon-cv", default="source,random", help="CV groupings for the learned lexicon (source,family,random; '' for none)")
    ap.add_argument("--moderation", metavar="BASE_URL", help="also measure an OpenAI-compatible moderation endpoint "
                    "(e.g. https://api.openai.com/v1; key from --moderation-key or OPENAI_API_KEY)")
    ap.add_argument("--moderation-key", default=os.environ.get("OPENAI_API_KEY"), help=argparse.SUPPRESS)
    ap.add_argument("--moderation-model", default=None, help="model name sent to the moderation endpoint")
    ap.add_argument("--classifier", action="append", default=[], metavar="DIR[:CATEGORY[:LABELS]]",
                    help="also measure a local ONNX classifier (safety.classifiers), e.g. /models/prompt-guard:injection:MALICIOUS; "
                         "repeat for several")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"no data at {DATA}", file=sys.stderr)
        return 1
    engine = SafetyEngine()  # regex only: the learned scorer is measured by cross-validation
    if args.fingerprint:
        fingerprint(engine)
        return 0
    groupings = [g for g in args.cv.split(",") if g]
    try:
        classifiers = classifiers_from_args(args.classifier)
    except ValueError as exc:
        print(f"--classifier: {exc}", file=sys.stderr)
        return 2
    moderation = None
    if args.moderation and not args.latency_only:
        moderation, failed = moderation_scores(args.moderation, args.moderation_key, args.moderation_model)
        if failed:
            print(f"--moderation: {failed} calls failed (counted as no finding)", file=sys.stderr)
    quality = {} if args.latency_only else evaluate(engine, groupings, [g for g in args.lexicon_cv.split(",") if g],
                                                    classifiers, moderation)
    result: dict[str, Any] = {"quality": quality}
    if not args.no_latency:
        result["latency_moderate_4kb"] = latency(engine)
        result["learned_latency"] = learned_latency()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
