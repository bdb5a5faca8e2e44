"""How often RuleFilter.default() flags real text: encyclopedic prose, news, glosses, prompts.

Curated word lists say little about false alarms: real sentences do. This scans corpora that
packages ship, offline, and prints per corpus the sentences scanned, the share flagged (any
match), the share flagged by a match that is not negated, the share the general preset
blocks (``PromptModerator.from_policy(ModerationPolicy.preset("general"))``, rules only: mild
terms and negated matches review), and each flagged sentence's class: the term that
matched, its category and severity. With ``--show N`` it prints N flagged sentences per term
(``--show 0`` for counts only, ``-1`` for every one), so that each can be judged an innocent
sense or a real mention.

Corpora (each skipped, with the reason, when its package is missing):

- ``wikipedia``: the 206 English Wikipedia articles of gensim's test data
  (``enwiki-latest-pages-articles1...-shortened.bz2``), markup stripped by gensim's own
  ``filter_wiki``, split into sentences. The goal: under 0.3% flagged.
- ``news``: the Lee corpus of Australian news (gensim's ``lee_background.cor``).
- ``wordnet``: every gloss of WordNet 3.0 (Debian's ``wordnet-base``), definitions and usage
  examples, one sentence each.
- ``prompts``: the prompt fragments clip-interrogator collected from real text-to-image
  prompts (its ``data/flavors.txt``), and its artist names (``data/artists.txt``).

Run (the bench extra; clip-interrogator without its torch dependencies, for its data alone)::

    apt-get install wordnet-base
    .venv/bin/pip install -e '.[bench]' && .venv/bin/pip install --no-deps clip-interrogator==0.6.0
    .venv/bin/python benchmarks/corpus_false_alarms.py --show 3
"""

from __future__ import annotations

import argparse
import bz2
import collections
import html
import importlib
import importlib.metadata
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from safegen import ModerationPolicy, PromptModerator
from safegen.decision import Action
from safegen.text import RuleFilter, RuleMatch

GOAL_ENCYCLOPEDIC = 0.3  # percent of ordinary encyclopedic sentences flagged, at most
WORDNET = Path("/usr/share/wordnet")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_PAGE = re.compile(r"<page>.*?<ns>(\d+)</ns>.*?<text[^>]*>(.*?)</text>", re.S)


class Missing(Exception):
    """A corpus whose package is not installed."""


def _package_file(distribution: str, path: str) -> Path:
    try:
        found = Path(str(importlib.metadata.distribution(distribution).locate_file(path)))
    except importlib.metadata.PackageNotFoundError:
        raise Missing(f"pip package {distribution!r} is not installed") from None
    if not found.is_file():
        raise Missing(f"{distribution} has no {path}")
    return found


def sentences(text: str) -> Iterator[str]:
    """Split prose into sentences (a plain rule: an end mark, space, a capital)."""
    for paragraph in text.splitlines():
        for sentence in _SENTENCE_END.split(paragraph.strip()):
            if len(sentence.split()) >= 3:
                yield sentence


