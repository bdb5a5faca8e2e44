"""How the rule filter reads a prompt into words: syntax, leetspeak, pieces joined, stems.

Private to :mod:`safegen.text.rules`, whose docstring says what each step sees through. Every
step is linear in the length of the text. Pure: no I/O.
"""

from __future__ import annotations

import collections
import functools
import itertools
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import attrs

from safegen.text.normalize import Transform

# Leetspeak digits and symbols, and the one letter folded for everyone: l and i look alike.
_LEET = {"0": "o", "1": "i", "!": "i", "|": "i", "3": "e", "4": "a", "@": "a", "5": "s",
         "$": "s", "7": "t", "+": "t", "8": "b", "9": "g"}  # fmt: skip
_CLASSES = str.maketrans({**_LEET, "l": "i"})
_LEET_CHARS = frozenset(_LEET)
# A word: letters and leet characters; "!" only between two of them, where it is no punctuation.
_WORD = re.compile(r"(?:[a-z0-9@$|+]|(?<=[a-z0-9@$|+])!+(?=[a-z0-9@$|+]))+")
_HAS_LETTER = re.compile(r"[a-z]")
# A letter or digit of any script: a gap holding one is text, not a separator.
_GAP_TEXT = re.compile(r"[^\W_]")
_GAP_SPACE = re.compile(r"\s")
# A word broken by a hyphen at the end of a line (or before a space): "mastur-\nbation".
_HYPHEN_BREAK = re.compile(r"-\s+")
# Leetspeak symbols that are no letters or digits: the second reading takes them as separators
# (a hyphen: a tight one, so that pieces they split, as in "n|sfw", are joined).
_SYMBOLS = str.maketrans(dict.fromkeys("!|+@$", "-"))
# A prompt weight after a colon: (word:1.3), <lora:name:0.8>, [from:to:0.5].
_WEIGHT = re.compile(r":\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_BRACKETS = re.compile(r"[{}\[\]|]")
_CLOSERS = {"{": "}", "[": "]"}
_RUNS = re.compile(r"(.)\1+")
_RUN_OF_ONE = re.compile(r"(.)\1*")
# Endings a word of a term may carry, in letter classes: inflections (-s, -es, -ing, -ed, -er,
# -est), the informal -in for -ing (fuckin) and -z for a plural s (nudez), -ly (nakedly), and
# the commonest informal derivations (-y, -ie, -ies, -ish, -ness, -o, -os). A word these make
# by chance (cumin, brain, bray) is in the innocent list.
_SUFFIXES = tuple(
    s.translate(_CLASSES)  # in letter classes: -ly reads -iy
    for s in (
        "s", "es", "ing", "in", "ed", "er", "ers", "est", "y", "ie", "ies", "ish", "ness", "o",
        "os", "z", "ly",
    )
)  # fmt: skip
# The endings that may replace a term's final e (nude: nuding, nudish; gore: gory;
# masturbate: masturbator) ...
_E_DROPPED = ("ing", "in", "er", "ers", "ed", "y", "ish", "or", "ors")
# ... and those before which a term's final y reads as i (sexy: sexier, sexiest, orgy: orgies).
_Y_TO_I = ("es", "er", "ers", "est", "ed", "ness")
# Agent nouns that replace the y of a long term (pornography: pornographer). Short words in
# y are adjectives or pet forms whose -er is a comparative or another word (titty, titter).
_Y_DROPPED = ("er", "ers")
_Y_DROPPED_FROM = 8  # letters a term needs for them
# Endings only some terms take: their stems are tried for every word (cheap), matched by none.
_STEM_ONLY = ("or", "ors")
# Reflexive pronouns, one class: a term with one of them in it (kill myself) stands for all.
_REFLEXIVES = (
    "myself", "yourself", "himself", "herself", "itself", "oneself", "ourselves", "ourself",
    "yourselves", "themselves", "themself", "thyself", "urself",
)  # fmt: skip
# Possessive determiners, one class: a term with one of them in it (slit my wrists) stands for
# all (slit his wrists, cut your wrists).
_POSSESSIVES = ("my", "your", "ur", "his", "her", "their", "our", "its", "thy", "yo")
# A reflexive pronoun written as two words (kill my self, kill ur self): the first words...
_SPLIT_REFLEXIVE = ("my", "your", "ur", "yo", "him", "her", "it", "one", "our", "them", "thy")
_MAX_JOINED = 24  # the longest word joined from pieces split by separators, in pieces


_NOTHING: frozenset[Transform] = frozenset()
_COLLAPSED = frozenset({Transform.SEPARATORS_COLLAPSED})


def _squeeze(word: str) -> str:
    # Words repeat in prompts: remember short ones (a long one is rare, and never pinned).
    return _squeeze_short(word) if len(word) <= 64 else _RUNS.sub(r"\1", word)


@functools.lru_cache(maxsize=4096)
def _squeeze_short(word: str) -> str:
    return _RUNS.sub(r"\1", word)


class _Word(NamedTuple):
    """A word of the text, in skeleton coordinates, read as letter classes.

    A lone digit or symbol (``4``) is kept as a word without letters: it is no word on its
    own, but it may be a letter of a spaced-out one (``n 4 k 3 d``).
    """

    start: int
    end: int
    classes: str
    transforms: frozenset[Transform]
    has_letter: bool = True


_ENDINGS = "|".join(_SUFFIXES)
# The endings as a squeezed word shows them (-ness reads -nes).
_SQUEEZED_SUFFIXES = tuple(
    dict.fromkeys(_RUNS.sub(r"\1", s).translate(_CLASSES) for s in (*_SUFFIXES, *_STEM_ONLY))
)
_E_DROPPED_SQUEEZED = frozenset(_RUNS.sub(r"\1", s) for s in _E_DROPPED)
_Y_TO_I_SQUEEZED = frozenset(_RUNS.sub(r"\1", s) for s in _Y_TO_I)
_REFLEXIVE_CLASSES = tuple(dict.fromkeys(w.translate(_CLASSES) for w in _REFLEXIVES))
_POSSESSIVE_CLASSES = tuple(dict.fromkeys(w.translate(_CLASSES) for w in _POSSESSIVES))
_SPLIT_CLASSES = tuple(dict.fromkeys(w.translate(_CLASSES) for w in _SPLIT_REFLEXIVE))


def _runs(word: str) -> list[str]:
    """Return the pattern of each letter run of *word*: at least as many copies as it has."""
    return [
        f"{re.escape(run[0])}{{{len(run)},}}"
        for run in (m.group() for m in _RUN_OF_ONE.finditer(word))
    ]


@attrs.frozen
class _Pattern:
    """One word of a compiled term: its squeezed keys and the ways a text word may spell it.

    Each letter run of the term may be longer in the text, never shorter; an ending of
    :data:`_SUFFIXES` may follow. A term ending in a single ``e`` may drop it before a vowel
    ending (``nuding``, ``nudish``, ``masturbator``), one ending in a single ``y`` reads it as
    ``i`` before ``-es``, ``-er``, ``-est``, ``-ed`` or ``-ness`` (``orgies``, ``sexier``), and
    a long one drops it before ``-er`` (``pornographer``). A term listed with ``-ing`` stands
    for its other forms (``snorting``: ``snorted``, ``snorts``). In a term of several words, a
    word ending in a single ``s`` may be written without it (``slit wrist``), a reflexive
    pronoun stands for any of them, in one word or two (``kill myself``: ``kill yourself``,
    ``kill ur self``) and a possessive for any other (``slit my wrists``: ``slit his wrists``).

    :param keys: the squeezed spellings a text word is looked up by, when this word comes first.
    :param spellings: every squeezed spelling the word may take, endings and all: their
        beginnings are what pieces split by separators may be joined into.
    :param forms: each way to spell the word (a regular expression with a ``body`` and an
        optional ``suffix`` group), with the number of letters its body needs at least and
        whether it is always an inflection (another form of a term listed with an ending).
    :param split: for a reflexive pronoun, the two words it may be written as (``my self``).
    """

    keys: tuple[str, ...]
    spellings: tuple[str, ...]
    forms: tuple[tuple[re.Pattern[str], int, bool], ...]
    split: tuple[_Pattern, _Pattern] | None = None

    @property
    def key(self) -> str:
        """The squeezed spelling of the word as written."""
        return self.keys[0]

    @classmethod
    def compile(cls, word: str, *, in_phrase: bool = False, term: bool = False) -> _Pattern:
        """Compile a word of a term (*term*) or an allowed entry, alone or in a phrase."""
        if in_phrase and word in _REFLEXIVE_CLASSES:
            return cls._one_of(word, _REFLEXIVE_CLASSES, split=True)
        if in_phrase and word in _POSSESSIVE_CLASSES:
            return cls._one_of(word, _POSSESSIVE_CLASSES)
        runs = [m.group() for m in _RUN_OF_ONE.finditer(word)]
        pieces = _runs(word)
        forms = [
            (re.compile(f"(?P<body>{''.join(pieces)})(?P<suffix>{_ENDINGS})?"), len(word), False)
        ]
        keys = [_squeeze(word)]
        spellings = [_squeeze(word + s) for s in ("", *_SUFFIXES)]
        if len(runs) > 1 and runs[-1] in ("e", "y"):
            stem, endings = (
                (word[:-1], _E_DROPPED) if runs[-1] == "e" else (word[:-1] + "i", _Y_TO_I)
            )
            body = "".join(_runs(stem))
            forms.append(
                (re.compile(f"(?P<body>{body})(?P<suffix>{'|'.join(endings)})"), len(stem), False)
            )
            spellings += [_squeeze(stem + s) for s in endings]
            if runs[-1] == "y" and len(word) >= _Y_DROPPED_FROM:
                body = "".join(_runs(word[:-1]))
                forms.append(
                    (
                        re.compile(f"(?P<body>{body})(?P<suffix>{'|'.join(_Y_DROPPED)})"),
                        len(word) - 1,
                        False,
                    )
                )
                spellings += [_squeeze(word[:-1] + s) for s in _Y_DROPPED]
        if term and not in_phrase and word.endswith("ing") and len(word) >= 6:
            # A term listed with -ing (snorting): its stem with another ending (snorted,
            # snorts), never bare (lynching is no reason to flag Lynch).
            stem = word[:-3]
            for bare in dict.fromkeys((stem, stem[:-1] if stem[-1] == stem[-2] else stem)):
                forms.append(
                    (
                        re.compile(f"(?P<body>{''.join(_runs(bare))})(?P<suffix>{_ENDINGS})"),
                        len(bare),
                        True,
                    )
                )
                keys.append(_squeeze(bare))
                spellings += [_squeeze(bare + s) for s in ("", *_SUFFIXES)]
        if in_phrase and len(word) >= 4 and runs[-1] == "s" and len(runs) > 1:
            forms.append(
                (re.compile(f"(?P<body>{''.join(pieces[:-1])})(?P<suffix>)"), len(word) - 1, False)
            )
            keys.append(_squeeze(word[:-1]))
            spellings.append(_squeeze(word[:-1]))
        return cls(tuple(dict.fromkeys(keys)), tuple(dict.fromkeys(spellings)), tuple(forms))

    @classmethod
    def _one_of(cls, word: str, words: tuple[str, ...], *, split: bool = False) -> _Pattern:
        """Compile a word of a closed class (reflexives, possessives): any of them, as is."""
        bodies = "|".join("".join(_runs(w)) for w in words)
        every = tuple(dict.fromkeys(_squeeze(w) for w in (word, *words)))
        whole = re.compile(f"(?P<body>{bodies})(?P<suffix>)")
        parts = None
        if split:
            first = cls._one_of(_SPLIT_CLASSES[0], _SPLIT_CLASSES)
            self_ = cls._one_of(_SELVES[0], _SELVES)
            parts = (first, self_)
        # -1: stretched unless one of the class as written.
        return cls(every, every, ((whole, -1, False),), parts)

    def match(self, word: str) -> frozenset[Transform] | None:
        """Return what was undone if *word* spells this pattern's word, else ``None``."""
        found, length, inflected = None, 0, False
        for form, length, inflected in self.forms:  # noqa: B007  (the form that matched counts)
            found = form.fullmatch(word)
            if found is not None:
                break
        if found is None:
            return None
        undone = set()
        if found["suffix"] or inflected:
            undone.add(Transform.INFLECTION)
        body = found["body"]
        if (
            (body not in _REFLEXIVE_CLASSES + _POSSESSIVE_CLASSES + _SPLIT_CLASSES + _SELVES)
            if length < 0
            else len(body) > length
        ):
            undone.add(Transform.REPEATS_SQUEEZED)
        return frozenset(undone)


_SELVES = ("seif", "seives")  # self, selves in letter classes


class _Token(NamedTuple):
    """A way to read words ``first`` to ``last`` of the text as one word.

    Either the word itself, or the pieces of a word split by separators, joined.
    """

    first: int
    last: int
    word: _Word
    undone: frozenset[Transform]


@attrs.frozen
class _Lattice:
    """Every way to read the text as a sequence of words, for matching terms and phrases.

    :param words: the words of the text, in order; each with a letter is a token of its own.
    :param joined: the tokens joined from pieces split by separators, by the word they start at.
    :param after: for each word, the next word where a token starts (``-1`` for none).
    """

    words: list[_Word]
    joined: dict[int, list[_Token]]
    after: list[int]

    @classmethod
    def build(cls, chars: str, prefixes: set[str], longest_run: int) -> _Lattice:
        words = _words(chars)
        joined: dict[int, list[_Token]] = {}
        for first, last, word in _spaced_out(chars, words, prefixes, longest_run):
            token = _Token(first, last, word, word.transforms | _COLLAPSED)
            joined.setdefault(first, []).append(token)
        after = [-1] * len(words)
        following = -1
        for at in range(len(words) - 1, -1, -1):
            after[at] = following
            if words[at].has_letter or at in joined:
                following = at
        return cls(words, joined, after)

    def tokens(self, at: int) -> list[_Token]:
        """Return the tokens that start at word *at*: the word itself, then joined ones."""
        word = self.words[at]
        own = [_Token(at, at, word, word.transforms)] if word.has_letter else []
        return own + self.joined[at] if at in self.joined else own

    def follow(
        self,
        patterns: tuple[_Pattern, ...],
        token: _Token,
        refuse: frozenset[str] = frozenset(),
    ) -> Iterator[tuple[_Token, frozenset[Transform]]]:
        """Yield the last token and what was undone, for each way *patterns* spell the text.

        One pattern per word, from *token* on, each word right after the last; a reflexive
        pronoun may take two words (``my self``). A word whose squeezed spelling is in
        *refuse* matches only a pattern spelling it as written, never as an inflection.
        """
        split = patterns[0].split
        if split is not None:
            yield from self.follow((*split, *patterns[1:]), token, refuse)
        undone = patterns[0].match(token.word.classes)
        if undone is None:
            return
        if Transform.INFLECTION in undone and refuse:
            squeezed = _squeeze(token.word.classes)
            if squeezed in refuse and squeezed not in patterns[0].keys:
                return
        undone = undone | token.undone
        if len(patterns) == 1:
            yield token, undone
            return
        following = self.after[token.last]
        if following < 0:
            return
        for next_token in self.tokens(following):
            for last, more in self.follow(patterns[1:], next_token, refuse):
                yield last, undone | more

    def allowed(self, covered: list[bool], first: int, last: int) -> bool:
        """Whether every word with a letter from *first* to *last* is covered."""
        return all(covered[at] or not self.words[at].has_letter for at in range(first, last + 1))


def _read_syntax(chars: str) -> str:
    """Blank out generators' prompt syntax that would otherwise read as letters.

    Weights after a colon lose their digits; ``|`` inside a closed ``{...}`` or ``[...]`` is
    a separator between alternatives. The result has the same length, position for position.
    """
    if ":" in chars:
        chars = _WEIGHT.sub(lambda m: ":" + " " * (len(m.group()) - 1), chars)
    if "|" not in chars or ("{" not in chars and "[" not in chars):
        return chars
    marks = list(_BRACKETS.finditer(chars))
    depth_change: dict[int, int] = {}
    opened: list[tuple[int, str]] = []
    for mark in marks:
        char = mark.group()
        if char in _CLOSERS:
            opened.append((mark.start(), _CLOSERS[char]))
        elif char != "|" and opened and opened[-1][1] == char:
            start, _ = opened.pop()
            depth_change[start] = depth_change.get(start, 0) + 1
            depth_change[mark.start()] = depth_change.get(mark.start(), 0) - 1
    out = list(chars)
    depth = 0
    for mark in marks:
        depth += depth_change.get(mark.start(), 0)
        if depth > 0 and mark.group() == "|":
            out[mark.start()] = " "
    return "".join(out)


def _stems(squeezed: str) -> Iterable[str]:
    """Return the squeezed spellings a word could be an inflection of (itself first).

    Words repeat in prompts: short ones are remembered (a long one never pinned).
    """
    return _short_stems(squeezed) if len(squeezed) <= 64 else tuple(_all_stems(squeezed))


@functools.lru_cache(maxsize=4096)
def _short_stems(squeezed: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_all_stems(squeezed)))


