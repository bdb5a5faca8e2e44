"""Hypothesis strategies for safegen's pure core, in one place."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st

from safegen import (
    REKOGNITION_V7,
    Category,
    ContentType,
    ContentTypeRule,
    ModerationLabel,
    ModerationPolicy,
    Thresholds,
)
from safegen.prompt_policy import TOXICITY_LABELS, PromptPolicy

CATEGORIES: tuple[Category, ...] = tuple(REKOGNITION_V7)
TOP_LEVEL: tuple[Category, ...] = tuple(c for c in CATEGORIES if c.level == 1)

# Scores as policies and responses write them: whole numbers often, arbitrary floats too, and
# the edges.
scores = st.one_of(
    st.integers(0, 100).map(float),
    st.floats(0, 100, allow_nan=False),
    st.sampled_from([0.0, 50.0, 100.0]),
)
categories = st.sampled_from(CATEGORIES)


def label_for(category: Category, confidence: float) -> ModerationLabel:
    """Report *category* the way Rekognition does: with its parent's name and its level."""
    parent = category.path[-2] if category.level > 1 else None
    return ModerationLabel(category.name, confidence, parent=parent, level=category.level)


@st.composite
def rekognition_labels(
    draw: st.DrawFn, *, max_size: int = 8, unknown: st.SearchStrategy[ModerationLabel] | None = None
) -> list[ModerationLabel]:
    """A response's labels: some categories, usually with their ancestor chain.

    Ancestors are reported at the strongest descendant's confidence or, sometimes, at a
    confidence of their own (a label Rekognition found on the ancestor's own evidence).
    """
    chosen = draw(st.lists(categories, max_size=max_size, unique=True))
    reported: dict[Category, float] = {c: draw(scores) for c in chosen}
    if draw(st.booleans()):
        for category in chosen:
            for depth in range(1, category.level):
                ancestor = Category(category.path[:depth])
                own = draw(st.one_of(st.none(), scores))
                strongest = max(reported.get(ancestor, 0.0), reported[category])
                reported[ancestor] = strongest if own is None else own
    labels = [label_for(c, conf) for c, conf in reported.items()]
    if labels:  # the same category twice, at another confidence, maybe spelled differently
        repeats = draw(st.lists(st.sampled_from(labels), max_size=2))
        labels += [
            attrs.evolve(label, name=draw(_respellings(label.name)), confidence=draw(scores))
            for label in repeats
        ]
    extra = draw(st.lists(unknown if unknown is not None else unknown_labels(), max_size=2))
    return draw(st.permutations(labels + extra))


def _respellings(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.upper(), name.lower(), f"  {name} "])


_any_parent = st.one_of(st.none(), st.just(""), categories.map(lambda c: c.name), st.text())
_known_parent = st.one_of(st.none(), categories.map(lambda c: c.name))


@st.composite
def unknown_labels(draw: st.DrawFn, *, known_parent: bool = False) -> ModerationLabel:
    """A label a newer model version might report: an unknown name, under any parent.

    With *known_parent*, the parent is a known category (or none): how a new label appears
    in a real response, where its ancestors are reported at least as confidently as it is.
    """
    name = draw(st.text(min_size=1, max_size=12).map(lambda s: s.strip() or "x"))
    parent = draw(_known_parent if known_parent else _any_parent)
    level = draw(st.one_of(st.none(), st.integers(1, 4)))
    return ModerationLabel(name, draw(scores), parent=parent, level=level)


content_types = st.builds(
    ContentType,
    name=st.sampled_from(["Animated", "Illustrated", "animated", "Photo"]),
    confidence=scores,
)


@st.composite
def thresholds(draw: st.DrawFn) -> Thresholds:
    """One label entry: block_at, review_at, or both (review not above block)."""
    block_at, review_at = draw(st.one_of(st.none(), scores)), draw(st.one_of(st.none(), scores))
    if block_at is None and review_at is None:
        block_at = draw(scores)
    if block_at is not None and review_at is not None and review_at > block_at:
        block_at, review_at = review_at, block_at
    return Thresholds(block_at=block_at, review_at=review_at)


def _label_entries(max_size: int) -> st.SearchStrategy[dict[Category, Thresholds]]:
    return st.dictionaries(categories, thresholds(), max_size=max_size)


