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


def _scaled(fraction: float):
    def scale(image: Image.Image, rng: random.Random) -> Image.Image:
        size = (max(1, round(image.width * fraction)), max(1, round(image.height * fraction)))
        return image.resize(size, Image.Resampling.LANCZOS)
    return scale


def _centre_crop(image: Image.Image, rng: random.Random) -> Image.Image:
    """80 % of each side, centred: a framing tightened."""
    width, height = round(image.width * 0.8), round(image.height * 0.8)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def _off_centre_crop(image: Image.Image, rng: random.Random) -> Image.Image:
    """60 % of each side, towards a random corner: a detail cut out of the picture."""
    width, height = round(image.width * 0.6), round(image.height * 0.6)
    left = rng.choice([rng.randint(0, (image.width - width) // 4), rng.randint(3 * (image.width - width) // 4, image.width - width)])
    top = rng.choice([rng.randint(0, (image.height - height) // 4), rng.randint(3 * (image.height - height) // 4, image.height - height)])
    return image.crop((left, top, left + width, top + height))


def _rotate_90(image: Image.Image, rng: random.Random) -> Image.Image:
    """The pixels turned a quarter, no EXIF tag: as an editor's "rotate" saves it."""
    return image.transpose(rng.choice([Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270]))


def _letterbox(image: Image.Image, rng: random.Random) -> Image.Image:
    """Bars added to fit another frame (16:9 or square), as a phone shares a photo."""
    width, height = image.size
    target = rng.choice([16 / 9, 1.0])
    if width / height < target:
        width = round(height * target)  # bars left and right
    else:
        height = round(width / target)  # bars above and below
    canvas = Image.new("RGB", (width, height), rng.choice([(0, 0, 0), (255, 255, 255)]))
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    return canvas


# Kinds saved as plain JPEG; "jpeg", "exif-rotation", "jpeg15" and "png" are handled in `save_copy`.
_EDITS = {
    "crop": _crop,
    "downscale": _downscale,
    "flip": _flip,
    "grayscale": _grayscale,
    "brightness-contrast": _brightness_contrast,
    "caption": _caption,
    # The duplicate protocol's edits (DUPLICATE_KINDS), beside the ones above that they share.
    "half": _scaled(0.5),
    "quarter": _scaled(0.25),
    "crop80": _centre_crop,
    "crop60": _off_centre_crop,
    "gray": _grayscale,
    "mirror": _flip,
    "rot90": _rotate_90,
    "bright": _brightness_contrast,
    "pad": _letterbox,
}
KINDS = ("crop", "downscale", "jpeg", "flip", "grayscale", "brightness-contrast", "exif-rotation", "caption")
# What people do to a photo that keeps it the same picture (`python -m tools.evaluate.duplicate_threshold`).
DUPLICATE_KINDS = ("half", "quarter", "jpeg15", "crop80", "crop60", "gray", "mirror", "rot90", "bright", "caption", "png", "pad")


def copy_name(number: int, kind: str) -> str:
    return f"copy{number:04d}-{kind}.{'png' if kind == 'png' else 'jpg'}"


def save_copy(image: Image.Image, kind: str, rng: random.Random, target: Path) -> None:
    if kind == "jpeg":
        image.save(target, "JPEG", quality=rng.randint(20, 40))
    elif kind == "jpeg15":
        image.save(target, "JPEG", quality=15)
    elif kind == "png":
        image.save(target, "PNG")
    elif kind == "exif-rotation":
        # Stored sideways with orientation 6, as a phone does: upright only if the tag is honoured.
        exif = Image.Exif()
        exif[0x0112] = 6
        image.transpose(Image.Transpose.ROTATE_90).save(target, "JPEG", quality=90, exif=exif)
    else:
        _EDITS[kind](image, rng).save(target, "JPEG", quality=90)


def make_copies(originals: list[Path], dest: Path, count: int, seed: int = 0,
                kinds: tuple[str, ...] = KINDS) -> dict[str, tuple[str, str]]:
    """Write `count` edited copies into `dest`, the `kinds` in turn; return {copy file name: (original file name, edit kind)}."""
    rng = random.Random(seed)
    chosen = rng.sample(sorted(originals), count)
    dest.mkdir(parents=True, exist_ok=True)
    made = {}
    for number, original in enumerate(chosen):
        kind = kinds[number % len(kinds)]
        image = ImageOps.exif_transpose(Image.open(original)).convert("RGB")
        name = copy_name(number, kind)
        save_copy(image, kind, rng, dest / name)
        made[name] = (original.name, kind)
    return made


def prepare_near_duplicates(originals_folder: Path, work: Path, copies: int, seed: int = 0,
                            kinds: tuple[str, ...] = KINDS) -> tuple[Path, dict]:
    """A folder of the originals (linked, not copied) and `copies` seeded edited copies of them.

    Returns the folder and `make_copies`' map; photos are `originals/NAME` and `copies/NAME` in it.
    """
    photos = work / "near-duplicates"
    (photos / "originals").mkdir(parents=True)
    originals = sorted(p for p in originals_folder.iterdir() if p.is_file())
    for original in originals:
        (photos / "originals" / original.name).symlink_to(original)
    return photos, make_copies(originals, photos / "copies", copies, seed, kinds)
