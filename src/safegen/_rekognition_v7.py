"""The Amazon Rekognition content-moderation taxonomy, version 7, as data.

Sources: the Rekognition developer guide's label table and AWS's "Moderation V7 migration"
sample. The official downloadable list was not available when this was written; see
``docs/taxonomy.rst`` for how the discrepancies below were settled.
"""

from __future__ import annotations

VERSION = "7.0"

# L1 -> L2 -> L3 names, in the order of the developer guide's table. Canonical spellings are
# the ones the API returns where the API and the docs disagree.
TREE: dict[str, dict[str, tuple[str, ...]]] = {
    "Explicit": {
        "Explicit Nudity": (
            "Exposed Male Genitalia",
            "Exposed Female Genitalia",
            "Exposed Buttocks or Anus",
            "Exposed Female Nipple",
        ),
        "Explicit Sexual Activity": (),
        "Sex Toys": (),
    },
    "Non-Explicit Nudity of Intimate parts and Kissing": {
        "Non-Explicit Nudity": (
            "Bare Back",
            "Exposed Male Nipple",
            "Partially Exposed Buttocks",
            "Partially Exposed Female Breast",
            "Implied Nudity",
        ),
        "Obstructed Intimate Parts": ("Obstructed Female Nipple", "Obstructed Male Genitalia"),
        "Kissing on the Lips": (),
    },
    "Swimwear or Underwear": {
        "Female Swimwear or Underwear": (),
        "Male Swimwear or Underwear": (),
    },
    "Violence": {
        "Weapons": (),
        "Graphic Violence": (
            "Weapon Violence",
            "Physical Violence",
            "Self-Harm",
            "Blood & Gore",
            "Explosions and Blasts",
        ),
    },
    "Visually Disturbing": {
        "Death and Emaciation": ("Emaciated Bodies", "Corpses"),
        "Crashes": ("Air Crash",),
    },
    "Drugs & Tobacco": {
        "Products": ("Pills",),
        # The API (and AWS's own sample response) says "Drug", the docs table "Drugs".
        "Drug & Tobacco Paraphernalia & Use": ("Smoking",),
    },
    "Alcohol": {
        "Alcohol Use": ("Drinking",),
        "Alcoholic Beverages": (),
    },
    "Rude Gestures": {
        "Middle Finger": (),
    },
    # The docs table shows no L2; the migration guide maps v6 Gambling to L1 and L2 "Gambling".
    "Gambling": {
        "Gambling": (),
    },
    "Hate Symbols": {
        "Nazi Party": (),
        "White Supremacy": (),
        "Extremist": (),
    },
}

# Other spellings seen in AWS's documents -> the canonical name above.
ALIASES: dict[str, str] = {
    "Drugs & Tobacco Paraphernalia & Use": "Drug & Tobacco Paraphernalia & Use",
    "Drug and Tobacco Paraphernalia and Use": "Drug & Tobacco Paraphernalia & Use",
    "Drugs and Tobacco Paraphernalia and Use": "Drug & Tobacco Paraphernalia & Use",
    "Drugs and Tobacco": "Drugs & Tobacco",
    "Blood and Gore": "Blood & Gore",
    "Self Harm": "Self-Harm",
}

# Version 6 names that no longer exist in version 7 -> what replaced them. Names that survived
# (e.g. "Explicit Nudity", now an L2, or "Weapons") are not listed: they still resolve.
V6_RENAMES: dict[str, tuple[str, ...]] = {
    "Suggestive": ("Non-Explicit Nudity of Intimate parts and Kissing", "Swimwear or Underwear"),
    "Nudity": ("Explicit Nudity",),
    "Graphic Male Nudity": ("Exposed Male Genitalia",),
    "Graphic Female Nudity": ("Exposed Female Genitalia", "Exposed Female Nipple"),
    "Sexual Activity": ("Explicit Sexual Activity",),
    "Illustrated Explicit Nudity": ("Explicit", "a content_types rule for Illustrated/Animated"),
    "Adult Toys": ("Sex Toys",),
    "Partial Nudity": ("Non-Explicit Nudity",),
    "Barechested Male": ("Exposed Male Nipple",),
    "Revealing Clothes": ("Non-Explicit Nudity", "Obstructed Intimate Parts"),
    "Sexual Situations": ("Kissing on the Lips",),
    "Graphic Violence Or Gore": ("Graphic Violence", "Blood & Gore"),
    "Self Injury": ("Self-Harm",),
    "Hanging": ("Corpses",),
    "Drugs": ("Drugs & Tobacco",),
    "Tobacco": ("Drugs & Tobacco",),
    "Drug Products": ("Products",),
    "Drug Use": ("Drug & Tobacco Paraphernalia & Use",),
    "Drug Paraphernalia": ("Drug & Tobacco Paraphernalia & Use",),
    "Tobacco Products": ("Products",),
}

CONTENT_TYPES: tuple[str, ...] = ("Animated", "Illustrated")
