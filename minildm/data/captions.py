"""The caption grammar: scene -> caption (``caption_for``), caption -> scene (``parse_caption``), and its words.

The whole grammar, where [size] may be left out::

    caption  := object | object " and " object        (two objects: on the left/right, or at the top/bottom)
    object   := "a " [size " "] colour " " shape " " position
    position := "at the top left" | "at the top" | "at the top right" | "on the left" | "in the center"
              | "on the right" | "at the bottom left" | "at the bottom" | "at the bottom right"

    "a large red circle at the top left"
    "a blue square on the left and a small yellow triangle on the right"

``parse_caption(caption_for(scene))`` gives back every attribute of the scene (size ``None`` where it was left out);
a caption outside the grammar raises a ``ValueError`` that names the word it could not read.
"""
from __future__ import annotations

import itertools

from .attributes import COLOURS, POSITIONS, SHAPES, SIZES, TWO_OBJECT_LAYOUTS, ShapeObject

POSITION_PHRASES = {
    "top left": "at the top left", "top": "at the top", "top right": "at the top right",
    "left": "on the left", "center": "in the center", "right": "on the right",
    "bottom left": "at the bottom left", "bottom": "at the bottom", "bottom right": "at the bottom right",
}
PHRASE_TO_POSITION = {phrase: name for name, phrase in POSITION_PHRASES.items()}
assert set(POSITION_PHRASES) == set(POSITIONS)


def object_phrase(obj: ShapeObject, with_size: bool = True) -> str:
    """"a large red circle at the top left" for one object (the size word only when asked for and known)."""
    words = ["a"]
    if with_size and obj.size is not None:
        words.append(obj.size)
    words += [obj.colour, obj.shape, POSITION_PHRASES[obj.position]]
    return " ".join(words)


def caption_for(scene, with_size: bool = True) -> str:
    """The caption of a scene (a tuple of one or two ``ShapeObject``), objects in the scene's order.

    Args:
        with_size: False leaves out every size word ("a red circle at the top left"), as users often do.
    """
    if len(scene) not in (1, 2):
        raise ValueError(f"caption_for: a scene has 1 or 2 objects, got {len(scene)}")
    return " and ".join(object_phrase(obj, with_size) for obj in scene)


def _normalize(caption: str) -> str:
    # Case, surrounding spaces, repeated spaces and a final full stop carry no meaning in this grammar.
    return " ".join(str(caption).lower().replace(".", " ").split())


def _parse_object(phrase: str, caption: str) -> ShapeObject:
    words = phrase.split()
    where = f"parse_caption({caption!r})"
    if not words or words[0] != "a":
        raise ValueError(f"{where}: each object starts with 'a', got {phrase!r}")
    words = words[1:]
    size = None
    if words and words[0] in SIZES:
        size, words = words[0], words[1:]
    if len(words) < 3:
        raise ValueError(f"{where}: expected 'a [size] colour shape position', got {phrase!r}")
    colour, shape, position_phrase = words[0], words[1], " ".join(words[2:])
    if colour not in COLOURS:
        raise ValueError(f"{where}: unknown colour {colour!r}; known colours: {', '.join(COLOURS)}")
    if shape not in SHAPES:
        raise ValueError(f"{where}: unknown shape {shape!r}; known shapes: {', '.join(SHAPES)}")
    if position_phrase not in PHRASE_TO_POSITION:
        raise ValueError(f"{where}: unknown position {position_phrase!r}; "
                         f"known positions: {', '.join(PHRASE_TO_POSITION)}")
    return ShapeObject(colour, shape, size, PHRASE_TO_POSITION[position_phrase])


def parse_caption(caption: str) -> tuple:
    """The scene a caption describes: a tuple of ``ShapeObject`` (geometry ``None``; size ``None`` if unsaid).

    Raises:
        ValueError: for a caption outside the grammar, naming the part it could not read.
    """
    text = _normalize(caption)
    scene = tuple(_parse_object(phrase, caption) for phrase in text.split(" and "))
    if len(scene) > 2:
        raise ValueError(f"parse_caption({caption!r}): at most two objects, got {len(scene)}")
    if len(scene) == 2:
        pair = tuple(sorted(obj.position for obj in scene))
        if pair not in {tuple(sorted(layout)) for layout in TWO_OBJECT_LAYOUTS}:
            raise ValueError(f"parse_caption({caption!r}): two objects stand 'on the left' and 'on the right' "
                             f"or 'at the top' and 'at the bottom', got {scene[0].position!r} and "
                             f"{scene[1].position!r}")
    return scene


def _all_objects(positions):
    # Every (size or no size, colour, shape, position) combination, as attribute-only objects.
    for size, colour, shape, position in itertools.product((None,) + SIZES, COLOURS, SHAPES, positions):
        yield ShapeObject(colour, shape, size, position)


def all_captions(max_objects: int = 2) -> list[str]:
    """Every caption the grammar can produce (486 with one object, 11,664 more with two), in a fixed order.

    Useful to train a tokenizer on, or to check that a text encoder has seen every word.
    """
    captions = [caption_for((obj,)) for obj in _all_objects(POSITIONS)]
    if max_objects >= 2:
        for layout in TWO_OBJECT_LAYOUTS:
            for first_position, second_position in (layout, layout[::-1]):
                for a in _all_objects([first_position]):
                    captions += [caption_for((a, b)) for b in _all_objects([second_position])]
    return captions


def vocabulary() -> list[str]:
    """All words the grammar uses, sorted: the closed vocabulary of the dataset's captions."""
    words = {"a", "and", *SIZES, *COLOURS, *SHAPES}
    for phrase in POSITION_PHRASES.values():
        words.update(phrase.split())
    return sorted(words)