content_type_rules = st.builds(
    ContentTypeRule,
    min_confidence=scores,
    labels=_label_entries(3),
    exclude=st.frozensets(categories, max_size=2),
    action=st.sampled_from([None, None, None, "block", "review", "allow"]),
)


@st.composite
def policies(draw: st.DrawFn) -> ModerationPolicy:
    """Any valid policy over the v7 taxonomy."""
    block_at = draw(scores)
    review_at = draw(st.one_of(st.none(), st.floats(0, block_at, allow_nan=False)))
    return ModerationPolicy(
        block_at=block_at,
        review_at=review_at,
        labels=draw(_label_entries(5)),
        exclude=draw(st.frozensets(categories, max_size=3)),
        content_types=draw(
            st.dictionaries(st.sampled_from(["Animated", "Illustrated"]), content_type_rules)
        ),
        not_evaluated=draw(st.sampled_from(["review", "block", "allow"])),
    )


#: What an offline backend may say it sees: any few categories, each with its subtree.
coverages = (
    st.lists(categories, max_size=6)
    .map(lambda cs: tuple(c.path for c in cs))
    .map(lambda paths: tuple("/".join(path) for path in paths))
)


def threshold_locations(mapping: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every place a label threshold is written in a policy mapping, as a key path."""
    locations: list[tuple[Any, ...]] = [("block_at",)]
    if "review_at" in mapping:
        locations.append(("review_at",))

    def entries(prefix: tuple[Any, ...], labels: dict[str, Any]) -> None:
        for name, value in labels.items():
            if isinstance(value, dict):
                locations.extend((*prefix, name, setting) for setting in value)
            else:
                locations.append((*prefix, name))

    entries(("labels",), mapping.get("labels", {}))
    for content_type, rule in mapping.get("content_types", {}).items():
        entries(("content_types", content_type, "labels"), rule.get("labels", {}))
    return locations


# -- prompt text ---------------------------------------------------------------------------

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
# Plain lower-case words: what a term or an allowlisted word looks like.
plain_words = st.text(alphabet="abcdefghijkmnopqrstuvwxyz", min_size=3, max_size=10)


@st.composite
def with_invisible(draw: st.DrawFn, word: str) -> str:
    """*word* with zero-width characters or soft hyphens inserted at random places."""
    chars = list(word)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(chars)))
        chars.insert(position, draw(st.sampled_from(ZERO_WIDTH)))
    return "".join(chars)


# -- images --------------------------------------------------------------------------------


def make_image(
    fmt: str = "PNG", size: tuple[int, int] = (120, 90), *, mode: str = "RGB", seed: int = 1
) -> bytes:
    """Encode a deterministic noisy picture (noise makes blur and size limits observable)."""
    import io
    import random

    from PIL import Image

    rng = random.Random(seed)
    image = Image.new(mode, size)
    bands = len(image.getbands())
    image.putdata(
        [tuple(rng.randrange(256) for _ in range(bands)) for _ in range(size[0] * size[1])]
    )
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@st.composite
def images(draw: st.DrawFn) -> tuple[bytes, str, tuple[int, int]]:
    """A real image in any format Pillow writes, of any size from tiny to wide."""
    fmt = draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]))
    size = (draw(st.integers(1, 400)), draw(st.integers(1, 120)))
    return make_image(fmt, size, seed=draw(st.integers(0, 9))), fmt, size


# -- where a backend says a label sits (policy area, issue 11) ------------------------------

#: A parent and level a backend might report for any label: absent, true, wrong or nonsense.
reported_places = st.tuples(
    st.one_of(st.none(), st.just(""), categories.map(lambda c: c.name), st.text(max_size=12)),
    st.one_of(st.none(), st.integers(1, 5)),
)

_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
_SPACES = [" ", "  ", "\u00a0", "\u3000", "\t", ""]


@st.composite
def disguised_names(draw: st.DrawFn, name: str) -> str:
    """*name* as it reads the same: case, width, accents, invisible characters, other spaces."""
    out = []
    for char in name:
        if char == " ":
            out.append(draw(st.sampled_from(_SPACES)))
            continue
        if char == "-":
            out.append(draw(st.sampled_from(["-", "\u2010", "\u2011", "\u2013"])))
            continue
        char = draw(st.sampled_from([char, char.upper(), char.lower()]))
        if "!" <= char <= "~" and draw(st.booleans()):
            char = chr(ord(char) + 0xFEE0)  # its full-width form
        if char.isalpha() and draw(st.booleans()):
            char += draw(st.sampled_from(["\u0301", "\u0308", "\u0327"]))  # an accent
        if draw(st.booleans()):
            char += draw(st.sampled_from(_INVISIBLE))
        out.append(char)
    return "".join(out).strip() or name


#: Any value of any common type, for arguments a caller may get wrong: None, bools, ints
#: (huge ones too: too large for a float, too long to print), floats (NaN, infinities),
#: text, bytes, and small containers of these.
_huge_ints = st.builds(
    lambda sign, exponent: sign * 10**exponent,  # built, not listed: repr(10**5000) raises
    st.sampled_from([1, -1]),
    st.sampled_from([19, 309, 400, 5000]),
)
arbitrary_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        _huge_ints,
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.binary(max_size=20),
        st.builds(object),
        st.complex_numbers(allow_nan=True, allow_infinity=True),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=3),
        st.frozensets(st.integers() | st.text(max_size=5), max_size=3),
    ),
    max_leaves=6,
)


# -- unknown-name chains and disguised known names (taxonomy area, issue 11) ---------------

_CHAIN_NAMES = ["Foo", "Bar", "Baz", "foo", "B\u200bar"]


@st.composite
def chained_unknown_labels(draw: st.DrawFn, *, parents: tuple[str, ...] = ()) -> ModerationLabel:
    """An unknown label from a few names, whose parent is often another's: chains, forks, cycles.

    Known parents are drawn from *parents* when given (say, the categories a policy names),
    from any category otherwise.
    """
    name = draw(st.sampled_from(_CHAIN_NAMES))
    known = st.sampled_from(parents) if parents else categories.map(lambda c: c.name)
    parent = draw(st.one_of(st.none(), st.sampled_from(_CHAIN_NAMES), known))
    level = draw(st.one_of(st.none(), st.integers(1, 4)))
    return ModerationLabel(name, draw(scores), parent=parent, level=level)


# Characters that render as nothing, drawn independently of the normaliser's own tables.
_UNSEEN = st.one_of(
    st.characters(categories=["Cf"]),
    st.sampled_from(
        ["\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u180b", "\ufe0f", "\U000e0101"]
    ),
)
# What reads as a gap or a dash between words: blanks, spaces, the dash family, minus signs.
_GAPS = st.one_of(
    st.characters(categories=["Zs", "Pd"]),
    st.sampled_from(["\u2800", "\u2212", "\u2043", "\ufe63", "\uff0d", "\u2796", "_", ".", ""]),
)


@st.composite
def unseen_disguised_names(draw: st.DrawFn, name: str) -> str:
    """*name* as :func:`disguised_names` makes it, plus invisible characters, blanks and dashes.

    Any invisible character may stand anywhere, and any space or dash may be any blank, space,
    dash, minus sign or none.
    """
    chars = [draw(_GAPS) if char in " -" else char for char in draw(disguised_names(name))]
    for _ in range(draw(st.integers(0, 3))):
        chars.insert(draw(st.integers(0, len(chars))), draw(_UNSEEN))
    return "".join(chars)


def first_report_of_a_named_parent(labels: list[ModerationLabel], extra: ModerationLabel) -> bool:
    """Whether *extra* is the response's first report of a name another label calls its parent."""
    from safegen.taxonomy import _key

    reported = {_key(label.name) for label in labels}
    named = {_key(label.parent) for label in labels if label.parent is not None}
    return _key(extra.name) in named and _key(extra.name) not in reported


# -- prompt policies (the [prompts] section) ------------------------------------------------------

#: Invented words for the platform's own term lists: no shipped term, no English word.
PROMPT_WORDS = ("blorp", "snazzle", "quibbet", "frindle", "wugset")
#: Terms made of them, single words and phrases (a phrase may contain another term).
prompt_terms = st.one_of(
    st.sampled_from(PROMPT_WORDS),
    st.lists(st.sampled_from(PROMPT_WORDS), min_size=2, max_size=3, unique=True).map(" ".join),
)
prompt_actions = st.sampled_from(["block", "review", "allow"])
#: Shipped terms a policy may remove or a prompt may hold (present in every shipped list).
SHIPPED_SAMPLES = ("cocaine", "swastika", "suicide", "naked")
_PROMPT_CATEGORY_NAMES = ("sexual", "suggestive", "violence", "hate", "drugs", "self_harm")


@st.composite
def prompt_categories(draw: st.DrawFn, *, own: bool) -> dict[str, Any]:
    """One category's table: actions per severity, and (for a category of one's own) terms."""
    table: dict[str, Any] = {}
    if draw(st.booleans()):
        table["action"] = draw(prompt_actions)
    if draw(st.booleans()):
        table["mild"] = draw(prompt_actions)
    terms = draw(st.lists(prompt_terms, max_size=3))
    mild_terms = draw(st.lists(prompt_terms, min_size=0 if terms or not own else 1, max_size=2))
    if terms:
        table["terms"] = terms
    if mild_terms:
        table["mild_terms"] = mild_terms
    return table


@st.composite
def prompt_policy_tables(draw: st.DrawFn) -> dict[str, Any]:
    """Any valid ``[prompts]`` table, over shipped categories and two of the platform's own."""
    table: dict[str, Any] = {}
    categories_: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(_PROMPT_CATEGORY_NAMES), max_size=3, unique=True)):
        categories_[name] = draw(st.one_of(prompt_actions, prompt_categories(own=False)))
    for name in draw(st.lists(st.sampled_from(["brand", "zzz"]), max_size=2, unique=True)):
        categories_[name] = draw(prompt_categories(own=True))
    if categories_:
        table["categories"] = categories_
    if draw(st.booleans()):
        table["allow"] = draw(st.lists(prompt_terms, max_size=2))
    if draw(st.booleans()):
        table["remove"] = draw(st.lists(st.sampled_from(SHIPPED_SAMPLES), max_size=2))
    block_at = draw(scores)
    table["block_at"] = block_at
    if draw(st.booleans()):
        table["review_at"] = draw(st.floats(0, block_at, allow_nan=False))
    labels = draw(st.dictionaries(st.sampled_from(["HATE_SPEECH", "INSULT"]), thresholds()))
    if labels:
        table["labels"] = {name: t.to_mapping() for name, t in labels.items()}
    classes = draw(st.dictionaries(st.sampled_from(["TOXIC", "brand-unsafe"]), thresholds()))
    if classes:
        table["classes"] = {name: t.to_mapping() for name, t in classes.items()}
    if draw(st.booleans()):
        table["on_failure"] = draw(st.sampled_from(["block", "review"]))
    if draw(st.booleans()):
        table["fail_open"] = draw(st.lists(st.sampled_from(["rules", "fake-classifier"])))
    return table