def _all_stems(squeezed: str) -> Iterator[str]:
    yield squeezed
    for suffix in _SQUEEZED_SUFFIXES:
        if squeezed.endswith(suffix) and len(squeezed) > len(suffix):
            stem = squeezed[: -len(suffix)]
            yield stem
            # Squeezing may have merged the suffix's first letter into the term's last run:
            # kill+ing reads k-i-i-i-i-n-g, squeezed "king", so the term is "ki".
            yield squeezed[: -len(suffix) + 1]
            if suffix in _E_DROPPED_SQUEEZED:
                yield stem + "e"  # nuding -> nude
            if suffix in _Y_DROPPED:
                yield stem + "y"  # pornographer -> pornography
            if suffix in _Y_TO_I_SQUEEZED and stem.endswith("i"):
                yield stem[:-1] + "y"  # orgies -> orgy
    if squeezed.endswith("d") and len(squeezed) > 2:
        yield squeezed[:-1]  # nuded -> nude (the e of -ed is the term's own)


def _words(chars: str) -> list[_Word]:
    words = []
    for found in _WORD.finditer(chars):
        raw = found.group()
        has_letter = _HAS_LETTER.search(raw) is not None
        if not has_letter and len(raw) > 1:
            continue  # a number or a run of symbols is not a word, nor a letter of one
        leet = _LEET_CHARS.intersection(raw)
        words.append(
            _Word(
                found.start(),
                found.end(),
                raw.translate(_CLASSES),
                frozenset({Transform.LEETSPEAK}) if leet else _NOTHING,
                has_letter,
            )
        )
    return words


