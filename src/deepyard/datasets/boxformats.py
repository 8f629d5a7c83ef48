"""Read object-detection annotations: COCO JSON, Pascal VOC XML, YOLO txt and KITTI txt, into one record.

Each reader turns a source into `Scene`s (an image path and its boxes as x1, y1, x2, y2 in the original image's
pixels, with class names and COCO's `iscrowd`) and a class list, and reports every problem per file as a
`Skipped` (path, reason) while going on: a malformed JSON/XML file or txt line, an unknown class id, an
annotation for a missing image, an image with no annotation file, duplicate ids. Box checks (clipping, empty and
NaN boxes) are not done here but in `deepyard.datasets.boxes`, once the image's real size is known.

Layouts:
- coco: a JSON file with `images`, `annotations` (`bbox` [x, y, w, h]) and `categories`; images next to it or
  under `base`. Class order: categories by id. Duplicate ids (files merged by hand reuse them): an image id
  listed again for the same file, or an annotation copied exactly, is reported and left out; an image id two
  files share takes both out (their boxes cannot be told apart); a different annotation under a used id is kept
  and warned (leaving a real object out would teach the detector it is background), as for COCO masks.
- voc: `Annotations/*.xml` + `JPEGImages/` (splits from `ImageSets/Main/{train,val,test}.txt` when present), or
  any folder of XML files whose `<filename>` names an image beside them or in a sibling `images/` folder.
  Class order: sorted names.
- yolo: `images/` + `labels/` (`class cx cy w h` lines, normalised to 0..1) with `classes.txt` (one name a line)
  or `data.yaml` (`names:` list or mapping). Class order: the file's.
- kitti: `image_2/` + `label_2/` or `images/` + `labels/`, 15-field lines (type, truncated, occluded, alpha,
  left, top, right, bottom, ...); DontCare lines are ignored. Class order: sorted names.
Every path is confined by `readable` when given (the server's data roots), including paths inside the files.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deepyard.datasets.images import EXTENSIONS
from deepyard.datasets.sources import OUTSIDE, Readable, Skipped
from deepyard.errors import SourceError, choices

FORMATS = ("coco", "voc", "yolo", "kitti")


@dataclass
class Box:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    crowd: int = 0
    # yolo: normalised centre/size, turned into pixels once the image's size is known
    normalised: bool = False


@dataclass
class Scene:
    image: str  # the image's path
    boxes: list[Box] = field(default_factory=list)
    where: str = ""  # the annotation file (and line) that described it, for reports
    split: str | None = None  # a split the source itself assigns (VOC ImageSets)


@dataclass
class Annotations:
    format: str
    classes: list[str]
    scenes: list[Scene]
    skipped: list[Skipped]
    warnings: list[Skipped] = field(default_factory=list)  # kept, but doubtful (an annotation id used twice)


def detect_format(path: Path) -> str:
    """The annotation format of `path`, told from its files; SourceError when it fits none."""
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        raise SourceError(f"{str(path)!r} is a file but not a COCO .json file; give a COCO JSON file or a folder")
    if not path.is_dir():
        raise SourceError(f"{str(path)!r} does not exist; give a COCO JSON file or a VOC, YOLO or KITTI folder")
    if (path / "label_2").is_dir():
        return "kitti"
    if (path / "Annotations").is_dir() or any(p.suffix.lower() == ".xml" for p in _files(path)):
        return "voc"
    if (path / "labels").is_dir():
        if any((path / n).is_file() for n in ("classes.txt", "data.yaml", "data.yml")):
            return "yolo"
        for label in sorted(_files(path / "labels"))[:20]:
            for line in _text(label).splitlines():
                if line.strip():
                    return "kitti" if len(line.split()) >= 15 else "yolo"
        return "yolo"
    raise SourceError(
        f"cannot tell the annotation format of {str(path)!r}: it has no Annotations/ or XML files (voc), no "
        "labels/ folder (yolo, kitti) and no label_2/ folder (kitti); give --format " + choices(FORMATS)
    )


def read_annotations(path: Path, fmt: str, base: Path | None, readable: Readable | None) -> Annotations:
    """Every scene of the source at `path` in format `fmt` (auto: detected), with the problems found."""
    if readable is not None and not readable(str(path)):
        raise SourceError(f"source {str(path)!r} is {OUTSIDE}")
    from deepyard.datasets.cocoboxes import read_coco  # it reads into this module's records

    fmt = detect_format(path) if fmt == "auto" else fmt
    readers: dict[str, Callable[[Path, Path | None, Readable | None], Annotations]] = {
        "coco": read_coco, "voc": read_voc, "yolo": read_yolo, "kitti": read_kitti,
    }  # fmt: skip
    if fmt not in readers:
        raise SourceError(f"annotation format {fmt!r} is not known; use {choices(['auto', *FORMATS])}")
    return readers[fmt](path, base, readable)


# ---------------------------------------------------------------- VOC


def read_voc(path: Path, base: Path | None, readable: Readable | None) -> Annotations:
    folder = path / "Annotations" if (path / "Annotations").is_dir() else path
    image_dirs = [path / "JPEGImages", folder, path / "images", folder.parent / "images"]
    splits = _voc_splits(path)
    skipped: list[Skipped] = []
    scenes: list[Scene] = []
    by_image: dict[str, str] = {}
    for xml in sorted(p for p in _files(folder) if p.suffix.lower() == ".xml"):
        if readable is not None and not readable(str(xml)):
            skipped.append(Skipped(str(xml), OUTSIDE))
            continue
        scene = _voc_scene(xml, image_dirs, skipped)
        if scene is None:
            continue
        if scene.image in by_image:
            skipped.append(Skipped(str(xml), f"names the same image as {by_image[scene.image]}; the first is kept"))
            continue
        by_image[scene.image] = xml.name
        scene.split = splits.get(xml.stem)
        scenes.append(scene)
    classes = sorted({b.label for s in scenes for b in s.boxes})
    _no_annotation(image_dirs[:1], {Path(s.image).name for s in scenes}, skipped)
    return Annotations("voc", classes, existing_scenes(scenes, readable, skipped), skipped)


def _voc_scene(xml: Path, image_dirs: list[Path], skipped: list[Skipped]) -> Scene | None:
    try:
        root = ET.fromstring(xml.read_bytes())  # the stdlib parser fetches no external entity
    except (OSError, ET.ParseError) as exc:
        skipped.append(Skipped(str(xml), f"malformed XML: {exc}"))
        return None
    filename = (root.findtext("filename") or "").strip()
    if not filename or "/" in filename or "\\" in filename or filename in (".", ".."):
        skipped.append(Skipped(str(xml), f"<filename> {filename!r} is not a file name"))
        return None
    image = next((d / filename for d in image_dirs if (d / filename).exists()), image_dirs[0] / filename)
    scene = Scene(str(image), where=xml.name)
    for n, obj in enumerate(root.iter("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        try:
            if not name or bnd is None:
                raise ValueError("no <name> or <bndbox>")
            x1, y1, x2, y2 = (float(bnd.findtext(k) or "x") for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as exc:
            skipped.append(Skipped(f"{xml} object {n}", f"malformed object: {exc}"))
            continue
        scene.boxes.append(Box(name, x1, y1, x2, y2))  # VOC's 1-based pixel corners, kept as given
    return scene


def _voc_splits(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for split in ("train", "val", "test"):
        listing = path / "ImageSets" / "Main" / f"{split}.txt"
        if listing.is_file():
            for line in _text(listing).splitlines():
                if line.strip():
                    found.setdefault(line.split()[0], split)
    return found


# ---------------------------------------------------------------- YOLO and KITTI


def read_yolo(path: Path, base: Path | None, readable: Readable | None) -> Annotations:
    classes = _yolo_names(path)
    skipped: list[Skipped] = []
    scenes = []
    for image, label in _pairs(path / "images", path / "labels", readable, skipped):
        scene = Scene(str(image), where=label.name)
        for number, line in enumerate(_label_lines(label, skipped), start=1):
            parts = line.split()
            if not parts:
                continue
            at = f"{label}:{number}"
            try:
                if len(parts) != 5:
                    raise ValueError(f"{len(parts)} fields, a YOLO line has 5 (class cx cy w h)")
                index, (cx, cy, w, h) = int(parts[0]), (float(v) for v in parts[1:])
            except ValueError as exc:
                skipped.append(Skipped(at, f"malformed line: {exc}"))
                continue
            if not 0 <= index < len(classes):
                skipped.append(Skipped(at, f"unknown class id {index}; the class list has {len(classes)}"))
                continue
            scene.boxes.append(Box(classes[index], cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, normalised=True))
        scenes.append(scene)
    return Annotations("yolo", classes, scenes, skipped)


def _yolo_names(path: Path) -> list[str]:
    if (path / "classes.txt").is_file():
        return [n.strip() for n in _text(path / "classes.txt").splitlines() if n.strip()]
    for name in ("data.yaml", "data.yml"):
        if (path / name).is_file():
            import yaml

            try:
                doc = yaml.safe_load(_text(path / name))
            except yaml.YAMLError as exc:
                raise SourceError(f"{str(path / name)!r} is not valid YAML: {exc}") from None
            names = doc.get("names") if isinstance(doc, dict) else None
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names)]
            if isinstance(names, list):
                return [str(n) for n in names]
            raise SourceError(f"{str(path / name)!r} has no 'names' list or mapping")
    raise SourceError(f"YOLO folder {str(path)!r} has no classes.txt or data.yaml naming the classes")


def read_kitti(path: Path, base: Path | None, readable: Readable | None) -> Annotations:
    images, labels = (path / "image_2", path / "label_2") if (path / "label_2").is_dir() else (
        path / "images", path / "labels")  # fmt: skip
    skipped: list[Skipped] = []
    scenes = []
    for image, label in _pairs(images, labels, readable, skipped):
        scene = Scene(str(image), where=label.name)
        for number, line in enumerate(_label_lines(label, skipped), start=1):
            parts = line.split()
            if not parts or parts[0] == "DontCare":
                continue
            try:
                if len(parts) not in (15, 16):
                    raise ValueError(f"{len(parts)} fields, a KITTI line has 15 (16 with a score)")
                x1, y1, x2, y2 = (float(v) for v in parts[4:8])
            except ValueError as exc:
                skipped.append(Skipped(f"{label}:{number}", f"malformed line: {exc}"))
                continue
            scene.boxes.append(Box(parts[0], x1, y1, x2, y2))
        scenes.append(scene)
    classes = sorted({b.label for s in scenes for b in s.boxes})
    return Annotations("kitti", classes, scenes, skipped)


def _pairs(images: Path, labels: Path, readable: Readable | None, skipped: list[Skipped]) -> list[tuple[Path, Path]]:
    """(image, label file) pairs by file stem; an image without a label file is a negative (reported), a label
    file without an image is reported, two images with one stem are reported."""
    if not images.is_dir() or not labels.is_dir():
        raise SourceError(f"{str(images.parent)!r} needs an {images.name}/ and a {labels.name}/ folder")
    by_stem: dict[str, Path] = {}
    for image in sorted(p for p in _files(images) if p.suffix.lower() in EXTENSIONS):
        if readable is not None and not readable(str(image)):
            skipped.append(Skipped(str(image), OUTSIDE))
        elif image.stem in by_stem:
            skipped.append(Skipped(str(image), f"duplicate id {image.stem!r}: {by_stem[image.stem].name} has it too"))
        else:
            by_stem[image.stem] = image
    label_files = {p.stem: p for p in _files(labels) if p.suffix.lower() == ".txt"}
    for stem in sorted(set(label_files) - set(by_stem)):
        skipped.append(Skipped(str(label_files[stem]), "annotation for a missing image"))
    pairs = []
    for stem, image in by_stem.items():
        label = label_files.get(stem)
        if label is None:
            skipped.append(Skipped(str(image), "no annotation file; kept as an image without objects"))
            label = Path(os.devnull)
        elif readable is not None and not readable(str(label)):
            skipped.append(Skipped(str(label), OUTSIDE))
            continue
        pairs.append((image, label))
    return pairs


# ---------------------------------------------------------------- helpers


def existing_scenes(scenes: list[Scene], readable: Readable | None, skipped: list[Skipped]) -> list[Scene]:
    kept = []
    for scene in scenes:
        if readable is not None and not readable(scene.image):
            skipped.append(Skipped(scene.image, OUTSIDE))
        elif not os.path.isfile(scene.image):
            skipped.append(Skipped(scene.image, f"annotation for a missing image ({scene.where})"))
        else:
            kept.append(scene)
    return kept


def _no_annotation(folders: list[Path], annotated: set[str], skipped: list[Skipped]) -> None:
    for folder in folders:
        for image in sorted(p for p in _files(folder) if p.suffix.lower() in EXTENSIONS):
            if image.name not in annotated:
                skipped.append(Skipped(str(image), "image with no annotation file (not used)"))


def _files(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]
    except OSError:
        return []


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise SourceError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None


def _label_lines(path: Path, skipped: list[Skipped]) -> list[str]:
    try:
        return _text(path).splitlines()
    except SourceError as exc:
        skipped.append(Skipped(str(path), f"label file cannot be read ({exc}); kept as an image without objects"))
        return []