#: Prompts made of the invented words, shipped terms, negations and filler.
prompt_texts = st.lists(
    st.sampled_from([*PROMPT_WORDS, *SHIPPED_SAMPLES, "no", "not", "a", "cat", "with", ","]),
    max_size=8,
).map(" ".join)


# -- issue 12, red-team round: negators near nested terms, clause punctuation ---------------

#: Negators as prompts write them, and look-alikes that are none (digits, weak words).
PROMPT_NEGATORS = ("no", "not", "non-", "without", "never", "no visible", "n0", "free of", "un")
#: Words that may stand between a negator and a term: other objects, modifiers, punctuation.
NEGATION_GAPS = ("at", "a", "watermark", ",", "any", "visible", ".", "regrets")
#: Terms that may contain a shipped term or an invented one (a phrase around an inner term).
nested_prompt_terms = st.lists(
    st.sampled_from([*PROMPT_WORDS, *SHIPPED_SAMPLES]), min_size=1, max_size=3, unique=True
).map(" ".join)
#: Clause punctuation that splits a phrase as a reader reads it (with its usual spacing).
clause_marks = st.sampled_from([", ", ",", ". ", "; ", "! ", "? ", "... ", " , ", ":", " | "])


@st.composite
def negated_prefixes(draw: st.DrawFn) -> str:
    """Words that may precede a term: a negator, perhaps with other words after it."""
    before = draw(st.lists(st.sampled_from([*PROMPT_WORDS, "a", "cat", ","]), max_size=2))
    negator = draw(st.sampled_from(PROMPT_NEGATORS))
    gap = draw(st.lists(st.sampled_from(NEGATION_GAPS), max_size=2))
    return " ".join([*before, negator, *gap])