class _Part(NamedTuple):
    """A word, a stretch of one spaced-out letter, or either end of such a stretch.

    Holds its letters (a stretched letter repeated only up to what any term needs), the
    words it covers (indices), their skeleton slice, what was undone in them and whether one
    of them is a letter (rather than a digit or symbol standing for one).
    """

    letters: str
    first_word: int
    last_word: int
    start: int
    end: int
    transforms: frozenset[Transform]
    has_letter: bool


class _Piece(NamedTuple):
    """A piece of a word split by separators: a word, or a stretch of one spaced-out letter.

    A stretch can also be read in part, where one word of a phrase ends and the next begins
    (``s n u f f f i l m``): :attr:`heads` are the ways to start a joined word with it, and
    :attr:`tails` the ways to end one with it; the whole piece comes first in each.
    """

    squeezed: str
    whole: _Part
    heads: tuple[_Part, ...]
    tails: tuple[_Part, ...]


def _spaced_out(
    chars: str, words: list[_Word], prefixes: set[str], longest_run: int
) -> Iterator[tuple[int, int, _Word]]:
    """Join the pieces of words split by separators: each stretch that could spell a term.

    A separator is a gap between two words that holds no letter or digit. Single letters are
    joined across any separator (``s e x``); longer pieces only across one without
    whitespace (``na-ked``, ``nu.de``), since joining real words (``bass exercise``) would
    invent terms. A repeated spaced-out letter (``x x x x``) is taken as one stretched letter:
    any match starting inside the repetition also matches from its start, with more repeats.
    """
    i = 0
    while i < len(words):
        j = i  # extend the run of joinable words as far as the separators allow
        while j + 1 < len(words) and _joinable(chars, words[j], words[j + 1]):
            j += 1
        if j == i:
            i += 1
            continue
        # Pieces are made as the windows reach them: only _MAX_JOINED are alive at a time.
        stream = _pieces(words, i, j, longest_run)
        ahead = collections.deque(itertools.islice(stream, _MAX_JOINED))
        while ahead:
            opening = ahead.popleft()
            following = next(stream, None)
            if following is not None:
                ahead.append(following)
            if opening.squeezed not in prefixes:
                continue
            whole = opening.whole
            if whole.last_word > whole.first_word and whole.has_letter:
                yield whole.first_word, whole.last_word, _joined(whole, whole, whole.letters)
            for head in opening.heads:
                letters, squeezed = head.letters, opening.squeezed
                transforms, has_letter = head.transforms, head.has_letter
                single = head.end - head.start == 1  # the piece before is one character
                for piece in ahead:
                    if squeezed[-1] == piece.squeezed[0]:
                        squeezed += piece.squeezed[1:]
                    else:
                        squeezed += piece.squeezed
                    if squeezed not in prefixes:
                        break
                    for tail in piece.tails:
                        # A digit ends a word only among spaced-out characters (n-u-d-3),
                        # never after a longer piece: codes such as LOI-1 are no words.
                        if (has_letter or tail.has_letter) and (tail.has_letter or single):
                            joined = _Word(
                                head.start,
                                tail.end,
                                letters + tail.letters,
                                transforms | tail.transforms,
                            )
                            yield head.first_word, tail.last_word, joined
                    letters += piece.whole.letters
                    single = piece.whole.end - piece.whole.start == 1
                    transforms = transforms | piece.whole.transforms
                    has_letter = has_letter or piece.whole.has_letter
        i = j + 1


