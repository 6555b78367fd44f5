"""Edited copies of real photos, as people re-save, crop and caption them.

The set is seeded, so every run and every configuration sees the same copies.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    fraction = rng.uniform(0.5, 0.9)
    width, height = round(image.width * fraction), round(image.height * fraction)
    left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
    return image.crop((left, top, left + width, top + height))


def _downscale(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.resize((max(1, round(image.width * 0.3)), max(1, round(image.height * 0.3))), Image.Resampling.BILINEAR)


def _flip(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.mirror(image)


def _grayscale(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def _brightness_contrast(image: Image.Image, rng: random.Random) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.choice([rng.uniform(0.6, 0.8), rng.uniform(1.2, 1.4)]))
    return ImageEnhance.Contrast(image).enhance(rng.choice([rng.uniform(0.6, 0.8), rng.uniform(1.2, 1.4)]))


def _caption(image: Image.Image, rng: random.Random) -> Image.Image:
    image = image.copy()
    draw = ImageDraw.Draw(image)
    band = max(12, image.height // 6)
    draw.rectangle((0, image.height - band, image.width, image.height), fill=(0, 0, 0))
    draw.text((8, image.height - band + 4), "SALE -30% · limited offer", fill=(255, 255, 255), font_size=band * 0.6)
    return image


# Kinds saved as plain JPEG; "jpeg" and "exif-rotation" are handled in `save_copy`.
_EDITS = {
    "crop": _crop,
    "downscale": _downscale,
    "flip": _flip,
    "grayscale": _grayscale,
    "brightness-contrast": _brightness_contrast,
    "caption": _caption,
}
KINDS = ("crop", "downscale", "jpeg", "flip", "grayscale", "brightness-contrast", "exif-rotation", "caption")


def save_copy(image: Image.Image, kind: str, rng: random.Random, target: Path) -> None:
    if kind == "jpeg":
        image.save(target, "JPEG", quality=rng.randint(20, 40))
    elif kind == "exif-rotation":
        # Stored sideways with orientation 6, as a phone does: upright only if the tag is honoured.
        exif = Image.Exif()
        exif[0x0112] = 6
        image.transpose(Image.Transpose.ROTATE_90).save(target, "JPEG", quality=90, exif=exif)
    else:
        _EDITS[kind](image, rng).save(target, "JPEG", quality=90)


def make_copies(originals: list[Path], dest: Path, count: int, seed: int = 0) -> dict[str, tuple[str, str]]:
    """Write `count` edited copies into `dest`; return {copy file name: (original file name, edit kind)}."""
    rng = random.Random(seed)
    chosen = rng.sample(sorted(originals), count)
    dest.mkdir(parents=True, exist_ok=True)
    made = {}
    for number, original in enumerate(chosen):
        kind = KINDS[number % len(KINDS)]
        image = ImageOps.exif_transpose(Image.open(original)).convert("RGB")
        name = f"copy{number:04d}-{kind}.jpg"
        save_copy(image, kind, rng, dest / name)
        made[name] = (original.name, kind)
    return made


def prepare_near_duplicates(originals_folder: Path, work: Path, copies: int, seed: int = 0) -> tuple[Path, dict]:
    """A folder of the originals (linked, not copied) and `copies` seeded edited copies of them.

    Returns the folder and `make_copies`' map; photos are `originals/NAME` and `copies/NAME` in it.
    """
    photos = work / "near-duplicates"
    (photos / "originals").mkdir(parents=True)
    originals = sorted(p for p in originals_folder.iterdir() if p.is_file())
    for original in originals:
        (photos / "originals" / original.name).symlink_to(original)
    return photos, make_copies(originals, photos / "copies", copies, seed)