@st.composite
def negated_prompt_texts(draw: st.DrawFn) -> str:
    """A prompt with a negator a few words before a run of invented and shipped words."""
    body = draw(
        st.lists(st.sampled_from([*PROMPT_WORDS, *SHIPPED_SAMPLES]), min_size=1, max_size=3)
    )
    return " ".join([draw(negated_prefixes()), *body])


def with_a_label_lowered(policy: PromptPolicy, label: str, lower: float) -> list[PromptPolicy]:
    """*policy* with *label*'s block_at lowered to *lower* (review with it), then its review_at.

    The entry goes where the policy keeps it: ``labels`` for a Comprehend label, else ``classes``.
    """
    t = policy.thresholds_for(label)
    block = min(lower, t.block_at)
    field = "labels" if label in TOXICITY_LABELS else "classes"
    entries = getattr(policy, field)
    return [
        attrs.evolve(
            policy, **{field: {**entries, label: Thresholds(block, min(block, t.review_at))}}
        ),
        attrs.evolve(
            policy, **{field: {**entries, label: Thresholds(t.block_at, min(lower, t.review_at))}}
        ),
    ]


# -- issue 16, observability: verdicts that carry a secret prompt where content can hide -------

#: The prompt a verdict was about: two words of letters (any script), so that finding it in an
#: output is no accident (a run of digits would be found in a timestamp).
_secret_words = st.text(st.characters(categories=["L"]), min_size=4, max_size=12)
secret_prompts = st.tuples(_secret_words, _secret_words).map(" ".join)
#: Check and backend names, classifier labels and AWS error codes as configuration writes them.
OBSERVED_NAMES = ("rules", "comprehend-toxicity", "bedrock-guardrail", "custom")
OBSERVED_CODES = ("ThrottlingException", "AccessDeniedException", "ValidationException")


