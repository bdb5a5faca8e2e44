"""How fast and how well RuleFilter scans prompts, against the filters users pick today.

All three filters load the same list: the ~900 terms that ship inside better-profanity.

- better-profanity (PyPI; its own word list): the baseline for the speed ratio.
- obscenity (npm), run with the machine's Node when it is there: the strongest open-source
  filter on obfuscation; its recommended English transformers, the same list as plain patterns.

Prints prompts per second for each on the same prompts, the ratios, and how each does on a
generated set of obfuscated prompts (caught) and innocent prompts (wrongly flagged). The
obfuscations include two that RuleFilter is known to miss (a word split in two by a space,
digits appended). The innocent words are all traps that contain a listed word
(cocktail, Essex, Titicaca): obscenity loads the list as plain patterns, which match inside
words; its own curated English dataset is more careful than that.

Then the worst cases for time: RuleFilter.scan on adversarial texts of 10,000 and 100,000
characters, each as a ratio to scanning ordinary prompts of the same length in the same run,
and the growth from 10k to 100k, which is about 10 when scanning is linear (timed like
timeit, with the garbage collector paused; tests/test_fuzz_text.py counts the work instead).

Run: ``.venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/bench_rules.py``.
Node's package is installed once into ``~/.cache/safegen-bench``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import better_profanity
from better_profanity import profanity

from safegen.text import RuleFilter

TARGET_VS_BETTER_PROFANITY = 100.0
OBSCENITY_VERSION = "0.4.6"
CACHE = Path.home() / ".cache" / "safegen-bench" / f"obscenity-{OBSCENITY_VERSION}"

SUBJECTS = [
    "a woman",
    "an old man",
    "a knight",
    "two children",
    "a robot",
    "a cat",
    "a dancer",
    "a chef",
    "an astronaut",
    "a farmer",
    "a wizard",
    "a surfer",
    "a boxer",
    "a nurse",
]
SCENES = [
    "on a beach at sunset",
    "in a neon city",
    "in a misty forest",
    "on the moon",
    "in a cozy kitchen",
    "at a medieval market",
    "under the sea",
    "in a desert canyon",
    "on a snowy mountain",
    "in a jazz club",
    "at a train station",
    "in a flower field",
]
STYLES = [
    "oil painting",
    "watercolor",
    "35mm photo",
    "studio lighting",
    "anime style",
    "hyperrealistic, 8k",
    "in the style of a comic book",
    "soft focus, golden hour",
    "low poly 3d render",
    "charcoal sketch",
    "cinematic, dramatic shadows",
]
INNOCENT = [
    "classic",
    "Scunthorpe",
    "cocktail",
    "analysis",
    "Dickens",
    "therapist",
    "shiitake",
    "cockpit",
    "Sussex",
    "Essex",
    "bass exercise",
    "assassin",
    "passage",
    "cockatoo",
    "Hancock",
    "pussy willow",
    "Titicaca",
    "document",
    "grape",
    "Middlesex",
    "sextant",
    "scrap metal",
    "arsenal",
    "cumulus",
    "hell's kitchen",
    "Lake Titicaca",
    "Matsushita",
]
ZERO_WIDTH = "\u200b"
HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def obfuscations(word: str) -> dict[str, str]:
    """Each kind of trick applied to *word*."""
    return {
        "case": word.upper(),
        "leetspeak": "".join(LEET.get(c, c) for c in word),
        "spaced": " ".join(word),
        "dotted": ".".join(word),
        "zero-width": ZERO_WIDTH.join(word),
        "homoglyph": "".join(HOMOGLYPHS.get(c, c) for c in word),
        "stretched": "".join(c * 3 if c in "aeiou" else c for c in word),
        "fullwidth": "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in word),
        "emoji between": "\N{FIRE}".join(word),
        # Tricks RuleFilter is known to miss, so that "caught" is not graded on its own test:
        "split in two": f"{word[: len(word) // 2]} {word[len(word) // 2 :]}",
        "digits appended": f"{word}69",
    }


def word_list() -> list[str]:
    """Read the term list that ships inside better-profanity."""
    path = Path(better_profanity.__file__).parent / "profanity_wordlist.txt"
    return [w.strip() for w in path.read_text().splitlines() if w.strip()]


def prompts(words: Sequence[str], count: int, seed: int = 7) -> list[str]:
    """Realistic image prompts; one in five carries a listed word, often obfuscated."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        prompt = f"{rng.choice(SUBJECTS)} {rng.choice(SCENES)}, {rng.choice(STYLES)}"
        roll = rng.random()
        if roll < 0.2:
            word = rng.choice([w for w in words if " " not in w and w.isalpha()])
            trick = rng.choice([word, *obfuscations(word.lower()).values()])
            prompt = f"{prompt}, {trick}"
        elif roll < 0.3:
            prompt = f"{prompt}, {rng.choice(INNOCENT)}"
        out.append(prompt)
    return out


