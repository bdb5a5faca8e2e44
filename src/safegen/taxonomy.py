"""The moderation label tree: lookup by name or path, aliases, renames, unknown labels.

Rekognition's moderation labels form a three-level tree (L1 > L2 > L3). Names are not unique
across levels (``Gambling`` is both an L1 and its own L2), so a label is identified by its
*path*: the tuple of names from the top level down.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import attrs

from safegen import _rekognition_v7
from safegen.errors import UnknownLabelError
from safegen.labels import ModerationLabel
from safegen.text.normalize import skeleton

__all__ = ["REKOGNITION_V7", "Category", "Taxonomy"]

_PATH_SEPARATOR = "/"
#: The deepest path an unknown label is given (the v7 tree is 3 deep): a longer chain of
#: unknown labels keeps its top and each label's own name, so paths stay short.
MAX_DEPTH = 8
# How many names :func:`_key` remembers: names repeat on every evaluation, and a backend
# could report any number of distinct ones.
_KEY_CACHE = 8192


@functools.lru_cache(maxsize=_KEY_CACHE)
def _key(name: str) -> str:
    """Fold a name for matching, so that names that read the same match.

    The prompt filter's own reading of letters (:func:`safegen.text.normalize.skeleton`),
    so the two cannot disagree about what a character is: case, compatibility forms
    (full-width letters, ligatures), accents and other combining marks, invisible
    characters (zero-width spaces, soft hyphens, Hangul fillers, variation selectors),
    letters of other scripts drawn like Latin ones. Then everything that is no letter or
    digit (whitespace, the dash family, punctuation, symbols, blanks such as U+2800) is a
    separator, and separators do not matter (words may run together).
    """
    return "".join(char for char in skeleton(name).chars if char.isalnum())


@attrs.frozen(order=True)
class Category:
    """A node of the taxonomy, identified by its path from the top level.

    :param path: the names from the top-level category down to this one.
    :param known: ``False`` when the taxonomy does not list this category and it was placed
        from what a backend reported (a newer model version, say).

    >>> c = REKOGNITION_V7.lookup("Smoking")
    >>> c.path
    ('Drugs & Tobacco', 'Drug & Tobacco Paraphernalia & Use', 'Smoking')
    >>> c.name, c.level
    ('Smoking', 3)
    """

    path: tuple[str, ...]
    known: bool = attrs.field(default=True, eq=False, order=False)

    @property
    def name(self) -> str:
        """The category's own name: the last element of its path."""
        return self.path[-1]

    @property
    def level(self) -> int:
        """The category's depth: 1 for a top-level category."""
        return len(self.path)

    def is_within(self, other: Category) -> bool:
        """Return whether this category is *other* or lies under it."""
        return self.path[: len(other.path)] == other.path

    def __str__(self) -> str:
        return f" {_PATH_SEPARATOR} ".join(self.path)


