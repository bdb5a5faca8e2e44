"""The moderation label tree: lookup by name or path, aliases, renames, unknown labels.

Rekognition's moderation labels form a three-level tree (L1 > L2 > L3). Names are not unique
across levels (``Gambling`` is both an L1 and its own L2), so a label is identified by its
*path*: the tuple of names from the top level down.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence

import attrs

from safegen import _rekognition_v7
from safegen.errors import UnknownLabelError
from safegen.labels import ModerationLabel

__all__ = ["REKOGNITION_V7", "Category", "Taxonomy"]

# Placing a label is pure and repeats on every evaluation; cache it, within bounds, because a
# backend could report any number of distinct unknown names.
_PLACEMENT_CACHE_LIMIT = 4096
_PATH_SEPARATOR = "/"


def _key(name: str) -> str:
    """Fold a name for matching: case-insensitive, whitespace-insensitive."""
    return " ".join(name.casefold().split())


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
        self._placements: dict[tuple[str, str | None, int | None], Category] = {}

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

        A known name is matched with its parent and level when the backend gave them. A name
        the taxonomy does not know (or knows under another parent) is placed under its
        parent, marked ``known=False``, so thresholds set on the parent still apply.

        >>> REKOGNITION_V7.place("Gambling", parent="Gambling", level=2).path
        ('Gambling', 'Gambling')
        >>> new = REKOGNITION_V7.place("Laser Weapons", parent="Weapons", level=3)
        >>> new.path, new.known
        (('Violence', 'Weapons', 'Laser Weapons'), False)
        """
        cache_key = (name, parent, level)
        placed = self._placements.get(cache_key)
        if placed is None:
            placed = self._place(name, parent, level)
            if len(self._placements) >= _PLACEMENT_CACHE_LIMIT:
                self._placements.clear()
            self._placements[cache_key] = placed
        return placed

    def _place(self, name: str, parent: str | None, level: int | None) -> Category:
        candidates = self._candidates(name)
        if level is not None:
            candidates = tuple(c for c in candidates if c.level == level)
        if parent is not None:
            candidates = tuple(
                c for c in candidates if c.level > 1 and self._same_name(c.path[-2], parent)
            )
        if candidates:
            return candidates[0]
        if parent is None:
            return Category((name,), known=False)
        above = self.place(parent, None, level - 1 if level is not None and level > 1 else None)
        return Category((*above.path, name), known=False)

    def place_all(self, labels: Iterable[ModerationLabel]) -> tuple[Category, ...]:
        """Place each label, using the other labels of the same response for unknown parents.

        When a backend reports a whole chain of labels the taxonomy does not know, the chain
        is rebuilt from the response itself. The result does not depend on the labels' order,
        and a response whose labels name each other as parents still gets finite paths.
        """
        labels = tuple(labels)
        place = self.place
        placed = [place(label.name, label.parent, label.level) for label in labels]
        for category in placed:
            if not category.known:
                break
        else:  # the common case: every label is in the tree
            return tuple(placed)

        # For each name, the reported label to hang children on: the first by placement and
        # then by the label itself (never by position), so the order of the response cannot
        # change the choice.
        def rank(i: int) -> tuple[tuple[str, ...], str, str, int, float]:
            label = labels[i]
            return (
                placed[i].path,
                label.name,
                label.parent or "",
                label.level or 0,
                label.confidence,
            )

        by_name: dict[str, int] = {}
        for i in sorted(range(len(labels)), key=rank, reverse=True):
            by_name[_key(labels[i].name)] = i
        parent_of = {
            i: by_name.get(_key(label.parent))
            for i, label in enumerate(labels)
            if not placed[i].known and label.parent is not None
        }
        # A label on a cycle of parents (a broken response) keeps its own placement.
        for start in list(parent_of):
            seen, j = {start}, parent_of.get(start)
            while j is not None and j not in seen:
                seen.add(j)
                j = parent_of.get(j)
            if j == start:
                parent_of[start] = None

        rebuilt: dict[int, Category] = {}

        def resolve(i: int) -> Category:
            if i not in rebuilt:
                parent = parent_of.get(i)
                if parent is None:
                    rebuilt[i] = placed[i]
                else:
                    above = resolve(parent).path
                    rebuilt[i] = Category((*above, labels[i].name), known=False)
            return rebuilt[i]

        return tuple(resolve(i) for i in range(len(labels)))


REKOGNITION_V7 = Taxonomy(
    _rekognition_v7.TREE,
    version=_rekognition_v7.VERSION,
    aliases=_rekognition_v7.ALIASES,
    renamed=_rekognition_v7.V6_RENAMES,
    content_types=_rekognition_v7.CONTENT_TYPES,
)
"""Amazon Rekognition's content-moderation taxonomy, version 7 (10 L1, 21 L2, 22 L3)."""
