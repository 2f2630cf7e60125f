"""Class sets: ids, names, colours and grasp modes of the segmentation classes."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import yaml

from seg_perception.constants import MAX_CLASSES, UNLABELED_ID

GRASP_MODES = ('suction', 'parallel')
_NAME_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


class ClassSetError(ValueError):
    """Raised when a class set definition is inconsistent."""


@dataclass(frozen=True)
class ClassInfo:
    """One segmentation class."""

    id: int  # noqa: A003 - the class id, as in LabelInfo.class_ids
    name: str
    color: tuple[int, int, int]
    grasp: tuple[str, ...] = ()

    @property
    def graspable(self) -> bool:
        """Return True when the class is an item that may be picked."""
        return bool(self.grasp)


class ClassSet:
    """An ordered, validated collection of classes (ids need not be contiguous)."""

    def __init__(self, classes: Iterable[ClassInfo]) -> None:
        self.classes: tuple[ClassInfo, ...] = tuple(sorted(classes, key=lambda c: c.id))
        if not self.classes:
            raise ClassSetError('a class set needs at least one class')
        ids = [c.id for c in self.classes]
        names = [c.name for c in self.classes]
        if len(set(ids)) != len(ids):
            raise ClassSetError(f'duplicate class ids in {ids}')
        if len(set(names)) != len(names):
            raise ClassSetError(f'duplicate class names in {names}')
        for c in self.classes:
            if not 0 <= c.id < MAX_CLASSES or c.id == UNLABELED_ID:
                raise ClassSetError(
                    f'class id {c.id} of {c.name!r} is outside 0..{MAX_CLASSES - 1}')
            if not _NAME_RE.match(c.name):
                raise ClassSetError(f'class name {c.name!r} is not a valid topic token')
            if len(c.color) != 3 or not all(0 <= v <= 255 for v in c.color):
                raise ClassSetError(f'colour of {c.name!r} must be three values in 0..255')
            bad = [g for g in c.grasp if g not in GRASP_MODES]
            if bad:
                raise ClassSetError(f'unknown grasp modes {bad} for {c.name!r}; use {GRASP_MODES}')
        self._by_name = {c.name: c for c in self.classes}
        self._by_id = {c.id: c for c in self.classes}

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClassSet) and self.classes == other.classes

    def __repr__(self) -> str:
        return f'ClassSet({list(self.names)})'

    @property
    def names(self) -> tuple[str, ...]:
        """Return the class names in id order."""
        return tuple(c.name for c in self.classes)

    @property
    def ids(self) -> tuple[int, ...]:
        """Return the class ids in ascending order."""
        return tuple(c.id for c in self.classes)

    @property
    def num_outputs(self) -> int:
        """Return the number of network output channels (max id + 1)."""
        return max(self.ids) + 1

    def by_name(self, name: str) -> ClassInfo:
        """Return the class called `name`; raise KeyError naming the known classes otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f'unknown class {name!r}; known: {", ".join(self.names)}') from None

    def by_id(self, class_id: int) -> ClassInfo:
        """Return the class with id `class_id`."""
        return self._by_id[class_id]

    def graspable(self) -> tuple[ClassInfo, ...]:
        """Return the classes that have at least one grasp mode."""
        return tuple(c for c in self.classes if c.graspable)

    def palette(self) -> np.ndarray:
        """Return a (256, 3) uint8 lookup table from label value to RGB colour."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        for c in self.classes:
            lut[c.id] = c.color
        return lut

    def to_list(self) -> list[dict[str, Any]]:
        """Return the YAML/JSON-friendly form used in config files and model sidecars."""
        return [{'id': c.id, 'name': c.name, 'color': list(c.color), 'grasp': list(c.grasp)}
                for c in self.classes]

    @classmethod
    def from_list(cls, entries: Sequence[Mapping[str, Any]]) -> 'ClassSet':
        """Build a class set from the list form (see :meth:`to_list`)."""
        try:
            return cls(ClassInfo(id=int(e['id']), name=str(e['name']),
                                 color=tuple(int(v) for v in e.get('color', (0, 0, 0))),
                                 grasp=tuple(str(g) for g in e.get('grasp', ())))
                       for e in entries)
        except (KeyError, TypeError) as exc:
            raise ClassSetError(f'malformed class entry: {exc}') from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> 'ClassSet':
        """Load a class set from a YAML file with a top-level `classes` list."""
        with open(path, encoding='utf-8') as f:
            doc = yaml.safe_load(f)
        if not isinstance(doc, dict) or 'classes' not in doc:
            raise ClassSetError(f'{path}: expected a mapping with a "classes" list')
        return cls.from_list(doc['classes'])

    @classmethod
    def default(cls) -> 'ClassSet':
        """Return the package's default logistics class set (resources/classes.yaml)."""
        ref = resources.files('seg_perception.resources').joinpath('classes.yaml')
        with resources.as_file(ref) as path:
            return cls.from_yaml(path)


def parse_grasp_modes(entries: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Parse 'name=mode[,mode]' entries (a ROS string-array parameter) into name -> modes.

    Raises ClassSetError for a malformed entry, an unknown mode or a name given twice.
    """
    modes: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        name, sep, text = str(entry).partition('=')
        name = name.strip()
        values = tuple(v.strip() for v in text.split(',') if v.strip())
        if not sep or not name or not values:
            raise ClassSetError(f"grasp_modes entry {entry!r} is not 'class=mode[,mode]'")
        bad = [v for v in values if v not in GRASP_MODES]
        if bad:
            raise ClassSetError(f'grasp_modes entry {entry!r}: unknown modes {bad}; use '
                                f'{GRASP_MODES}')
        if name in modes:
            raise ClassSetError(f'grasp_modes names {name!r} twice')
        modes[name] = values
    return modes


def class_set_from_label_info(ids: Sequence[int], names: Sequence[str],
                              colors_rgb: Sequence[tuple[float, float, float]],
                              graspable: Sequence[str],
                              grasp_modes: Mapping[str, tuple[str, ...]]) -> ClassSet:
    """Build the class set of a LabelInfo message (parallel arrays; colours 0..1).

    Only the `graspable` classes get grasp modes: from `grasp_modes`, else the built-in class
    of that name, else suction. Raises ClassSetError when the arrays disagree or a graspable
    class is not among the names.
    """
    if not (len(ids) == len(names) and (not colors_rgb or len(colors_rgb) == len(ids))):
        raise ClassSetError(f'LabelInfo arrays differ in length: {len(ids)} ids, {len(names)} '
                            f'names, {len(colors_rgb)} colours')
    missing = [n for n in graspable if n not in names]
    if missing:
        raise ClassSetError(f"graspable classes {missing} are not among the labels' classes "
                            f'{list(names)}')
    builtin = {c.name: c.grasp for c in ClassSet.default()}
    classes = []
    for k, (class_id, name) in enumerate(zip(ids, names)):
        colour = colors_rgb[k] if colors_rgb else (0.5, 0.5, 0.5)
        modes: tuple[str, ...] = ()
        if name in graspable:
            modes = tuple(grasp_modes.get(name) or builtin.get(name) or ('suction',))
        classes.append(ClassInfo(id=int(class_id), name=str(name),
                                 color=tuple(int(round(255 * min(max(float(v), 0.0), 1.0)))
                                             for v in colour[:3]), grasp=modes))
    return ClassSet(classes)
