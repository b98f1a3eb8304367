"""Agreement between models: on each input, every pair's boxes matched one-to-one (`geometry.match`),
tallied per class over the run into a `PairAgreement`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from detect_cli import geometry
from detect_cli.compare.results import MATCH_IOU, ClassAgreement, PairAgreement
from detect_cli.errors import BadOptionError
from detect_cli.models import Detector
from detect_cli.results import Detection


def shared_class_names(detectors: Sequence[Detector]) -> tuple[tuple[str, ...], list[str]]:
    """Class names every model knows (in the first model's order), and a note when they differ."""
    keys = [{n.casefold() for n in d.names.values()} for d in detectors]
    common = set.intersection(*keys)
    shared = tuple(n for n in detectors[0].names.values() if n.casefold() in common)
    if not shared:
        raise BadOptionError(
            "the models share no class names ("
            + "; ".join(f"{d.name}: {', '.join(list(d.names.values())[:4])}…" for d in detectors)
            + "), so their detections cannot be compared"
        )
    notes = []
    if any(k != keys[0] for k in keys):
        counts = ", ".join(f"{d.name} has {len(d.names)}" for d in detectors)
        notes.append(
            f"the models' classes differ ({counts}): agreement and accuracy use the {len(shared)} "
            "class names they share"
        )
    return shared, notes


@dataclass(frozen=True, slots=True)
class ImageMatch:
    """One image's one-to-one matching: (class, IoU) per matched pair; unmatched boxes of each side."""

    matched: tuple[tuple[str, float], ...]
    only_a: tuple[Detection, ...]
    only_b: tuple[Detection, ...]


def match_detections(
    a: Sequence[Detection],
    b: Sequence[Detection],
    iou_threshold: float = MATCH_IOU,
    classes: frozenset[str] | None = None,
) -> ImageMatch:
    """Pair boxes of the same class (by name, case aside) with IoU ≥ threshold, one-to-one, greedily:
    candidate pairs are taken in order of their combined confidence (then IoU), so the most confident boxes
    are matched first and the result does not depend on which model is A (`geometry.match`). Boxes of
    classes outside `classes` are ignored."""
    if classes is not None:
        a = [d for d in a if d.class_name.casefold() in classes]
        b = [d for d in b if d.class_name.casefold() in classes]
    matches = geometry.match(a, b, iou_threshold)
    used_a = {m.a for m in matches}
    used_b = {m.b for m in matches}
    return ImageMatch(
        tuple((a[m.a].class_name, m.iou) for m in matches),
        tuple(d for i, d in enumerate(a) if i not in used_a),
        tuple(d for j, d in enumerate(b) if j not in used_b),
    )


class AgreementTally:
    """Running totals of `match_detections` over the images of one pair of models."""

    def __init__(self, a: str, b: str) -> None:
        self.a, self.b = a, b
        self.images = 0
        self.ious: defaultdict[str, list[float]] = defaultdict(list)
        self.only_a: Counter[str] = Counter()
        self.only_b: Counter[str] = Counter()

    def add(self, match: ImageMatch) -> None:
        self.images += 1
        for name, v in match.matched:
            self.ious[name].append(v)
        self.only_a.update(d.class_name for d in match.only_a)
        self.only_b.update(d.class_name for d in match.only_b)

    def result(self) -> PairAgreement:
        names = sorted(set(self.ious) | set(self.only_a) | set(self.only_b))
        rows = tuple(
            ClassAgreement(
                n,
                len(self.ious[n]),
                self.only_a[n],
                self.only_b[n],
                sum(self.ious[n]) / len(self.ious[n]) if self.ious[n] else None,
            )
            for n in names
        )
        all_ious = [v for n in names for v in self.ious[n]]
        overall = ClassAgreement(
            "all",
            len(all_ious),
            sum(self.only_a.values()),
            sum(self.only_b.values()),
            sum(all_ious) / len(all_ious) if all_ious else None,
        )
        return PairAgreement(self.a, self.b, self.images, overall, rows)