class Taxonomy:
    """A moderation label tree with tolerant lookup.

    Lookups are case- and whitespace-insensitive and accept known alternative spellings.
    A name that is ambiguous across levels resolves to the shallowest category; write a path
    (``"Gambling/Gambling"``) to name a deeper one.

    :param tree: top-level name -> second-level name -> third-level names.
    :param version: the model version this tree describes, e.g. ``"7.0"``.
    :param aliases: other spellings -> the canonical name in *tree*.
    :param renamed: names from an earlier version -> the names that replaced them, used to
        explain why an old policy file's label is refused.
    :param content_types: the content types the backend can report (e.g. ``Animated``).
    """

    def __init__(
        self,
        tree: Mapping[str, Mapping[str, Sequence[str]]],
        *,
        version: str,
        aliases: Mapping[str, str] | None = None,
        renamed: Mapping[str, Sequence[str]] | None = None,
        content_types: Sequence[str] = (),
    ) -> None:
        self.version = version
        categories: list[Category] = []
        for top, middles in tree.items():
            categories.append(Category((top,)))
            for middle, bottoms in middles.items():
                categories.append(Category((top, middle)))
                categories.extend(Category((top, middle, bottom)) for bottom in bottoms)
        self._categories = tuple(categories)
        self._paths = frozenset(c.path for c in categories)
        self._depth = max((len(path) for path in self._paths), default=0)

        by_name: dict[str, list[Category]] = {}
        for category in categories:  # tree order lists parents first: shallowest stays first
            by_name.setdefault(_key(category.name), []).append(category)
        self._aliases = {_key(a): _key(canonical) for a, canonical in (aliases or {}).items()}
        for alias, canonical in self._aliases.items():
            if canonical not in by_name:
                raise ValueError(f"alias {alias!r} points at unknown name {canonical!r}")
        self._by_name = {k: tuple(v) for k, v in by_name.items()}
        self._renamed = {_key(old): tuple(new) for old, new in (renamed or {}).items()}
        self._content_types = {_key(name): name for name in content_types}
        self._content_type_names = frozenset(content_types)
        # What a policy's fingerprint names the tree by: two trees that resolve a name differently
        # must never share one (a policy cached by its fingerprint would judge by the wrong one).
        identity = {
            "version": version,
            "categories": [list(c.path) for c in categories],
            "aliases": sorted(self._aliases.items()),
            "content_types": sorted(self._content_types.items()),
        }
        self._fingerprint = hashlib.sha256(
            json.dumps(identity, separators=(",", ":")).encode("utf-8")
        ).hexdigest()
        # Placing is pure and repeats on every evaluation; a backend could report any number
        # of distinct unknown names, so the cache is bounded.
        self._placements = functools.lru_cache(maxsize=4096)(self._place_uncached)

    def __repr__(self) -> str:
        return f"<Taxonomy version={self.version!r} categories={len(self._categories)}>"

    def __iter__(self) -> Iterator[Category]:
        """Iterate over the known categories, parents before their children."""
        return iter(self._categories)

    def __len__(self) -> int:
        return len(self._categories)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Category):
            return item.path in self._paths
        if isinstance(item, str):
            return self.get(item) is not None
        return False

    @property
    def fingerprint(self) -> str:
        """The SHA-256 of what lookups depend on: the tree, its aliases and content types.

        Two taxonomies with the same fingerprint resolve and place every name alike.
        """
        return self._fingerprint

    @property
    def content_types(self) -> tuple[str, ...]:
        """The content types this taxonomy's backend can report."""
        return tuple(self._content_types.values())

    def children(self, category: Category) -> tuple[Category, ...]:
        """Return the known categories directly under *category*."""
        depth = category.level + 1
        return tuple(c for c in self._categories if c.level == depth and c.is_within(category))

    def _candidates(self, name: str) -> tuple[Category, ...]:
        key = _key(name)
        return self._by_name.get(self._aliases.get(key, key), ())

    def get(self, name_or_path: str) -> Category | None:
        """Return the category a name or ``/``-separated path denotes, or ``None``.

        >>> REKOGNITION_V7.get("drugs & tobacco paraphernalia & use")
        Category(path=('Drugs & Tobacco', 'Drug & Tobacco Paraphernalia & Use'), known=True)
        >>> REKOGNITION_V7.get("Gambling").level, REKOGNITION_V7.get("Gambling/Gambling").level
        (1, 2)
        >>> REKOGNITION_V7.get("Nonsense") is None
        True
        """
        parts = name_or_path.split(_PATH_SEPARATOR)
        if len(parts) == 1:
            candidates = self._candidates(parts[0])
            return candidates[0] if candidates else None
        if any(not p.strip() for p in parts):
            return None
        for candidate in self._candidates(parts[-1]):
            if len(candidate.path) == len(parts) and all(
                self._same_name(have, want)
                for have, want in zip(candidate.path, parts, strict=True)
            ):
                return candidate
        return None

    def _same_name(self, canonical: str, written: str) -> bool:
        key = _key(written)
        return _key(canonical) == self._aliases.get(key, key)

    def lookup(self, name_or_path: str, *, where: str = "label") -> Category:
        """Return the category *name_or_path* denotes, or raise a helpful error.

        :param where: names the place the name came from, for the error message.
        :raises UnknownLabelError: the name is unknown; the error carries the closest known
            names, or what replaced the name if it is from an earlier taxonomy version.

        >>> REKOGNITION_V7.lookup("Suggestive")
        Traceback (most recent call last):
          ...
        safegen.errors.UnknownLabelError: label: unknown moderation label 'Suggestive'; it is a \
Rekognition v6 label, replaced in v7 by 'Non-Explicit Nudity of Intimate parts and Kissing' or \
'Swimwear or Underwear'
        """
        category = self.get(name_or_path)
        if category is not None:
            return category
        last = name_or_path.split(_PATH_SEPARATOR)[-1]
        return self._raise_unknown(name_or_path, last, where)

    def _raise_unknown(self, written: str, last: str, where: str) -> Category:
        renamed = self._renamed.get(_key(last), ())
        spellings = {_key(c.name): c.name for c in self._categories}
        close = difflib.get_close_matches(_key(last), list(spellings), n=3, cutoff=0.6)
        raise UnknownLabelError(
            written, where=where, suggestions=[spellings[k] for k in close], renamed_to=renamed
        )

    def spelling(self, category: Category) -> str:
        """Return the shortest name that :meth:`get` resolves back to *category*.

        >>> REKOGNITION_V7.spelling(REKOGNITION_V7.get("Gambling/Gambling"))
        'Gambling/Gambling'
        """
        if self.get(category.name) == category:
            return category.name
        return _PATH_SEPARATOR.join(category.path)

    def content_type(self, name: str) -> str | None:
        """Return the canonical spelling of a content type name, or ``None`` if unknown."""
        if name in self._content_type_names:  # the common case: spelled as the service does
            return name
        return self._content_types.get(_key(name))

    def place(self, name: str, parent: str | None = None, level: int | None = None) -> Category:
        """Place a reported label in the tree. Never raises for unknown names.

        A name the taxonomy knows (in any spelling it accepts) is placed where the taxonomy
        puts it, whatever parent or level the backend reported: the reported place only
        chooses among the categories that share the name (``Gambling`` is an L1 and an L2;
        the shallowest that fits the report), and :meth:`place_each` gives all of them when
        the report fits none. A name the taxonomy
        does not know is placed under its parent, marked ``known=False``, so thresholds set
        on the parent still apply; with no parent it becomes a top-level category of its own.

        >>> REKOGNITION_V7.place("Gambling", parent="Gambling", level=2).path
        ('Gambling', 'Gambling')
        >>> REKOGNITION_V7.place("Exposed Female Nipple", parent="Swimwear or Underwear").path
        ('Explicit', 'Explicit Nudity', 'Exposed Female Nipple')
        >>> new = REKOGNITION_V7.place("Laser Weapons", parent="Weapons", level=3)
        >>> new.path, new.known
        (('Violence', 'Weapons', 'Laser Weapons'), False)
        """
        return self._placements(name, parent, level)[0]

    def _place_uncached(
        self, name: str, parent: str | None, level: int | None
    ) -> tuple[Category, ...]:
        candidates = self._candidates(name)
        if candidates:
            # The report may only choose among the taxonomy's own places for the name (the
            # shallowest it fits, as in get()); a report that fits none of them is every one.
            for candidate in candidates:
                if self._fits(candidate, parent, level):
                    return (candidate,)
            return candidates
        if parent is None:
            return (Category((name,), known=False),)
        above = self._placements(
            parent, None, level - 1 if level is not None and level > 1 else None
        )
        return tuple(_child(category, name) for category in above)

    def _fits(self, category: Category, parent: str | None, level: int | None) -> bool:
        """Return whether a reported parent and level agree with *category*'s place."""
        if level is not None and category.level != level:
            return False
        return parent is None or (category.level > 1 and self._same_name(category.path[-2], parent))

    def place_each(self, labels: Iterable[ModerationLabel]) -> tuple[tuple[Category, ...], ...]:
        """Return every category each label may be, using the response for unknown parents.

        Usually one category per label. A name the taxonomy lists more than once (``Gambling``)
        reported with a parent or level that fits none of its places is every category of
        that name; a policy judges it at each, so the strictest counts.

        A label the taxonomy does not know is placed under every place its parent's name was
        reported at in the response (each report of it, whose own parents count in turn), or,
        when the response does not report its parent, where its own report alone puts it. So
        reporting a name once more only ever adds places for the labels under it: a second
        report cannot take a child out of a strict place. Thresholds are set on known
        categories, so places that differ only in unknown names are judged alike; of those,
        a label keeps the first by path. The most specific place comes first.

        Chains are rebuilt in time linear in the number of labels, however long; a path
        deeper than the taxonomy allows keeps its top and the label's own name. The result
        does not depend on the labels' order or confidences. Labels that name each other as
        parents (a cycle) still get finite paths: each keeps its own placement and is also
        placed directly under every place the cycle hangs from that is judged otherwise.
        """
        reports = [(label.name, label.parent, label.level) for label in labels]
        placed_reports = [self._placements(*report) for report in reports]
        if all(candidates[0].known for candidates in placed_reports):
            return tuple(placed_reports)  # the common case: every label is in the tree
        # Place each distinct (name, parent, level) once: a label's place depends on what was
        # reported about it, never on its confidence or its position in the response.
        distinct = list(dict.fromkeys(reports))
        where = {report: i for i, report in enumerate(distinct)}
        placements = self._place_reports(distinct)
        return tuple(placements[where[report]] for report in reports)

    def _place_reports(
        self, reports: list[tuple[str, str | None, int | None]]
    ) -> list[tuple[Category, ...]]:
        """Place distinct reports, rebuilding chains of unknown names from the reports.

        A graph of two kinds of node: each unknown report, which hangs under its parent's
        name, and each unknown name, which sits wherever any report of it does. Its strongly
        connected components, taken dependencies first, place every report once.
        """
        placed = [self._placements(*report) for report in reports]
        count = len(reports)
        names: dict[str, int] = {}
        members: list[list[int]] = []  # for each unknown name, the reports of it
        for i, (name, _, _) in enumerate(reports):
            if not placed[i][0].known:
                node = names.setdefault(_key(name), len(names))
                if node == len(members):
                    members.append([])
                members[node].append(i)
        below: list[int | None] = [None] * count  # the name node a report hangs under
        for i, (_, parent, _) in enumerate(reports):
            if parent is not None and not placed[i][0].known:
                parent_node = names.get(_key(parent))
                below[i] = None if parent_node is None else count + parent_node

        def needs(node: int) -> list[int]:
            if node >= count:
                return members[node - count]
            under = below[node]
            return [] if under is None else [under]

        places: dict[int, tuple[Category, ...]] = {}
        for component in _components(range(count), needs):
            if len(component) == 1 and component[0] < count:
                (i,) = component
                under = below[i]
                above = places[under] if under is not None else ()
                name = reports[i][0]
                # Under every place its parent's name was reported at; where the response does
                # not report the parent, where its own report alone puts it.
                inherited = [_child(c, name) for c in above]
                places[i] = self._merge((), inherited) if inherited else placed[i]
            elif len(component) > 1:  # a cycle: its reports hang from where it is entered
                inside = set(component)
                entry: list[Category] = []
                for node in component:
                    if node < count:
                        entry.extend(placed[node])
                    else:
                        outside = (i for i in members[node - count] if i not in inside)
                        entry.extend(c for i in outside for c in places[i])
                entered = self._merge((), entry)
                for i in component:
                    if i < count:
                        name = reports[i][0]
                        inherited = [_child(c, name) for c in entered]
                        places[i] = self._merge(placed[i], inherited, fresh_only=True)
            for node in component:  # a name sits wherever any report of it does
                if node >= count:
                    places[node] = self._merge((), [c for i in needs(node) for c in places[i]])
        return [places.get(i, placed[i]) for i in range(count)]

    def _judged_at(self, category: Category) -> tuple[str, ...]:
        """Return the path of the deepest known category at or above *category*."""
        path = category.path
        for depth in range(min(len(path), self._depth), 0, -1):
            if path[:depth] in self._paths:
                return path[:depth]
        return ()

    def _merge(
        self,
        own: Sequence[Category],
        inherited: Iterable[Category],
        *,
        fresh_only: bool = False,
    ) -> tuple[Category, ...]:
        """Return *own* places and, for each place *inherited* is judged at, its first by path.

        With *fresh_only*, only the inherited places judged where none of *own* is. Most
        specific first: the deepest known category, then the longest path, then by path.
        """
        judged = {self._judged_at(c) for c in own} if fresh_only else set()
        first: dict[tuple[str, ...], Category] = {}
        for category in inherited:
            at = self._judged_at(category)
            if at not in judged and (at not in first or category.path < first[at].path):
                first[at] = category
        unique = {c.path: c for c in (*first.values(), *own)}
        return tuple(
            sorted(
                unique.values(),
                key=lambda c: (-len(self._judged_at(c)), -len(c.path), c.path),
            )
        )

    def place_all(self, labels: Iterable[ModerationLabel]) -> tuple[Category, ...]:
        """Place each label: the first of :meth:`place_each`'s categories for it."""
        return tuple(candidates[0] for candidates in self.place_each(labels))