def quality_sets(words: Sequence[str], seed: int = 11) -> tuple[list[str], list[str]]:
    """Obfuscated prompts (should be caught) and innocent prompts (should not be flagged)."""
    rng = random.Random(seed)
    simple = [w.lower() for w in words if w.isalpha() and len(w) >= 4]
    sample = rng.sample(simple, 40)
    obfuscated = [f"a picture of {o}" for w in sample for o in obfuscations(w).values()]
    innocent = [f"a picture of {w}" for w in INNOCENT]
    return obfuscated, innocent


def per_second(check: Callable[[str], object], texts: Sequence[str], repeats: int) -> float:
    """Best-of-*repeats* texts per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            check(text)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


# Worst cases for scanning time, each a unit repeated to the length measured: the repeated
# match that once made scanning quadratic, spaced and stretched letters, separator runs,
# partial and overlapping matches, alternating look-alikes, prompt syntax, nesting.
ADVERSARIAL = {
    "a term repeated (nude nude ...)": "nude ",
    "a spaced-out term repeated": "s e x y ",
    "a hyphenated term repeated": "na-ked-",
    "spaced single letters (a a a ...)": "a ",
    "one spaced letter (x x x ...)": "x ",
    "one letter (aaaa...)": "a",
    "separators only": " -.\u2014",
    "partial matches (nud nud ...)": "nud ",
    "overlapping spaced prefixes": "s e x s e ",
    "alternating look-alikes": "n\u0430k\u0435d ",
    "zero-width between every letter": "n\u200ba\u200bk\u200be\u200bd ",
    "leetspeak word salad": "n4k3d 5h1t $3x ",
    "alternations ({nude|sexy} ...)": "{nude|sexy} ",
    "weights ((nude:1.3) ...)": "(nude:1.3) ",
    "open brackets ({[{[...)": "{[",
    "nested alternations": "{[a|",
    "symbols between letters (a!a!...)": "a!",
    "a multi-word term repeated": "blow job ",
    "enclosed letters": "\U0001f17d\U0001f184\U0001f173\U0001f174 ",
}
WORST_LENGTHS = (10_000, 100_000)
# Linear scanning: ten times the text may cost at most this many times as long.
TARGET_GROWTH = 15.0


def repeat_to(unit: str, length: int) -> str:
    """Repeat *unit* and cut it to exactly *length* characters."""
    return (unit * (length // len(unit) + 1))[:length]


def seconds(check: Callable[[str], object], text: str, repeats: int) -> float:
    """Best-of-*repeats* seconds for one call, with the garbage collector paused (as timeit).

    A full collection, triggered by whatever the process allocated before, walks every object
    the process holds; whether one falls inside a call depends on the size measured, so it
    would blur the growth from 10k to 100k characters that this figure is about.
    """
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            check(text)
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def worst_cases(rules: RuleFilter, prose: str, repeats: int) -> bool:
    """Print the worst-case scanning times; return whether every one grows linearly.

    Baseline: scanning ordinary prompts (the timing run's prompts, joined) of the same length,
    in the same run. Growth is the 100k time over the 10k time: about 10 when linear.
    """
    print()
    print("worst cases: RuleFilter.scan seconds, and ratio to ordinary prompts of the same length")
    baseline = {n: seconds(rules.scan, repeat_to(prose, n), repeats) for n in WORST_LENGTHS}
    print(
        f"  {'ordinary prompts (baseline)':<36} "
        + "".join(f"{n // 1000:>6}k {baseline[n]:7.3f} s {1.0:6.1f}x" for n in WORST_LENGTHS)
        + f"  growth {baseline[WORST_LENGTHS[1]] / baseline[WORST_LENGTHS[0]]:5.1f}"
    )
    linear = True
    for name, unit in ADVERSARIAL.items():
        took = {n: seconds(rules.scan, repeat_to(unit, n), repeats) for n in WORST_LENGTHS}
        growth = took[WORST_LENGTHS[1]] / max(took[WORST_LENGTHS[0]], 1e-9)
        linear = linear and growth <= TARGET_GROWTH
        print(
            f"  {name:<36} "
            + "".join(
                f"{n // 1000:>6}k {took[n]:7.3f} s {took[n] / baseline[n]:6.1f}x"
                for n in WORST_LENGTHS
            )
            + f"  growth {growth:5.1f}"
        )
    print(f"  growth 100k/10k: about 10 when linear (target <= {TARGET_GROWTH:.0f} for every case)")
    return linear


JS_HARNESS = r"""
const o = require('obscenity');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const data = new o.DataSet();
for (const w of input.words) {
  const escaped = w.replace(/[\[\]?|\\]/g, (c) => '\\' + c);
  try { data.addPhrase((p) => p.addPattern(o.parseRawPattern(escaped))); } catch (e) {}
}
const matcher = new o.RegExpMatcher({ ...data.build(), ...o.englishRecommendedTransformers });
let best = Infinity;
for (let r = 0; r < input.repeats; r++) {
  const start = process.hrtime.bigint();
  for (const t of input.prompts) matcher.hasMatch(t);
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
const flags = (texts) => texts.map((t) => matcher.hasMatch(t));
console.log(JSON.stringify({
  per_second: input.prompts.length / best,
  obfuscated: flags(input.obfuscated), innocent: flags(input.innocent),
}));
"""


@dataclasses.dataclass
class PeerResult:
    """What the Node harness measured."""

    per_second: float
    obfuscated: list[bool]
    innocent: list[bool]


def run_obscenity(payload: dict[str, object]) -> PeerResult | str:
    """Run obscenity under Node; return its figures, or why it could not run."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "Node.js is not installed on this machine"
    if not (CACHE / "node_modules" / "obscenity").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--silent", "--prefix", str(CACHE), f"obscenity@{OBSCENITY_VERSION}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return f"npm could not install obscenity: {done.stderr.strip()[:200]}"
    (CACHE / "harness.js").write_text(JS_HARNESS)
    done = subprocess.run(
        [node, str(CACHE / "harness.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
        cwd=CACHE,
    )
    if done.returncode != 0:
        return f"obscenity failed: {done.stderr.strip()[:200]}"
    return PeerResult(**json.loads(done.stdout))


def main() -> None:
    """Measure and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000, help="prompts per timing run")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs; the best counts")
    args = parser.parse_args()

    words = word_list()
    texts = prompts(words, args.prompts)
    obfuscated, innocent = quality_sets(words)

    rules = RuleFilter(words)
    profanity.load_censor_words(words)

    ours = per_second(rules.scan, texts, args.repeats)
    theirs = per_second(profanity.contains_profanity, texts, args.repeats)
    # The shipped list as users get it: its own terms, innocent phrases allowed, negation read.
    shipped = per_second(RuleFilter.default().scan, texts, args.repeats)
    obscenity = run_obscenity(
        {
            "words": words,
            "prompts": texts,
            "repeats": args.repeats,
            "obfuscated": obfuscated,
            "innocent": innocent,
        }
    )

    print(f"rule filter: {len(words)} terms (better-profanity's list), {len(texts)} prompts")
    print(f"{'filter':<18} {'prompts/s':>12} {'us/prompt':>10} {'caught':>10} {'false alarms':>13}")

    def row(name: str, rate: float, caught: int, flagged: int) -> None:
        print(
            f"{name:<18} {rate:>12,.0f} {1e6 / rate:>10.1f} "
            f"{caught:>5}/{len(obfuscated):<4} {flagged:>6}/{len(innocent):<6}"
        )

    row(
        "safegen",
        ours,
        sum(bool(rules.scan(t)) for t in obfuscated),
        sum(bool(rules.scan(t)) for t in innocent),
    )
    row(
        "better-profanity",
        theirs,
        sum(profanity.contains_profanity(t) for t in obfuscated),
        sum(profanity.contains_profanity(t) for t in innocent),
    )
    if isinstance(obscenity, PeerResult):
        row(
            "obscenity (node)",
            obscenity.per_second,
            sum(obscenity.obfuscated),
            sum(obscenity.innocent),
        )
    else:
        print(f"{'obscenity (node)':<18} not run: {obscenity}")
    print()
    print(
        f"safegen vs better-profanity: {ours / theirs:,.1f}x "
        f"(target >= {TARGET_VS_BETTER_PROFANITY:.0f}x)"
    )
    if isinstance(obscenity, PeerResult):
        print(f"safegen vs obscenity: {ours / obscenity.per_second:.2f}x (target >= 1.00x)")
    print(
        f"safegen's shipped list (RuleFilter.default(), innocent phrases allowed): "
        f"{shipped:,.0f} prompts/s, {shipped / theirs:,.1f}x better-profanity"
    )

    linear = worst_cases(rules, " ".join(texts), repeats=args.repeats)
    print(f"  every worst case linear: {'yes' if linear else 'NO'}")


if __name__ == "__main__":
    main()
