"""A released-layout -C tree written by failmodes reads back through ``imagenetc:`` with the
pixels of the on-the-fly cell finished by the JPEG quality-85 save."""
import pytest
import torch
from PIL import Image

from failmodes.data import imagenet_wnids, load_dataset
from failmodes.stressors import get_stressor
from failmodes.stressors.finish import finish_images
from failmodes.stressors.tree import write_corrupted_tree


@pytest.fixture()
def photos(tmp_path):
    import skimage.data
    for wnid, img in (("n02124075", skimage.data.chelsea()), ("n07920052", skimage.data.coffee())):
        (tmp_path / "val" / wnid).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / "val" / wnid / "x.png")
    return tmp_path


def test_tree_reads_back_as_the_finished_on_the_fly_cell(photos, tmp_path):
    ds = load_dataset(f"imagenet:{photos}")
    n = write_corrupted_tree(ds, tmp_path / "c", ["fog", "impulse_noise"], [2], imagenet_wnids(),
                             seed=3)
    assert n == 4
    for name in ("fog", "impulse_noise"):
        official = load_dataset(f"imagenetc:{tmp_path / 'c'}", f"{name}-2")
        assert torch.equal(official.labels, ds.labels)
        x = ds.float_batch(0, len(ds))
        fly = finish_images(get_stressor(name)(x, 2.0, seed=3, indices=ds.indices), "jpeg85")
        fly_u8 = (fly * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        assert torch.equal(fly_u8, official.images)
        raw = (get_stressor(name)(x, 2.0, seed=3, indices=ds.indices) * 255).round()
        # without the finish the JPEG loss is part of the difference
        assert (raw.permute(0, 2, 3, 1) - official.images.float()).abs().mean() > 0.5
