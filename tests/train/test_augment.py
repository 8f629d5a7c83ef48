"""Each augmentation's effect on a known image, and crops."""

from __future__ import annotations

import pytest
import torch

from deepyard.errors import InvalidValueError
from deepyard.train import AugmentConfig
from deepyard.train.augment import augment, check_augment, crop, hsv_to_rgb, rgb_to_hsv


def known(b: int = 64, c: int = 1, h: int = 8, w: int = 8) -> torch.Tensor:
    """A batch of one asymmetric image: values 0..255 rising left to right and top to bottom."""
    img = torch.arange(h * w, dtype=torch.float32).reshape(h, w) * (255 / (h * w - 1))
    return img.expand(b, c, h, w).clone()


def run(x: torch.Tensor, seed: int = 0, **settings: object) -> torch.Tensor:
    return augment(x, AugmentConfig.model_validate(settings), torch.Generator().manual_seed(seed))


def test_invert_with_probability_one_and_a_half() -> None:
    x = known()
    assert torch.allclose(run(x, invert=1.0), 255 - x)
    mixed = run(x, invert=0.5)
    inverted = (mixed == 255 - x).flatten(1).all(1)
    assert 10 < int(inverted.sum()) < 54 and ((mixed == x).flatten(1).all(1) | inverted).all()


@pytest.mark.parametrize(("mode", "dims"), [("lr", [3]), ("ud", [2])])
def test_flips_flip_about_half_the_images(mode: str, dims: list[int]) -> None:
    x = known()
    out = run(x, flip=mode)
    flipped = (out == x.flip(dims)).flatten(1).all(1)
    assert 10 < int(flipped.sum()) < 54 and ((out == x).flatten(1).all(1) | flipped).all()


def test_quarter_turns_give_the_four_rotations() -> None:
    x = known()
    out = run(x, rot90="rotall")
    matches = torch.stack([(out == torch.rot90(x, k, (2, 3))).flatten(1).all(1) for k in range(4)])
    assert matches.any(0).all() and (matches.sum(1) > 3).all()  # every image is one rotation; all four occur
    with pytest.raises(InvalidValueError, match="needs square images"):
        check_augment(AugmentConfig(rot90="rot90"), (1, 8, 12))


def test_rotation_moves_pixels_about_the_centre() -> None:
    x = torch.zeros(32, 1, 15, 15)
    x[:, :, 7, :] = 255  # a horizontal line through the centre
    out = run(x, rotation=90)
    assert (out[:, :, 7, 7] > 200).all()  # the centre stays on the line
    assert (out[:, :, 7, :].sum(-1) < x[:, :, 7, :].sum(-1) - 100).float().mean() > 0.5  # the line has turned


def test_scale_jitter_zooms() -> None:
    x = torch.zeros(32, 1, 16, 16)
    x[:, :, 4:12, 4:12] = 255  # a centred square covering a quarter of the image
    out = run(x, scale=0.3)
    area = (out > 127).flatten(1).sum(1).float()
    assert area.std() > 5 and (area - 64).abs().max() > 10


def test_noise_has_the_asked_stddev() -> None:
    x = torch.full((64, 1, 16, 16), 128.0)
    out = run(x, noise=0.03)
    assert (out - x).std().item() == pytest.approx(0.03 * 255, rel=0.05)


def test_contrast_keeps_the_mean_and_scales_deviation() -> None:
    x = known()
    out = run(x, contrast=0.5)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-3)
    ratio = out.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 1.5 + 1e-4 and ratio.std() > 0.1


def test_hsv_round_trip_and_hue_shift() -> None:
    rgb = torch.rand(4, 3, 5, 5)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-5)
    red = torch.zeros(16, 3, 4, 4)
    red[:, 0] = 255
    out = run(red, hsv_h=0.2)
    hsv = rgb_to_hsv(out / 255)
    assert torch.allclose(hsv[:, 2], torch.ones_like(hsv[:, 2]), atol=1e-4)  # value unchanged
    assert (out[:, 1:].amax(dim=(1, 2, 3)) > 10).any()  # some reds became other hues
    with pytest.raises(InvalidValueError, match="need colour"):
        check_augment(AugmentConfig(hsv_h=0.1), (1, 4, 4))


def test_random_crops_are_windows_and_centre_crop_is_the_middle() -> None:
    x = known(b=16, h=10, w=10)
    centre = crop(x, 6, None)
    assert torch.equal(centre, x[:, :, 2:8, 2:8])
    out = crop(x, 6, torch.Generator().manual_seed(0))
    found = set()
    for i in range(16):
        hits = [
            (t, lft) for t in range(5) for lft in range(5) if torch.equal(out[i], x[i, :, t : t + 6, lft : lft + 6])
        ]
        assert len(hits) == 1
        found.add(hits[0])
    assert len(found) > 4
    with pytest.raises(InvalidValueError, match="larger than the images"):
        crop(x, 11, None)
