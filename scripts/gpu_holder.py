"""Hold N GiB of GPU memory under a process title, like vLLM's `VLLM::EngineCore` does
(vLLM names its processes with setproctitle). Used by scripts/gpu-proof.sh.

    python gpu_holder.py GIB SECONDS [TITLE]     (HOLDER_DEVICE=cpu to try it without a GPU)
"""

import os
import sys
import time

if len(sys.argv) > 3:
    import setproctitle

    setproctitle.setproctitle(sys.argv[3])

import torch

size, seconds = int(sys.argv[1]) << 30, float(sys.argv[2])
device = os.environ.get("HOLDER_DEVICE", "cuda")
block = torch.empty(size, dtype=torch.uint8, device=device)
block.fill_(1)
if device == "cuda":
    torch.cuda.synchronize()
print(f"pid {os.getpid()} holding {size} bytes on {device}", flush=True)
time.sleep(seconds)
