"""alexnet_lib: the shared library of the book "AlexNet, reproduced".

Krizhevsky, Sutskever, Hinton, NIPS 2012, and He et al., ICCV 2015. Each module imports
only modules above it in this list, so the list can be read top to bottom:

- ``util``: plain helpers (paths, atomic writes, option checks, progress bars, the run mode,
  the device, provenance, the CPU allocator setting)
- ``tables``: tables that fit the page: rows as an HTML table (and as aligned text)
- ``storage``: safe files: the run folder's lock, leftovers of killed writes, a full disk named
- ``lrn``: local response normalisation (§3.3): the one formula (``lrn.reference``), the fast paths
  beside it (``lrn.python``, the fused ``lrn.cpu`` and ``lrn.gpu`` kernels), and the choice between them
- ``layers``: local response normalisation (§3.3), PReLU (He et al.), pooling (§3.4)
- ``small_nets``: the CIFAR-10 nets of §3.1 and §3.3, the deep plain nets of He et al.
- ``model``: the two-tower AlexNet (§3.5) and its builder ``alexnet()``
- ``transforms``: the §2 rescaling, mean subtraction, crops, flips, PCA colour, ten crops (§4.1)
- ``images``: decoding image files (with the §2 rescaling), naming the ones that fail
- ``download``: ``make data``, the real datasets downloaded into the book's layouts
- ``data``: finding datasets, decoding them once, caching them as uint8 tensors (§2)
- ``identity``: what a dataset is wherever it lies: its classes and a hash of every image and label
- ``evaluate``: top-1/top-5, ten-crop testing (§6)
- ``optim``: the update rule of §5 and the weight-decay groups
- ``cuda_convnet``: cuda-convnet's CIFAR-10 recipe: per-layer init and rates, hold-out, schedules, nine-crop test
- ``checkpoint``: checkpoint files, random states, the training log (``History``)
- ``tdist``: Student's t and the noncentral t by hand; the t test's power, the seeds it needs, Holm's adjustment
- ``stats``: the one verdict procedure: the regime rule, effects, 95% t intervals, detectable effects, verdicts
- ``claims``: the paper's claims, each defined once, judged by ``stats``; their records for chapter 9
- ``report``: every claim's verdict at a glance, from the records: chapter 9's report card, the first page
- ``analysis``: spread over seeds, epochs to a level, kernel chroma, neighbours
- ``batches``: the data order of every epoch, per process and device
- ``keeper``: the run keeper: a run's folder, checkpoints, log and resuming
- ``train``: the configuration, one step, one epoch and the fit (§5)
- ``anatomy``: what each tower holds, reads and costs
- ``parallel``: the towers on two devices (§3.2)
- ``viz``: the shared figures
- ``recipes``: models by name and the paper's data pipeline
- ``widgets``: knobs to turn: LRN, PCA colour, conv1 kernels, top-5; each with a static figure
- ``experiments``: the sizes of every experiment in each run mode, the chapter header, runs over seeds
- ``recorded``: the runs at the paper's scale (``tools/full_scale.py``): arms, claims, logs
- ``options``: the command line's options: types, ranges, what each model uses, resuming
- ``cli``: the command line (``python -m alexnet_lib``)
"""

__version__ = "0.1.0"