@st.composite
def error_texts(draw: st.DrawFn, secret: str, name: str | None = None) -> str:
    """An error string as safegen writes one, the secret prompt quoted after its fixed prefix."""
    from safegen.errors import MalformedResponseError, ServiceError

    code = draw(st.sampled_from(OBSERVED_CODES))
    error = draw(
        st.sampled_from(
            [
                str(ServiceError(secret, service="comprehend", operation="Op", code=code)),
                repr(KeyError(secret)),
                repr(ValueError(f"bad {secret}")),
                str(MalformedResponseError(f"answer quoted {secret}")),
                f"preflight (max_bytes): {secret}",
                secret,
            ]
        )
    )
    return error if name is None else f"{name}: {error}"


@st.composite
def observed_prompt_verdicts(draw: st.DrawFn, secret: str) -> Any:
    """A prompt verdict whose rule matches quote *secret* and whose failures may quote it."""
    from safegen.decision import Action
    from safegen.prompt import CheckResult, CheckStatus, PromptFinding, PromptVerdict
    from safegen.text import RuleMatch

    findings = []
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from([Action.REVIEW, Action.BLOCK]))
        if draw(st.booleans()):
            match = RuleMatch(secret, "drugs", 0, len(secret), secret)
            findings.append(
                PromptFinding("rules", secret, 100.0, action, "drugs", (0, len(secret)), match)
            )
        else:
            label = draw(st.sampled_from(TOXICITY_LABELS))
            findings.append(PromptFinding("comprehend-toxicity", label, draw(scores), action))
    checks = []
    for name in draw(st.lists(st.sampled_from(OBSERVED_NAMES), unique=True, max_size=4)):
        status = draw(st.sampled_from(list(CheckStatus)))
        error = draw(error_texts(secret)) if status is CheckStatus.FAILED else None
        seconds = draw(st.floats(0, 5, allow_nan=False))
        checks.append(CheckResult(name, status, seconds, error, draw(st.booleans())))
    action = Action.strictest([f.action for f in findings] or [Action.ALLOW])
    return PromptVerdict(action, tuple(findings), tuple(checks))


