"""A fake camera for Chromium: a QR code, centred on a white 640 × 480 frame, as a Y4M video file for
`--use-file-for-fake-video-capture` (with `--use-fake-device-for-media-stream`). Chromium loops the frames.

Y4M (YUV4MPEG2): a one-line header, then for each frame "FRAME\\n" and the raw planes of YUV 4:2:0: Y at full
size, then Cb and Cr at half width and half height. `C420jpeg` means full-range (JPEG) YCbCr, which is what
Pillow's "YCbCr" mode gives."""

import io
from pathlib import Path

import segno
from PIL import Image

WIDTH, HEIGHT = 640, 480
FPS = 10


def qr_image(payload: str, *, scale: int = 8, border: int = 4) -> Image.Image:
    """The QR code as a black on white image (PNG by segno, read back by Pillow)."""
    buffer = io.BytesIO()
    segno.make(payload, error="m").save(buffer, kind="png", scale=scale, border=border, dark="#000", light="#fff")
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def frame(payload: str, *, width: int = WIDTH, height: int = HEIGHT, scale: int = 8) -> Image.Image:
    """The QR code centred on a white frame; made smaller if it would not fit."""
    qr = qr_image(payload, scale=scale)
    while (qr.width > width or qr.height > height) and scale > 1:
        scale -= 1
        qr = qr_image(payload, scale=scale)
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(qr, ((width - qr.width) // 2, (height - qr.height) // 2))
    return canvas


def yuv420_planes(image: Image.Image) -> bytes:
    """Y, then Cb and Cr subsampled by 2 in both directions (box filter): one Y4M frame's payload."""
    y, cb, cr = image.convert("YCbCr").split()
    half = (image.width // 2, image.height // 2)
    return (
        y.tobytes() + cb.resize(half, Image.Resampling.BOX).tobytes() + cr.resize(half, Image.Resampling.BOX).tobytes()
    )


def write_y4m(path: Path, payload: str, *, frames: int = 5) -> Path:
    """Write a Y4M file showing the QR code of `payload` for `frames` frames; returns `path`."""
    image = frame(payload)
    planes = yuv420_planes(image)
    assert len(planes) == WIDTH * HEIGHT * 3 // 2
    path = Path(path)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for _ in range(frames):
            out.write(b"FRAME\n")
            out.write(planes)
    return path
