import io

import numpy as np
import pytest
from PIL import Image

from precompute.decode import DecodeError, to_rgb
from precompute.decoders import decode_photo


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def test_exif_orientation_is_applied_so_the_photo_is_upright():
    # A landscape photo whose top half is red, stored rotated with orientation 6
    # ("rotate 90° clockwise to display"), as a phone held sideways writes it.
    upright = Image.new("RGB", (200, 100), "blue")
    upright.paste((255, 0, 0), (0, 0, 200, 50))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_photo(encode(stored, "JPEG", exif=exif, quality=95), 100, 200)
    assert decoded.image.size == (200, 100)
    assert (decoded.width, decoded.height) == (200, 100)
    top, bottom = np.asarray(decoded.image)[10, 100], np.asarray(decoded.image)[90, 100]
    assert top[0] > 200 and top[2] < 60, "top half should be red"
    assert bottom[2] > 200 and bottom[0] < 60, "bottom half should be blue"


@pytest.mark.parametrize(
    "mode, fmt",
    [("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("RGB", "WEBP")],
)
def test_every_colour_mode_becomes_rgb(mode, fmt):
    image = Image.new("RGB", (64, 48), (200, 100, 50)).convert(mode) if mode != "I;16" else Image.new("I;16", (64, 48), 40000)
    decoded = decode_photo(encode(image, fmt), 48, 64)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (64, 48)
    if mode in ("P", "RGBA", "CMYK", "RGB"):  # colour survives the round trip
        assert np.abs(np.asarray(decoded.image)[24, 32].astype(int) - [200, 100, 50]).max() < 30


def test_sixteen_bit_grey_is_scaled_not_clipped():
    image = Image.new("I;16", (8, 8), 32768)  # half of full scale
    value = np.asarray(to_rgb(image))[0, 0]
    assert list(value) == [128, 128, 128]


def test_transparency_is_composited_over_white():
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent red
    image.putpixel((0, 0), (255, 0, 0, 255))
    rgb = np.asarray(decode_photo(encode(image, "PNG"), 4, 4).image)
    assert list(rgb[5, 5]) == [255, 255, 255]
    assert list(rgb[0, 0]) == [255, 0, 0]


def test_palette_transparency_is_composited_over_white():
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    image.info["transparency"] = 0
    rgb = np.asarray(decode_photo(encode(image, "PNG", transparency=0), 4, 4).image)
    assert list(rgb[5, 5]) == [255, 255, 255]


def test_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "lime", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    r, g, b = np.asarray(decode_photo(data, 4, 4).image)[10, 10]
    assert r > 200 and g < 50 and b < 50


def test_large_jpeg_is_decoded_at_reduced_size():
    big = Image.new("RGB", (4000, 3000), (120, 130, 140))
    decoded = decode_photo(encode(big, "JPEG"), 256, 320)
    assert (decoded.width, decoded.height) == (4000, 3000)  # the original's size is still known
    assert decoded.image.size == (500, 375)  # DCT scaling by 1/8: still ≥ 256 on the shorter side
    assert min(decoded.image.size) >= 256


def test_truncated_jpeg_is_a_decode_error():
    data = encode(Image.new("RGB", (300, 200), "green"), "JPEG")
    with pytest.raises(DecodeError, match="damaged"):
        decode_photo(data[: len(data) // 2], 16, 16)


def test_a_text_file_is_not_an_image():
    with pytest.raises(DecodeError, match="not an image"):
        decode_photo(b"hello, I am not a photo\n", 16, 16)