def wikipedia() -> Iterator[str]:
    """Yield the sentences of the Wikipedia articles in gensim's test data."""
    dump = _package_file(
        "gensim",
        "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    )
    # The bench extra's dependency (untyped): gensim's own markup stripper.
    filter_wiki: Callable[[str], str] = importlib.import_module(
        "gensim.corpora.wikicorpus"
    ).filter_wiki

    with bz2.open(dump) as packed:
        text = packed.read().decode("utf-8")
    for namespace, body in _PAGE.findall(text):
        if namespace != "0" or body.lstrip().lower().startswith("#redirect"):
            continue
        plain = filter_wiki(html.unescape(body))
        # filter_wiki leaves headings (== History ==), list bullets and table rows behind.
        lines = [
            line
            for line in plain.splitlines()
            if line.strip() and not line.lstrip().startswith(("=", "*", "|", "!", "{", "#"))
        ]
        yield from sentences("\n".join(lines))


def news() -> Iterator[str]:
    """Yield the sentences of the Lee news corpus in gensim's test data."""
    path = _package_file("gensim", "gensim/test/test_data/lee_background.cor")
    yield from sentences(path.read_text(encoding="utf-8", errors="replace"))


def wordnet() -> Iterator[str]:
    """Yield every WordNet 3.0 gloss: definitions and quoted usage examples, one each."""
    if not (WORDNET / "data.noun").is_file():
        raise Missing("Debian package wordnet-base is not installed")
    for part in ("noun", "verb", "adj", "adv"):
        for line in (WORDNET / f"data.{part}").open(encoding="latin-1"):
            if line.startswith(" ") or " | " not in line:
                continue  # the licence header
            for piece in line.split(" | ", 1)[1].split(";"):
                piece = piece.strip().strip('"').strip()
                if len(piece.split()) >= 3:
                    yield piece


def prompts() -> Iterator[str]:
    """Yield clip-interrogator's prompt fragments and artist names, taken from real prompts."""
    for name in ("flavors", "artists"):
        path = _package_file("clip-interrogator", f"clip_interrogator/data/{name}.txt")
        yield from (line.strip() for line in path.open(encoding="utf-8") if line.strip())


CORPORA: dict[str, Callable[[], Iterator[str]]] = {
    "wikipedia": wikipedia,
    "news": news,
    "wordnet": wordnet,
    "prompts": prompts,
}


def describe(match: RuleMatch) -> str:
    """Name a match's class: term, category, severity, and whether it is negated."""
    negated = ", negated" if match.negated else ""
    return f"{match.term} ({match.category}, {match.severity}{negated})"


def report(
    name: str, texts: list[str], rules: RuleFilter, general: PromptModerator, show: int
) -> float:
    """Scan one corpus and print its figures; return the percentage of sentences flagged."""
    by_class: dict[str, list[str]] = collections.defaultdict(list)
    flagged = blocking = blocked = 0
    for text in texts:
        matches = rules.scan(text)
        if not matches:
            continue
        flagged += 1
        blocking += any(not m.negated for m in matches)
        blocked += general.moderate(text).action is Action.BLOCK
        for label in sorted({describe(m) for m in matches}):
            by_class[label].append(text)
    rate = 100 * flagged / max(len(texts), 1)
    print(
        f"{name}: {len(texts):,} sentences, {flagged} flagged ({rate:.3f}%), "
        f"{blocking} by a match not negated ({100 * blocking / max(len(texts), 1):.3f}%), "
        f"{blocked} blocked by the general preset ({100 * blocked / max(len(texts), 1):.3f}%)"
    )
    for label, found in sorted(by_class.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"  {len(found):>5}  {label}")
        for text in found if show < 0 else found[:show]:
            print(f"           {text[:160]!r}")
    return rate


def main() -> None:
    """Scan each corpus and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=3, help="sentences shown per class (-1: all)")
    parser.add_argument("--corpus", choices=CORPORA, action="append", help="only these")
    args = parser.parse_args()
    rules = RuleFilter.default()
    general = PromptModerator.from_policy(ModerationPolicy.preset("general"))
    rates = {}
    for name in args.corpus or CORPORA:
        try:
            texts = list(CORPORA[name]())
        except Missing as missing:
            print(f"{name}: skipped ({missing})")
            continue
        rates[name] = report(name, texts, rules, general, args.show)
        print()
    if "wikipedia" in rates:
        verdict = "met" if rates["wikipedia"] < GOAL_ENCYCLOPEDIC else "NOT met"
        print(
            f"encyclopedic sentences flagged: {rates['wikipedia']:.3f}% "
            f"(goal < {GOAL_ENCYCLOPEDIC}%: {verdict})"
        )


if __name__ == "__main__":
    main()
