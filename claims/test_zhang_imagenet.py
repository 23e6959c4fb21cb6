"""Zhang et al. Table 2: ImageNet (paper scale only, with a user-provided ImageNet).

These rows need ImageNet in torchvision's layout (`--imagenet-root PATH`, train/ and val/ class
folders) and days of GPU time: Inception V3 trained from scratch on 1.28M images. The harness keeps
datasets in device memory, which ImageNet does not fit, so training it needs a streaming input
pipeline the harness does not have yet. Without the flag they skip, naming it; with it they are
reported as not reproduced (strict xfail) with that reason, never silently passed.
"""
import pytest

from rethinkbench.suite.evidence import ClaimInfo

IMAGENET = ClaimInfo(
    id="Z-T2-imagenet",
    title="ImageNet: random labels are fitted, regularizers help more",
    statement="On ImageNet, Inception V3 fits random labels (95.20% top-1 train accuracy) and, with "
              "no regularizers, still reaches 59.80% top-1 test accuracy; augmentation alone gives "
              "72.95%, all regularizers 77.84% (?).",
    source="Zhang et al. 2017, Table 2",
    paper="Random labels: top-1 train 95.20% (~90% with regularizers). Top-1 test: 59.80% (none), "
          "72.95% (augmentation), 77.84% (all, unconfirmed); top-5 80.38% vs AlexNet 83.6%.",
    paper_specific="Inception V3 on ImageNet, the paper's Table 2",
)
ROWS = {"random_labels_train_top1": 0.9520, "noreg_test_top1": 0.5980, "aug_test_top1": 0.7295,
        "all_reg_test_top1": 0.7784}


@pytest.mark.claim(IMAGENET)
@pytest.mark.scales("paper", needs="--imagenet-root PATH")
@pytest.mark.parametrize("row", sorted(ROWS))
def test_imagenet_table2(claim, request, row):
    """H0: our Inception V3 number differs from the paper's Table 2 row by more than 2 points."""
    root = request.config.getoption("--imagenet-root")
    if root is None:
        pytest.skip("ImageNet rows need --imagenet-root PATH (torchvision's ImageNet layout)")
    if not root.exists():
        raise pytest.UsageError(f"--imagenet-root {root} does not exist")
    claim.measure(row, None, paper=ROWS[row], tolerance={"abs": 0.02})
    claim.test = "|ours − paper| ≤ 2 points"
    claim.check(False, f"{row}: not measured — training Inception V3 on ImageNet needs a streaming "
                       f"input pipeline (ImageNet does not fit in device memory)",
                known_failure="ImageNet training is not implemented in the harness yet")
