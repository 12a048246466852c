"""Execute one chapter as a notebook, in the run mode of $ALEXNET_MODE, and save it with its outputs
(where Jupyter's command line is not installed; nbclient and ipykernel are enough):

    ALEXNET_MODE=full python tools/execute_chapter.py book/03_multiple_gpus.ipynb [OUTPUT]

OUTPUT defaults to the chapter itself. The chapter runs with book/ as its working directory.
"""

import sys
import time
from pathlib import Path

import nbclient
import nbformat


def main(argv) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    out = Path(argv[1]) if len(argv) == 2 else path
    nb = nbformat.read(path, as_version=4)
    t0 = time.time()
    nbclient.NotebookClient(nb, timeout=-1, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, out)
    print(f"{path.name} executed in {time.time() - t0:.0f} s, saved to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
