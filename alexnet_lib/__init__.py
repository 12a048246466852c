"""alexnet_lib: the shared library of the book "AlexNet, reproduced".

One module per concern of the paper (Krizhevsky, Sutskever, Hinton, NIPS 2012):

- ``model``: the two-tower net (§3.5) and the CIFAR-10 nets of §3.1 and §3.3
- ``layers``: local response normalisation (§3.3), PReLU (He et al. 2015)
- ``data``: finding datasets, decoding once, caching (§2)
- ``transforms``: mean subtraction, crops, flips, PCA colour, ten crops (§2, §4.1)
- ``train``: the update rule, the schedule, checkpoints (§5)
- ``evaluate``: top-1/top-5, ten-crop testing (§6)
- ``parallel``: the towers on two devices (§3.2)
- ``experiments``: run modes and the sizes of every experiment
- ``viz``: the shared pictures
"""

__version__ = "0.1.0"
