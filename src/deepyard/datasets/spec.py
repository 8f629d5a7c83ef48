"""DatasetSpec: everything that decides what a dataset build produces, as plain data.

The CLI options and the web form are generated from these fields; the resolved spec is stored in the
manifest, so a build can be reproduced and compared. Units are in the field descriptions.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deepyard.errors import InvalidValueError, SourceError, choices
from deepyard.limits import check_data, shown
from deepyard.tasks.base import DEFAULT_TASK, get_task


class ResizeMode(str, Enum):
    """How an image is brought to the dataset's size (DIGITS' meanings)."""

    squash = "squash"  # ignore the aspect ratio
    crop = "crop"  # fit the short side, centre-crop the long one
    fill = "fill"  # fit the long side, pad the short one
    half_crop = "half_crop"  # scale by the mean of both ratios: crop the long side, pad the short one


class Fill(str, Enum):
    """What fills the padding of `fill` and `half_crop`."""

    noise = "noise"  # uniform random pixels, as DIGITS did (seeded: builds are reproducible)
    constant = "constant"  # `fill_value` everywhere


class Encoding(str, Enum):
    """How pixels are stored."""

    auto = "auto"  # raw when the whole dataset's pixels take at most RAW_AUTO_LIMIT bytes, else png
    raw = "raw"  # uint8 arrays, memory-mapped: fastest to read
    png = "png"  # lossless, encoded per image
    jpeg = "jpeg"  # lossy (quality `jpeg_quality`), smallest


RAW_AUTO_LIMIT = 4 * 1024**3  # bytes of raw pixels up to which `auto` picks raw
SPLITS = ("train", "val", "test")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FolderSource(_Frozen):
    """Class sub-folders; nested folders are flattened into their class."""

    kind: Literal["folder"] = "folder"
    train: Path
    val: Path | None = None  # a separate validation folder with the same classes
    test: Path | None = None  # a separate test folder with the same classes


class ListSource(_Frozen):
    """List files of `path target...` lines: a label index and a labels file (line i names class i) for
    classification, label names for multi-label, numbers for regression."""

    kind: Literal["list"] = "list"
    train: Path
    labels: Path | None = None
    val: Path | None = None
    test: Path | None = None
    base: Path | None = None  # relative paths in the lists are resolved against it (default: the list's folder)


class IdxSource(_Frozen):
    """IDX files (the MNIST layout): an images file and a labels file per split."""

    kind: Literal["idx"] = "idx"
    train_images: Path
    train_labels: Path
    val_images: Path | None = None
    val_labels: Path | None = None
    test_images: Path | None = None
    test_labels: Path | None = None
    classes: tuple[str, ...] | None = None  # default: the label values as text, "0".."9"


class CsvSource(_Frozen):
    """CSV files with a header: an image path column and target columns (multi-label: one column of labels
    separated by spaces; regression: one column per value)."""

    kind: Literal["csv"] = "csv"
    train: Path
    val: Path | None = None
    test: Path | None = None
    base: Path | None = None  # relative image paths are resolved against it (default: the CSV's folder)
    image_column: str | None = Field(None, max_length=200)  # default: the first column
    target_columns: tuple[Annotated[str, Field(max_length=200)], ...] | None = Field(None, max_length=1000)


class MaskSource(_Frozen):
    """Images and their masks (segmentation): a folder with `images/` and `masks/` sub-folders, pairs matched by
    file stem, or a list file of `image mask` lines; `classes` is a file of `name` or `name r g b` lines."""

    kind: Literal["masks"] = "masks"
    train: Path
    masks: Path | None = None  # the masks folder when `train` is a folder of images (default: train/masks)
    classes: Path | None = None  # line i names class i; `name r g b` lines map an RGB mask's colours
    val: Path | None = None  # a folder with images/ and masks/, or a list file
    test: Path | None = None
    base: Path | None = None  # relative paths in list files start here (default: the list's folder)
    resize_masks: bool = False  # a mask of another size than its image: resized (nearest) instead of skipped


class DetectionSource(_Frozen):
    """Images with boxes in one of the common annotation formats (deepyard.datasets.boxformats): a COCO JSON
    file, a Pascal VOC folder (or folder of XML files), a YOLO folder (images/ + labels/), a KITTI folder."""

    kind: Literal["detection"] = "detection"
    train: Path
    format: Literal["auto", "coco", "voc", "yolo", "kitti"] = "auto"  # auto: told from the files
    val: Path | None = None  # a separate validation source in the same format
    test: Path | None = None
    base: Path | None = None  # COCO: the folder image file names start from (default: the JSON's folder)


class TextSource(_Frozen):
    """A text corpus for a language model: a text file, a folder of text files, or JSONL with a `text` field
    (deepyard.text.corpus), and the tokenizer the build trains on its training split."""

    kind: Literal["text"] = "text"
    train: Path
    tokenizer: Literal["char", "bpe"] = "char"  # a character vocabulary, or byte-level BPE (Hugging Face tokenizers)
    vocab_size: int = Field(1024, ge=257, le=65536, description="BPE vocabulary size (bytes are the first 256).")
    context: int = Field(128, ge=2, le=8192, description="Tokens per training block (the language model's context).")


class LabelledTextSource(_Frozen):
    """Texts with a class each (text classification, deepyard.text.labelled): a folder with a sub-folder of .txt
    files per class, or a CSV/JSONL file with `text` and `label` columns; the tokenizer the build trains on the
    training texts and the stored length (None: the 95th percentile of the training lengths, at most 1024)."""

    kind: Literal["labelled-text"] = "labelled-text"
    train: Path
    val: Path | None = None  # a separate validation source in the same layout
    tokenizer: Literal["char", "bpe"] = "bpe"  # words matter more than characters to a class (measured)
    vocab_size: int = Field(1024, ge=257, le=65536, description="BPE vocabulary size (bytes are the first 256).")
    max_length: int | None = Field(None, ge=1, le=16384, description="Tokens kept per text (longer are truncated).")


Source = Annotated[
    FolderSource | ListSource | IdxSource | CsvSource | DetectionSource | MaskSource | TextSource | LabelledTextSource,
    Field(discriminator="kind"),
]


class DatasetSpec(_Frozen):
    """A full description of a dataset build: a task, a source, and how the images are stored."""

    name: str = Field(min_length=1, max_length=200, description="Name shown in listings.")
    task: str = Field(DEFAULT_TASK, max_length=50, description="What the targets are: see `deepyard task list`.")
    source: Source
    channels: Literal[1, 3] = Field(3, description="1 = grayscale, 3 = RGB.")
    width: int = Field(256, ge=1, le=16384, description="Image width in pixels.")
    height: int = Field(256, ge=1, le=16384, description="Image height in pixels.")
    resize_mode: ResizeMode = Field(
        ResizeMode.squash,
        description="squash ignores the aspect ratio; crop fits the short side and centre-crops; fill fits "
        "the long side and pads; half_crop does half of each.",
    )
    fill: Fill = Field(Fill.noise, description="Padding of fill and half_crop: random noise or a constant.")
    fill_value: int = Field(0, ge=0, le=255, description="Grey level of constant padding.")
    encoding: Encoding = Field(
        Encoding.auto,
        description="Stored pixels: raw (memory-mapped arrays, fastest), png (lossless), jpeg (smallest); "
        "auto = raw up to 4 GiB of pixels, else png.",
    )
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality when encoding is jpeg.")
    val_pct: float = Field(25.0, ge=0, le=100, description="% of each class held out for validation (no val source).")
    test_pct: float = Field(0.0, ge=0, le=100, description="% of each class held out for test (no test source).")
    min_per_class: int = Field(2, ge=1, description="Classes with fewer training images are dropped and reported.")
    max_per_class: int | None = Field(None, ge=1, description="Cap on images per class from the train source.")
    val_max_per_class: int | None = Field(None, ge=1, description="Cap per class for a separate val source.")
    test_max_per_class: int | None = Field(None, ge=1, description="Cap per class for a separate test source.")
    seed: int = Field(0, description="Seed of the split, the per-class caps and the noise padding.")
    max_pixels: int = Field(
        100_000_000, ge=1, description="Images with more pixels are skipped as decompression bombs."
    )
    alpha_background: int = Field(
        255, ge=0, le=255, description="Grey level that transparent pixels are composited over."
    )

    @model_validator(mode="after")
    def _check_percentages(self) -> DatasetSpec:
        get_task(self.task)  # an unknown task names the valid ones
        if self.val_pct + self.test_pct >= 100:
            raise InvalidValueError(
                f"val_pct + test_pct = {self.val_pct + self.test_pct:g}; they must add up to less than 100"
            )
        return self


def parse_size(text: str) -> tuple[int, int]:
    """Parse `WxH` (e.g. `28x28`) into (width, height)."""
    parts = text.lower().replace("\u00d7", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InvalidValueError(f"size {text!r} is not WxH (for example 28x28 or 256x256)")
    width, height = (int(p) for p in parts)
    if not (1 <= width <= 16384 and 1 <= height <= 16384):
        raise InvalidValueError(f"size {text!r}: width and height must be between 1 and 16384")
    return width, height


def parse_enum(enum: type[Enum], value: str, what: str) -> Enum:
    """Look up an enum member by value with an error that lists the valid values."""
    try:
        return enum(value)
    except ValueError:
        raise InvalidValueError(f"{what} {value!r} is not valid; use {choices(m.value for m in enum)}") from None


def make_spec(**fields: object) -> DatasetSpec:
    """Build a DatasetSpec, turning pydantic's validation report into one InvalidValueError per bad field."""
    from pydantic import ValidationError

    check_data(fields, "dataset options")
    try:
        return DatasetSpec.model_validate(fields)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "spec"
            ctx = err.get("ctx", {})
            cause = ctx.get("error") if isinstance(ctx, dict) else None
            message = str(cause) if isinstance(cause, InvalidValueError) else err["msg"]
            value = err.get("input")
            got = f" (got {shown(value)})" if err["loc"] and not isinstance(value, dict) else ""
            problems.append(f"{where}: {message}{got}")
        raise InvalidValueError("invalid dataset options: " + "; ".join(problems)) from None


def source_fields(
    train: Path,
    labels: Path | None = None,
    base: Path | None = None,
    val: Path | None = None,
    test: Path | None = None,
) -> dict[str, object]:
    """The source a path names: a folder (class or label sub-folders), a CSV file (`.csv`), or a list file."""
    if not train.exists():
        raise SourceError(f"{str(train)!r} does not exist; give a folder, a CSV file or a list file")
    if train.suffix.lower() == ".csv":
        src: dict[str, object] = {"kind": "csv", "train": train, "base": base}
    elif train.is_dir():
        src = {"kind": "folder", "train": train}
    else:
        src = {"kind": "list", "train": train, "labels": labels, "base": base}
    return {**src, "val": val, "test": test}


def default_name(source: Path) -> str:
    """A dataset's name when none is given: its source folder's or file's name; a JSON annotation file's (COCO's
    `instances.json`, named for its kind, not its data) is its folder's, and in COCO's own layout
    (`coco/annotations/instances_val2017.json`) the folder above `annotations/`."""
    path = source.resolve()
    if not (path.suffix.lower() == ".json" and path.is_file()):
        return path.name
    folder = path.parent.parent if path.parent.name.lower() == "annotations" else path.parent
    return folder.name or path.name