@st.composite
def observed_image_verdicts(draw: st.DrawFn, secret: str) -> Any:
    """An image verdict judged by a drawn policy, or a failed one whose error quotes *secret*."""
    from safegen.decision import Action
    from safegen.image import ImageVerdict
    from safegen.reports import ImageReport

    seconds = draw(st.floats(0, 5, allow_nan=False))
    backend = draw(st.sampled_from(OBSERVED_NAMES))
    if draw(st.booleans()):
        return ImageVerdict(
            Action.BLOCK, error=draw(error_texts(secret, backend)), seconds=seconds, backend=backend
        )
    labels = draw(rekognition_labels())
    decision = ModerationPolicy().evaluate(labels)
    report = ImageReport(labels, model_version="7.0")
    return ImageVerdict(decision.action, decision, report, seconds=seconds, backend=backend)


# -- issue 16: the async face and per-request policies ------------------------------------------

#: What a backend may do instead of answering well: a service failure, a bare third-party
#: exception, or an answer of the wrong type.
_backend_failures = st.sampled_from(
    [
        ("raise", "service"),
        ("raise", "bare"),
        ("answer", "not a report"),
        ("answer", None),
    ]
)


@st.composite
def image_answers(draw: st.DrawFn) -> tuple[str, Any]:
    """What a fake image backend does: report labels (``("labels", [...])``) or fail."""
    if draw(st.integers(0, 3)) == 0:
        return draw(_backend_failures)
    return "labels", draw(rekognition_labels(max_size=4))


#: The labels a fake classifier may report: Comprehend's and a custom model's.
CLASSIFIER_LABELS = ("HATE_SPEECH", "INSULT", "TOXIC", "brand-unsafe")


@st.composite
def text_answers(draw: st.DrawFn) -> tuple[str, Any]:
    """What a fake text classifier does: report findings (``("findings", [...])``) or fail."""
    if draw(st.integers(0, 3)) == 0:
        return draw(_backend_failures)
    findings = draw(
        st.lists(
            st.builds(
                lambda label, score, action: (label, score, action),
                st.sampled_from(CLASSIFIER_LABELS),
                scores,
                st.sampled_from(["block", "review"]),
            ),
            max_size=3,
        )
    )
    return "findings", findings


@st.composite
def stricter_policies(draw: st.DrawFn, policy: ModerationPolicy) -> ModerationPolicy:
    """*policy* with its thresholds, top level and each label entry's, lowered (never raised)."""
    lower = draw(st.floats(0, 100, allow_nan=False))

    def lowered(value: float | None) -> float | None:
        return None if value is None else min(value, lower)

    labels = {
        category: Thresholds(lowered(t.block_at), lowered(t.review_at))
        for category, t in policy.labels.items()
    }
    return attrs.evolve(
        policy,
        block_at=min(policy.block_at, lower),
        review_at=lowered(policy.review_at),
        labels=labels,
    )


# -- video (safegen.video) ------------------------------------------------------------------------


@st.composite
def video_detections(draw: st.DrawFn, *, max_size: int = 12) -> list[Any]:
    """A video's detections: labels over segments that overlap, touch, nest or are instants.

    Times are drawn on a coarse grid so that boundaries coincide often; content types come
    with some detections; a label chain (an L3 with its ancestors) is often reported over the
    same segment, as Rekognition reports it.
    """
    from safegen.video import VideoDetection

    detections: list[Any] = []
    for _ in range(draw(st.integers(0, max_size))):
        category = draw(categories)
        start = draw(st.integers(0, 40)) * 250
        end = start + draw(st.integers(0, 12)) * 250
        types = tuple(draw(st.lists(content_types, max_size=1)))
        chain = [category]
        if draw(st.booleans()):
            chain += [Category(category.path[:depth]) for depth in range(1, category.level)]
        confidence = draw(scores)
        for member in chain:
            label = label_for(member, confidence)
            detections.append(VideoDetection(label, start, start, end, types))
    return draw(st.permutations(detections))


@st.composite
def unsafe_spans(draw: st.DrawFn) -> Any:
    """An unsafe span of a video timeline: a label, an action, where, how confident."""
    from safegen import Action
    from safegen.video import UnsafeSpan

    start = draw(st.integers(0, 10_000))
    return UnsafeSpan(
        draw(st.sampled_from(["Weapons", "Smoking", "Explicit"])),
        draw(st.sampled_from([Action.REVIEW, Action.BLOCK])),
        start,
        start + draw(st.integers(0, 2_000)),
        draw(scores),
    )