def _joined(head: _Part, tail: _Part, letters: str) -> _Word:
    return _Word(head.start, tail.end, letters, head.transforms | tail.transforms)


def _joinable(chars: str, left: _Word, right: _Word) -> bool:
    singles = left.end - left.start == 1 and right.end - right.start == 1
    if (
        not singles
        and (chars[left.end] == " " or _GAP_SPACE.search(chars, left.end, right.start))
        and not _HYPHEN_BREAK.fullmatch(chars, left.end, right.start)
    ):
        return False  # longer pieces join only across tight punctuation, or a hyphen's break
    # A letter or digit between is text, not a separator.
    return _GAP_TEXT.search(chars, left.end, right.start) is None


def _pieces(words: list[_Word], first: int, last: int, longest_run: int) -> Iterator[_Piece]:
    """Make pieces of joinable words *first* to *last*: each word, or a stretch of one letter."""
    i = first
    while i <= last:
        word = words[i]
        j = i  # the stretch of spaced-out copies of a single letter
        if word.end - word.start == 1:
            while (
                j + 1 <= last
                and words[j + 1].end - words[j + 1].start == 1
                and words[j + 1].classes == word.classes
            ):
                j += 1
        if j == i:
            part = _part(words, i, i, word.classes)
            alone = (part,)
            yield _Piece(_squeeze(word.classes), part, alone, alone)
            i += 1
            continue
        # One more than any term needs: a longer stretch is still a stretch.
        most = longest_run + 1
        whole = _part(words, i, j, word.classes * min(j - i + 1, most))
        ends = range(1, min(j - i + 1, most + 1))  # copies at either end, short of all of them
        heads = (whole, *(_part(words, j - n + 1, j, word.classes * n) for n in ends))
        tails = (whole, *(_part(words, i, i + n - 1, word.classes * n) for n in ends))
        yield _Piece(word.classes, whole, heads, tails)
        i = j + 1


def _part(words: list[_Word], first: int, last: int, letters: str) -> _Part:
    covered = words[first : last + 1]
    return _Part(
        letters,
        first,
        last,
        words[first].start,
        words[last].end,
        frozenset().union(*(w.transforms for w in covered)),
        any(w.has_letter for w in covered),
    )