def _components(
    starts: Iterable[int], needs: Callable[[int], Sequence[int]]
) -> Iterator[list[int]]:
    """Yield the strongly connected components reachable from *starts*, dependencies first.

    Tarjan's algorithm, iteratively: a chain of any length costs no recursion.
    """
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    for start in starts:
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(needs(start)))]
        while work:
            node, pending = work[-1]
            for other in pending:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append((other, iter(needs(other))))
                    break
                if other in on_stack:
                    low[node] = min(low[node], index[other])
            else:
                work.pop()
                if work:
                    above = work[-1][0]
                    low[above] = min(low[above], low[node])
                if low[node] == index[node]:
                    component: list[int] = []
                    while True:
                        other = stack.pop()
                        on_stack.discard(other)
                        component.append(other)
                        if other == node:
                            break
                    yield component


def _child(parent: Category, name: str) -> Category:
    """Return an unknown category under *parent*, its path cut short past :data:`MAX_DEPTH`.

    Cutting keeps the top of the path (whose thresholds apply) and drops middle names, so a
    label deep in a long chain is judged on its own rather than through its chain.
    """
    path = parent.path if len(parent.path) < MAX_DEPTH else parent.path[: MAX_DEPTH - 1]
    return Category((*path, name), known=False)


REKOGNITION_V7 = Taxonomy(
    _rekognition_v7.TREE,
    version=_rekognition_v7.VERSION,
    aliases=_rekognition_v7.ALIASES,
    renamed=_rekognition_v7.V6_RENAMES,
    content_types=_rekognition_v7.CONTENT_TYPES,
)
"""Amazon Rekognition's content-moderation taxonomy, version 7 (10 L1, 21 L2, 22 L3)."""
