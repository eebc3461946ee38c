"""Print the folders of NVIDIA's pip wheels that hold headers or libraries, one per line.

PyTorch's wheels bring cuDNN, NCCL and (for CUDA 13) the toolkit's libraries as the namespace package
`nvidia`: nvidia/cudnn, nvidia/nccl, nvidia/cu13, ... each with include/ and lib/. A namespace package
has no __file__, so its folders come from __path__. CMake and the GPU session script search these
folders after the toolkit's own. Prints nothing (exit 0) where no such wheel is installed.
"""
import os

try:
    import nvidia
except ImportError:
    raise SystemExit(0)

for top in list(nvidia.__path__):
    for name in sorted(os.listdir(top)):
        root = os.path.join(top, name)
        if os.path.isdir(os.path.join(root, "include")) or os.path.isdir(os.path.join(root, "lib")):
            print(root)
